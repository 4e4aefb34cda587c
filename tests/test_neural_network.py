"""StructuredTwoLayerRegressor: subspace recovery, API, solvers."""

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_derand import StructuredTwoLayerRegressor, subspace_distance


def multi_index(n, d, seed, noise=0.1):
    """y = (u1.x)(u2.x) + noise with a random 2-d subspace U."""
    rng = np.random.RandomState(seed)
    U = np.linalg.qr(rng.randn(d, 2))[0].T
    X = rng.randn(n, d)
    Z = X @ U.T
    return X, Z[:, 0] * Z[:, 1] + noise * rng.randn(n), U


def test_subspace_distance_properties(rng):
    A = rng.randn(2, 6)
    assert subspace_distance(A, A) == pytest.approx(0.0, abs=1e-12)
    mixed = np.array([[2.0, 1.0], [0.5, -1.0]]) @ A  # same row space
    assert subspace_distance(A, mixed) == pytest.approx(0.0, abs=1e-10)
    e = np.eye(6)
    assert subspace_distance(e[:2], e[2:4]) == pytest.approx(np.sqrt(2))
    assert subspace_distance(e[:1], e[:2]) == pytest.approx(np.sqrt(0.5))
    with pytest.raises(ValueError, match="same number of columns"):
        subspace_distance(e[:1], np.eye(5)[:1])


def test_recovers_a_two_index_subspace_and_predicts_well():
    X, y, U = multi_index(3000, 12, 0)
    model = StructuredTwoLayerRegressor(n_hidden=32, random_state=0).fit(X, y)
    assert model.n_components_ == 2
    assert subspace_distance(model.components_, U) < 0.05
    np.testing.assert_allclose(
        model.components_ @ model.components_.T, np.eye(2), atol=1e-10
    )
    X_test, y_test, _ = multi_index(2000, 12, 0)
    assert model.score(X_test, y_test) > 0.95
    assert model.transform(X_test).shape == (2000, 2)


def test_first_layer_weights_show_the_structure():
    # The paper's claim: the row space of W itself collapses onto U.
    X, y, U = multi_index(3000, 12, 1)
    model = StructuredTwoLayerRegressor(
        n_hidden=32, subspace="weights", random_state=0
    ).fit(X, y)
    s = model.singular_values_
    assert s[1] / s[2] > 3.0
    assert subspace_distance(model.components_[:2], U) < 0.1


def test_without_the_ridge_the_weights_do_not_collapse():
    X, y, _ = multi_index(3000, 12, 1)
    with_ridge = StructuredTwoLayerRegressor(
        n_hidden=32, subspace="weights", random_state=0
    ).fit(X, y)
    without = StructuredTwoLayerRegressor(
        n_hidden=32, subspace="weights", alpha=0.0, random_state=0
    ).fit(X, y)
    gap = with_ridge.singular_values_[1] / with_ridge.singular_values_[2]
    gap0 = without.singular_values_[1] / without.singular_values_[2]
    assert gap > 2 * gap0


def test_paper_experiment_direction_within_002_rad():
    rng = np.random.RandomState(0)
    u = np.array([1.0, 1.0]) / np.sqrt(2)
    X = rng.randn(2000, 2)
    y = np.tanh(X @ u) + np.sqrt(0.1) * rng.randn(2000)
    model = StructuredTwoLayerRegressor(
        1000, freeze_output_layer=True, n_components=1, random_state=0
    ).fit(X, y)
    angle = np.arccos(min(1.0, abs(model.components_[0] @ u)))
    assert angle < 0.02
    assert model.coefs_[1].shape == (1000, 1)


def test_multi_output_targets():
    X, y, U = multi_index(1500, 8, 2)
    Y = np.c_[y, np.tanh(X @ U[0])]
    model = StructuredTwoLayerRegressor(n_hidden=24, random_state=0).fit(X, Y)
    assert model.predict(X).shape == (1500, 2)
    assert model.score(X, Y) > 0.9
    assert subspace_distance(model.components_, U) < 0.1


def test_float32_inputs_stay_float32():
    X, y, _ = multi_index(600, 6, 3)
    model = StructuredTwoLayerRegressor(n_hidden=16, random_state=0)
    model.fit(X.astype(np.float32), y.astype(np.float32))
    assert model.predict(X.astype(np.float32)).dtype == np.float32
    assert model.transform(X.astype(np.float32)).dtype == np.float32
    assert model.components_.dtype == np.float32


def test_feature_names_and_pipeline_with_grid_search():
    X, y, _ = multi_index(800, 5, 4)
    columns = [f"f{i}" for i in range(5)]
    frame = pd.DataFrame(X * 3 + 1, columns=columns)
    scaler = StandardScaler().set_output(transform="pandas")
    pipe = make_pipeline(
        scaler, StructuredTwoLayerRegressor(n_hidden=16, random_state=0)
    )
    search = GridSearchCV(
        pipe, {"structuredtwolayerregressor__alpha": [1e-3, 1e-2]}, cv=2
    ).fit(frame, y)
    assert search.best_score_ > 0.8
    model = search.best_estimator_[-1]
    assert list(model.feature_names_in_) == columns
    names = model.get_feature_names_out()
    assert list(names) == [
        f"structuredtwolayerregressor{i}" for i in range(model.n_components_)
    ]
    out = search.best_estimator_[:-1].transform(frame)
    model.set_output(transform="pandas")
    assert list(model.transform(out).columns) == list(names)


@pytest.mark.parametrize("solver", ["adam", "pgd", "hessian_descent", "gd"])
def test_every_solver_trains(solver):
    X, y, _ = multi_index(600, 5, 5)
    model = StructuredTwoLayerRegressor(
        n_hidden=16, solver=solver, max_iter=500, random_state=0
    ).fit(X, y)
    assert model.score(X, y) > 0.5
    assert np.isfinite(model.grad_norm_) and np.isfinite(model.min_eig_)
    assert len(model.loss_curve_) == model.n_iter_


def test_early_stopping_keeps_the_best_validation_iterate():
    X, y, _ = multi_index(1000, 6, 6)
    model = StructuredTwoLayerRegressor(
        n_hidden=16, early_stopping=True, random_state=0
    ).fit(X, y)
    assert model.validation_scores_
    assert model.best_validation_score_ == pytest.approx(max(model.validation_scores_))
    with pytest.raises(ValueError, match="early_stopping needs"):
        StructuredTwoLayerRegressor(early_stopping=True).fit(X[:3], y[:3])


def test_same_seed_same_model():
    X, y, _ = multi_index(500, 5, 7)
    a = StructuredTwoLayerRegressor(n_hidden=8, random_state=1).fit(X, y)
    b = StructuredTwoLayerRegressor(n_hidden=8, random_state=1).fit(X, y)
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


def test_errors_and_warnings():
    X, y, _ = multi_index(200, 4, 8)
    with pytest.raises(ValueError, match="n_components=5 must be at most"):
        StructuredTwoLayerRegressor(n_components=5).fit(X, y)
    with pytest.raises(ValueError, match="device"):
        StructuredTwoLayerRegressor(device="npu").fit(X, y)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        StructuredTwoLayerRegressor(max_iter=2, random_state=0).fit(X, y)
