"""DerandomizedJLProjector: learning, drop-in behaviour, determinism."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning, DataDimensionalityWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.random_projection import GaussianRandomProjection
from sklearn.svm import LinearSVC

from sklearn_derand import (
    DerandomizedJLProjector,
    max_pairwise_distortion,
    random_projection,
)


@pytest.fixture(scope="module")
def digits():
    return load_digits().data[:150]


def _gaussian_distortion(X, k, seed):
    proj = GaussianRandomProjection(k, random_state=seed).fit(X)
    return max_pairwise_distortion(X, proj.transform(X))


def test_max_pairwise_distortion_matches_brute_force(rng):
    X = rng.randn(23, 7)
    X[5] = X[3]  # a duplicate pair is skipped
    E = X @ rng.randn(7, 3)
    ratios = [
        np.sum((E[i] - E[j]) ** 2) / np.sum((X[i] - X[j]) ** 2) - 1
        for i in range(23)
        for j in range(i + 1, 23)
        if (i, j) != (3, 5)
    ]
    got = max_pairwise_distortion(X, E, batch_size=4)
    assert got == pytest.approx(np.max(np.abs(ratios)))
    assert max_pairwise_distortion(sp.csr_matrix(X), E) == pytest.approx(got)
    assert max_pairwise_distortion(X[:1], E[:1]) == 0.0
    with pytest.raises(ValueError, match="different numbers of samples"):
        max_pairwise_distortion(X, E[:5])


def test_starts_from_the_gaussian_projection_and_never_does_worse(digits):
    # With one iteration the result is (at most one step from) the Gaussian
    # matrix sklearn draws for the same seed; after learning it is far better.
    for seed in range(3):
        gauss = GaussianRandomProjection(16, random_state=seed).fit(digits)
        with pytest.warns(ConvergenceWarning):
            start = DerandomizedJLProjector(
                16, init="gaussian", random_state=seed, max_iter=1, early_stopping=False
            )
            start.fit(digits)
        np.testing.assert_array_equal(start.components_, gauss.components_)
        ours = DerandomizedJLProjector(
            16, init="gaussian", random_state=seed, early_stopping=False
        )
        ours.fit(digits)
        assert ours.distortion_ == pytest.approx(
            max_pairwise_distortion(digits, ours.transform(digits))
        )
        assert ours.distortion_ < 0.5 * _gaussian_distortion(digits, 16, seed)


def test_learned_projection_beats_the_best_of_many_gaussian_ones(digits):
    k = 24
    best_gaussian = min(_gaussian_distortion(digits, k, s) for s in range(100))
    pca = PCA(k).fit(digits).transform(digits)
    ratios_lo_hi = _ratio_range(digits, pca)
    pca_rescaled = (ratios_lo_hi[1] - ratios_lo_hi[0]) / sum(ratios_lo_hi)
    ours = DerandomizedJLProjector(k, random_state=0, early_stopping=False).fit(digits)
    assert ours.distortion_ < 0.25 * best_gaussian
    assert ours.distortion_ < pca_rescaled
    assert ours.converged_
    assert ours.n_iter_ == len(ours.loss_curve_)


def _ratio_range(X, E):
    n = X.shape[0]
    iu = np.triu_indices(n, 1)
    dx = ((X[:, None] - X[None]) ** 2).sum(-1)[iu]
    de = ((E[:, None] - E[None]) ** 2).sum(-1)[iu]
    r = de[dx > 0] / dx[dx > 0]
    return r.min(), r.max()


def test_pca_start_is_rescaled_pca_and_best_start_is_never_worse(digits):
    k = 12
    lo, hi = _ratio_range(digits, PCA(k).fit(digits).transform(digits))
    pca_rescaled = (hi - lo) / (hi + lo)
    gauss = GaussianRandomProjection(k, random_state=0).fit(digits)
    with pytest.warns(ConvergenceWarning):
        start = DerandomizedJLProjector(
            k, init="pca", max_iter=1, random_state=0, early_stopping=False
        )
        start.fit(digits)
    # one iteration keeps the start: PCA times its best single factor ...
    assert start.distortion_ == pytest.approx(pca_rescaled, rel=1e-5)
    s_lo, s_hi = _ratio_range(digits, start.transform(digits))
    assert s_lo + s_hi == pytest.approx(2.0, rel=1e-5)
    # ... and off the span of the data, the Gaussian matrix sklearn draws
    Xc = digits - digits.mean(axis=0)
    _, S, Vt = np.linalg.svd(Xc)
    null = Vt[np.sum(S > 1e-8 * S[0]) :]
    assert null.shape[0] > 0
    np.testing.assert_allclose(
        start.components_ @ null.T, gauss.components_ @ null.T, atol=1e-9
    )
    learned = DerandomizedJLProjector(
        k, init="pca", random_state=0, early_stopping=False
    ).fit(digits)
    assert learned.distortion_ < 0.9 * pca_rescaled
    best = DerandomizedJLProjector(
        k, init="best", random_state=0, early_stopping=False
    ).fit(digits)
    gaussian_start = _gaussian_distortion(digits, k, 0)
    assert pca_rescaled < gaussian_start  # so "best" starts from PCA here
    np.testing.assert_array_equal(best.components_, learned.components_)
    # "best" starts from whichever start preserves the training pairs better
    rng = np.random.RandomState(0)
    for X, k in [(digits, 40), (rng.randn(40, 60), 30)]:
        starts = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for init in ("gaussian", "pca", "best"):
                est = DerandomizedJLProjector(
                    k, init=init, max_iter=1, random_state=0, early_stopping=False
                )
                starts[init] = est.fit(X)
        winner = min(("gaussian", "pca"), key=lambda i: starts[i].distortion_)
        np.testing.assert_array_equal(
            starts["best"].components_, starts[winner].components_
        )


def test_sparse_data_does_not_stall_on_the_pca_start():
    # At 0.5 % nonzeros the first principal directions map some pairs to
    # one point: the rescaled PCA start (the "best" one here) has max
    # distortion 1, flat in those pairs until the others' steps turn the
    # matrix. Stopping on that plateau returned distortion 1.0.
    rng = np.random.RandomState(0)
    nnz = 201
    X = sp.csr_matrix(
        (rng.randn(nnz), (rng.randint(200, size=nnz), rng.randint(200, size=nnz))),
        shape=(200, 200),
    )
    with pytest.warns(ConvergenceWarning):
        start = DerandomizedJLProjector(
            10, max_iter=1, random_state=0, early_stopping=False
        ).fit(X)
    assert start.distortion_ > 0.999
    ours = DerandomizedJLProjector(10, random_state=0, early_stopping=False).fit(X)
    gaussian_start = DerandomizedJLProjector(
        10, init="gaussian", random_state=0, early_stopping=False
    )
    gaussian_start.fit(X)
    assert ours.distortion_ < 0.5
    assert ours.distortion_ < 1.1 * gaussian_start.distortion_


def test_same_seed_same_components_different_seed_different(digits):
    a = DerandomizedJLProjector(10, random_state=3).fit(digits)
    b = DerandomizedJLProjector(10, random_state=3).fit(digits)
    c = DerandomizedJLProjector(10, random_state=4).fit(digits)
    np.testing.assert_array_equal(a.components_, b.components_)
    assert not np.allclose(a.components_, c.components_)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_dense_and_sparse_input_give_the_same_matrix(fmt, rng):
    X = sp.random(40, 60, density=0.2, random_state=rng, format=fmt)
    dense = DerandomizedJLProjector(6, random_state=0).fit(X.toarray())
    sparse = DerandomizedJLProjector(6, random_state=0).fit(X)
    np.testing.assert_array_equal(dense.components_, sparse.components_)
    np.testing.assert_allclose(sparse.transform(X), dense.transform(X.toarray()))


def test_float32_and_float64_agree_to_float32_rounding(rng):
    X = rng.rand(30, 40)
    a = DerandomizedJLProjector(7, random_state=0).fit(X)
    b = DerandomizedJLProjector(7, random_state=0).fit(X.astype(np.float32))
    assert a.components_.dtype == np.float64
    assert b.components_.dtype == np.float32
    assert b.transform(X.astype(np.float32)).dtype == np.float32
    np.testing.assert_allclose(b.components_, a.components_, rtol=1e-6, atol=1e-7)


def test_auto_needs_far_fewer_components_than_the_jl_bound(digits):
    # Without held-out points (early_stopping=False), eps on training pairs.
    from sklearn_derand import johnson_lindenstrauss_min_dim

    proj = DerandomizedJLProjector(
        "auto", eps=0.25, random_state=0, early_stopping=False
    ).fit(digits)
    assert proj.n_components_ < 20 < johnson_lindenstrauss_min_dim(150, eps=0.25)
    assert proj.distortion_ <= 0.25
    names = proj.get_feature_names_out()
    assert len(names) == proj.n_components_
    assert names[0] == "derandomizedjlprojector0"
    # Smallest: one component fewer does not meet eps.
    smaller = DerandomizedJLProjector(
        proj.n_components_ - 1, random_state=0, max_iter=500
    ).fit(digits)
    assert smaller.distortion_ > 0.25


def test_components_at_the_rank_of_the_data_give_an_exact_isometry(rng):
    X = rng.randn(30, 4) @ rng.randn(4, 50)  # rank 4
    proj = DerandomizedJLProjector(4, random_state=0).fit(X)
    assert proj.distortion_ < 1e-6
    with pytest.warns(DataDimensionalityWarning):
        DerandomizedJLProjector(60, random_state=0).fit(X)


def test_one_sample_and_auto_raises_like_sklearn():
    with pytest.raises(ValueError, match="target dimension of 0 which is invalid"):
        DerandomizedJLProjector().fit([[0.0, 1.0, 2.0]])


def test_identical_points_are_a_valid_input():
    X = np.ones((5, 3))
    proj = DerandomizedJLProjector(2, random_state=0).fit(X)
    assert proj.distortion_ == 0.0
    assert np.all(np.isfinite(proj.components_))


def test_early_stopping_records_validation_distortion(digits):
    proj = DerandomizedJLProjector(16, early_stopping=True, random_state=0)
    proj.fit(digits)
    assert proj.validation_distortion_ is not None
    assert proj.validation_distortion_ >= 0.0
    with pytest.raises(ValueError, match="early_stopping needs"):
        DerandomizedJLProjector(2, early_stopping=True).fit(digits[:2])


def test_score_is_negative_max_distortion_and_tunes_alpha(digits):
    proj = DerandomizedJLProjector(12, random_state=0).fit(digits[:100])
    held_out = digits[100:]
    assert proj.score(held_out) == pytest.approx(
        -max_pairwise_distortion(held_out, proj.transform(held_out))
    )
    search = GridSearchCV(
        DerandomizedJLProjector(12, random_state=0, max_iter=60),
        {"alpha": [0.0, 1.0]},
        cv=2,
    ).fit(digits)
    assert search.best_params_["alpha"] in (0.0, 1.0)
    assert search.best_score_ < 0


def test_drop_in_replacement_in_a_pipeline(digits):
    y = load_digits().target[:150]
    for projector in (
        GaussianRandomProjection(20, random_state=0),
        DerandomizedJLProjector(20, random_state=0),
    ):
        model = make_pipeline(projector, LinearSVC(max_iter=5000))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(digits, y)
        assert model.score(digits, y) > 0.9
    assert set(GaussianRandomProjection().get_params()) <= set(
        DerandomizedJLProjector().get_params()
    )


def test_block_mode_reports_the_exact_max_over_all_pairs(digits):
    # 150 points have 11175 pairs; with max_pairs=2000 the fit works on
    # blocks of points but the reported distortion is over every pair.
    proj = DerandomizedJLProjector(
        16, max_pairs=2000, random_state=0, max_iter=200
    ).fit(digits)
    assert proj.distortion_ == pytest.approx(
        max_pairwise_distortion(digits, proj.transform(digits))
    )
    assert proj.distortion_ < 0.5 * _gaussian_distortion(digits, 16, 0)


def _violated_share(X, E, eps):
    iu = np.triu_indices(X.shape[0], 1)
    dx = ((X[:, None] - X[None]) ** 2).sum(-1)[iu]
    de = ((E[:, None] - E[None]) ** 2).sum(-1)[iu]
    keep = dx > 0
    return np.mean(np.abs(de[keep] / dx[keep] - 1) > eps)


def test_derandomize_collapses_the_noise_and_cuts_violations(digits):
    # The paper's method: a Gaussian sampler whose expected number of pairs
    # outside 1 +- eps is minimised with a penalty on its noise; at the end
    # the noise scale has collapsed and the mean violates far fewer pairs
    # than the Gaussian projection.
    X, k, eps = digits[:40], 8, 0.3
    proj = DerandomizedJLProjector(
        k, method="derandomize", eps=eps, random_state=0, max_iter=300
    ).fit(X)
    start_sigma = 0.5 / np.sqrt(k)  # init_noise / sqrt(k)
    assert proj.sigma_max_ < 0.05 * start_sigma
    gaussian = GaussianRandomProjection(k, random_state=0).fit_transform(X)
    assert _violated_share(X, proj.transform(X), eps) < 0.5 * _violated_share(
        X, gaussian, eps
    )
    assert proj.distortion_ == pytest.approx(
        max_pairwise_distortion(X, proj.transform(X))
    )
    assert len(proj.loss_curve_) == proj.n_iter_


def test_inverse_components_and_round_trip(rng):
    X = rng.randn(20, 12)
    proj = DerandomizedJLProjector(
        5, compute_inverse_components=True, random_state=0
    ).fit(X)
    assert proj.inverse_components_.shape == (12, 5)
    Z = proj.transform(X)
    np.testing.assert_allclose(proj.transform(proj.inverse_transform(Z)), Z, atol=1e-10)


def test_verbose_prints_progress(digits, capsys):
    DerandomizedJLProjector(8, verbose=1, random_state=0, max_iter=30).fit(digits)
    out = capsys.readouterr().out
    assert "stage p=8" in out and "max distortion" in out


def test_bad_device_is_a_clear_error(digits):
    with pytest.raises(ValueError, match="device"):
        DerandomizedJLProjector(4, device="tpu").fit(digits)


def test_convergence_warning_when_max_iter_is_hit(digits):
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        DerandomizedJLProjector(8, max_iter=3, random_state=0).fit(digits)


def test_early_stopping_auto_holds_points_out_from_50_to_5000_samples(rng, monkeypatch):
    X = rng.rand(120, 12)
    small = DerandomizedJLProjector(4, random_state=0).fit(X[:40])
    assert small.validation_distortion_ is None
    large = DerandomizedJLProjector(4, random_state=0).fit(X)
    assert large.validation_distortion_ is not None
    off = DerandomizedJLProjector(4, early_stopping=False, random_state=0).fit(X)
    assert off.validation_distortion_ is None
    # above the upper size (5000, lowered here) every point is fitted
    monkeypatch.setattr(random_projection, "_AUTO_EARLY_STOPPING", (50, 100))
    big = DerandomizedJLProjector(4, random_state=0).fit(X)
    assert big.validation_distortion_ is None
    # distortion_ is over all pairs of X either way, held-out points included
    for est in (large, off):
        assert est.distortion_ == pytest.approx(
            max_pairwise_distortion(X, est.transform(X)), rel=1e-7
        )
        assert est.distortion_exact_ and est.n_pairs_checked_ == 120 * 119 // 2


def test_auto_n_components_meets_eps_on_held_out_pairs(digits):
    # With held-out points (the default from 50 samples) k is chosen so that
    # eps holds on the validation pairs, not only on the fitted ones: the
    # training-only search picks fewer components whose validation pairs
    # exceed eps.
    held = DerandomizedJLProjector("auto", eps=0.25, random_state=0).fit(digits)
    assert held.validation_distortion_ <= 0.25
    train_only = DerandomizedJLProjector(
        "auto", eps=0.25, early_stopping=False, random_state=0
    ).fit(digits)
    assert train_only.n_components_ < held.n_components_
