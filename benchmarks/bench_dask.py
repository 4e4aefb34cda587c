"""What scaling out with dask costs and buys, on this machine.

Times, side by side in one run: a GridSearchCV over ``alpha`` of
StructuredTwoLayerRegressor run serially (n_jobs=1), with joblib's local
processes (n_jobs=2, loky), and on a dask.distributed.LocalCluster of two
worker processes (joblib ``backend="dask"``); plus the one-off costs: cluster
start-up and the first task on a fresh worker (which pays ``import torch``).

Run: ``python benchmarks/bench_dask.py`` (needs the ``dask`` extra).
"""

import argparse
import time
import warnings

import joblib
import numpy as np
from dask.distributed import Client, LocalCluster
from sklearn.model_selection import GridSearchCV

from sklearn_derand import StructuredTwoLayerRegressor


def _import_torch():
    start = time.perf_counter()
    import torch  # noqa: F401

    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--d", type=int, default=30)
    args = parser.parse_args()
    # Default max_iter=300 fits may end uncertified on this data; the timing
    # is what is measured here.
    warnings.simplefilter("ignore")

    rng = np.random.RandomState(0)
    U = np.linalg.qr(rng.randn(args.d, 2))[0].T
    X = rng.randn(args.n, args.d)
    y = (X @ U[0]) * (X @ U[1]) + 0.1 * rng.randn(args.n)
    grid = {"alpha": [1e-4, 3e-4, 1e-3, 3e-3]}

    def search(**kwargs):
        est = StructuredTwoLayerRegressor(n_hidden=32, random_state=0)
        start = time.perf_counter()
        s = GridSearchCV(est, grid, cv=3, **kwargs).fit(X, y)
        return time.perf_counter() - start, s.best_params_["alpha"]

    print(f"GridSearchCV: 4 alphas x 3 folds (+ refit), n={args.n}, d={args.d}")
    rows = [("serial, n_jobs=1", *search(n_jobs=1))]
    rows.append(("joblib loky, n_jobs=2", *search(n_jobs=2)))

    start = time.perf_counter()
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )
    client = Client(cluster)
    startup = time.perf_counter() - start
    imports = client.run(_import_torch)
    with joblib.parallel_config(backend="dask"):
        rows.append(("dask LocalCluster, 2 workers", *search()))
    client.close()
    cluster.close()

    print(f"{'backend':32}{'time s':>8}{'vs serial':>11}  best alpha")
    for name, seconds, alpha in rows:
        print(f"{name:32}{seconds:8.1f}{rows[0][1] / seconds:10.2f}x  {alpha:g}")
    print(f"\ncluster start-up (2 worker processes): {startup:.1f} s")
    print(
        "import torch on each fresh worker: "
        + ", ".join(f"{t:.1f} s" for t in imports.values())
    )


if __name__ == "__main__":
    main()
