"""MAXCUT: low-rank SDP with a dual certificate, and derandomized rounding.

Graphs are symmetric scipy CSR weight matrices W with a zero diagonal;
``cut(s) = (sum(W) - s^T W s) / 4`` for sides ``s in {-1, +1}^n``.

* SDP (Goemans-Williamson): ``max <L/4, X>`` s.t. ``diag(X) = 1``, ``X psd``,
  in Burer-Monteiro form ``X = V V^T`` with unit rows, solved by the mixing
  method (Wang, Chang & Kolter 2017): ``v_i <- -normalize(sum_j w_ij v_j)``.
  Nodes of one colour class share no edge, so a whole class is updated at
  once (exact block coordinate descent, one sparse matmul per class).
* Certificate: ``y_i = (L X)_ii / 4`` shifted by ``lambda_min(Diag(y) -
  L/4)`` is dual feasible, so ``sum(y) - n min(lambda_min, 0)`` bounds the
  SDP, hence the max cut, from above.
* Rounding: sides ``sign(t_i v_i . z + mu_i)``, z ~ N(0, I). The sign is
  scale-invariant, so each node's pair lies on the unit circle,
  ``mu_i = a_i / sqrt(1 + a_i^2)``, ``t_i = 1 / sqrt(1 + a_i^2)``, and the
  paper's noise penalty ``alpha * sum t_i^2`` becomes
  ``alpha * sum 1 / (1 + a_i^2)``. The expected cut is closed form:
  ``P[i, j cut] = Phi(a_i) + Phi(a_j) - 2 Phi2(a_i, a_j; v_i . v_j)``.
"""

import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import ArpackError, ArpackNoConvergence, eigsh, lobpcg

from sklearn_derand._sosp._utils import make_generator
from sklearn_derand._sosp.optimize import minimize
from sklearn_derand._sosp.smoothing import (
    FixedCorrelationBVN,
    sign_disagreement_probability,
)

__all__ = [
    "SDPResult",
    "color_classes",
    "conditional_expectation_rounding",
    "cut_value",
    "derandomized_rounding",
    "dual_upper_bound",
    "exact_max_cut",
    "gw_expected_cut",
    "hyperplane_rounding",
    "integer_units",
    "local_search",
    "relative_gap",
    "solve_sdp_mixing",
    "tabu_search",
]


# -- graph helpers ----------------------------------------------------------


def upper_edges(W):
    """Edges i < j with their weights, from a symmetric CSR matrix."""
    U = sp.triu(W, k=1).tocoo()
    return U.row.astype(np.int64), U.col.astype(np.int64), U.data.astype(np.float64)


def cut_value(W, sides):
    """Weight of the edges cut by ``sides`` in {-1, +1} (or {0, 1})."""
    s = np.asarray(sides, dtype=np.float64)
    if s.size and s.min() >= 0:
        s = 2.0 * s - 1.0
    return float((W.sum() - s @ (W @ s)) / 4.0)


def _sign_rows(bits, stop, start=0):
    """The sign vectors (+1 / -1) of the integers ``start .. stop - 1`` on
    ``bits`` bits, one per row."""
    codes = np.arange(start, stop, dtype=np.int64)[:, None] >> np.arange(bits)
    return 1.0 - 2.0 * (codes & 1)


def exact_max_cut(W, block_bytes=2**26):
    """A maximum cut by enumerating every partition: ``(sides, cut)``.

    Node 0 is fixed to side +1 (a partition and its mirror cut the same
    weight); the other nodes split into a high and a low group, whose
    2^h x 2^l table of ``s^T W s`` is one matrix product per block of high
    rows (``s^T W s = q_hi + q_lo + 2 s_hi^T W_hl s_lo``), within
    ``block_bytes`` of memory. 2^(n-1) partitions: measured 0.01 s at
    n = 20, 0.4 s at n = 28 and 1.7 s at n = 30 (user guide). The result is optimal,
    whatever the weights' signs.
    """
    n = W.shape[0]
    A = W.toarray() if sp.issparse(W) else np.asarray(W, dtype=np.float64)
    total = float(A.sum())
    if n <= 1:
        return np.ones(n), 0.0
    free = n - 1
    low = free // 2 + free % 2
    high = free - low
    # Order: node 0, then the high group, then the low group.
    hi_nodes = np.arange(1, 1 + high)
    lo_nodes = np.arange(1 + high, n)
    S_lo = _sign_rows(low, 2**low)
    A_ll = A[np.ix_(lo_nodes, lo_nodes)]
    q_lo = np.einsum("ij,jk,ik->i", S_lo, A_ll, S_lo)
    # Node 0 belongs to the high group's quadratic and cross terms (s_0 = 1).
    hi0 = np.r_[0, hi_nodes]
    A_hh = A[np.ix_(hi0, hi0)]
    A_hl = A[np.ix_(hi0, lo_nodes)]
    rows = max(1, block_bytes // (8 * 2**low))
    best_value, best = np.inf, (0, 0)
    for start in range(0, 2**high, rows):
        count = min(rows, 2**high - start)
        S_hi = np.c_[np.ones(count), _sign_rows(high, start + count, start)]
        q_hi = np.einsum("ij,jk,ik->i", S_hi, A_hh, S_hi)
        table = 2.0 * (S_hi @ A_hl) @ S_lo.T
        table += q_hi[:, None]
        table += q_lo[None, :]
        flat = int(np.argmin(table))
        if table.flat[flat] < best_value:
            best_value = float(table.flat[flat])
            best = (start + flat // table.shape[1], flat % table.shape[1])
    sides = np.empty(n)
    sides[0] = 1.0
    sides[hi_nodes] = _sign_rows(high, best[0] + 1, best[0])[0]
    sides[lo_nodes] = S_lo[best[1]]
    return sides, (total - best_value) / 4.0


def color_classes(W, seed=0):
    """Partition the nodes into independent sets (Luby's algorithm).

    Each round, an uncoloured node whose random priority beats all its
    uncoloured neighbours joins the new colour: vectorised, O(m) per round.
    """
    n = W.shape[0]
    A = W.tocsr(copy=True)
    A.data = np.ones_like(A.data)
    A.setdiag(0)
    A.eliminate_zeros()
    rows = np.repeat(np.arange(n), np.diff(A.indptr))
    cols = A.indices
    rng = np.random.RandomState(seed)
    color = np.full(n, -1)
    c = 0
    while (color < 0).any():
        uncolored = color < 0
        priority = np.where(uncolored, rng.rand(n), -1.0)
        neighbour_max = np.full(n, -1.0)
        np.maximum.at(neighbour_max, rows, priority[cols])
        pick = uncolored & (priority > neighbour_max)
        color[pick] = c
        c += 1
    return [np.flatnonzero(color == k) for k in range(c)]


# -- SDP ----------------------------------------------------------------------


def _torch_csr(M, device, dtype=torch.float64):
    """A scipy CSR matrix as a torch sparse CSR tensor (silencing torch's
    notice that sparse CSR support is in beta)."""
    M = M.tocsr()
    M.sort_indices()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            torch.as_tensor(M.indptr),
            torch.as_tensor(M.indices),
            torch.as_tensor(M.data, dtype=dtype),
            size=M.shape,
            dtype=dtype,
        ).to(device)


def _sdp_value(W, V, total):
    """<L/4, V V^T> for unit rows V: (sum(W) - <W, V V^T>) / 4."""
    return float((total - np.einsum("ij,ij->i", W @ V, V).sum()) / 4.0)


@dataclass
class SDPResult:
    """Low-rank SDP solution and its certificate."""

    V: np.ndarray
    value: float
    upper_bound: float
    gap: float
    n_iter: int
    converged: bool
    history: list = field(default_factory=list, repr=False)
    time: float = 0.0


def _lambda_min(Z, v0):
    """Smallest eigenvalue of the sparse symmetric Z and its eigenvector.

    Dense for small matrices; LOBPCG warm-started from the previous
    eigenvector when there is one (a few matvecs once the SDP is nearly
    converged), ARPACK otherwise or when LOBPCG fails. Returns (nan, None)
    if no eigensolver converges.
    """
    n = Z.shape[0]
    if n <= 400:
        lam_all, vecs = np.linalg.eigh(Z.toarray())
        return float(lam_all[0]), vecs[:, 0]
    if v0 is not None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                vals, vecs = lobpcg(
                    Z, v0.reshape(-1, 1), largest=False, tol=1e-8, maxiter=400
                )
            return float(vals[0]), vecs[:, 0]
        except (np.linalg.LinAlgError, ValueError):  # pragma: no cover
            pass
    try:
        vals, vecs = eigsh(Z, k=1, which="SA", tol=1e-7, maxiter=5000, v0=v0)
    except ArpackNoConvergence as exc:  # pragma: no cover - rare
        if exc.eigenvalues.size == 0:
            return math.nan, None
        vals, vecs = exc.eigenvalues, exc.eigenvectors
    except ArpackError:  # pragma: no cover - rare
        return math.nan, None
    return float(vals[0]), vecs[:, 0]


def dual_upper_bound(W, V, v0=None):
    """Certified upper bound on the SDP (and max cut) from a primal V.

    Returns ``(bound, lambda_min, eigenvector)``. Any V with unit rows
    gives a valid bound; the eigenvalue is lowered by its residual before
    use, so an inexact eigensolve only weakens it. ``inf`` when no
    eigensolver converged.
    """
    n = W.shape[0]
    V = np.asarray(V, dtype=np.float64)
    V = V / np.linalg.norm(V, axis=1, keepdims=True)
    d = np.asarray(W.sum(axis=1)).ravel()
    WV = W @ V
    y = (d - np.einsum("ij,ij->i", WV, V)) / 4.0
    Z = (sp.diags(y) - (sp.diags(d) - W) / 4.0).tocsr()
    lam, vec = _lambda_min(Z, v0)
    if vec is None or not math.isfinite(lam):
        return math.inf, math.nan, None
    residual = float(np.linalg.norm(Z @ vec - lam * vec) / np.linalg.norm(vec))
    lam_safe = lam - residual
    return float(y.sum() - n * min(lam_safe, 0.0)), lam, vec


def relative_gap(upper, value, W):
    """``(upper - value) / upper``, 0 where the difference is rounding.

    The scale of rounding is ``1e-9`` times the total absolute weight: a
    bound of 1e-14 over a cut of 0 (the optimum of an all-negative graph)
    is a zero gap, not a relative gap of 1.
    """
    slack = upper - value
    rounding = 1e-9 * float(np.abs(W.data).sum())
    if slack <= rounding:
        return 0.0
    return float(slack / max(abs(upper), rounding))


def _sweeps_to_next_check(history, tol):
    """Sweeps until the next dual check (each costs an eigensolve).

    The certified gap of the mixing method falls roughly like a power of
    the sweep count: extrapolate the last two checks to where it reaches
    ``tol``, and check there (at least 20 sweeps on, at most doubling).
    """
    checks = [
        (it, (ub - v) / max(abs(ub), 1e-300))
        for it, v, ub in history
        if ub is not None and math.isfinite(ub)
    ]
    it = history[-1][0]
    if len(checks) >= 2:
        (i0, g0), (i1, g1) = checks[-2], checks[-1]
        if 0 < g1 < g0 and i1 > i0:
            slope = math.log(g1 / g0) / math.log(i1 / i0)
            target = i1 * (tol / g1) ** (1.0 / slope)
            return int(min(max(target - it, 20), it))
    return max(20, it // 4)


def solve_sdp_mixing(
    W,
    rank,
    *,
    tol=1e-4,
    max_iter=1000,
    seed=0,
    device="cpu",
    verbose=0,
    classes=None,
    compiled=None,
    deadline=None,
    callback=None,
):
    """Goemans-Williamson SDP by the mixing method, certified by the dual.

    Stops when ``(upper_bound - value) / upper_bound <= tol``. The dual
    (one sparse eigensolve) is computed only once the primal has nearly
    stopped improving, then where the gap's trend predicts it reaches
    ``tol``. On the CPU up to 20,000 nodes the sweeps are compiled (numba,
    float64); otherwise they are torch sparse products per colour class, in
    float32 above 20,000 nodes (the certificate, computed in float64 from
    the renormalised factor, is valid for any factor). ``compiled`` forces
    one path or the other (None: by size and device).

    ``deadline`` (a :func:`time.perf_counter` value) stops the sweeps there;
    the bound of the factor reached is then certified once more (one
    eigensolve) unless the last sweep was just checked. ``callback(value,
    upper)`` is called at every dual check.
    """
    start = time.perf_counter()
    n = W.shape[0]
    total = float(W.sum())
    dtype = torch.float32 if n > 20_000 else torch.float64
    gen = make_generator(seed)
    V = torch.randn(n, rank, generator=gen, dtype=torch.float64)
    V = V / torch.linalg.vector_norm(V, dim=1, keepdim=True)
    if W.nnz == 0:
        V = V.numpy()
        return SDPResult(V, 0.0, 0.0, 0.0, 0, True, time=time.perf_counter() - start)
    if classes is None:
        classes = color_classes(W, seed)
    if compiled is None:
        compiled = torch.device(device).type == "cpu" and dtype == torch.float64
    if compiled:
        # Compiled node-by-node sweeps in colour-class order: the same
        # iterates as the block update, without a library call per class
        # (G1: 0.28 s instead of 0.54 s). Above 20,000 nodes torch's
        # multithreaded float32 products are faster (100,000 nodes: 89 s
        # against 57 s in benchmarks/bench_maxcut.py --scale).
        from sklearn_derand._sosp._kernels import mixing_sweeps

        V = V.numpy()
        csr = (W.indptr.astype(np.int64), W.indices.astype(np.int64))
        csr += (W.data.astype(V.dtype),)
        order = np.concatenate(classes).astype(np.int64)

        def sweep():
            mixing_sweeps(*csr, V, order, 1)

        def primal_value():
            return (total - float(np.einsum("ij,ij->", W @ V, V))) / 4.0

        def as_numpy():
            return V.astype(np.float64)

    else:
        V = V.to(device=device, dtype=dtype)
        blocks = [
            (torch.as_tensor(S, device=device), _torch_csr(W[S], device, dtype))
            for S in classes
        ]
        W_full = _torch_csr(W, device, dtype)

        def sweep():
            for S, WS in blocks:
                G = torch.sparse.mm(WS, V)
                norm = torch.linalg.vector_norm(G, dim=1, keepdim=True)
                V[S] = torch.where(norm > 0, -G / norm.clamp_min(1e-30), V[S])

        def primal_value():
            return float((total - (torch.sparse.mm(W_full, V) * V).sum()) / 4.0)

        def as_numpy():
            return V.cpu().numpy().astype(np.float64)

    history = []
    value_prev = -math.inf
    v0 = None
    next_dual = 0
    value, upper, gap = -math.inf, math.inf, math.inf
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        sweep()
        late = deadline is not None and time.perf_counter() >= deadline
        if late:
            break
        if it % 5 and it != max_iter:
            continue
        value = primal_value()
        progress = (value - value_prev) / max(abs(value), 1e-300)
        value_prev = value
        history.append((it, value, None))
        if (progress <= tol / 10 and it >= next_dual) or it == max_iter:
            Vn = as_numpy()
            value = _sdp_value(W, Vn / np.linalg.norm(Vn, axis=1, keepdims=True), total)
            upper, _, vec = dual_upper_bound(W, Vn, v0)
            v0 = vec if vec is not None else v0
            gap = relative_gap(upper, value, W)
            history[-1] = (it, value, upper)
            if callback is not None:
                callback(value, upper)
            if verbose >= 2:
                print(
                    f"  SDP sweep {it}: value {value:.4f}, bound {upper:.4f}, "
                    f"gap {gap:.2e}"
                )
            if gap <= tol:
                converged = True
                break
            next_dual = it + _sweeps_to_next_check(history, tol)
    Vn = as_numpy()
    Vn /= np.linalg.norm(Vn, axis=1, keepdims=True)
    if not history or history[-1][2] is None or history[-1][0] != it:
        value = _sdp_value(W, Vn, total)
        upper, _, _ = dual_upper_bound(W, Vn, v0)
        gap = relative_gap(upper, value, W)
        if callback is not None:
            callback(value, upper)
    return SDPResult(
        Vn, value, upper, gap, it, converged, history, time.perf_counter() - start
    )


# -- rounding -----------------------------------------------------------------


def edge_correlations(V, rows, cols, chunk=65536):
    """v_i . v_j for the edges, in chunks (never an m x rank array)."""
    out = np.empty(rows.size)
    for start in range(0, rows.size, chunk):
        sl = slice(start, start + chunk)
        out[sl] = np.einsum("ij,ij->i", V[rows[sl]], V[cols[sl]])
    return np.clip(out, -1.0, 1.0)


def gw_expected_cut(W, V):
    """Goemans-Williamson expectation: sum_ij w_ij arccos(v_i . v_j) / pi."""
    rows, cols, w = upper_edges(W)
    rho = edge_correlations(V, rows, cols)
    return float(np.sum(w * np.arccos(rho)) / math.pi)


def hyperplane_rounding(W, V, n_hyperplanes, seed=0, batch=64):
    """Best of ``n_hyperplanes`` random hyperplanes; returns (sides, cut, mean)."""
    rng = np.random.RandomState(seed)
    total = float(W.sum())
    best_cut, best_sides, cuts = -math.inf, None, []
    done = 0
    while done < n_hyperplanes:
        b = min(batch, n_hyperplanes - done)
        S = np.sign(V @ rng.standard_normal((V.shape[1], b)))
        S[S == 0] = 1.0
        values = (total - np.einsum("ij,ij->j", S, W @ S)) / 4.0
        k = int(np.argmax(values))
        if values[k] > best_cut:
            best_cut, best_sides = float(values[k]), S[:, k].copy()
        cuts.extend(values.tolist())
        done += b
    return best_sides, best_cut, float(np.mean(cuts))


def local_search(W, sides, classes, max_passes=1000):
    """1-flip local search: flip every improving node of a colour class at once.

    Nodes of one class share no edge, so their gains ``s_i (W s)_i`` are
    exact together. O(m) per pass; stops at a 1-flip local optimum.
    """
    s = np.asarray(sides, dtype=np.float64).copy()
    blocks = [(S, W[S]) for S in classes]  # sliced once, not once per pass
    for _ in range(max_passes):
        improved = False
        for S, WS in blocks:
            gain = s[S] * (WS @ s)
            flip = S[gain > 1e-12]
            if flip.size:
                s[flip] = -s[flip]
                improved = True
        if not improved:
            break
    return s


# Tabu tenures (fractions of n) cycled over the phases of the search. Over
# 3 seeds on G4, G9, G12, G13, G18 and G21 this portfolio averaged 99.75 %
# of the best known cuts, against 99.58 % without 1/6 and 1/50.
TABU_TENURES = (1 / 30, 1 / 10, 1 / 6, 1 / 50, 1 / 8, 1 / 12, 1 / 20)

# The same portfolio for the anytime fit (max_time), n/10 first: budgets of
# 10-150 ms seldom leave the first phase (50 n steps). With max_time equal
# to simulated annealing's time (1000 sweeps) on G1, G6, G9, G11, G22, G32,
# G39, G43, G55, G56, G60 and G61, two runs each: 98.83 and 98.79 % of the
# best known cuts on average against 98.37 and 98.34 % with n/30 first.
ANYTIME_TABU_TENURES = (1 / 10, 1 / 30, 1 / 6, 1 / 50, 1 / 8, 1 / 12, 1 / 20)

# Steps per phase of the tabu search, times n. At the default budget, on
# G1-G21 and G51-G54 with 5 seeds each: 99.937 % of the best known cuts for
# 50 n, 99.929 % for 100 n, 99.927 % for 70 n (in an earlier run on 33
# graphs, 3 seeds: 99.910 % against 99.908 % for 100 n). The means are
# within noise; 50 n gave G21 at least 928 (99.68 %) on all 5 seeds, 100 n
# 926 (99.46 %) on 2 of them.
TABU_PHASE = 50

# Smallest tabu tenure (below n // 3 on graphs of fewer than 15 nodes).
TABU_MIN_TENURE = 5


# Work of the default tabu search, in node visits of the scan kernel (about
# 1.2 ns each here): 3e8 is about 0.4 s per graph. Over G1-G21 (3 seeds)
# it averaged 99.93 % of the best known cuts, against 99.95 % for 5e8
# (0.25 s more per graph) and 99.84 % for the scan kernel alone at 5e8.
_TABU_WORK = 3e8
# Flips per node at most (small graphs need far fewer than the work cap).
_TABU_MAX_FLIPS_PER_NODE = 10_000
# Bucket moves per unit of weight: above this the scan kernel is used.
_MAX_BUCKET_UNITS = 16


def integer_units(W):
    """``(units, unit)`` with ``W.data == unit * units`` and ``units``
    small integers (int64), or None when the weights are not such multiples
    (then the tabu search scans for its moves).

    The unit is the greatest common divisor of integer weights, or the
    smallest |weight| when all weights are integer multiples of it.
    """
    w = np.abs(W.data[W.data != 0])
    if w.size == 0 or not np.all(np.isfinite(w)):
        return None
    for unit in _candidate_units(w):
        ratio = W.data / unit
        units = np.rint(ratio)
        if np.all(np.abs(ratio - units) <= 1e-9 * np.maximum(np.abs(units), 1.0)):
            if np.abs(units).max() <= _MAX_BUCKET_UNITS:
                return units.astype(np.int64), float(unit)
            return None
    return None


def _candidate_units(w):
    if np.all(w == np.rint(w)) and w.max() < 2**62:
        yield float(np.gcd.reduce(w.astype(np.int64)))
    yield float(w.min())


def tabu_flip_cost(W, bucket):
    """Cost of one tabu flip in scan-node visits: ``n`` for the scan
    kernel; for the bucket kernel, measured as about ``10 * degree + 20``
    (G12, degree 4: 82 ns; G14, degree 12: 153 ns; G1, degree 48: 649 ns,
    against 1.2 ns per scanned node)."""
    n = W.shape[0]
    if not bucket:
        return float(n)
    return 10.0 * W.nnz / max(n, 1) + 20.0


def default_tabu_iter(W, bucket=None):
    """Default number of tabu flips: ``min(10000 n, 3e8 / cost)`` with
    ``cost`` of :func:`tabu_flip_cost` (``n`` for the scan kernel), so the
    search does about the same work, about 0.4 s here, on Gset graphs (the
    model leaves out the tabu nodes a bucket step may scan, O(tenure): on a
    random graph of 200,000 nodes and 10^6 edges it took 18-20 s).

    ``bucket`` (default: whether the weights allow it) names the kernel.
    """
    W = sp.csr_matrix(W)
    n = W.shape[0]
    if bucket is None:
        bucket = integer_units(W) is not None
    cost = tabu_flip_cost(W, bucket)
    return int(max(min(_TABU_MAX_FLIPS_PER_NODE * n, _TABU_WORK / cost), 1))


def tabu_search(
    W,
    sides,
    *,
    max_iter=None,
    seed=0,
    phase=None,
    deadline=None,
    callback=None,
    tenures=TABU_TENURES,
):
    """Single-flip tabu search from ``sides``; returns the best sides seen.

    Each step flips the node of largest gain ``s_i (W s)_i`` that is not
    tabu (or a tabu node when that flip beats the best cut so far:
    aspiration); ties are broken uniformly at random. A flipped node stays
    tabu for ``tenure + U{1..tenure/4}`` steps. The search runs in phases
    of ``phase`` steps (default ``50 n``, :data:`TABU_PHASE`), each with
    the next tenure of ``tenures`` (shares of n; default
    :data:`TABU_TENURES`) and a cleared tabu list.
    Gains are updated along the flipped node's edges only. With weights
    that are small integer multiples of one unit (unweighted and +-1
    graphs) the nodes are kept in buckets by gain and a step costs
    O(degree); otherwise the best move is found by an O(n) scan.
    ``max_iter`` defaults to :func:`default_tabu_iter`. Compiled with
    numba; the result is never worse than ``sides``.

    With a ``deadline`` (a :func:`time.perf_counter` value) the search runs
    in slices of a tenth of the time left, within 10-50 ms (longer on graphs
    where a pass over the edges takes over 2.5 ms), the tabu list and phases
    carrying over, until the deadline or ``max_iter`` flips
    (None: no cap); ``callback(sides, cut)`` is called with the best sides
    after each slice that improved them.
    """
    from sklearn_derand._sosp._kernels import tabu_bucket_kernel, tabu_kernel

    W = sp.csr_matrix(W, dtype=np.float64)
    n = W.shape[0]
    s = np.where(np.asarray(sides, dtype=np.float64) >= 0, 1.0, -1.0)
    if n == 0 or W.nnz == 0:
        return s
    integer = integer_units(W)
    if max_iter is None and deadline is None:
        max_iter = default_tabu_iter(W, bucket=integer is not None)
    if phase is None:
        phase = TABU_PHASE * n
    # At least min(5, n // 3): on small graphs the shares of n gave tenures
    # of 1-2, with which the search circles (16 nodes: 0.9 % short of the
    # optimum on every seed); from about 250 nodes on the shares decide.
    floor = min(TABU_MIN_TENURE, max(1, n // 3))
    tenures = np.array([max(int(f * n), floor) for f in tenures], dtype=np.int64)
    indptr, indices = W.indptr.astype(np.int64), W.indices.astype(np.int64)
    tabu_until = np.zeros(n, dtype=np.int64)
    seed = int(seed) % (2**63)

    # The kernel and its graph arguments, once for every slice.
    if integer is not None:
        units, unit = integer
        kernel, graph, last = tabu_bucket_kernel, (indptr, indices, units), unit
    else:
        tol = 1e-9 * float(np.abs(W.data).max())
        kernel, graph, last = tabu_kernel, (indptr, indices, W.data), tol

    def run(flips, step0):
        step_seed = (seed + step0) % (2**63)
        schedule = (s, int(flips), tenures, int(max(phase, 1)), step_seed)
        return kernel(*graph, *schedule, last, step0, tabu_until)[0]

    if deadline is None:
        return run(max_iter, 0)
    best, best_cut = s.copy(), cut_value(W, s)
    done = 0
    flips = 1000
    while max_iter is None or done < max_iter:
        left = deadline - time.perf_counter()
        if left <= 0:
            break
        if max_iter is not None:
            flips = min(flips, max_iter - done)
        tic = time.perf_counter()
        candidate = run(flips, done)
        elapsed = max(time.perf_counter() - tic, 1e-6)
        done += flips
        tic = time.perf_counter()
        cut = cut_value(W, candidate)
        overhead = time.perf_counter() - tic  # about the kernel's own set-up
        if cut > best_cut:
            best, best_cut = candidate, cut
            if callback is not None:
                callback(best, best_cut)
        # The next slice: a tenth of the time left, within 10-50 ms (longer
        # where one pass over the edges takes over 2.5 ms: 20 passes).
        left = deadline - time.perf_counter()
        target = min(max(left / 10, 0.01), max(0.05, 20 * overhead))
        flips = int(min(max(flips * target / elapsed, 100), 2**40))
    return best


_FLOAT32_EDGES = 200_000


# |rho| band edges of Genz's rules in FixedCorrelationBVN.
_RHO_BANDS = (0.3, 0.75, 0.925)


class _Edges:
    """Edge arrays and SDP correlations as tensors.

    The edges are ordered by the |correlation| band of the bivariate normal
    rule that evaluates them, so each band is a contiguous slice (a view,
    not a gather, at every evaluation). The order does not change any cut.
    """

    def __init__(self, W, V, device, dtype=None):
        rows, cols, w = upper_edges(W)
        rho = edge_correlations(V, rows, cols)
        order = np.argsort(np.searchsorted(_RHO_BANDS, np.abs(rho), side="right"))
        rows, cols, w, rho = rows[order], cols[order], w[order], rho[order]
        if dtype is None:
            # Large graphs round in float32 (half the memory traffic); the
            # cut of the final signs is computed exactly anyway.
            dtype = torch.float32 if rows.size > _FLOAT32_EDGES else torch.float64
        self.dtype = dtype
        opts = {"device": device}
        self.I = torch.as_tensor(rows, **opts)
        self.J = torch.as_tensor(cols, **opts)
        self.w = torch.as_tensor(w, dtype=dtype, **opts)
        self.rho = torch.as_tensor(rho, dtype=dtype, **opts)
        self.bvn = FixedCorrelationBVN(self.rho)
        # Per-node scale: total |weight| / n keeps gradients and curvature
        # O(1) per node whatever the graph size, so the SOSP certificate's
        # thresholds mean the same on 10 and 10^5 nodes.
        self.scale = max(float(np.abs(w).sum()) / max(V.shape[0], 1), 1e-300)

    def expected_cut(self, a, rho=None):
        """Expected cut for offsets a of shape (n,) or (restarts, n).

        With the SDP correlations (``rho=None``) the gradient is the closed
        form of :meth:`FixedCorrelationBVN.disagreement_and_partials`,
        computed in the same pass as the value (no autograd graph through
        the quadrature); second derivatives, when asked for, go through the
        autograd form.
        """
        if rho is None:
            return _ExpectedCut.apply(a, self)
        return self.expected_cut_autograd(a, rho)

    def expected_cut_autograd(self, a, rho=None):
        """The same value, differentiated by autograd (the reference form)."""
        rho = self.bvn if rho is None else rho
        p = sign_disagreement_probability(a[..., self.I], a[..., self.J], rho)
        return (self.w * p).sum(-1)


class _ExpectedCut(torch.autograd.Function):
    """Expected cut with its closed-form gradient, from one pass over the
    edges (G1: 1.9 ms per rounding step, against 2.6 ms with autograd
    through the quadrature and the bands gathered). A backward that must
    itself be differentiable (Hessian-vector products of the certificate)
    recomputes the autograd form from the saved input."""

    @staticmethod
    def forward(ctx, a, edges):
        p, d_i, d_j = edges.bvn.disagreement_and_partials(
            a[..., edges.I], a[..., edges.J]
        )
        grad = torch.zeros_like(a)
        grad.index_add_(-1, edges.I, edges.w * d_i)
        grad.index_add_(-1, edges.J, edges.w * d_j)
        ctx.save_for_backward(a, grad)
        ctx.edges = edges
        return (edges.w * p).sum(-1)

    @staticmethod
    def backward(ctx, grad_out):
        a, grad = ctx.saved_tensors
        if torch.is_grad_enabled():
            value = ctx.edges.expected_cut_autograd(a)
            (g,) = torch.autograd.grad(value, a, grad_out, create_graph=True)
            return g, None
        return grad_out[..., None] * grad, None


@dataclass
class RoundingResult:
    a: np.ndarray
    expected_cut: float
    n_iter: int
    converged: bool
    grad_norm: float
    min_eig: float
    loss_curve: list = field(repr=False)
    noise_curve: list = field(repr=False)  # mean t_i^2 per iteration
    expected_curve: list = field(repr=False)


def derandomized_rounding(
    W,
    V,
    *,
    alpha=1e-3,
    max_iter=300,
    solver="adam",
    lr=None,
    init_scale=1e-3,
    tol=1e-4,
    n_iter_no_change=20,
    n_init=1,
    seed=0,
    device="cpu",
    verbose=0,
    edges=None,
):
    """Optimise the offsets of the Gaussian rounding for the expected cut.

    Objective: ``n * (-E[cut](a) / sum|w| + alpha * mean(t^2))`` with
    ``t_i^2 = 1 / (1 + a_i^2)`` the noise share of node i (the paper's
    lambda ||W||^2 with W = diag(t) V); the factor n keeps curvature O(1)
    per node, so the certificate's thresholds do not depend on graph size.
    ``a = 0`` (plain Goemans-Williamson) is a stationary point by symmetry:
    the start is a tiny random hyperplane
    ``a = init_scale * V g``, from which the optimiser leaves the saddle
    along the directions that raise the expected cut. The maxima of the
    expected cut are deterministic cuts, so the sides ``sign(a)`` at the end
    cut (almost exactly) the final expected weight. Stops at a certified
    SOSP, or when the expected cut improved by less than ``tol`` (relative)
    over ``n_iter_no_change`` iterations (``tol=1e-4`` against 1e-5 took
    25 % fewer iterations on G1-G21, 208 against 276 on average, for a
    total rounded cut 0.008 % lower).

    ``n_init`` restarts from independent random hyperplanes run together
    (the objective is their sum, so each evolves as it would alone); the
    one whose rounded cut is largest is returned, with its curves.
    """
    gen = make_generator(seed)
    if edges is None:
        edges = _Edges(W, V, device)
    g = torch.randn(n_init, V.shape[1], generator=gen, dtype=torch.float64)
    a0 = (init_scale * (g @ torch.as_tensor(V).T)).to(edges.dtype)
    noise_curve, expected_curve = [], []
    last = {}

    def objective(params):
        a = params["a"]
        noise = 1.0 / (1.0 + a * a)
        expected = edges.expected_cut(a)
        last["expected"] = expected.detach()
        return -expected.sum() / edges.scale + alpha * noise.sum()

    def callback(info):
        # The objective was just evaluated at info.params: reuse its value.
        a = info.params["a"]
        expected = last["expected"]
        with torch.no_grad():
            noise = (1.0 / (1.0 + a * a)).mean(-1)
        noise_curve.append(noise.cpu().numpy())
        expected_curve.append(expected.cpu().numpy())
        total = float(expected.sum())
        if verbose >= 2 and info.n_iter % 25 == 0:
            print(
                f"  rounding iter {info.n_iter}: expected cut "
                f"{float(expected.max()):.2f}, mean noise share "
                f"{float(noise.min()):.3f}"
            )
        # Leaving the symmetric start is slow at first (the expected cut is
        # flat there): judge stalling only once most of the noise is gone.
        if float(noise.max()) < 0.5 and len(expected_curve) > n_iter_no_change:
            before = max(float(e.sum()) for e in expected_curve[:-n_iter_no_change])
            return total - before <= tol * max(abs(before), 1e-300)
        return False

    if lr is None:
        lr = 0.05 if solver == "adam" else None
    res = minimize(
        objective,
        {"a": a0.to(device)},
        method=solver,
        rho=1e-9,
        max_iter=max_iter,
        lr=lr,
        generator=gen,
        callback=callback,
        max_lanczos=10,
    )
    a = res.params["a"].cpu().numpy().astype(np.float64)
    cuts = [cut_value(W, np.where(row >= 0, 1.0, -1.0)) for row in a]
    best = int(np.argmax(cuts))
    with torch.no_grad():
        expected = float(edges.expected_cut(res.params["a"][best]))
    return RoundingResult(
        a=a[best],
        expected_cut=expected,
        n_iter=res.n_iter,
        converged=res.converged or "callback" in res.message,
        grad_norm=res.grad_norm,
        min_eig=res.min_eig,
        loss_curve=res.loss_curve,
        noise_curve=[float(v[best]) for v in noise_curve],
        expected_curve=[float(v[best]) for v in expected_curve],
    )


def conditional_expectation_rounding(W, V, a=None, *, n_nodes=10, device="cpu"):
    """Derandomize the Gaussian rounding by conditional expectations.

    Mahajan & Ramesh (1999) style: fix the Gaussian coordinates
    z_1, z_2, ... one at a time, each to the Gauss-Hermite node that
    maximises the conditional expected cut (closed form: the remaining
    coordinates are still Gaussian). The expectation never decreases, so the
    final, deterministic cut is at least the starting expected cut (up to
    quadrature error in each step). ``a`` are the offsets of the starting
    distribution (0: plain Goemans-Williamson).
    """
    n, r = V.shape
    a = np.zeros(n) if a is None else np.asarray(a, dtype=np.float64)
    opts = {"dtype": torch.float64, "device": device}
    # Rotate so the first coordinates carry most of the variance.
    _, _, Rt = np.linalg.svd(V, full_matrices=False)
    Vr = torch.as_tensor(V @ Rt.T, **opts)
    edges = _Edges(W, V, device)
    t = torch.as_tensor(1.0 / np.sqrt(1.0 + a * a), **opts)
    mu = torch.as_tensor(a / np.sqrt(1.0 + a * a), **opts)
    shift = mu.clone()  # mu_i + t_i v_i,<=k . z_<=k
    nodes = torch.as_tensor(np.polynomial.hermite_e.hermegauss(n_nodes)[0], **opts)
    gram_rest = (Vr[edges.I] * Vr[edges.J]).sum(1)  # v_i,>k . v_j,>k
    norm_rest = (Vr * Vr).sum(1)

    def conditional(shift, gram, norms):
        sd = t * torch.sqrt(norms.clamp_min(0.0))
        a_k = torch.where(
            sd > 1e-12,
            shift / sd.clamp_min(1e-300),
            torch.where(shift >= 0, 40.0, -40.0),
        )
        denom = torch.sqrt((norms[edges.I] * norms[edges.J]).clamp_min(0.0))
        rho = torch.where(
            denom > 1e-12, gram / denom.clamp_min(1e-300), torch.zeros_like(gram)
        ).clamp(-1.0, 1.0)
        return edges.expected_cut(a_k, rho)

    current = float(conditional(shift, gram_rest, norm_rest))
    start_value = current
    for k in range(r):
        col = Vr[:, k]
        gram_next = gram_rest - col[edges.I] * col[edges.J]
        norm_next = (norm_rest - col * col).clamp_min(0.0)
        values = torch.stack(
            [conditional(shift + t * col * z, gram_next, norm_next) for z in nodes]
        )
        best = int(torch.argmax(values))
        shift = shift + t * col * nodes[best]
        gram_rest, norm_rest = gram_next, norm_next
        current = float(values[best])
        # Everyone decided (|a| beyond 8 sd): the rest cannot change the cut.
        sd = t * torch.sqrt(norm_rest)
        if bool((shift.abs() > 8.0 * sd).all()):
            break
    sides = torch.where(shift >= 0, 1.0, -1.0).cpu().numpy()
    return sides, start_value, current
