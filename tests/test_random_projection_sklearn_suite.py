"""scikit-learn's own tests for GaussianRandomProjection, run on our class.

The functions of ``sklearn/tests/test_random_projection.py`` read the
module-level list ``all_RandomProjection`` (and its dense/sparse halves) when
called, so pointing those lists at :class:`DerandomizedJLProjector` runs
sklearn's assertions on it unchanged.

Not run from that module, each for a stated reason:

* the tests of the random matrices themselves (``test_*random_matrix*``,
  ``test_sparse_*``, ``test_SparseRandomProj_*``): they test sklearn's
  samplers, not the estimator;
* ``test_too_many_samples_to_find_a_safe_embedding`` and the
  ``n_components_ == 110`` assertion of
  ``test_correct_RandomProjection_dimensions_embedding``: with
  ``n_components="auto"`` sklearn returns the JL bound (and fails when it
  exceeds n_features), while our contract is the smallest k whose learned
  projection meets eps. Both replaced below by tests of our contract;
* the 1000-sample, 1000-feature cases of ``test_inverse_transform``
  (about 20 s each here); the smaller shapes, dense and sparse, are run.
"""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.tests import test_random_projection as skt
from sklearn.utils.fixes import COO_CONTAINERS

from sklearn_derand import DerandomizedJLProjector, max_pairwise_distortion

OURS = [DerandomizedJLProjector]


@pytest.fixture(autouse=True)
def use_our_class(monkeypatch):
    monkeypatch.setattr(skt, "all_DenseRandomProjection", OURS)
    monkeypatch.setattr(skt, "all_SparseRandomProjection", [])
    monkeypatch.setattr(skt, "all_RandomProjection", OURS)


@pytest.fixture
def global_random_seed():
    return 42


def test_invalid_input():
    skt.test_random_projection_transformer_invalid_input()


@pytest.mark.parametrize("coo_container", COO_CONTAINERS)
def test_try_to_transform_before_fit(coo_container, global_random_seed):
    skt.test_try_to_transform_before_fit(coo_container, global_random_seed)


@pytest.mark.parametrize("coo_container", COO_CONTAINERS)
def test_random_projection_embedding_quality(coo_container):
    skt.test_random_projection_embedding_quality(coo_container)


@pytest.mark.parametrize("coo_container", COO_CONTAINERS)
def test_warning_n_components_greater_than_n_features(
    coo_container, global_random_seed
):
    skt.test_warning_n_components_greater_than_n_features(
        coo_container, global_random_seed
    )


@pytest.mark.parametrize("coo_container", COO_CONTAINERS)
def test_works_with_sparse_data(coo_container, global_random_seed):
    skt.test_works_with_sparse_data(coo_container, global_random_seed)


def test_johnson_lindenstrauss_min_dim_is_reexported():
    from sklearn_derand import johnson_lindenstrauss_min_dim

    assert johnson_lindenstrauss_min_dim is skt.johnson_lindenstrauss_min_dim
    skt.test_johnson_lindenstrauss_min_dim()


@pytest.mark.parametrize("coo_container", COO_CONTAINERS)
def test_random_projection_feature_names_out(coo_container, global_random_seed):
    skt.test_random_projection_feature_names_out(
        coo_container, DerandomizedJLProjector, global_random_seed
    )


SHAPES = [
    (n, d)
    for n in (2, 9, 10, 11, 1000)
    for d in (2, 9, 10, 11, 1000)
    if (n, d) != (1000, 1000)
]


@pytest.mark.parametrize("compute_inverse_components", [True, False])
@pytest.mark.parametrize(("n_samples", "n_features"), SHAPES)
def test_inverse_transform(
    n_samples, n_features, compute_inverse_components, global_random_seed
):
    skt.test_inverse_transform(
        COO_CONTAINERS[0],
        n_samples,
        n_features,
        DerandomizedJLProjector,
        compute_inverse_components,
        global_random_seed,
    )


@pytest.mark.parametrize(
    ("input_dtype", "expected_dtype"),
    [
        (np.float32, np.float32),
        (np.float64, np.float64),
        (np.int32, np.float64),
        (np.int64, np.float64),
    ],
)
def test_random_projection_dtype_match(input_dtype, expected_dtype):
    skt.test_random_projection_dtype_match(
        DerandomizedJLProjector, input_dtype, expected_dtype
    )


def test_random_projection_numerical_consistency():
    skt.test_random_projection_numerical_consistency(DerandomizedJLProjector)


# --- Our contract where sklearn's differs -----------------------------------


def test_auto_searches_up_to_n_features_instead_of_raising():
    # sklearn raises: the JL bound (5920) exceeds n_features=100. We return
    # the smallest learned k that meets eps, never above n_features.
    data = skt.make_sparse_random_data(
        COO_CONTAINERS[0],
        n_samples=120,
        n_features=100,
        n_nonzeros=1200,
        random_state=0,
        sparse_format=None,
    )
    rp = DerandomizedJLProjector(n_components="auto", eps=0.3, random_state=0)
    rp.fit(data)
    assert 1 <= rp.n_components_ <= 100
    assert max_pairwise_distortion(data, rp.transform(data)) <= 0.3 + 1e-9


@pytest.mark.parametrize("coo_container", COO_CONTAINERS)
def test_auto_dimension_is_far_below_the_jl_bound(coo_container):
    # sklearn's test expects the JL bound, 110 components, for 10 samples
    # and eps=0.5; ten points span at most 9 dimensions, so learning needs
    # at most 9, and fewer when distortion up to 0.5 is allowed.
    data = skt.make_sparse_random_data(
        coo_container,
        skt.n_samples,
        skt.n_features,
        skt.n_nonzeros,
        random_state=0,
        sparse_format=None,
    )
    rp = DerandomizedJLProjector(n_components="auto", eps=0.5, random_state=0)
    projected = rp.fit_transform(data)
    assert rp.n_components == "auto"
    assert rp.n_components_ <= 9 < skt.johnson_lindenstrauss_min_dim(10, eps=0.5)
    assert rp.components_.shape == (rp.n_components_, skt.n_features)
    assert max_pairwise_distortion(data, projected) <= 0.5
    # Once fitted the projection is fixed, and a refit with the same seed
    # gives the same result.
    np.testing.assert_array_equal(projected, rp.transform(data))
    again = DerandomizedJLProjector(random_state=0, eps=0.5).fit_transform(data)
    np.testing.assert_array_equal(projected, again)
    with pytest.raises(ValueError):
        rp.transform(data[:, 1:5])
    sparse = DerandomizedJLProjector(random_state=0, eps=0.5).fit(sp.csr_matrix(data))
    np.testing.assert_array_equal(sparse.components_, rp.components_)
