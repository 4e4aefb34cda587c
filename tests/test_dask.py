"""Scaling out with dask (the ``dask`` extra): tuning on a cluster, and
transforming a chunked array.

The cluster is a ``dask.distributed.LocalCluster`` of two worker processes on
the loopback interface: the same code runs on a multi-machine cluster by
pointing the ``Client`` at its scheduler.
"""

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, KFold

from sklearn_derand import (
    DerandomizedJLProjector,
    StructuredTwoLayerRegressor,
    subspace_distance,
)

distributed = pytest.importorskip("dask.distributed")
da = pytest.importorskip("dask.array")


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def test_grid_search_over_alpha_runs_on_the_cluster(client):
    X = load_digits().data[:120]
    grid = {"alpha": [0.1, 1.0, 10.0]}
    cv = KFold(3)
    serial = GridSearchCV(DerandomizedJLProjector(8, random_state=0), grid, cv=cv)
    serial.fit(X)
    with distributed.get_task_stream(client) as stream:
        with joblib.parallel_config(backend="dask"):
            remote = GridSearchCV(
                DerandomizedJLProjector(8, random_state=0), grid, cv=cv
            ).fit(X)
    # the 9 fits ran as tasks on the workers, with the same results
    assert len(stream.data) >= 9
    workers = {task["worker"] for task in stream.data}
    assert workers <= set(client.scheduler_info()["workers"])
    assert remote.best_params_ == serial.best_params_
    np.testing.assert_allclose(
        remote.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"]
    )


def test_regressor_grid_search_on_the_cluster(client):
    rng = np.random.RandomState(0)
    X = rng.randn(400, 5)
    y = np.tanh(X[:, 0] - X[:, 1])
    with joblib.parallel_config(backend="dask"):
        search = GridSearchCV(
            StructuredTwoLayerRegressor(n_hidden=8, random_state=0),
            {"alpha": [1e-4, 1e-2]},
            cv=2,
        ).fit(X, y)
    assert search.best_score_ > 0.9


def test_parallel_post_fit_transforms_a_chunked_array(client):
    wrappers = pytest.importorskip("dask_ml.wrappers")
    X = load_digits().data
    model = wrappers.ParallelPostFit(DerandomizedJLProjector(16, random_state=0))
    model.fit(X[:200])
    X_big = da.from_array(X, chunks=(500, X.shape[1]))
    embedded = model.transform(X_big)
    assert isinstance(embedded, da.Array)
    assert embedded.numblocks[0] == X_big.numblocks[0]
    np.testing.assert_allclose(
        embedded.compute(), model.estimator.transform(X), rtol=1e-12
    )


def test_incremental_trains_the_regressor_out_of_core(client):
    """dask-ml's Incremental streams the blocks of a dask array through
    partial_fit; a few passes reach the quality of a plain fit."""
    wrappers = pytest.importorskip("dask_ml.wrappers")
    rng = np.random.RandomState(0)
    X = rng.randn(6000, 5)
    y = np.tanh(X[:, 0] - X[:, 1]) + 0.1 * rng.randn(6000)
    X_test = rng.randn(2000, 5)
    y_test = np.tanh(X_test[:, 0] - X_test[:, 1])
    Xd = da.from_array(X, chunks=(1000, 5))
    yd = da.from_array(y, chunks=1000)
    model = wrappers.Incremental(
        StructuredTwoLayerRegressor(
            n_hidden=16, batch_size=50, learning_rate=1e-2, random_state=0
        ),
        random_state=0,  # the order of the blocks (shuffled) is seeded too
    )
    for _ in range(8):
        model.partial_fit(Xd, yd)
    streamed = model.estimator_
    assert streamed.n_iter_ == 8 * Xd.numblocks[0]
    plain = StructuredTwoLayerRegressor(n_hidden=16, random_state=0).fit(X, y)
    assert streamed.score(X_test, y_test) > plain.score(X_test, y_test) - 0.03
    direction = np.array([[1.0, -1.0, 0.0, 0.0, 0.0]])
    assert subspace_distance(streamed.components_[:1], direction) < 0.1
