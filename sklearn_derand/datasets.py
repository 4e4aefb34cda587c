"""Graph readers: Gset/rudy files, edge lists and MatrixMarket."""

import csv
from importlib import resources
from pathlib import Path

import numpy as np
import scipy.io
import scipy.sparse as sp

__all__ = ["GSET_BUNDLED", "load_graph", "load_gset"]

GSET_BUNDLED = ("G11", "G14")


# Refuse graph sizes whose adjacency would be mostly empty index arrays: a
# header or node id beyond this many nodes, and beyond _MAX_NODES_PER_EDGE
# times the number of edges present, is taken for a mistake (a CSR matrix
# costs 8 bytes per node before any edge is stored).
_MAX_NODES = 10**7
_MAX_NODES_PER_EDGE = 20


def _check_n_nodes(n, n_edges, path, where):
    if n > max(_MAX_NODES, _MAX_NODES_PER_EDGE * n_edges):
        raise ValueError(
            f"{path}: {where} gives {n} nodes for {n_edges} edges; refusing to "
            f"allocate an adjacency matrix that large (at most {_MAX_NODES} "
            f"nodes, or {_MAX_NODES_PER_EDGE} per edge)."
        )


def _symmetric(rows, cols, weights, n):
    """Symmetric CSR adjacency without self-loops; repeated edges add up."""
    keep = rows != cols
    rows, cols, weights = rows[keep], cols[keep], weights[keep]
    W = sp.coo_matrix(
        (np.r_[weights, weights], (np.r_[rows, cols], np.r_[cols, rows])),
        shape=(n, n),
    ).tocsr()
    W.sum_duplicates()
    W.eliminate_zeros()
    return W


def _content(text):
    """(line number, tokens) of each line that is not blank or a comment.

    ``#`` starts a comment anywhere on a line, in every text format.
    """
    lines = []
    for number, line in enumerate(text.splitlines(), 1):
        tokens = line.split("#", 1)[0].split()
        if tokens:
            lines.append((number, tokens))
    return lines


def _is_node_id(token):
    return token.lstrip("+").isdigit() and token.isascii()


def _edges(body, path, *, base):
    """Node ids and weights of edge lines ``u v [w]`` as arrays.

    Node ids must be integers written as such (``1.7`` or ``1e3`` are
    refused, not truncated) and weights finite numbers; each error names its
    line.
    """
    rows = np.empty(len(body), dtype=np.int64)
    cols = np.empty(len(body), dtype=np.int64)
    weights = np.ones(len(body), dtype=np.float64)
    for k, (number, tokens) in enumerate(body):
        if not (_is_node_id(tokens[0]) and _is_node_id(tokens[1])):
            raise ValueError(
                f"{path}, line {number}: node ids must be integers, got "
                f"{tokens[0]!r} and {tokens[1]!r}."
            )
        u, v = int(tokens[0]) - base, int(tokens[1]) - base
        if min(u, v) < 0 or max(u, v) >= 2**62:
            raise ValueError(
                f"{path}, line {number}: node ids must lie in {base}.."
                f"{2**62 - 1 + base}; got {tokens[0]} and {tokens[1]}."
            )
        rows[k], cols[k] = u, v
        if len(tokens) == 3:
            try:
                weights[k] = float(tokens[2])
            except ValueError:
                raise ValueError(
                    f"{path}, line {number}: the weight must be a number, got "
                    f"{tokens[2]!r}."
                ) from None
            if not np.isfinite(weights[k]):
                raise ValueError(
                    f"{path}, line {number}: the weight must be finite, got "
                    f"{tokens[2]!r}."
                )
    return rows, cols, weights


def _read_rudy(lines, path):
    number, header = lines[0]
    if len(header) != 2 or not all(_is_node_id(t) for t in header):
        raise ValueError(
            f"{path}, line {number}: a Gset file starts with a line 'n m' "
            f"(two non-negative integers: nodes and edges), got {' '.join(header)!r}."
        )
    n, m = int(header[0]), int(header[1])
    body = lines[1:]
    if len(body) != m:
        raise ValueError(
            f"{path}: the header (line {number}) announces {m} edges, found "
            f"{len(body)} edge lines."
        )
    for number, tokens in body:
        if len(tokens) != 3:
            raise ValueError(
                f"{path}, line {number}: Gset edge lines are 'i j weight' (three "
                f"fields), got {len(tokens)}."
            )
    _check_n_nodes(n, m, path, "the header")
    rows, cols, weights = _edges(body, path, base=1)
    if m and max(rows.max(), cols.max()) >= n:
        bad = int(np.flatnonzero(np.maximum(rows, cols) >= n)[0])
        raise ValueError(
            f"{path}, line {body[bad][0]}: node ids must lie in 1..{n} (the "
            "header's node count)."
        )
    return _symmetric(rows, cols, weights, n)


def _read_edgelist(lines, path):
    if not lines:
        raise ValueError(f"{path}: no edges found.")
    for number, tokens in lines:
        if len(tokens) not in (2, 3):
            raise ValueError(f"{path}, line {number}: expected 'u v [weight]'.")
    rows, cols, weights = _edges(lines, path, base=0)
    n = int(max(rows.max(), cols.max())) + 1
    _check_n_nodes(n, len(lines), path, "the largest node id")
    return _symmetric(rows, cols, weights, n)


def _looks_like_rudy(lines, path):
    """Whether ``format="auto"`` reads the lines as Gset.

    A first line of two integers followed by lines of three fields is a Gset
    header; if it announces a different number of edges than the lines
    present, the file is neither read as Gset nor silently as an edge list
    (whose first edge the header would become): that is an error.
    """
    number, first = lines[0]
    body = lines[1:]
    if not (len(first) == 2 and all(_is_node_id(t) for t in first)):
        return False
    if not body or any(len(tokens) != 3 for _, tokens in body):
        return False
    if int(first[1]) != len(body):
        raise ValueError(
            f"{path}: line {number} looks like a Gset header 'n m' announcing "
            f"{first[1]} edges, but {len(body)} edge lines follow. Fix the "
            "header, or pass format='edgelist' to read the file as 0-based "
            "edges 'u v [weight]' (the first line then is an edge)."
        )
    return True


def load_graph(path, *, format="auto"):
    """Read a graph file as a symmetric sparse adjacency matrix.

    Parameters
    ----------
    path : str or path-like
        The file.
    format : {"auto", "gset", "edgelist", "mtx"}, default="auto"
        ``"gset"`` (also called rudy): a first line ``n m`` then ``m`` lines
        ``i j weight`` with 1-based node ids, as in the Gset benchmark.
        ``"edgelist"``: lines ``u v [weight]`` with 0-based integer node ids
        (the weight defaults to 1).
        ``"mtx"``: MatrixMarket, read by :func:`scipy.io.mmread`; a
        triangular matrix (each edge once) is mirrored.
        ``"auto"`` picks ``"mtx"`` for a ``.mtx`` suffix, ``"gset"`` when the
        first line is ``n m`` followed by lines of three fields, else
        ``"edgelist"``. A first line ``n m`` followed by three-field lines
        whose count is not ``m`` is an error, never an edge list read
        silently with the header as its first edge.
        In the text formats ``#`` starts a comment, node ids must be written
        as integers (``1.7`` is refused, not truncated), extra fields are
        refused, weights must be finite, and a node count beyond
        ``max(10**7, 20 * n_edges)`` is refused before anything is
        allocated. A UTF-8 byte-order mark is ignored.

    Returns
    -------
    W : scipy.sparse.csr_matrix of shape (n_nodes, n_nodes)
        Symmetric weights, zero diagonal (self-loops dropped; repeated edges
        add up).

    Examples
    --------
    >>> import tempfile, os
    >>> from sklearn_derand.datasets import load_graph
    >>> path = os.path.join(tempfile.mkdtemp(), "triangle.txt")
    >>> with open(path, "w") as f:
    ...     _ = f.write("3 3\\n1 2 1\\n2 3 1\\n1 3 1\\n")
    >>> load_graph(path).shape
    (3, 3)
    """
    path = Path(path)
    if format not in ("auto", "gset", "rudy", "edgelist", "mtx"):
        raise ValueError(f"Unknown graph format {format!r}.")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory, not a graph file.")
    if not path.is_file():
        raise FileNotFoundError(f"No such graph file: {path}")
    if format == "mtx" or (format == "auto" and path.suffix.lower() == ".mtx"):
        return _read_mtx(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text graph file.") from None
    lines = _content(text)
    if not lines:
        raise ValueError(f"{path}: the file is empty.")
    if format in ("gset", "rudy") or (
        format == "auto" and _looks_like_rudy(lines, path)
    ):
        return _read_rudy(lines, path)
    return _read_edgelist(lines, path)


def _read_mtx(path):
    try:
        rows, cols, entries = scipy.io.mminfo(path)[:3]
    except (ValueError, TypeError, OSError, IndexError) as exc:
        raise ValueError(f"{path}: not a readable MatrixMarket file ({exc}).") from None
    if rows != cols:
        raise ValueError(f"{path}: the matrix is not square ({rows}, {cols}).")
    _check_n_nodes(rows, entries, path, "the MatrixMarket header")
    try:
        M = sp.coo_matrix(scipy.io.mmread(path))
    except (ValueError, TypeError, OSError) as exc:
        raise ValueError(f"{path}: not a readable MatrixMarket file ({exc}).") from None
    if np.iscomplexobj(M.data):
        raise ValueError(f"{path}: complex weights are not supported.")
    data = M.data.astype(np.float64)
    if not np.isfinite(data).all():
        raise ValueError(f"{path}: the weights must be finite.")
    lower = (M.row > M.col).any()
    upper = (M.row < M.col).any()
    if lower != upper:  # triangular: one entry per edge
        return _symmetric(M.row, M.col, data, M.shape[0])
    W = sp.csr_matrix((data, (M.row, M.col)), shape=M.shape)
    W.setdiag(0)
    W.eliminate_zeros()
    return W


def load_gset(name):
    """One of the Gset graphs shipped with the package, and its best-known cut.

    Parameters
    ----------
    name : {"G11", "G14"}
        G11: 800-node toroidal grid with +-1 weights; G14: 800-node planar
        union with unit weights.

    Returns
    -------
    W : scipy.sparse.csr_matrix
    best_known_cut : int
        The best cut reported in the literature.

    Examples
    --------
    >>> from sklearn_derand.datasets import load_gset
    >>> W, best = load_gset("G11")
    >>> W.shape, best
    ((800, 800), 564)
    """
    if name not in GSET_BUNDLED:
        raise ValueError(f"Bundled Gset graphs: {GSET_BUNDLED}; got {name!r}.")
    data = resources.files("sklearn_derand") / "data"
    with resources.as_file(data / f"{name}.txt") as path:
        W = load_graph(path, format="gset")
    with resources.as_file(data / "gset_best_known.csv") as path:
        with open(path) as f:
            best = {
                row["instance"]: int(row["best_known_cut"]) for row in csv.DictReader(f)
            }
    return W, best[name]
