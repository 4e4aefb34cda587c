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
``--scale`` runs the 100,000-node random graph instead.
"""

import argparse
import csv
import os
import time
import tracemalloc
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


def scale(args):
    """Sparse random graph with n = 100,000 and m = 500,000."""
    rng = np.random.RandomState(0)
    n, m = 100_000, 500_000
    i = rng.randint(n, size=int(m * 1.01))
    j = rng.randint(n, size=int(m * 1.01))
    keep = i != j
    pairs = np.unique(np.sort(np.c_[i[keep], j[keep]], axis=1), axis=0)[:m]
    W = sp.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    W = (W + W.T).tocsr()
    print(f"random graph: n={n}, m={W.nnz // 2}")
    tracemalloc.start()
    start = time.perf_counter()
    est = DerandomizedMaxCut(random_state=0, sdp_tol=1e-3, local_search=True).fit(W)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    print(
        f"SDP gap {est.sdp_gap_:.1e} ({est.sdp_n_iter_} sweeps), "
        f"cut {est.cut_value_:.0f}, GW expectation {est.expected_cut_gw_:.0f}, "
        f"bound {est.upper_bound_:.0f} (gap {est.gap_:.3f}); total {elapsed:.1f} s; "
        f"peak traced memory {peak / 2**30:.2f} GiB "
        "(numpy/scipy/torch CPU allocations)"
    )


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
    args = parser.parse_args()
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
