"""First fit of each estimator in a fresh environment against a warm one.

numba compiles the kernels a fit uses on first call and caches them on disk
(``NUMBA_CACHE_DIR``, else ``__pycache__`` beside the sources). A fresh
environment (CI, a container, a notebook server) starts with an empty
cache. For each estimator this script runs one small fit in a fresh Python
process with an empty ``NUMBA_CACHE_DIR`` (cold), then again in a fresh
process with the cache that run left (warm); the difference is the compile
time the first fit pays. Imports are timed separately from the fit.

Run: ``python benchmarks/bench_first_use.py``.
"""

import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import json, sys, time, warnings
tic = time.perf_counter()
import numpy as np
from sklearn_derand import (DerandomizedJLProjector, DerandomizedMaxCut,
                            StructuredTwoLayerRegressor)
from sklearn_derand.datasets import load_gset
imported = time.perf_counter() - tic
name = sys.argv[1]
rng = np.random.RandomState(0)
if name == "jl":
    X = rng.randn(300, 64)
    make = lambda: DerandomizedJLProjector(16, random_state=0)
    args = (X,)
elif name == "maxcut":
    W, _ = load_gset("G14")
    make = lambda: DerandomizedMaxCut(random_state=0)
    args = (W,)
else:
    X = rng.randn(500, 10)
    y = np.tanh(X[:, 0]) + 0.1 * rng.randn(500)
    make = lambda: StructuredTwoLayerRegressor(random_state=0)
    args = (X, y)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    tic = time.perf_counter()
    cpu = time.process_time()
    make().fit(*args)
    fit = time.perf_counter() - tic
    fit_cpu = time.process_time() - cpu
print(json.dumps({"import": imported, "fit": fit, "fit_cpu": fit_cpu}))
"""


def run(name, cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, name],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    print(
        f"{os.cpu_count()} cpus; one small fit per estimator (JL 300 x 64, k=16; "
        "MaxCut G14; regressor 500 x 10), each in a fresh process"
    )
    print(
        f"{'estimator':<12}{'import s':>9}{'cold fit s':>11}{'cold CPU s':>11}"
        f"{'warm fit s':>11}{'compile s':>10}"
    )
    for name in ("jl", "maxcut", "regressor"):
        with tempfile.TemporaryDirectory() as cache:
            cold = run(name, cache)
            warm = run(name, cache)
        print(
            f"{name:<12}{cold['import']:>9.2f}{cold['fit']:>11.2f}"
            f"{cold['fit_cpu']:>11.2f}{warm['fit']:>11.2f}"
            f"{cold['fit'] - warm['fit']:>10.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
