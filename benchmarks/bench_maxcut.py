"""Benchmark of DerandomizedMaxCut on the Gset graphs.

Per instance, in one run: n, m, the best known cut, our certified upper
bound, the Goemans-Williamson expected cut of our SDP solution, the best of
1000 random hyperplanes (classic GW rounding of the same SDP), networkx's
``one_exchange`` local search (only where it finishes quickly: it is pure
Python, O(n m) per pass), our derandomized cut without local search, with
1-flip local search and with the default finish (tabu search then 1-flip),
and times (SDP, rounding, 1-flip, and the default fit end to end).

Run: ``python benchmarks/bench_maxcut.py`` (all instances, ~30 min) or e.g.
``python benchmarks/bench_maxcut.py --instances G1-G10``;
``--scale`` runs random graphs of ``--sizes`` nodes and edges (default
200,000 and 10^6) against simulated annealing from ``dwave-samplers``;
``--anytime`` prints the time-to-target table (G1, G22, G43, G55) and the
equal-time table (G1-G67 present) against it, ``--plot FILE`` adds the
figure of cut against time (``pip install dwave-samplers matplotlib``:
benchmark dependencies, not the library's).
"""

import argparse
import csv
import os
import time
import warnings
from pathlib import Path

import networkx as nx
import numpy as np
import scipy.sparse as sp

from sklearn_derand import DerandomizedMaxCut
from sklearn_derand._sosp import maxcut as backend
from sklearn_derand.datasets import load_graph

GSET = Path(__file__).resolve().parents[2] / "shared" / "data" / "gset"


def expand(spec, names):
    out = []
    for part in spec.split(","):
        if "-" in part:
            lo, hi = (int(x.lstrip("G")) for x in part.split("-"))
            out += [f"G{i}" for i in range(lo, hi + 1) if f"G{i}" in names]
        else:
            out.append(part)
    return out


def one_exchange(W, max_edges):
    m = W.nnz // 2
    if m > max_edges:
        return None, None
    G = nx.from_scipy_sparse_array(W)
    start = time.perf_counter()
    cut, _ = nx.algorithms.approximation.one_exchange(G, seed=0, weight="weight")
    return float(cut), time.perf_counter() - start


def run_instance(name, best, args):
    W = load_graph(args.gset / f"{name}.txt")
    n, m = W.shape[0], W.nnz // 2
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = DerandomizedMaxCut(random_state=0, local_search=False).fit(W)
    fit_time = time.perf_counter() - start
    # The SDP alone, timed on its own (same solver, rank and tolerance).
    rank = est.embedding_.shape[1]
    start = time.perf_counter()
    backend.solve_sdp_mixing(W, rank, tol=1e-4, max_iter=5000, seed=0)
    sdp_time = time.perf_counter() - start
    classes = backend.color_classes(W, 0)
    start = time.perf_counter()
    s = backend.local_search(W, 2.0 * est.labels_ - 1.0, classes)
    ls_time = time.perf_counter() - start
    with_ls = backend.cut_value(W, s)
    # The estimator with its defaults (tabu search, then 1-flip), end to end.
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        default = DerandomizedMaxCut(random_state=0).fit(W)
    default_time = time.perf_counter() - start
    with_tabu = default.cut_value_
    _, hyper, _ = backend.hyperplane_rounding(W, est.embedding_, 1000, seed=0)
    ox, ox_time = one_exchange(W, args.one_exchange_max_edges)
    return {
        "name": name,
        "n": n,
        "m": m,
        "best": best,
        "ub": est.upper_bound_,
        "sdp_gap": est.sdp_gap_,
        "gw": est.expected_cut_gw_,
        "hyper": hyper,
        "ox": ox,
        "ox_time": ox_time,
        "ours": est.cut_value_,
        "ours_ls": with_ls,
        "sdp_time": sdp_time,
        "round_time": max(fit_time - sdp_time, 0.0),
        "ls_time": ls_time,
        "ours_tabu": with_tabu,
        "default_time": default_time,
        "fallback": est.fallback_used_,
    }


def print_row(r):
    ox = "—" if r["ox"] is None else f"{r['ox']:.0f}"
    print(
        f"{r['name']:<5}{r['n']:>6}{r['m']:>7}{r['best']:>7}{r['ub']:>10.1f}"
        f"{r['sdp_gap']:>9.1e}{r['gw']:>10.1f}{r['hyper']:>8.0f}{ox:>7}"
        f"{r['ours']:>8.0f}{r['ours_ls']:>8.0f}{r['ours_tabu']:>8.0f}"
        f"{100 * r['ours_tabu'] / r['best']:>7.2f}"
        f"{r['sdp_time']:>7.2f}{r['round_time']:>7.2f}{r['ls_time']:>6.2f}"
        f"{r['default_time']:>7.2f}"
        f"{'  fallback' if r['fallback'] else ''}",
        flush=True,
    )


def random_graph(n, m, seed=0):
    """Uniform random graph with n nodes and m distinct unit-weight edges."""
    rng = np.random.RandomState(seed)
    i = rng.randint(n, size=int(m * 1.02))
    j = rng.randint(n, size=int(m * 1.02))
    keep = i != j
    pairs = np.unique(np.sort(np.c_[i[keep], j[keep]], axis=1), axis=0)
    pairs = pairs[rng.permutation(len(pairs))[:m]]
    W = sp.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return (W + W.T).tocsr()


def ising(W):
    """Simulated annealing's model of the max cut of W: J_ij = w_ij, so that
    cut = (total weight - energy) / 2."""
    import dimod

    U = sp.triu(W, k=1).tocoo()
    bqm = dimod.BinaryQuadraticModel.from_numpy_vectors(
        np.zeros(W.shape[0]), (U.row, U.col, U.data), 0.0, "SPIN"
    )
    return bqm, float(U.data.sum())


def simulated_annealing(W, num_sweeps=1000, seed=0):
    """dwave-samplers' SimulatedAnnealingSampler, one read: (cut, seconds,
    sides); the seconds include building its model from W."""
    from dwave.samplers import SimulatedAnnealingSampler

    start = time.perf_counter()
    bqm, total = ising(W)
    result = SimulatedAnnealingSampler().sample(
        bqm, num_reads=1, num_sweeps=num_sweeps, seed=seed
    )
    seconds = time.perf_counter() - start
    sample = result.first.sample
    sides = np.array([sample[i] for i in range(W.shape[0])], dtype=np.float64)
    return (total - result.first.energy) / 2.0, seconds, sides


def check_annealing_cut():
    """The SA cut formula against brute force on a small mixed-sign graph."""
    rng = np.random.RandomState(1)
    A = np.triu(rng.randn(12, 12), 1)
    W = sp.csr_matrix(A + A.T)
    cut, _, sides = simulated_annealing(W, num_sweeps=200)
    assert abs(cut - backend.cut_value(W, sides)) < 1e-9, (cut, sides)
    _, optimum = backend.exact_max_cut(W)
    assert cut <= optimum + 1e-9
    print(f"SA cut formula checked on 12 nodes: {cut:.4f} (optimum {optimum:.4f})")


def scale_one(solver, n, m):
    """One scale row in this (fresh) process: prints a JSON line."""
    import json
    import resource

    W = random_graph(n, m)
    wall, cpu = time.perf_counter(), time.process_time()
    if solver == "ours":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = DerandomizedMaxCut(random_state=0).fit(W)
        row = {
            "cut": est.cut_value_,
            "bound": est.upper_bound_,
            "gap": est.gap_,
            "sdp_gap": est.sdp_gap_,
        }
    else:
        cut, _, _ = simulated_annealing(W)
        row = {"cut": cut, "bound": None, "gap": None, "sdp_gap": None}
    row["wall"] = time.perf_counter() - wall
    row["cpu"] = time.process_time() - cpu
    row["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps(row))


def scale(args):
    """Random graphs (``--sizes``), our defaults against simulated
    annealing (1000 sweeps, one read), each in a fresh process for its
    peak memory."""
    import json
    import subprocess
    import sys

    print(
        f"{os.cpu_count()} cpus; uniform random graphs, unit weights; each "
        "solver in a fresh process (peak RSS includes the graph)"
    )
    print(
        f"{'n':>9}{'m':>10}  {'solver':<9}{'cut':>11}{'bound':>11}{'gap':>7}"
        f"{'sdp gap':>9}{'wall s':>8}{'CPU s':>8}{'peak GB':>8}"
    )
    for size in args.sizes.split(","):
        n, m = (int(float(x)) for x in size.split(":"))
        for solver in ("ours", "sa"):
            out = subprocess.run(
                [sys.executable, __file__, "--scale-one", f"{solver}:{n}:{m}"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            r = json.loads(out.strip().splitlines()[-1])
            name = "ours" if solver == "ours" else "SA 1000"
            bound = "—" if r["bound"] is None else f"{r['bound']:.0f}"
            gap = "—" if r["gap"] is None else f"{r['gap']:.3f}"
            sdp_gap = "—" if r["sdp_gap"] is None else f"{r['sdp_gap']:.1e}"
            print(
                f"{n:>9}{m:>10}  {name:<9}{r['cut']:>11.0f}{bound:>11}{gap:>7}"
                f"{sdp_gap:>9}{r['wall']:>8.1f}{r['cpu']:>8.1f}"
                f"{r['peak_gb']:>8.2f}",
                flush=True,
            )


SWEEPS = (10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


def time_to_target(args, best):
    """Seconds to 99.5 % of the best known cut: SA with increasing sweeps
    (each run timed on its own; the first run reaching the target counts),
    ours from the ``cut_curve_`` of one fit with ``max_time``."""
    print(
        f"\ntime to {100 * args.target:.1f} % of the best known cut (seconds, "
        f"wall; ours: first time in cut_curve_ of a fit with "
        f"max_time={args.ttt_budget})"
    )
    print(f"{'':5}{'target':>8}{'SA s':>8}{'sweeps':>8}{'ours s':>8}{'ratio':>7}")
    names = [g for g in ("G1", "G22", "G43", "G55") if g in best]
    curves = {}
    for name in names:
        W = load_graph(args.gset / f"{name}.txt")
        target = args.target * best[name]
        simulated_annealing(W, 10)  # warm up
        sa_time, sa_sweeps, sa_curve = None, None, []
        for sweeps in SWEEPS:
            cut, seconds, _ = simulated_annealing(W, sweeps)
            sa_curve.append((seconds, cut))
            if cut >= target and sa_time is None:
                sa_time, sa_sweeps = seconds, sweeps
        est = DerandomizedMaxCut(random_state=0, max_time=args.ttt_budget).fit(W)
        curve = est.cut_curve_
        hit = curve[curve[:, 1] >= target]
        ours = float(hit[0, 0]) if len(hit) else None
        curves[name] = (sa_curve, curve, best[name])
        fmt = lambda v: "—" if v is None else f"{v:.3f}"  # noqa: E731
        ratio = "—" if ours is None or sa_time is None else f"{ours / sa_time:.2f}"
        print(
            f"{name:<5}{target:>8.0f}{fmt(sa_time):>8}{sa_sweeps or '—':>8}"
            f"{fmt(ours):>8}{ratio:>7}",
            flush=True,
        )
    return curves


def equal_time(args, best, names):
    """Ours with ``max_time`` equal to SA's time (``--sa-sweeps``) per
    instance."""
    print(
        f"\nequal time: SA ({args.sa_sweeps} sweeps, one read) and ours with "
        "max_time = SA's wall time on the same instance; % of best known"
    )
    print(
        f"{'':5}{'n':>6}{'SA s':>7}{'SA':>8}{'ours':>8}{'ours s':>8}"
        f"{'bound':>10}{'SA %':>8}{'ours %':>8}"
    )
    rows = []
    for name in names:
        W = load_graph(args.gset / f"{name}.txt")
        simulated_annealing(W, 10)  # warm up
        sa_cut, sa_time, _ = simulated_annealing(W, args.sa_sweeps)
        start = time.perf_counter()
        est = DerandomizedMaxCut(random_state=0, max_time=sa_time).fit(W)
        ours_time = time.perf_counter() - start
        r = (sa_cut / best[name], est.cut_value_ / best[name])
        rows.append(r)
        print(
            f"{name:<5}{W.shape[0]:>6}{sa_time:>7.2f}{sa_cut:>8.0f}"
            f"{est.cut_value_:>8.0f}{ours_time:>8.2f}{est.upper_bound_:>10.1f}"
            f"{100 * r[0]:>8.2f}{100 * r[1]:>8.2f}",
            flush=True,
        )
    sa_mean, ours_mean = (100 * np.mean(x) for x in zip(*rows))
    print(f"mean % of best known: SA {sa_mean:.3f}, ours {ours_mean:.3f}")


def plot_curves(curves, path):
    """Cut (and ours' certified bound) against time, ours and SA."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.6))
    for ax, (name, (sa_curve, curve, best)) in zip(np.atleast_1d(axes), curves.items()):
        curve = np.vstack([curve, curve[-1]])  # hold the last values...
        curve[-1, 0] = max(curve[-1, 0], sa_curve[-1][0])  # ...to the end
        t, cut, bound = curve[:, 0], curve[:, 1], curve[:, 2]
        ax.step(t, 100 * cut / best, where="post", label="ours: best cut")
        finite = bound < 1.2 * best
        ax.step(
            t[finite],
            100 * bound[finite] / best,
            where="post",
            label="ours: certified bound",
        )
        sa = np.array(sorted(sa_curve))  # by time (runs of more sweeps)
        ax.plot(sa[:, 0], 100 * sa[:, 1] / best, "o--", label="SA (one run per point)")
        ax.set_xscale("log")
        ax.set_title(name)
        ax.set_xlabel("wall seconds")
        ax.set_ylabel("% of best known cut")
        ax.set_ylim(96, 110)
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"figure written to {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gset", type=Path, default=GSET)
    parser.add_argument(
        "--instances",
        default=None,
        help="e.g. G1-G10,G70 (default: all with a best known cut)",
    )
    parser.add_argument("--one-exchange-max-edges", type=int, default=2000)
    parser.add_argument("--scale", action="store_true")
    parser.add_argument(
        "--sizes",
        default="2e5:1e6",
        help="n:m of the --scale graphs, comma separated (e.g. 2e5:1e6,1e6:1e7)",
    )
    parser.add_argument("--scale-one", help=argparse.SUPPRESS)
    parser.add_argument(
        "--anytime",
        action="store_true",
        help="time-to-target and equal-time tables against simulated annealing",
    )
    parser.add_argument("--target", type=float, default=0.995)
    parser.add_argument("--sa-sweeps", type=int, default=1000)
    parser.add_argument("--ttt-budget", type=float, default=2.0)
    parser.add_argument("--plot", type=Path, help="write the cut-time figure here")
    args = parser.parse_args()
    if args.scale_one:
        solver, n, m = args.scale_one.split(":")
        scale_one(solver, int(n), int(m))
        return
    if args.scale:
        scale(args)
        return
    with open(args.gset / "best_known.csv") as f:
        best = {
            row["instance"]: int(row["best_known_cut"]) for row in csv.DictReader(f)
        }
    names = expand(args.instances, best) if args.instances else list(best)
    missing = [name for name in names if not (args.gset / f"{name}.txt").is_file()]
    if missing:
        print(f"not in {args.gset}: {', '.join(missing)} (skipped)")
    names = [name for name in names if name not in missing]
    if args.anytime:
        check_annealing_cut()
        backend.tabu_search(np.ones((2, 2)) - np.eye(2), np.ones(2))  # compile
        curves = time_to_target(args, best)
        if args.plot:
            plot_curves(
                {k: curves[k] for k in ("G22", "G55") if k in curves}, args.plot
            )
        small = [g for g in names if int(g.lstrip("G")) <= 67]
        equal_time(args, best, small)
        return
    print(
        f"{os.cpu_count()} cpus; ours = derandomized rounding; "
        "+LS = with 1-flip local search; +tabu = the estimator's default "
        "(tabu search then 1-flip), fit s its end-to-end time; %best of +tabu; "
        "times in seconds"
    )
    print(
        f"{'':5}{'n':>6}{'m':>7}{'best':>7}{'bound':>10}{'sdp gap':>9}{'GW E':>10}"
        f"{'hyp1000':>8}{'1-exch':>7}{'ours':>8}{'+LS':>8}{'+tabu':>8}{'%best':>7}"
        f"{'sdp s':>7}{'rnd s':>7}{'LS s':>6}{'fit s':>7}"
    )
    # compile the numba tabu kernel once (numba caches it on disk), so
    # that no instance's tabu time includes the compilation
    backend.tabu_search(np.ones((2, 2)) - np.eye(2), np.ones(2))
    rows = []
    for name in names:
        r = run_instance(name, best[name], args)
        rows.append(r)
        print_row(r)
    ratio = [r["ours_ls"] / r["best"] for r in rows]
    print(f"\nmean %best with 1-flip LS: {100 * np.mean(ratio):.3f}")
    ratio = [r["ours_tabu"] / r["best"] for r in rows]
    print(f"mean %best with tabu + 1-flip (default): {100 * np.mean(ratio):.3f}")
    reached = [r["name"] for r in rows if r["ours_tabu"] >= r["best"]]
    print(f"best known reached: {', '.join(reached) or 'none'}")
    high = [r for r in rows if r["ours_tabu"] >= 0.995 * r["best"]]
    print(f"at 99.5 % of the best known or more: {len(high)} of {len(rows)}")
    first = [r for r in rows if r["name"] in {f"G{i}" for i in range(1, 11)}]
    if first:
        mean = 100 * np.mean([r["ours_tabu"] / r["best"] for r in first])
        seconds = np.mean([r["default_time"] for r in first])
        print(
            f"G1-G10: mean {mean:.3f} % of best known, default fit "
            f"{seconds:.2f} s per instance"
        )
    below_gw = [r["name"] for r in rows if r["ours"] < r["gw"] - 1e-6]
    not_above_h = [r["name"] for r in rows if r["ours"] <= r["hyper"]]
    print(f"below the GW expectation: {below_gw or 'none'}")
    print(
        f"derandomized (no LS) not above the best of 1000 hyperplanes: "
        f"{not_above_h or 'none'}"
    )
    print(
        f"max SDP time {max(r['sdp_time'] for r in rows):.1f} s, "
        f"max certified SDP gap {max(r['sdp_gap'] for r in rows):.1e}"
    )


if __name__ == "__main__":
    main()
