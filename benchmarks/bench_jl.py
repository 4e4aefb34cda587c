"""Benchmark of DerandomizedJLProjector against Gaussian projections and PCA.

Prints, per case, the max pairwise distortion
``max | ||A(x_i - x_j)||^2 / ||x_i - x_j||^2 - 1 |`` of

* GaussianRandomProjection over ``--seeds`` seeds (mean, median, best),
* PCA rescaled by its best single factor (``(b - a) / (b + a)`` for the
  ratio range [a, b] of the evaluated pairs: an oracle rescaling),
* our two methods (``direct`` with its default start, the better of the
  Gaussian draw and rescaled PCA, and with ``init="gaussian"``;
  ``derandomize``) and the paper's literal start (``derandomize`` with
  ``init_noise=1``, i.e. M = 0),

with fit times, all in the same run. Cases: the first 300 sklearn digits
(k = 16, 32), 1000 standard Gaussian points in d = 1000 (k = 64), the
``n_components="auto"`` search, held-out points (fit on 80 %, evaluate the
pairs that involve the other 20 %; on digits also over six more random
splits, with PCA also rescaled by the factor its training pairs give, a
projection one can actually use), sklearn's test_inverse_transform
setting (1000 x 1000, 1 % dense, k = 10) for time, with what the stopping
parameters trade there, and sparse data of a few sizes and densities.

Run: ``python benchmarks/bench_jl.py`` (add ``--seeds 100 --quick`` for a
shorter run); ``--figure PATH`` instead draws the distortion against n and
k on a 20-cluster mixture (d = 300) and prints its numbers.
"""

import argparse
import os
import time
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.random_projection import GaussianRandomProjection

from sklearn_derand import DerandomizedJLProjector, johnson_lindenstrauss_min_dim


class Pairs:
    """Squared distances of the evaluated pairs, for fast repeated scoring."""

    def __init__(self, X, mask=None):
        X = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64)
        self.X = X
        n = X.shape[0]
        sq = (X**2).sum(1)
        D = sq[:, None] + sq[None, :] - 2 * X @ X.T
        upper = np.triu(np.ones((n, n), dtype=bool), 1)
        self.mask = upper & (D > 1e-9 * D.max()) & (True if mask is None else mask)
        self.D = D[self.mask]

    def ratios(self, E):
        sq = (E**2).sum(1)
        De = sq[:, None] + sq[None, :] - 2 * E @ E.T
        return np.maximum(De[self.mask], 0) / self.D

    def distortion(self, E):
        return float(np.abs(self.ratios(E) - 1).max())

    def pca_rescaled(self, E):
        r = self.ratios(E)
        return float((r.max() - r.min()) / (r.max() + r.min()))


def gaussian_stats(pairs, X, k, seeds):
    values = []
    for s in range(seeds):
        G = GaussianRandomProjection(k, random_state=s).fit(X)
        values.append(pairs.distortion(G.transform(X)))
    values = np.array(values)
    return values.mean(), np.median(values), values.min()


def fit(estimator, X):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X)
    return estimator, time.perf_counter() - start


def row(label, value, seconds=None, extra=""):
    t = "" if seconds is None else f"{seconds:8.2f}"
    print(f"  {label:<46}{value:>10.4f}{t:>10}  {extra}")


def training_case(name, X, k, seeds, methods):
    print(
        f"\n== {name}: n={X.shape[0]}, d={X.shape[1]}, k={k} "
        "(max distortion over all training pairs; lower is better)"
    )
    print(f"  {'method':<46}{'distortion':>10}{'fit s':>10}")
    pairs = Pairs(X)
    mean, median, best = gaussian_stats(pairs, X, k, seeds)
    row(f"GaussianRandomProjection mean of {seeds} seeds", mean)
    row(f"GaussianRandomProjection median of {seeds} seeds", median)
    row(f"GaussianRandomProjection best of {seeds} seeds", best)
    row(
        "PCA, rescaled by its best factor",
        pairs.pca_rescaled(PCA(k, svd_solver="full").fit_transform(pairs.X)),
    )
    for label, est in methods:
        est, seconds = fit(est, X)
        extra = (
            f"sigma_max_={est.sigma_max_:.1e}" if est.method == "derandomize" else ""
        )
        row(label, pairs.distortion(est.transform(X)), seconds, extra)


def held_out_case(name, X, k, seeds, rng):
    n = X.shape[0]
    perm = rng.permutation(n)
    train, test = perm[: int(0.8 * n)], perm[int(0.8 * n) :]
    is_test = np.zeros(n, dtype=bool)
    is_test[test] = True
    involves_test = is_test[:, None] | is_test[None, :]
    pairs = Pairs(X, involves_test)
    print(
        f"\n== held-out {name}: fit on {train.size} points, pairs involving "
        f"the other {test.size}, k={k}"
    )
    print(f"  {'method':<46}{'distortion':>10}{'fit s':>10}")
    values = []
    for s in range(seeds):
        G = GaussianRandomProjection(k, random_state=s).fit(X[train])
        values.append(pairs.distortion(G.transform(X)))
    row(f"GaussianRandomProjection best of {seeds} seeds", min(values))
    row(f"GaussianRandomProjection median of {seeds} seeds", float(np.median(values)))
    pca = PCA(k, svd_solver="full").fit(X[train])
    row(
        "PCA fit on train, rescaled by best factor",
        pairs.pca_rescaled(pca.transform(X)),
    )
    search = GridSearchCV(
        DerandomizedJLProjector(k, early_stopping=True, random_state=0),
        {"alpha": [0.0, 1.0, 10.0, 100.0, 1000.0]},
        cv=3,
    )
    for label, est in [
        ("direct (default)", DerandomizedJLProjector(k, random_state=0)),
        (
            "direct, early_stopping",
            DerandomizedJLProjector(k, early_stopping=True, random_state=0),
        ),
        ("direct, early_stopping, alpha by GridSearchCV", search),
        (
            "direct, init=gaussian",
            DerandomizedJLProjector(k, init="gaussian", random_state=0),
        ),
        (
            "direct, init=gaussian, early_stopping",
            DerandomizedJLProjector(
                k, init="gaussian", early_stopping=True, random_state=0
            ),
        ),
    ]:
        est, seconds = fit(est, X[train])
        extra = f"alpha={est.best_params_['alpha']:g}" if est is search else ""
        row(label, pairs.distortion(est.transform(X)), seconds, extra)


def held_out_splits(name, X, k, n_splits):
    """The held-out comparison over several random 80/20 splits (mean and
    worst over splits): one split can favour either side."""
    print(
        f"\n== held-out {name}, k={k}: {n_splits} more random splits "
        "(RandomState(100 + i)), mean and worst over splits"
    )
    print(f"  {'method':<46}{'mean':>10}{'worst':>10}")
    n = X.shape[0]
    results = {
        "PCA fit on train, rescaled by best factor": [],
        "PCA fit on train, factor from training pairs": [],
        "direct (default)": [],
        "direct, early_stopping": [],
    }
    for split in range(n_splits):
        perm = np.random.RandomState(100 + split).permutation(n)
        train, test = perm[: int(0.8 * n)], perm[int(0.8 * n) :]
        is_test = np.zeros(n, dtype=bool)
        is_test[test] = True
        pairs = Pairs(X, is_test[:, None] | is_test[None, :])
        E = PCA(k, svd_solver="full").fit(X[train]).transform(X)
        results["PCA fit on train, rescaled by best factor"].append(
            pairs.pca_rescaled(E)
        )
        r = Pairs(X[train]).ratios(E[train])
        factor = np.sqrt(2.0 / (r.min() + r.max()))
        results["PCA fit on train, factor from training pairs"].append(
            pairs.distortion(factor * E)
        )
        for label, est in [
            ("direct (default)", DerandomizedJLProjector(k, random_state=0)),
            (
                "direct, early_stopping",
                DerandomizedJLProjector(k, early_stopping=True, random_state=0),
            ),
        ]:
            est, _ = fit(est, X[train])
            results[label].append(pairs.distortion(est.transform(X)))
    for label, values in results.items():
        print(f"  {label:<46}{np.mean(values):>10.4f}{np.max(values):>10.4f}")


def mixture(n, d=300, clusters=20, seed=0):
    """A 20-cluster Gaussian mixture in d = 300 (unit-variance clusters
    around centres of scale 3)."""
    rng = np.random.RandomState(seed)
    centres = 3.0 * rng.randn(clusters, d)
    return centres[rng.randint(clusters, size=n)] + rng.randn(n, d)


def figure(path, sizes=(300, 1000, 3000), ks=(8, 16, 32), seeds=20):
    """Distortion (max over all training pairs) against n, one panel per k:
    ours fitting every point (early_stopping=False: the pairs measured are
    the training pairs), the best of ``seeds`` Gaussian projections and PCA
    rescaled by its best factor; prints the numbers it plots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    print(
        f"\n== figure: 20-cluster mixture, d=300; max distortion over all "
        f"training pairs (Gaussian: best of {seeds} seeds)"
    )
    print(f"  {'n':>6}{'k':>4}{'ours':>9}{'fit s':>8}{'Gaussian':>10}{'PCA':>9}")
    results = {k: {"ours": [], "gauss": [], "pca": []} for k in ks}
    for n in sizes:
        X = mixture(n)
        pairs = Pairs(X)
        for k in ks:
            est, seconds = fit(
                DerandomizedJLProjector(k, random_state=0, early_stopping=False), X
            )
            ours = pairs.distortion(est.transform(X))
            gauss = gaussian_stats(pairs, X, k, seeds)[2]
            pca = pairs.pca_rescaled(PCA(k, svd_solver="full").fit_transform(X))
            for key, value in (("ours", ours), ("gauss", gauss), ("pca", pca)):
                results[k][key].append(value)
            print(
                f"  {n:>6}{k:>4}{ours:>9.3f}{seconds:>8.1f}{gauss:>10.3f}{pca:>9.3f}",
                flush=True,
            )
    fig, axes = plt.subplots(1, len(ks), figsize=(4.2 * len(ks), 3.4), sharey=True)
    for ax, k in zip(axes, ks):
        ax.plot(sizes, results[k]["ours"], "o-", label="ours (every point fitted)")
        ax.plot(sizes, results[k]["gauss"], "s--", label=f"Gaussian, best of {seeds}")
        ax.plot(sizes, results[k]["pca"], "^:", label="PCA rescaled")
        ax.set_xscale("log")
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.minorticks_off()
        ax.set_title(f"k = {k}")
        ax.set_xlabel("n (points)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("max pairwise distortion")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"figure written to {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1000)
    parser.add_argument(
        "--figure",
        metavar="PATH",
        help="only the figure: distortion against n and k on a 20-cluster "
        "mixture (d=300), ours against Gaussian and PCA, written to PATH",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="skip the slow derandomize runs and the 1000-point case",
    )
    parser.add_argument(
        "--scale",
        action="store_true",
        help="only the scale rows (--sizes), ours against the best of 20 "
        "random projections and PCA rescaled",
    )
    parser.add_argument(
        "--sizes",
        default="mixture-1e4,text-5e3,mixture-1e5",
        help=f"scale cases, comma-separated, of {', '.join(SCALE_CASES)}",
    )
    parser.add_argument("--scale-one", help=argparse.SUPPRESS)
    parser.add_argument(
        "--held-out",
        action="store_true",
        help="only the held-out rows: defaults against PCA rescaled on the "
        "pairs touching 25 %% held-out points",
    )
    args = parser.parse_args()
    if args.scale_one:
        name, out = args.scale_one.split(":", 1)
        scale_one(name, out)
        return
    if args.scale:
        scale(args)
        return
    if args.held_out:
        held_out(args)
        return
    if args.figure:
        figure(args.figure)
        return
    rng = np.random.RandomState(0)
    digits = load_digits().data[:300]

    for k in (32, 16):
        methods = [
            (
                "ours: direct (default, init=best)",
                DerandomizedJLProjector(k, random_state=0, early_stopping=False),
            ),
            (
                "ours: direct, init=gaussian",
                DerandomizedJLProjector(
                    k, init="gaussian", random_state=0, early_stopping=False
                ),
            ),
        ]
        if not args.quick:
            methods += [
                (
                    "ours: derandomize, eps=0.1",
                    DerandomizedJLProjector(
                        k,
                        method="derandomize",
                        eps=0.1,
                        random_state=0,
                        early_stopping=False,
                    ),
                ),
                (
                    "ours: derandomize, paper start M=0",
                    DerandomizedJLProjector(
                        k,
                        method="derandomize",
                        eps=0.1,
                        init_noise=1.0,
                        random_state=0,
                        early_stopping=False,
                    ),
                ),
            ]
        training_case("digits[:300]", digits, k, args.seeds, methods)

    if not args.quick:
        X = np.random.RandomState(12345).randn(1000, 1000)
        training_case(
            "standard Gaussian points",
            X,
            64,
            args.seeds,
            [
                (
                    "ours: direct (default)",
                    DerandomizedJLProjector(64, random_state=0, early_stopping=False),
                ),
                (
                    "ours: direct, init=gaussian",
                    DerandomizedJLProjector(
                        64, init="gaussian", random_state=0, early_stopping=False
                    ),
                ),
            ],
        )

    print("\n== n_components='auto', eps=0.2, digits[:300]")
    est, seconds = fit(
        DerandomizedJLProjector("auto", eps=0.2, random_state=0, early_stopping=False),
        digits,
    )
    print(
        f"  learned n_components_={est.n_components_} (distortion "
        f"{est.distortion_:.4f}) in {seconds:.2f} s; JL bound "
        f"{johnson_lindenstrauss_min_dim(300, eps=0.2)}"
    )

    held_out_case("digits[:300]", digits, 16, args.seeds, rng)
    held_out_case("digits[:300]", digits, 32, args.seeds, rng)
    held_out_splits("digits[:300]", digits, 16, 6)
    held_out_splits("digits[:300]", digits, 32, 6)
    if not args.quick:
        X = np.random.RandomState(12345).randn(1000, 1000)
        held_out_case("Gaussian 1000 x 1000", X, 64, min(args.seeds, 200), rng)

    print("\n== sklearn test_inverse_transform setting: 1000 x 1000, 1 % dense, k=10")
    Xs = random_sparse(1000, 0.01, rng)
    pairs = Pairs(Xs)
    start = time.perf_counter()
    G = GaussianRandomProjection(10, random_state=0).fit(Xs)
    g_time = time.perf_counter() - start
    row("GaussianRandomProjection", pairs.distortion(G.transform(Xs)), g_time)
    for label, est in [
        (
            "ours: direct (default)",
            DerandomizedJLProjector(10, random_state=0, early_stopping=False),
        ),
        (
            "ours: direct, init=gaussian",
            DerandomizedJLProjector(
                10, init="gaussian", random_state=0, early_stopping=False
            ),
        ),
    ]:
        est, seconds = fit(est, Xs)
        row(label, pairs.distortion(est.transform(Xs)), seconds)
    speed_knobs()
    sparse_cases()


def random_sparse(n, density, rng):
    """n x n CSR with n * n * density + 1 standard normal entries at random
    places (duplicates summed), as in sklearn's test_random_projection."""
    nnz = int(n * n * density) + 1
    return sp.coo_matrix(
        (rng.randn(nnz), (rng.randint(n, size=nnz), rng.randint(n, size=nnz))),
        shape=(n, n),
    ).tocsr()


def speed_knobs(n_draws=4):
    """Time against distortion in sklearn's sparse setting (draws
    RandomState(0) to (n_draws - 1)) for the stopping parameters."""
    print(
        f"\n== sklearn's sparse setting, {n_draws} draws: stopping parameters "
        "(mean fit time, mean and worst max distortion)"
    )
    print(f"  {'parameters':<46}{'fit s':>10}{'mean':>10}{'worst':>10}")
    data = [random_sparse(1000, 0.01, np.random.RandomState(s)) for s in range(n_draws)]
    pairs = [Pairs(X) for X in data]
    for label, kwargs in [
        ("defaults (tol=1e-3, n_iter_no_change=20)", {}),
        ("tol=3e-3", {"tol": 3e-3}),
        ("tol=1e-2", {"tol": 1e-2}),
        ("n_iter_no_change=10", {"n_iter_no_change": 10}),
        ("max_iter=250", {"max_iter": 250}),
        ("max_iter=150", {"max_iter": 150}),
    ]:
        times, values = [], []
        for X, P in zip(data, pairs):
            est, seconds = fit(
                DerandomizedJLProjector(
                    10, random_state=0, early_stopping=False, **kwargs
                ),
                X,
            )
            times.append(seconds)
            values.append(P.distortion(est.transform(X)))
        print(
            f"  {label:<46}{np.mean(times):>10.2f}{np.mean(values):>10.4f}"
            f"{np.max(values):>10.4f}"
        )


def sparse_cases():
    """Square sparse data of a few sizes and densities (each drawn from its
    own RandomState(0)): the default start (rescaled PCA here) maps some
    pairs to one point, a plateau at distortion 1 the stopping rule must see
    through."""
    print("\n== sparse n x n data, standard normal nonzeros at random places")
    print(
        f"  {'n':>5} {'nonzeros':>9} {'k':>3} {'Gaussian':>9} {'default':>9} "
        f"{'fit s':>7} {'init=gaussian':>14} {'fit s':>7}"
    )
    for n, density, k in [
        (200, 0.005, 10),
        (500, 0.003, 10),
        (500, 0.005, 5),
        (1000, 0.005, 10),
        (1000, 0.01, 5),
    ]:
        X = random_sparse(n, density, np.random.RandomState(0))
        pairs = Pairs(X)
        gauss = GaussianRandomProjection(k, random_state=0).fit(X)
        ours, t_ours = fit(
            DerandomizedJLProjector(k, random_state=0, early_stopping=False), X
        )
        start = DerandomizedJLProjector(
            k, init="gaussian", random_state=0, early_stopping=False
        )
        start, t_start = fit(start, X)
        print(
            f"  {n:>5} {density:>9.1%} {k:>3} "
            f"{pairs.distortion(gauss.transform(X)):>9.4f} "
            f"{pairs.distortion(ours.transform(X)):>9.4f} {t_ours:>7.2f} "
            f"{pairs.distortion(start.transform(X)):>14.4f} {t_start:>7.2f}"
        )


# -- scale (issue: 10^4 to 10^6 points) -------------------------------------

SCALE_CASES = {
    # name: (n, d, k)
    "mixture-1e4": (10_000, 300, 32),
    "text-5e3": (5_000, 20_000, 50),
    "mixture-1e5": (100_000, 300, 32),
    "mixture-1e6": (1_000_000, 100, 16),
}
# Exact evaluation (all pairs, blocked) up to this many points; above it
# 10^7 uniform pairs plus each point's 10 nearest neighbours (not at 10^6).
EXACT_EVAL = 20_000


def scale_data(name):
    n, d, k = SCALE_CASES[name]
    if name.startswith("text"):
        from sklearn.preprocessing import normalize

        X = sp.random(n, d, density=0.002, format="csr", random_state=0)
        X.data = np.abs(X.data)
        return normalize(X), k
    return mixture(n, d), k


def _peak_gb():
    """Peak resident memory of this process in GB: VmHWM where Linux gives
    it (ru_maxrss survives exec, so a child launched from a parent holding
    a large array would report the parent's memory at the fork)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _reset_peak():
    """Reset this process's peak resident memory to its current one (Linux:
    ``5`` into ``/proc/self/clear_refs``), so that :func:`_peak_gb` reports
    the peak from here on; nothing elsewhere."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass


def scale_one(name, out):
    """Our default fit of one scale case in this (fresh) process, for its
    own peak memory; writes the components to ``out`` and prints a JSON
    line with the fit's time, memory and its own report."""
    import json

    X, k = scale_data(name)
    before = _peak_gb()
    _reset_peak()  # the data's own making (sp.random: 0.8 GB) is not the fit's
    wall, cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = DerandomizedJLProjector(k, random_state=0).fit(X)
    row = {
        "wall": time.perf_counter() - wall,
        "cpu": time.process_time() - cpu,
        "peak_gb": _peak_gb(),
        "data_gb": before,
        "distortion_": est.distortion_,
    }
    for name_ in ("distortion_exact_", "n_pairs_checked_", "distortion_exceed_bound_"):
        if hasattr(est, name_):
            row[name_] = getattr(est, name_)
    np.save(out, est.components_)
    print(json.dumps(row, default=float))


class EvalPairs:
    """The evaluated pairs of a scale case: all pairs (blocked, squared
    distances kept as float32 blocks) up to EXACT_EVAL points, else 10^7
    uniform pairs plus each point's 10 nearest neighbours (below 10^6)."""

    def __init__(self, X, seed=1):
        self.X = X
        n = X.shape[0]
        self.exact = n <= EXACT_EVAL
        sq = (
            np.asarray(X.multiply(X).sum(1)).ravel()
            if sp.issparse(X)
            else (X**2).sum(1)
        )
        if self.exact:
            self.blocks = []
            for lo in range(0, n, 1000):
                hi = min(lo + 1000, n)
                G = X[lo:hi] @ X.T
                G = G.toarray() if sp.issparse(G) else G
                D = sq[lo:hi, None] + sq[None, :] - 2 * G
                keep = np.arange(n)[None, :] > np.arange(lo, hi)[:, None]
                keep &= D > 1e-9 * sq.max()
                self.blocks.append(
                    (lo, hi, np.where(keep, D, np.nan).astype(np.float32))
                )
            self.label = f"all {n * (n - 1) // 2:,} pairs"
            return
        rng = np.random.RandomState(seed)
        m = 10**7
        rows, cols = rng.randint(n, size=m), rng.randint(n, size=m)
        if n < 10**6:
            from sklearn.neighbors import NearestNeighbors

            nn = NearestNeighbors(n_neighbors=11, algorithm="brute").fit(X)
            ind = nn.kneighbors(X, return_distance=False)[:, 1:]
            rows = np.concatenate([rows, np.repeat(np.arange(n), 10)])
            cols = np.concatenate([cols, ind.ravel()])
            self.label = f"{m:,} uniform pairs + 10 nearest neighbours"
        else:
            self.label = f"{m:,} uniform pairs"
        self.rows, self.cols = rows, cols
        self.D = self._sqdist(X, rows, cols)
        keep = self.D > 1e-9 * sq.max()
        self.rows, self.cols, self.D = rows[keep], cols[keep], self.D[keep]

    @staticmethod
    def _sqdist(X, rows, cols, chunk=10**6):
        out = np.empty(rows.size)
        for lo in range(0, rows.size, chunk):
            diff = X[rows[lo : lo + chunk]] - X[cols[lo : lo + chunk]]
            if sp.issparse(diff):
                out[lo : lo + chunk] = np.asarray(diff.multiply(diff).sum(1)).ravel()
            else:
                out[lo : lo + chunk] = (diff * diff).sum(1)
        return out

    def ratio_range(self, E):
        if not self.exact:
            r = self._sqdist(E, self.rows, self.cols) / self.D
            return float(r.min()), float(r.max())
        sq = (E**2).sum(1)
        lo_, hi_ = np.inf, 0.0
        for lo, hi, D in self.blocks:
            De = sq[lo:hi, None] + sq[None, :] - 2 * E[lo:hi] @ E.T
            r = np.maximum(De, 0) / D
            lo_ = min(lo_, float(np.nanmin(r)))
            hi_ = max(hi_, float(np.nanmax(r)))
        return lo_, hi_

    def distortion(self, E):
        lo, hi = self.ratio_range(E)
        return max(hi - 1.0, 1.0 - lo)

    def pca_rescaled(self, E):
        lo, hi = self.ratio_range(E)
        return (hi - lo) / (hi + lo)


def pair_sample_distortion(X, E, rng, m=100_000):
    n = X.shape[0]
    rows, cols = rng.randint(n, size=m), rng.randint(n, size=m)
    D = EvalPairs._sqdist(X, rows, cols)
    keep = D > 0
    return float(
        np.abs(EvalPairs._sqdist(E, rows[keep], cols[keep]) / D[keep] - 1).max()
    )


def scale(args):
    """Scale rows: ours (defaults, in a fresh process for its peak memory)
    against the random projection picked as the best of 20 seeds on a
    sample of 10^5 pairs (Gaussian; sparse for the text case) and PCA
    rescaled by its best factor, all evaluated on the same pairs."""
    import json
    import subprocess
    import sys
    import tempfile

    from sklearn.random_projection import SparseRandomProjection

    print(
        f"{os.cpu_count()} cpus; ours: DerandomizedJLProjector(k, "
        "random_state=0) with defaults, in a fresh process (peak RSS during "
        "the fit, the data held included; not the data's own making)"
    )
    for name in args.sizes.split(","):
        n, d, k = SCALE_CASES[name]
        X, _ = scale_data(name)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "components.npy")
            out = subprocess.run(
                [sys.executable, __file__, "--scale-one", f"{name}:{path}"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            r = json.loads(out.strip().splitlines()[-1])
            A = np.load(path)
        pairs = EvalPairs(X)
        print(
            f"\n== {name}: n={n:,}, d={d:,}, k={k}; max distortion over {pairs.label}"
        )
        ours = pairs.distortion(np.asarray(X @ A.T))
        report = f"distortion_={r['distortion_']:.4f}"
        if "distortion_exact_" in r:
            report += (
                f" ({'exact' if r['distortion_exact_'] else 'over checked pairs'}, "
                f"{r['n_pairs_checked_']:,} pairs)"
            )
            if not r["distortion_exact_"]:
                report += (
                    f"; share of all pairs above it <= "
                    f"{r['distortion_exceed_bound_']:.1e} (95 %)"
                )
        print(
            f"  {'ours (defaults)':<34}{ours:>8.4f}  fit {r['wall']:.1f} s wall, "
            f"{r['cpu']:.1f} s CPU, peak {r['peak_gb']:.2f} GB; {report}"
        )
        sparse_input = sp.issparse(X)
        Random = SparseRandomProjection if sparse_input else GaussianRandomProjection
        picked, best = None, np.inf
        start = time.perf_counter()
        for s in range(20):
            E = Random(k, random_state=s).fit_transform(X)
            E = E.toarray() if sp.issparse(E) else E
            if pairs.exact:  # the best seed on the evaluated pairs themselves
                value = pairs.distortion(E)
            else:
                value = pair_sample_distortion(X, E, np.random.RandomState(7))
            if value < best:
                picked, best = E, value
        seconds = time.perf_counter() - start
        print(
            f"  {Random.__name__ + ', best of 20 seeds':<34}"
            f"{pairs.distortion(picked):>8.4f}  (picked on "
            f"{'these pairs' if pairs.exact else '10^5 other pairs'}; {seconds:.1f} s)"
        )
        if sparse_input:
            from sklearn.decomposition import TruncatedSVD

            E = TruncatedSVD(k, random_state=0).fit_transform(X)
            label = "TruncatedSVD, rescaled"
        else:
            solver = "full" if n <= EXACT_EVAL else "randomized"
            E = PCA(k, svd_solver=solver, random_state=0).fit_transform(X)
            label = "PCA, rescaled by its best factor"
        print(f"  {label:<34}{pairs.pca_rescaled(E):>8.4f}", flush=True)


# -- held-out quality of the defaults ----------------------------------------


def held_out_data():
    """The held-out cases: (name, X, k)."""
    from sklearn.datasets import load_breast_cancer, load_wine
    from sklearn.preprocessing import StandardScaler

    digits = StandardScaler().fit_transform(load_digits().data)
    cancer = StandardScaler().fit_transform(load_breast_cancer().data)
    wine = StandardScaler().fit_transform(load_wine().data)
    mix = mixture(3000, d=500)
    return [
        ("digits (1797, standardised)", digits, 10),
        ("digits (1797, standardised)", digits, 20),
        ("breast_cancer (standardised)", cancer, 5),
        ("breast_cancer (standardised)", cancer, 10),
        ("wine (standardised)", wine, 4),
        ("20-cluster mixture, n=3000, d=500", mix, 20),
        ("20-cluster mixture, n=10000, d=300", mixture(10_000), 32),
    ]


def _held_out_split(X):
    """The seeded 75/25 split: the training rows, and the pairs that touch
    the other 25 %."""
    n = X.shape[0]
    perm = np.random.RandomState(0).permutation(n)
    is_test = np.zeros(n, dtype=bool)
    is_test[perm[int(0.75 * n) :]] = True
    return perm[: int(0.75 * n)], Pairs(X, is_test[:, None] | is_test[None, :])


def held_out(args):
    """Fit on 75 % of the points, max distortion over the pairs that touch
    the other 25 % (seeded split): ours with defaults and with
    early_stopping on and off, against PCA fit on the 75 % and rescaled by
    its best factor on the evaluated pairs (an oracle factor)."""
    variants = [
        ("defaults", {}),
        ("early_stopping=True", {"early_stopping": True}),
        ("early_stopping=False", {"early_stopping": False}),
    ]
    print(
        "held-out: fit on 75 %, max distortion over the pairs touching the "
        "other 25 %; PCA rescaled by its best factor on those pairs"
    )
    header = "".join(f"{label:>22}" for label, _ in variants)
    print(f"  {'case':<36}{'k':>3}{'PCA':>8}{header}")
    cases = held_out_data()
    for name, X, k in cases:
        train, pairs = _held_out_split(X)
        pca = pairs.pca_rescaled(PCA(k, svd_solver="full").fit(X[train]).transform(X))
        cells = []
        for _, kwargs in variants:
            est, seconds = fit(
                DerandomizedJLProjector(k, random_state=0, **kwargs), X[train]
            )
            cells.append(
                f"{pairs.distortion(est.transform(X)):>13.4f} ({seconds:4.1f} s)"
            )
        print(
            f"  {name:<36}{k:>3}{pca:>8.4f}" + "".join(f"{c:>22}" for c in cells),
            flush=True,
        )
    name, X, _ = cases[2]
    train, pairs = _held_out_split(X)
    print(f"\n  n_components='auto' on {name}: chosen k and held-out distortion")
    for eps in (0.1, 0.2):
        for label, kwargs in variants[::2]:
            est = DerandomizedJLProjector("auto", eps=eps, random_state=0, **kwargs)
            est, seconds = fit(est, X[train])
            value = pairs.distortion(est.transform(X))
            print(
                f"  eps={eps}, {label:<22} k={est.n_components_:>3}  held-out "
                f"{value:.4f} ({seconds:.1f} s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
