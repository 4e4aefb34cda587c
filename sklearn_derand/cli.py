"""The ``sklearn-derand`` command line (also ``python -m sklearn_derand``).

Subcommands: ``maxcut GRAPH``, ``jl DATA``, ``subspace DATA --target COL``
and ``demo``. User mistakes (a missing file, an unreadable format, a
non-numeric column) end with a one-line message and exit code 2, never a
traceback.
"""

import argparse
import csv
import os
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

__all__ = ["main"]


class UsageError(Exception):
    """A mistake of the user's: reported in one line, exit code 2."""


# -- input/output -------------------------------------------------------------


def _existing_file(path):
    """``path`` as a Path, or a UsageError if there is no such file."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{path} is a directory, not a file")
    if not path.is_file():
        raise UsageError(f"no such file: {path}")
    return path


def _read_matrix(path):
    """A numeric 2-d array from .npy or .csv (a header row is skipped)."""
    path = _existing_file(path)
    if path.suffix.lower() == ".npy":
        try:
            X = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise UsageError(f"{path}: not a readable .npy file ({exc})") from None
    elif path.suffix.lower() == ".csv":
        X = _read_csv(path)[1]
    else:
        raise UsageError(f"{path}: expected a .npy or .csv file")
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] < 2:
        raise UsageError(f"{path}: expected a 2-d table with at least 2 rows")
    if np.iscomplexobj(X):
        raise UsageError(f"{path}: complex data is not supported")
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise UsageError(f"{path}: the data must be numeric")
    return X.astype(np.float64)


def _read_csv(path):
    """Column names (or None) and a float array; names a non-numeric column."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [row for row in csv.reader(f) if row]
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not a readable CSV file ({exc})") from None
    if not rows:
        raise UsageError(f"{path}: the file is empty")

    def is_number(text):
        try:
            float(text)
        except ValueError:
            return False
        return True

    names = None
    if not all(is_number(cell) for cell in rows[0]):
        names, rows = [cell.strip() for cell in rows[0]], rows[1:]
    width = len(rows[0]) if rows else 0
    if any(len(row) != width for row in rows):
        raise UsageError(f"{path}: rows have different numbers of columns")
    for j in range(width):
        for i, row in enumerate(rows):
            if not is_number(row[j]):
                column = names[j] if names else f"column {j}"
                raise UsageError(
                    f"{path}: column {column!r} is not numeric "
                    f"(row {i + 1}: {row[j]!r})"
                )
    return names, np.array([[float(cell) for cell in row] for row in rows])


def _positive_int(text, flag, allow_auto=False):
    """``flag``'s value: a positive integer (or 'auto' where allowed)."""
    if allow_auto and text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        what = "an integer or 'auto'" if allow_auto else "an integer"
        raise UsageError(f"{flag} must be {what}") from None
    if value < 1:
        raise UsageError(f"{flag} must be at least 1")
    return value


_OUTPUT_SUFFIXES = {
    ".npy": "numpy .npy",
    ".csv": "comma-separated text",
    ".txt": "comma-separated text",
}


def _output_path(path, inputs):
    """``--output`` checked before any fitting: a known suffix, an existing
    writable folder, and not one of the input files."""
    if path is None:
        return None
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"--output {path} is a directory")
    if path.suffix.lower() not in _OUTPUT_SUFFIXES:
        raise UsageError(
            f"--output {path}: use a .npy, .csv or .txt file name (got "
            f"{path.suffix or 'no suffix'!r})"
        )
    folder = path.parent
    if not folder.is_dir():
        raise UsageError(f"cannot write {path}: no such folder {folder}")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"cannot write {path}: the folder is not writable")
    for source in inputs:
        if path.exists() and path.resolve() == Path(source).resolve():
            raise UsageError(
                f"--output {path} is the input file; refusing to overwrite it"
            )
    return path


def _write_array(path, array, fmt="%.10g"):
    """Save to exactly ``path``: .npy (any case) as numpy, else as
    comma-separated text. Returns a description of the format."""
    kind = _OUTPUT_SUFFIXES[path.suffix.lower()]
    try:
        with open(path, "wb") as f:
            if path.suffix.lower() == ".npy":
                np.save(f, array)
            else:
                np.savetxt(f, array, delimiter=",", fmt=fmt)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    return kind


# -- progress ---------------------------------------------------------------------


def _say_if_compiling(name):
    """One line on stderr when the projector's kernels are about to be
    compiled (a fresh environment: numba's cache is empty)."""
    from sklearn_derand._sosp import _jl_kernels

    notice = _jl_kernels.compile_notice()
    if notice:
        print(f"sklearn-derand {name}: {notice}", file=sys.stderr, flush=True)


@contextmanager
def _fitting(description, progress):
    """Around a fit: its warnings silenced (the printed result reports the
    outcome) and, on terminals, a tqdm progress bar over its iterations."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not progress:
            yield
            return
        with _progress_bar(description):
            yield


class _Stderr:
    """Writes to the current ``sys.stderr``. Given ``sys.stderr`` itself,
    tqdm 4.70 drew nothing under a pseudo-terminal opened by ``script``
    (only the closing newline); through this object it draws."""

    def write(self, text):
        return sys.stderr.write(text)

    def flush(self):
        sys.stderr.flush()


@contextmanager
def _progress_bar(description):
    """A tqdm progress bar fed by the optimiser's progress hook and by the
    phases of the fit, redrawn twice a second so the elapsed time moves
    during compiled phases too.

    The width is the terminal's, 80 columns where the terminal reports none
    (a pseudo-terminal opened by ``script`` reports 0).
    """
    import shutil
    import threading

    from tqdm import tqdm

    from sklearn_derand._sosp.optimize import progress_hook

    width = shutil.get_terminal_size((80, 24)).columns
    bar = tqdm(desc=description, unit="it", leave=False, file=_Stderr(), ncols=width)

    def update(n_iter, loss):
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.4g}", refresh=False)

    def phase(name):
        bar.set_description(f"{description} ({name})", refresh=True)

    done = threading.Event()

    def redraw():
        while not done.wait(0.5):
            bar.refresh()

    ticker = threading.Thread(target=redraw, daemon=True)
    progress_hook(update, phase)
    ticker.start()
    try:
        yield
    finally:
        done.set()
        ticker.join()
        progress_hook(None)
        bar.close()


# -- subcommands ------------------------------------------------------------------


def _maxcut(args):
    from sklearn_derand import DerandomizedMaxCut
    from sklearn_derand.datasets import load_graph

    tabu_iter = args.tabu_iter
    if tabu_iter is not None:
        tabu_iter = _positive_int(tabu_iter, "--tabu-iter")
    output = _output_path(args.output, [args.graph])
    try:
        W = load_graph(_existing_file(args.graph), format=args.format)
    except ValueError as exc:
        raise UsageError(f"cannot read the graph: {exc}") from None
    start = time.perf_counter()
    with _fitting("maxcut", args.progress):
        try:
            est = DerandomizedMaxCut(
                alpha=args.alpha,
                local_search=("tabu" if args.tabu else True)
                if args.local_search
                else False,
                n_init=args.n_init,
                tabu_iter=tabu_iter,
                max_time=args.max_time,
                random_state=args.seed,
            ).fit(W)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    elapsed = time.perf_counter() - start
    print(f"nodes            {W.shape[0]}")
    print(f"edges            {W.nnz // 2}")
    print(f"cut value        {est.cut_value_:.6g}")
    print(f"SDP upper bound  {est.upper_bound_:.6g}  (certified)")
    print(f"gap              {100 * est.gap_:.3f} %  (cut is within this of optimal)")
    print(f"GW expectation   {est.expected_cut_gw_:.6g}")
    print(f"time             {elapsed:.2f} s")
    if output:
        kind = _write_array(output, est.labels_, fmt="%d")
        print(f"partition        {output} ({kind}: side 0/1 of node i, row i)")
    return 0


def _jl(args):
    from sklearn.random_projection import GaussianRandomProjection

    from sklearn_derand import DerandomizedJLProjector, max_pairwise_distortion

    output = _output_path(args.output, [args.data])
    X = _read_matrix(args.data)
    n_components = _positive_int(args.n_components, "--n-components", allow_auto=True)
    start = time.perf_counter()
    _say_if_compiling(args.command)
    with _fitting("jl", args.progress):
        try:
            # The command embeds the points it fits: every point is fitted.
            est = DerandomizedJLProjector(
                n_components, eps=args.eps, early_stopping=False, random_state=args.seed
            ).fit(X)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    elapsed = time.perf_counter() - start
    gauss = GaussianRandomProjection(est.n_components_, random_state=args.seed)
    gauss_distortion = max_pairwise_distortion(X, gauss.fit_transform(X))
    print(f"points x features        {X.shape[0]} x {X.shape[1]}")
    print(f"n_components_            {est.n_components_}")
    if est.distortion_exact_:
        print(f"max pairwise distortion  {est.distortion_:.4f}  (learned)")
    else:
        print(
            f"max pairwise distortion  {est.distortion_:.4f}  (learned; max over "
            f"{est.n_pairs_checked_:,} pairs checked, not all pairs: at most "
            f"{est.distortion_exceed_bound_:.1e} of all pairs above it, 95 %)"
        )
    print(
        f"                         {gauss_distortion:.4f}  "
        "(GaussianRandomProjection, same k and seed)"
    )
    print(f"fit time                 {elapsed:.2f} s")
    if output:
        kind = _write_array(output, est.transform(X))
        print(f"embedding                {output} ({kind})")
    return 0


def _subspace(args):
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sklearn_derand import StructuredTwoLayerRegressor

    path = _existing_file(args.data)
    if path.suffix.lower() != ".csv":
        raise UsageError(f"{path}: expected a .csv file with a header row")
    names, table = _read_csv(path)
    if names is None:
        raise UsageError(f"{path}: the CSV needs a header row naming the columns")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise UsageError(f"{path}: repeated column names {', '.join(repeated)}")
    if args.target not in names:
        raise UsageError(
            f"{path}: no column {args.target!r} (columns: {', '.join(names)})"
        )
    j = names.index(args.target)
    y = table[:, j]
    X = np.delete(table, j, axis=1)
    features = [name for name in names if name != args.target]
    if X.shape[1] == 0 or X.shape[0] < 10:
        raise UsageError(f"{path}: need at least one feature column and 10 rows")
    if not 0.0 < args.test_size < 1.0:
        raise UsageError(
            f"--test-size must lie strictly between 0 and 1, got {args.test_size}"
        )
    n_test = int(np.ceil(args.test_size * len(y)))
    if n_test < 2 or len(y) - n_test < 10:
        raise UsageError(
            f"--test-size {args.test_size} leaves {len(y) - n_test} rows to fit and "
            f"{n_test} to test; need at least 10 and 2"
        )
    Xtr, Xte, ytr, yte = train_test_split(
        X, y, test_size=args.test_size, random_state=args.seed
    )
    n_components = _positive_int(args.n_components, "--n-components", allow_auto=True)
    alpha = args.alpha
    if alpha != "auto":
        try:
            alpha = float(alpha)
        except ValueError:
            raise UsageError("--alpha must be a number or 'auto'") from None
    model = make_pipeline(
        StandardScaler(),
        StructuredTwoLayerRegressor(
            n_components=n_components, alpha=alpha, random_state=args.seed
        ),
    )
    start = time.perf_counter()
    with _fitting("subspace", args.progress):
        try:
            model.fit(Xtr, ytr)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    elapsed = time.perf_counter() - start
    net = model[-1]
    print(
        f"samples x features  {X.shape[0]} x {X.shape[1]} "
        f"(fit on {len(ytr)}, held out {len(yte)})"
    )
    score = model.score(Xte, yte)
    linear = make_pipeline(StandardScaler(), RidgeCV()).fit(Xtr, ytr)
    linear_score = linear.score(Xte, yte)
    print(f"held-out R^2        {score:.4f}  (alpha_ {net.alpha_:g})")
    print(f"linear baseline     {linear_score:.4f}  (RidgeCV, same split)")
    if score <= linear_score:
        print(
            "warning: the network is not better than the linear baseline on "
            "held-out rows; its subspace is not supported by this data"
        )
    print(f"subspace dimension  {net.n_components_}")
    top = ", ".join(f"{v:.3g}" for v in net.singular_values_[: net.n_components_ + 3])
    print(f"spectrum            {top}, ...")
    print("components (rows, on standardised features):")
    width = max(len(name) for name in features)
    for i, row in enumerate(net.components_):
        order = np.argsort(-np.abs(row))[:8]
        terms = "  ".join(f"{features[k]:>{width}}={row[k]:+.3f}" for k in order)
        print(f"  {i}: {terms}")
    print(f"fit time            {elapsed:.2f} s")
    return 0


def _demo(args):
    """Run all three estimators on built-in data, each beside its baseline."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # baselines' warnings too
        return _demo_steps(args)


def _demo_steps(args):
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPRegressor
    from sklearn.random_projection import GaussianRandomProjection

    from sklearn_derand import (
        DerandomizedJLProjector,
        DerandomizedMaxCut,
        StructuredTwoLayerRegressor,
        max_pairwise_distortion,
        subspace_distance,
    )
    from sklearn_derand.datasets import load_gset

    seed = args.seed

    print("1. DerandomizedJLProjector: first 300 sklearn digits (d=64) to k=16")
    X = load_digits().data[:300]
    start = time.perf_counter()
    _say_if_compiling(args.command)
    with _fitting("jl", args.progress):
        jl = DerandomizedJLProjector(16, early_stopping=False, random_state=seed)
        jl.fit(X)
    seconds = time.perf_counter() - start
    gaussians = [
        max_pairwise_distortion(
            X, GaussianRandomProjection(16, random_state=s).fit_transform(X)
        )
        for s in range(100)
    ]
    print(
        f"   max pairwise distortion: learned {jl.distortion_:.3f} ({seconds:.1f} s)"
        f" | Gaussian: best of 100 seeds {min(gaussians):.3f}, "
        f"median {np.median(gaussians):.3f}"
    )

    print("\n2. DerandomizedMaxCut: Gset G14 (800 nodes, 4694 edges, bundled)")
    W, best = load_gset("G14")
    start = time.perf_counter()
    with _fitting("maxcut", args.progress):
        mc = DerandomizedMaxCut(random_state=seed).fit(W)
    seconds = time.perf_counter() - start
    hyper = DerandomizedMaxCut(
        random_state=seed, rounding="hyperplane", n_hyperplanes=100, local_search=False
    ).fit(W)
    print(
        f"   cut {mc.cut_value_:.0f} ({seconds:.1f} s) | certified bound "
        f"{mc.upper_bound_:.1f} (gap {100 * mc.gap_:.2f} %) | best known {best}"
    )
    print(
        f"   baselines: GW expectation {mc.expected_cut_gw_:.1f}, best of 100 "
        f"random hyperplanes {hyper.cut_value_:.0f}"
    )

    print(
        "\n3. StructuredTwoLayerRegressor: y = (u1.x)(u2.x) + noise, "
        "x ~ N(0, I_20), n = 3000"
    )
    rng = np.random.RandomState(seed)
    U = np.linalg.qr(rng.randn(20, 2))[0].T
    X = rng.randn(4000, 20)
    y = (X @ U[0]) * (X @ U[1]) + 0.1 * rng.randn(4000)
    Xtr, ytr, Xte, yte = X[:3000], y[:3000], X[3000:], y[3000:]
    start = time.perf_counter()
    with _fitting("subspace", args.progress):
        net = StructuredTwoLayerRegressor(random_state=seed).fit(Xtr, ytr)
    seconds = time.perf_counter() - start
    mlp = MLPRegressor(random_state=seed).fit(Xtr, ytr)
    print(
        f"   found a {net.n_components_}-d subspace, error ||sin Theta|| = "
        f"{subspace_distance(net.components_, U):.3f} ({seconds:.1f} s)"
    )
    print(
        f"   held-out R^2 {net.score(Xte, yte):.3f} | MLPRegressor() "
        f"{mlp.score(Xte, yte):.3f} | oracle {1 - 0.01 / yte.var():.3f}"
    )
    return 0


# -- parser ---------------------------------------------------------------------------


def build_parser():
    parser = argparse.ArgumentParser(
        prog="sklearn-derand",
        description="Derandomization by second-order stationary points: "
        "learned JL projections, structure-discovering networks, "
        "derandomized MAXCUT.",
    )
    from sklearn_derand import __version__

    parser.add_argument(
        "--version", action="version", version=f"sklearn-derand {__version__}"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    mc = sub.add_parser(
        "maxcut",
        help="large cut of a graph, with a certified bound",
        description="Cut a graph: certified SDP bound and a derandomized rounding.",
    )
    mc.add_argument("graph", help="graph file: Gset/rudy, edge list or MatrixMarket")
    mc.add_argument(
        "--format",
        default="auto",
        choices=["auto", "gset", "edgelist", "mtx"],
        help="file format (default auto: .mtx by suffix, Gset when the first line "
        "is 'n m' followed by 'i j w' lines, else a 0-based edge list)",
    )
    mc.add_argument(
        "--output",
        help="write the side (0/1) of each node, one per row (.txt/.csv text, or .npy)",
    )
    mc.add_argument(
        "--seed", type=int, default=0, help="random seed of the fit (default 0)"
    )
    mc.add_argument(
        "--alpha",
        type=float,
        default=1e-3,
        help="noise penalty of the rounding (default 1e-3)",
    )
    mc.add_argument(
        "--n-init", type=int, default=1, help="rounding restarts, best kept (default 1)"
    )
    mc.add_argument(
        "--local-search",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="finish the rounded cut with local search (default: on)",
    )
    mc.add_argument(
        "--tabu",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with --local-search: tabu search then 1-flip (default), "
        "or 1-flip only with --no-tabu",
    )
    mc.add_argument(
        "--tabu-iter",
        default=None,
        help="flips of the tabu search (default min(10000 n, 3e8 / cost of a flip), "
        "about 0.4 s on Gset graphs)",
    )
    mc.add_argument(
        "--max-time",
        type=float,
        default=None,
        metavar="SECONDS",
        help="wall-clock budget of the fit: the best cut found within it, with the "
        "bound certified so far (default: none)",
    )
    mc.set_defaults(func=_maxcut)

    jl = sub.add_parser(
        "jl",
        help="learned distance-preserving projection",
        description="Fit a DerandomizedJLProjector and compare "
        "with a Gaussian random projection.",
    )
    jl.add_argument("data", help=".npy or .csv file of points (rows)")
    jl.add_argument(
        "--n-components", default="auto", help="target dimension or 'auto' (default)"
    )
    jl.add_argument(
        "--eps",
        type=float,
        default=0.1,
        help="target distortion for 'auto' (default 0.1)",
    )
    jl.add_argument("--output", help="write the embedding (.npy, or .csv/.txt as text)")
    jl.add_argument(
        "--seed", type=int, default=0, help="random seed of the fit (default 0)"
    )
    jl.set_defaults(func=_jl)

    ss = sub.add_parser(
        "subspace",
        help="index subspace of a regression problem",
        description="Fit a StructuredTwoLayerRegressor on a CSV "
        "and print the subspace it found.",
    )
    ss.add_argument("data", help=".csv file with a header row")
    ss.add_argument("--target", required=True, help="name of the target column")
    ss.add_argument(
        "--n-components",
        default="auto",
        help="dimension of the subspace, or 'auto' (default: the smallest that "
        "keeps 99 %% of the network's R^2)",
    )
    ss.add_argument(
        "--alpha",
        default="auto",
        help="ridge on the first layer: a number, or 'auto' (default: chosen "
        "on a validation split)",
    )
    ss.add_argument(
        "--test-size",
        type=float,
        default=0.2,
        help="share of the rows held out for the R^2 (default 0.2)",
    )
    ss.add_argument(
        "--seed", type=int, default=0, help="random seed of the fit (default 0)"
    )
    ss.set_defaults(func=_subspace)

    demo = sub.add_parser(
        "demo",
        help="run all three estimators on built-in data",
        description=_demo.__doc__,
    )
    demo.add_argument(
        "--seed", type=int, default=0, help="random seed of the fit (default 0)"
    )
    demo.set_defaults(func=_demo)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    args.progress = sys.stdout.isatty()
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"sklearn-derand {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
