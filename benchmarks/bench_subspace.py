"""Benchmark of StructuredTwoLayerRegressor: subspace recovery and R^2.

Data: x ~ N(0, I_d), y = h(U x) + N(0, 0.1^2), U a random k x d orthonormal
matrix; links tanh(u.x), He2(u.x) = (u.x)^2 - 1, the product
(u1.x)(u2.x), and tanh(u1.x) + (u2.x)^2. n = 10,000 training points,
5,000 test points, 5 seeds.

Printed side by side, per case (mean and std over seeds): the subspace
error ||sin Theta||_F of our estimator (gradient readout, and the paper's
weight readout with its singular-value gap), of sliced inverse regression
(SIR), sliced average variance estimation (SAVE) and directional
regression (DR) implemented here in numpy (the PyPI package ``sliced`` no
longer imports), and of sklearn's MLPRegressor with the SVD of its first
layer or its expected gradient outer product; held-out R^2 of ours and of
MLPRegressor(), next to the oracle R^2 = 1 - 0.01 / Var(y); fit times.

Run: ``python benchmarks/bench_subspace.py`` (``--seeds 2`` for a shorter
run, ``--solvers`` adds our other solvers on the product link).

Scale section: ``python benchmarks/bench_subspace.py --scale`` (or
``--scale 100000`` for one size, ``--models ours`` for ours alone): each
model fitted with its defaults in a fresh process on tanh(u1.x) + (u2.x)^2,
d = 100, n = 10^4, 10^5, 10^6; fit wall and CPU time, the input array's
size, the process's peak resident memory (ru_maxrss) after the fit minus
what it held before the fit (the data are built in blocks of 100,000 rows,
so earlier peaks stay below the fit's unless the fit adds less than one
block) and the peak itself, held-out R^2 and the subspace error.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor

from sklearn_derand import StructuredTwoLayerRegressor, subspace_distance

NOISE = 0.1
LINKS = {
    "tanh": (1, lambda Z: np.tanh(Z[:, 0])),
    "He2": (1, lambda Z: Z[:, 0] ** 2 - 1),
    "product": (2, lambda Z: Z[:, 0] * Z[:, 1]),
    "tanh+square": (2, lambda Z: np.tanh(Z[:, 0]) + Z[:, 1] ** 2),
}


def make_data(link, d, n, seed):
    k, h = LINKS[link]
    rng = np.random.RandomState(seed)
    U = np.linalg.qr(rng.randn(d, k))[0].T
    X = rng.randn(n, d)
    y = h(X @ U.T) + NOISE * rng.randn(n)
    return X, y, U


# -- classical sufficient dimension reduction, by slicing ------------------


def _slices(X, y, n_slices=10):
    """Whitened X and the index sets of equal-count slices of y."""
    mean = X.mean(0)
    cov = np.cov(X, rowvar=False)
    lam, Q = np.linalg.eigh(cov)
    whiten = Q / np.sqrt(lam)
    Z = (X - mean) @ whiten
    order = np.argsort(y, kind="stable")
    return Z, np.array_split(order, n_slices), whiten


def _top(M, k, whiten):
    Q = np.linalg.eigh((M + M.T) / 2)[1]
    directions = whiten @ Q[:, ::-1][:, :k]  # back to the original scale
    return directions.T


def sir(X, y, k):
    Z, slices, whiten = _slices(X, y)
    M = sum(len(s) / len(y) * np.outer(Z[s].mean(0), Z[s].mean(0)) for s in slices)
    return _top(M, k, whiten)


def save(X, y, k):
    Z, slices, whiten = _slices(X, y)
    d = Z.shape[1]
    M = np.zeros((d, d))
    for s in slices:
        A = np.eye(d) - np.cov(Z[s], rowvar=False)
        M += len(s) / len(y) * A @ A
    return _top(M, k, whiten)


def directional_regression(X, y, k):
    """Li & Wang (2007): 2 E[(E[zz'|y] - I)^2] + 2 (E[m m'])^2
    + 2 E[m'm] E[m m'], with m = E[z|y], estimated by slicing."""
    Z, slices, whiten = _slices(X, y)
    d = Z.shape[1]
    first = np.zeros((d, d))
    mm = np.zeros((d, d))
    mtm = 0.0
    for s in slices:
        p = len(s) / len(y)
        m = Z[s].mean(0)
        second = Z[s].T @ Z[s] / len(s)
        A = second - np.eye(d)
        first += p * A @ A
        mm += p * np.outer(m, m)
        mtm += p * m @ m
    return _top(2 * first + 2 * mm @ mm + 2 * mtm * mm, k, whiten)


# -- MLPRegressor readouts -------------------------------------------------------


def mlp_readouts(model, X, k):
    W1 = model.coefs_[0]  # d x hidden
    svd_dirs = np.linalg.svd(W1.T, full_matrices=False)[2][:k]
    Z = X @ W1 + model.intercepts_[0]
    active = (Z > 0).astype(float)  # ReLU'
    G = (active * model.coefs_[1][:, 0]) @ W1.T  # n x d input gradients
    Q = np.linalg.eigh(G.T @ G / len(X))[1]
    return svd_dirs, Q[:, ::-1][:, :k].T


def run_case(link, d, seeds, extra_solvers):
    k = LINKS[link][0]
    rows = {
        name: []
        for name in (
            "ours (gradients)",
            "ours (weights)",
            "weights gap",
            "SIR",
            "SAVE",
            "DR",
            "MLP + SVD",
            "MLP + EGOP",
            "R2 ours",
            "R2 MLPRegressor()",
            "R2 oracle",
            "fit s ours",
            "fit s MLP",
        )
    }
    for solver in extra_solvers:
        rows[f"ours, solver={solver}"] = []
    for seed in range(seeds):
        X, y, U = make_data(link, d, 15_000, seed)
        Xtr, ytr, Xte, yte = X[:10_000], y[:10_000], X[10_000:], y[10_000:]
        start = time.perf_counter()
        ours = StructuredTwoLayerRegressor(n_components=k, random_state=seed)
        ours.fit(Xtr, ytr)
        rows["fit s ours"].append(time.perf_counter() - start)
        rows["ours (gradients)"].append(subspace_distance(ours.components_, U))
        _, s, Vt = np.linalg.svd(ours.coefs_[0].T, full_matrices=False)
        rows["ours (weights)"].append(subspace_distance(Vt[:k], U))
        rows["weights gap"].append(s[k - 1] / s[k])
        rows["R2 ours"].append(ours.score(Xte, yte))
        rows["R2 oracle"].append(1 - NOISE**2 / yte.var())
        rows["SIR"].append(subspace_distance(sir(Xtr, ytr, k), U))
        rows["SAVE"].append(subspace_distance(save(Xtr, ytr, k), U))
        rows["DR"].append(subspace_distance(directional_regression(Xtr, ytr, k), U))
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            mlp = MLPRegressor(random_state=seed).fit(Xtr, ytr)
        rows["fit s MLP"].append(time.perf_counter() - start)
        svd_dirs, egop_dirs = mlp_readouts(mlp, Xtr[:5000], k)
        rows["MLP + SVD"].append(subspace_distance(svd_dirs, U))
        rows["MLP + EGOP"].append(subspace_distance(egop_dirs, U))
        rows["R2 MLPRegressor()"].append(mlp.score(Xte, yte))
        for solver in extra_solvers:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                other = StructuredTwoLayerRegressor(
                    n_components=k, solver=solver, random_state=seed
                ).fit(Xtr, ytr)
            rows[f"ours, solver={solver}"].append(
                subspace_distance(other.components_, U)
            )
    print(
        f"\n== {link}, d={d}, k={k}, n=10000, {seeds} seeds "
        "(subspace errors ||sin Theta||_F, lower is better)"
    )
    for name, values in rows.items():
        values = np.asarray(values)
        print(f"  {name:<28}{values.mean():>9.4f}  +- {values.std():.4f}")


# -- scale: time and memory against n ------------------------------------------

SCALE_D = 100
SCALE_TEST = 10_000


def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss():
    """The process's peak resident memory so far (ru_maxrss, in bytes).

    Read after the fit, no sampling thread: a thread waking every few
    milliseconds takes the GIL from the fit's Python loop and slowed ours by
    half (23 s against 15 s at n = 10^5).
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _scale_data(n, seed=0):
    """tanh(u1.x) + (u2.x)^2 + noise, d = 100, built in blocks (no
    temporaries beyond the arrays returned)."""
    rng = np.random.RandomState(seed)
    U = np.linalg.qr(rng.randn(SCALE_D, 2))[0].T
    X = np.empty((n + SCALE_TEST, SCALE_D))
    y = np.empty(n + SCALE_TEST)
    for lo in range(0, n + SCALE_TEST, 100_000):
        hi = min(lo + 100_000, n + SCALE_TEST)
        X[lo:hi] = rng.randn(hi - lo, SCALE_D)
        Z = X[lo:hi] @ U.T
        y[lo:hi] = np.tanh(Z[:, 0]) + Z[:, 1] ** 2 + NOISE * rng.randn(hi - lo)
    return X[:n], y[:n], X[n:], y[n:], U


def _scale_estimator(name):
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import RidgeCV

    return {
        "ours": lambda: StructuredTwoLayerRegressor(n_components=2, random_state=0),
        "MLPRegressor": lambda: MLPRegressor(random_state=0),
        "RidgeCV": lambda: RidgeCV(),
        "HistGradientBoosting": lambda: HistGradientBoostingRegressor(random_state=0),
    }[name]()


def scale_row(name, n):
    """One fit in this process: a JSON line with time, memory and quality."""
    Xtr, ytr, Xte, yte, U = _scale_data(n)
    model = _scale_estimator(name)
    if name == "ours":
        import sklearn_derand._sosp  # noqa: F401  (torch's import is not the fit's)

    before = _rss()
    cpu0 = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        model.fit(Xtr, ytr)
        wall = time.perf_counter() - start
    peak = max(_peak_rss(), before)
    row = {
        "model": name,
        "n": n,
        "fit_s": wall,
        "cpu_s": time.process_time() - cpu0,
        "input_mb": Xtr.nbytes / 2**20,
        "fit_extra_mb": (peak - before) / 2**20,
        "peak_rss_mb": peak / 2**20,
        "r2": model.score(Xte, yte),
        "sin_theta": (
            subspace_distance(model.components_, U)
            if hasattr(model, "components_")
            else float("nan")
        ),
        "converged": bool(getattr(model, "converged_", True)),
    }
    print(json.dumps(row))


def run_scale(sizes, models):
    """Each (model, n) in a fresh process, so peaks do not mix."""
    print(
        f"\n== scale: tanh(u1.x) + (u2.x)^2, d={SCALE_D}, defaults, "
        f"{os.cpu_count()} cores; held-out R^2 on {SCALE_TEST} points"
    )
    print(
        f"  {'model':<22}{'n':>9}{'fit s':>9}{'CPU s':>9}{'input MB':>10}"
        f"{'fit +MB':>9}{'peak MB':>9}{'R^2':>8}{'sinT':>8}"
    )
    for n in sizes:
        for name in models:
            out = subprocess.run(
                [sys.executable, __file__, "--scale-row", name, str(n)],
                capture_output=True,
                text=True,
            )
            if out.returncode:
                print(f"  {name:<22}{n:>9}  failed: {out.stderr.strip()[-300:]}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"  {name:<22}{n:>9}{r['fit_s']:>9.2f}{r['cpu_s']:>9.1f}"
                f"{r['input_mb']:>10.0f}{r['fit_extra_mb']:>9.0f}"
                f"{r['peak_rss_mb']:>9.0f}{r['r2']:>8.4f}{r['sin_theta']:>8.4f}"
                + ("" if r["converged"] else "  (not converged)")
            )


# -- real and noisy data: defaults against tuned baselines --------------------


def _real_models(ours_kwargs):
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def scaled(model):
        return make_pipeline(StandardScaler(), model)

    return {
        "ours (defaults)": lambda: scaled(
            StructuredTwoLayerRegressor(random_state=0, **ours_kwargs)
        ),
        "RidgeCV": lambda: scaled(RidgeCV()),
        "MLPRegressor": lambda: scaled(MLPRegressor(random_state=0, max_iter=1000)),
        "HistGradientBoosting": lambda: HistGradientBoostingRegressor(random_state=0),
    }


def _cv_rows(X, y, folds, ours_kwargs):
    from sklearn.model_selection import KFold

    cv = KFold(folds, shuffle=True, random_state=0)
    for name, make in _real_models(ours_kwargs).items():
        scores, ks, start = [], [], time.perf_counter()
        for train, test in cv.split(X):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model = make().fit(X[train], y[train])
            scores.append(model.score(X[test], y[test]))
            if name.startswith("ours"):
                ks.append(model[-1].n_components_)
        extra = f"  n_components_ per fold {ks}" if ks else ""
        print(
            f"  {name:<22}{np.mean(scores):>8.4f} +- {np.std(scores):.4f}"
            f"{time.perf_counter() - start:>8.1f} s{extra}"
        )


def run_real(ours_kwargs=None):
    """load_diabetes (5-fold CV) and a noisy single-index model (d = 100,
    n = 5000, y = (u.x)^2 + N(0, 1)), each model with its defaults."""
    from sklearn.datasets import load_diabetes

    ours_kwargs = ours_kwargs or {}
    X, y = load_diabetes(return_X_y=True)
    print("\n== load_diabetes, 5-fold CV R^2 (mean +- std), total time")
    _cv_rows(X, y, 5, ours_kwargs)
    rng = np.random.RandomState(0)
    d = 100
    u = rng.randn(d)
    u /= np.linalg.norm(u)
    X = rng.randn(10_000, d)
    y = (X @ u) ** 2 + rng.randn(10_000)
    print(
        "\n== heavy noise: y = (u.x)^2 + N(0, 1), d = 100, n = 5000 train / "
        "5000 test (oracle R^2 0.67)"
    )
    for name, make in _real_models(ours_kwargs).items():
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = make().fit(X[:5000], y[:5000])
        extra = ""
        if name.startswith("ours"):
            net = model[-1]
            extra = (
                f"  n_components_ {net.n_components_}, ||sin Theta|| "
                f"{subspace_distance(net.components_[:1], u[None]):.4f}"
            )
        print(
            f"  {name:<22}{model.score(X[5000:], y[5000:]):>8.4f}"
            f"{time.perf_counter() - start:>8.1f} s{extra}"
        )


def run_geometry():
    """Inputs that are not standard Gaussian: x = L z with Cov = Toeplitz(
    0.7^|i-j|), z Gaussian or Student-t(5) (unit variance), d = 40,
    y = tanh(b1.x) + (b2.x)^2 / 2 + N(0, 0.1^2), n = 10,000; subspace error
    of ours with and without whiten=True."""
    from scipy.linalg import toeplitz

    d, n = 40, 10_000
    rng = np.random.RandomState(0)
    L = np.linalg.cholesky(toeplitz(0.7 ** np.arange(d)))
    B = np.linalg.qr(rng.randn(d, 2))[0].T
    print(
        "\n== correlated inputs, Cov = Toeplitz(0.7^|i-j|), d = 40, k = 2, "
        "n = 10000 (||sin Theta||_F, held-out R^2)"
    )
    for dist in ("Gaussian", "Student-t(5)"):
        if dist == "Gaussian":
            Z = rng.randn(2 * n, d)
        else:
            Z = rng.standard_t(5, (2 * n, d)) / np.sqrt(5 / 3)
        X = Z @ L.T
        P = X @ B.T
        y = np.tanh(P[:, 0]) + P[:, 1] ** 2 / 2 + NOISE * rng.randn(2 * n)
        for whiten in (False, True):
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model = StructuredTwoLayerRegressor(
                    n_components=2, whiten=whiten, random_state=0
                ).fit(X[:n], y[:n])
            print(
                f"  {dist:<14} whiten={whiten!s:<6}"
                f"{subspace_distance(model.components_, B):>9.4f}"
                f"{model.score(X[n:], y[n:]):>9.4f}"
                f"{time.perf_counter() - start:>8.1f} s"
            )


def figure(path, sizes=(500, 2000, 8000), noises=(0.1, 0.5, 1.0), d=30):
    """Subspace error and held-out R^2 against n, one curve per noise level:
    ours with defaults against MLPRegressor() read out by EGOP, on the
    tanh+square link (k = 2) in d = 30; prints the numbers it plots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k, h = LINKS["tanh+square"]
    print(
        f"\n== figure: tanh+square link, d={d}, k={k}; ||sin theta||_F and "
        "test R^2 (25 % held out), one seed"
    )
    print(
        f"  {'n':>6}{'noise':>7}{'ours err':>10}{'MLP err':>9}{'ours R2':>9}"
        f"{'MLP R2':>8}{'ours s':>8}{'MLP s':>7}"
    )
    res = {}
    for noise in noises:
        for n in sizes:
            rng = np.random.RandomState(0)
            U = np.linalg.qr(rng.randn(d, k))[0].T
            X = rng.randn(n, d)
            y = h(X @ U.T) + noise * rng.randn(n)
            cut = int(0.75 * n)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tic = time.perf_counter()
                ours = StructuredTwoLayerRegressor(random_state=0).fit(X[:cut], y[:cut])
                t_ours = time.perf_counter() - tic
                tic = time.perf_counter()
                mlp = MLPRegressor(random_state=0).fit(X[:cut], y[:cut])
                t_mlp = time.perf_counter() - tic
            basis = ours.components_
            if basis.shape[0] < k:  # n_components="auto" chose fewer
                basis = np.vstack([basis, np.zeros((k - basis.shape[0], d))])
            row = (
                subspace_distance(basis[:k], U),
                subspace_distance(mlp_readouts(mlp, X[:cut], k)[1], U),
                ours.score(X[cut:], y[cut:]),
                mlp.score(X[cut:], y[cut:]),
            )
            res[noise, n] = row
            print(
                f"  {n:>6}{noise:>7.1f}{row[0]:>10.3f}{row[1]:>9.3f}{row[2]:>9.3f}"
                f"{row[3]:>8.3f}{t_ours:>8.1f}{t_mlp:>7.1f}",
                flush=True,
            )
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for noise, colour in zip(noises, ("C0", "C1", "C2")):
        for j, (ax, name) in enumerate(zip(axes, ("error", "R2"))):
            ours = [res[noise, n][j * 2] for n in sizes]
            mlp = [res[noise, n][j * 2 + 1] for n in sizes]
            ax.plot(sizes, ours, "o-", color=colour, label=f"ours, noise {noise}")
            ax.plot(sizes, mlp, "s--", color=colour, label=f"MLP, noise {noise}")
    axes[0].set_ylabel("subspace error ||sin theta||_F")
    axes[1].set_ylabel("held-out R^2")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.minorticks_off()
        ax.set_xlabel("n (samples)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"figure written to {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--figure",
        metavar="PATH",
        help="only the figure: subspace error and R^2 against n and noise, ours "
        "against MLPRegressor + EGOP, written to PATH",
    )
    parser.add_argument(
        "--scale",
        nargs="*",
        type=int,
        metavar="N",
        help="only the scale section, at these n (default 10^4 10^5 10^6)",
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=["ours", "MLPRegressor", "RidgeCV", "HistGradientBoosting"],
        help="models of the scale section",
    )
    parser.add_argument("--scale-row", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument(
        "--real",
        action="store_true",
        help="only the real/noisy-data section (load_diabetes, heavy noise)",
    )
    parser.add_argument(
        "--solvers",
        action="store_true",
        help="also run solver='adam' and 'pgd' on the product link",
    )
    args = parser.parse_args()
    if args.figure:
        figure(args.figure)
        return
    if args.scale_row:
        scale_row(args.scale_row[0], int(args.scale_row[1]))
        return
    if args.real:
        run_real()
        run_geometry()
        return
    if args.scale is not None:
        run_scale(args.scale or [10**4, 10**5, 10**6], args.models)
        return
    cases = [
        ("tanh", 100),
        ("He2", 100),
        ("product", 100),
        ("tanh+square", 100),
        ("He2", 20),
        ("product", 20),
    ]
    for link, d in cases:
        extra = (
            ["adam", "pgd"] if args.solvers and link == "product" and d == 100 else []
        )
        run_case(link, d, args.seeds, extra)


if __name__ == "__main__":
    main()
