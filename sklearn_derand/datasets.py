"""Graph readers: Gset/rudy files, edge lists and MatrixMarket."""

import csv
from importlib import resources
from pathlib import Path

import numpy as np
import scipy.io
import scipy.sparse as sp

__all__ = ["GSET_BUNDLED", "load_graph", "load_gset"]

GSET_BUNDLED = ("G11", "G14")


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


def _read_rudy(lines, path):
    header = lines[0].split()
    n, m = int(header[0]), int(header[1])
    body = [line.split() for line in lines[1:] if line.strip()]
    if len(body) != m:
        raise ValueError(f"{path}: header announces {m} edges, found {len(body)}.")
    if m == 0:
        return sp.csr_matrix((n, n))
    try:
        edges = np.array([[float(v) for v in row[:3]] for row in body])
    except ValueError:
        raise ValueError(f"{path}: edge lines must be 'i j weight' numbers.") from None
    if edges.shape[1] != 3:
        raise ValueError(f"{path}: edge lines must be 'i j weight'.")
    i, j = edges[:, 0].astype(np.int64) - 1, edges[:, 1].astype(np.int64) - 1
    if i.min() < 0 or j.min() < 0 or max(i.max(), j.max()) >= n:
        raise ValueError(f"{path}: node ids must lie in 1..{n}.")
    return _symmetric(i, j, edges[:, 2], n)


def _read_edgelist(lines, path):
    rows, cols, weights = [], [], []
    for number, line in enumerate(lines, 1):
        parts = line.split("#", 1)[0].split()
        if not parts:
            continue
        if len(parts) not in (2, 3):
            raise ValueError(f"{path}, line {number}: expected 'u v [weight]'.")
        try:
            rows.append(int(parts[0]))
            cols.append(int(parts[1]))
            weights.append(float(parts[2]) if len(parts) == 3 else 1.0)
        except ValueError:
            raise ValueError(
                f"{path}, line {number}: node ids must be integers and the "
                "weight a number."
            ) from None
    if not rows:
        raise ValueError(f"{path}: no edges found.")
    rows, cols = np.array(rows), np.array(cols)
    if min(rows.min(), cols.min()) < 0:
        raise ValueError(f"{path}: node ids must be non-negative.")
    n = int(max(rows.max(), cols.max())) + 1
    return _symmetric(rows, cols, np.array(weights, dtype=np.float64), n)


def _is_rudy(lines):
    first = lines[0].split()
    if len(first) != 2 or not all(t.isdigit() for t in first):
        return False
    body = [line for line in lines[1:] if line.strip()]
    return len(body) == int(first[1]) and all(len(b.split()) == 3 for b in body[:5])


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
        (``#`` starts a comment; the weight defaults to 1).
        ``"mtx"``: MatrixMarket, read by :func:`scipy.io.mmread`; a
        triangular matrix (each edge once) is mirrored.
        ``"auto"`` picks ``"mtx"`` for a ``.mtx`` suffix, ``"gset"`` when the
        first line is ``n m`` followed by exactly m edge lines, else
        ``"edgelist"``.

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
    if not path.is_file():
        raise FileNotFoundError(f"No such graph file: {path}")
    if format == "mtx" or (format == "auto" and path.suffix.lower() == ".mtx"):
        try:
            M = sp.coo_matrix(scipy.io.mmread(path))
        except (ValueError, TypeError, OSError) as exc:
            raise ValueError(
                f"{path}: not a readable MatrixMarket file ({exc})."
            ) from None
        if M.shape[0] != M.shape[1]:
            raise ValueError(f"{path}: the matrix is not square {M.shape}.")
        lower = (M.row > M.col).any()
        upper = (M.row < M.col).any()
        if lower != upper:  # triangular: one entry per edge
            return _symmetric(M.row, M.col, M.data.astype(np.float64), M.shape[0])
        W = M.tocsr().astype(np.float64)
        W.setdiag(0)
        W.eliminate_zeros()
        return W
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text graph file.") from None
    lines = [line for line in lines if line.strip()]
    if not lines:
        raise ValueError(f"{path}: the file is empty.")
    if format in ("gset", "rudy") or (format == "auto" and _is_rudy(lines)):
        return _read_rudy(lines, path)
    return _read_edgelist(lines, path)


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
