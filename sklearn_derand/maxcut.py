"""MAXCUT by a certified SDP and derandomized Gaussian rounding.

:class:`DerandomizedMaxCut` fits a graph (an adjacency matrix, sparse or
dense, or a networkx graph): it solves the Goemans-Williamson SDP, certifies
an upper bound on the max cut from its dual, and rounds the SDP vectors to a
deterministic cut by *optimising* the Gaussian rounding instead of drawing a
random hyperplane.
"""

import math
import time
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from sklearn_derand._interrupt import restore_on_interrupt

__all__ = ["DerandomizedMaxCut"]

# exact="auto" enumerates every partition up to this many nodes (0.4 s at
# 28; twice that per node more); exact=True up to _EXACT_LIMIT.
_EXACT_MAX_NODES = 28
_EXACT_LIMIT = 34
# Graphs up to this many nodes go to cvxpy with sdp_solver="auto".
_CVXPY_MAX_NODES = 50
# rank="auto" is ceil(sqrt(2 n)) + 1 (Barvinok-Pataki: an optimal solution of
# that rank exists), capped: each sweep costs O(m rank), and the dual
# certificate shows whether the capped rank reached the optimum.
_MAX_AUTO_RANK = 64


# Above this many nodes the SDP defaults change (rank="auto" and
# sdp_tol="auto"): every Gset graph (20,000 nodes at most) keeps the small-
# graph settings. At 200,000 nodes and 10^6 edges the small-graph settings
# (rank 64, 1e-4) gave no answer within 500 s, and the certified gap falls
# slowly at any rank (rank 8: 1.7e-2 after 300 sweeps, 21 s; rank 16: 1.0e-2
# after 85 sweeps, 7.7e-3 after 300, 23 s), against an integrality gap near
# 10 % on such graphs.
_LARGE_NODES = 20_000
_LARGE_RANK = 16
_LARGE_SDP_TOL = 1e-2
# rounding="auto" is the derandomized rounding up to this many edges and
# the best of n_hyperplanes random hyperplanes above (the rounding's 300
# steps cost about 0.09 s per 10^6 edges each).
_DERANDOMIZED_MAX_EDGES = 2_000_000
# Enumeration time per partition (exact_max_cut: 0.4 s for 2^27 of them).
_EXACT_SECONDS_PER_PARTITION = 3e-9


def _exact_seconds(n):
    """Estimated seconds of the exact enumeration on ``n`` nodes."""
    return _EXACT_SECONDS_PER_PARTITION * 2.0 ** max(n - 1, 0)


def _size_defaults(est, n, m):
    """The SDP rank and tolerance and the rounding, with "auto" resolved by
    the graph's size (see the class docstring)."""
    large = n > _LARGE_NODES
    if est.rank == "auto" and large:
        rank = _LARGE_RANK
    elif est.rank == "auto":
        rank = min(math.ceil(math.sqrt(2 * n)) + 1, _MAX_AUTO_RANK)
    else:
        rank = est.rank
    if est.sdp_tol == "auto":
        tol = _LARGE_SDP_TOL if large else 1e-4
    else:
        tol = est.sdp_tol
    rounding = est.rounding
    if rounding == "auto":
        rounding = "derandomized" if m <= _DERANDOMIZED_MAX_EDGES else "hyperplane"
    return {"rank": max(1, min(rank, n)), "sdp_tol": tol, "rounding": rounding}


class _Clock:
    """One fit's wall clock: its deadline (``max_time``), the best cut and
    the best certified bound so far, and their curve over time."""

    def __init__(self, max_time):
        self.start = time.perf_counter()
        self.deadline = None if max_time is None else self.start + max_time
        self.sides, self.cut = None, -math.inf
        self.bound = math.inf
        self.curve = []

    def at(self, share):
        """The time at ``share`` of the budget (None without one)."""
        if self.deadline is None:
            return None
        return self.start + share * (self.deadline - self.start)

    def left(self):
        return self.deadline - time.perf_counter()

    def record(self):
        cut = self.cut if self.sides is not None else math.nan
        self.curve.append((time.perf_counter() - self.start, cut, self.bound))

    def cut_found(self, W, sides):
        from sklearn_derand._sosp.maxcut import cut_value

        self.cut_found_value(sides, cut_value(W, sides))

    def cut_found_value(self, sides, cut):
        if cut > self.cut:
            self.sides, self.cut = np.array(sides, dtype=np.float64), float(cut)
            self.record()

    def bound_found(self, upper):
        if upper < self.bound:
            self.bound = float(upper)
            self.record()


def _is_networkx_graph(X):
    try:
        import networkx as nx
    except ImportError:  # pragma: no cover - networkx is a dependency
        return False
    return isinstance(X, nx.Graph)


def _as_adjacency(X):
    """networkx graphs become sparse adjacency matrices (with weights).

    A directed graph becomes its (asymmetric) adjacency matrix, which is
    then symmetrised with a warning exactly as an asymmetric matrix is;
    parallel edges of a multigraph add up. An edge attribute ``weight``
    that is not a real number is an error naming the edge (a missing one
    counts as 1).
    """
    if _is_networkx_graph(X):
        import networkx as nx

        for u, v, w in X.edges(data="weight", default=1.0):
            if not isinstance(w, Real):
                raise ValueError(
                    f"Edge ({u!r}, {v!r}) has weight {w!r}; edge weights must be "
                    "real numbers (an edge without a 'weight' attribute counts "
                    "as 1)."
                )
        return nx.to_scipy_sparse_array(X, weight="weight", format="csr").astype(
            np.float64
        )
    return X


def _graph_from_matrix(X, *, warn=True):
    """Symmetric CSR weights with a zero diagonal from a validated matrix."""
    n, m = X.shape
    if n != m:
        raise ValueError(
            f"The adjacency matrix must be square (n_nodes, n_nodes); got shape "
            f"{X.shape}."
        )
    W = sp.csr_matrix(X, dtype=np.float64, copy=True)
    W.setdiag(0)
    W.eliminate_zeros()
    asym = W - W.T
    if asym.nnz and np.abs(asym.data).max() > 1e-12 * max(np.abs(W.data).max(), 1e-300):
        if warn:
            warnings.warn(
                "The adjacency matrix is not symmetric; using (X + X.T) / 2.",
                UserWarning,
            )
        W = ((W + W.T) / 2.0).tocsr()
        W.eliminate_zeros()
    W.sort_indices()
    return W


def _solve_sdp_cvxpy(W):
    """Textbook Goemans-Williamson SDP with cvxpy: returns unit rows V.

    Clarabel (interior point: exact and robust on degenerate problems such
    as complete graphs) up to 60 nodes, SCS above (first order: it scales
    further but is slow to high accuracy). Either way the bound reported is
    the dual certificate computed from V, not the solver's own.
    """
    import cvxpy as cp

    n = W.shape[0]
    # The optimal X does not change when W is scaled; weights near 1e200
    # made the solver panic (a Rust PanicException), so it sees W / max|W|.
    W = W / max(float(np.abs(W.data).max()), 1e-300)
    L = (sp.diags(np.asarray(W.sum(axis=1)).ravel()) - W).toarray()
    X = cp.Variable((n, n), PSD=True)
    problem = cp.Problem(cp.Maximize(cp.trace(L @ X) / 4.0), [cp.diag(X) == 1])
    if n <= 60:
        problem.solve(solver=cp.CLARABEL)
    else:
        problem.solve(solver=cp.SCS, eps=1e-6, max_iters=20_000)
    if X.value is None:  # pragma: no cover - SCS failure
        raise RuntimeError(f"cvxpy could not solve the SDP ({problem.status}).")
    lam, Q = np.linalg.eigh((X.value + X.value.T) / 2.0)
    keep = lam > max(lam.max(), 0.0) * 1e-9
    V = Q[:, keep] * np.sqrt(lam[keep])
    return V / np.linalg.norm(V, axis=1, keepdims=True)


class DerandomizedMaxCut(BaseEstimator):
    """Max cut by a certified SDP and derandomized Gaussian rounding.

    1. Solve the Goemans-Williamson SDP ``max <L/4, X>``, ``diag(X) = 1``,
       ``X psd``, exactly with cvxpy (small graphs) or in low rank
       ``X = V V^T`` by the mixing method (sparse; 10^6 nodes and 10^7
       edges in about 7 minutes on 2 cores, see the user guide).
    2. Certify it: a dual feasible point built from V gives
       ``upper_bound_ >= max cut``, so ``gap_`` bounds how far the returned
       cut can be from optimal.
    3. Round: the sides are ``sign(t_i v_i . z + mu_i)``, z ~ N(0, I).
       ``rounding="derandomized"`` optimises the offsets for the expected
       cut, which is closed form (``Phi(a_i) + Phi(a_j) - 2 Phi2(a_i, a_j;
       v_i . v_j)`` per edge, ``a = mu / t``), with the paper's penalty
       ``alpha`` on the noise; the maxima are deterministic cuts. The result
       is never below the Goemans-Williamson expectation of the SDP
       (enforced: otherwise the rounding is derandomized by conditional
       expectations). ``rounding="hyperplane"`` is classic GW, the best of
       ``n_hyperplanes`` random hyperplanes.
    4. Finish with tabu search and 1-flip local search (``local_search``).

    With ``max_time`` the fit is anytime: a search first, then the SDP's
    bound, each phase within a share of the budget (see ``max_time``).

    The 0.878 approximation guarantee of the SDP rounding holds for
    non-negative weights only; negative weights are accepted (the
    certificate and the "never below GW" rule still hold).

    Parameters
    ----------
    alpha : float, default=1e-3
        The paper's lambda: penalty on the rounding's noise variance
        (``alpha * mean(t_i^2)`` with ``mu_i^2 + t_i^2 = 1``). Larger values
        derandomize sooner (closer to the random hyperplane's neighbourhood);
        a tiny value lets the optimiser leave the SDP's symmetric point along
        the best directions first.
    sdp_solver : {"auto", "mixing", "cvxpy"}, default="auto"
        ``"cvxpy"``: the textbook SDP with cvxpy (Clarabel up to 60 nodes,
        SCS above; dense, a few hundred nodes at most);
        ``"mixing"``: low-rank mixing method; ``"auto"``: cvxpy up to 50
        nodes, mixing above.
    rank : int or "auto", default="auto"
        Rank of the mixing method's factor V; ``"auto"`` is
        ``ceil(sqrt(2 n)) + 1`` (an optimal solution of that rank exists),
        capped at 64 so sweeps stay O(64 m), up to 20,000 nodes, and 16
        above (a sweep costs O(16 m)); ``sdp_gap_`` certifies the
        result either way (raise ``rank`` if it stalls above ``sdp_tol``).
    sdp_tol : float or "auto", default="auto"
        Target relative gap between the SDP value and its certified bound.
        ``"auto"``: 1e-4 up to 20,000 nodes (every Gset graph), 1e-2 above,
        where tightening the bound further costs many sweeps for little
        (the gap between the SDP and the best cut is near 10 % on sparse
        random graphs). The value used is ``sdp_tol_``.
    sdp_max_iter : int, default=5000
        Largest number of mixing sweeps.
    rounding : {"auto", "derandomized", "hyperplane"}, default="auto"
        ``"derandomized"``: the optimised Gaussian rounding above;
        ``"hyperplane"``: the best of ``n_hyperplanes`` random hyperplanes;
        ``"auto"``: derandomized up to 2,000,000 edges, hyperplane above
        (the derandomized rounding's 300 steps each pass over the edges).
        The choice made is ``rounding_``.
    solver : {"adam", "lbfgs", "pgd", "hessian_descent", "gd"}, default="adam"
        Optimiser of the SOSP backend for the derandomized rounding.
    max_iter : int, default=300
        Iterations of the derandomized rounding.
    learning_rate : float, default=0.05
        Step size of the derandomized rounding (Adam, gradient methods).
    n_init : int, default=1
        Derandomized roundings run together from independent random
        hyperplanes; the best cut is kept. In ``benchmarks/bench_maxcut.py``
        8 restarts add about 0.5-1 % of the best known cut on the weighted
        Gset graphs, at several times the rounding time.
    local_search : "tabu" or bool, default="tabu"
        How the rounded cut is finished. ``"tabu"``: a single-flip tabu
        search (compiled with numba; tenures cycled over a portfolio of
        n/50 to n/6; ``tabu_iter`` flips, about 0.4 s on Gset graphs by
        default, 18-20 s at 200,000 nodes, where the search scans long runs
        of tabu nodes) then 1-flip local search; ``True``: 1-flip local search
        only (vectorised, O(m) per pass); ``False``: the rounding as it
        is. With weights that are small integer multiples of one unit
        (unweighted and +-1 graphs) the tabu search keeps the nodes in
        buckets by gain and a flip costs O(degree); otherwise it scans the
        n gains, O(n) per flip. In ``benchmarks/bench_maxcut.py`` the
        default finish averages 99.77 % of the best known cuts over 69 Gset
        graphs (99.975 % on G1-G10, 1.07 s per graph end to end) against
        98.92 % for 1-flip only, and reaches the best known cut on 19 of
        them.
    tabu_iter : int or None, default=None
        Flips of the tabu search; None means ``min(10000 n, 3e8 / c)`` with
        ``c`` the cost of a flip in scanned nodes (``n`` for the scan,
        ``10 * mean degree + 20`` for the buckets), so about the same time
        whatever the graph. More flips find better
        cuts on hard graphs (the +-1 weighted G18-G21 especially) at a
        proportional cost; the search is deterministic given
        ``random_state``.
    n_hyperplanes : int, default=1000
        Random hyperplanes tried by ``rounding="hyperplane"``.
    exact : bool or "auto", default="auto"
        Enumerate every partition (after the SDP and rounding) and return the
        maximum cut with ``gap_ = 0``. ``"auto"``: on graphs of at most 28
        nodes (2^27 partitions, about 0.4 s; each further node doubles it).
        ``True`` forces it up to 34 nodes.
    max_time : float or None, default=None
        Wall-clock budget in seconds for the whole fit (anytime mode): a cut
        first (tabu search from a seeded random partition for half the
        budget), then the SDP's certified bound (sweeps
        stop at 80 % of the budget), then tabu search from the best cut
        until the budget is spent. The rounding runs only if the cut is
        still below the Goemans-Williamson expectation of the SDP. A graph
        small enough for ``exact`` is enumerated first when that is expected
        to take at most half the budget (then nothing is searched). The fit
        returns the best cut found and the best bound certified; it may
        overrun by one eigensolve of the certificate and one pass over the
        edges (milliseconds on Gset graphs, seconds on 10^6 edges; see
        ``cut_curve_``, which records both over time). With a budget the
        result depends on the machine's speed; None runs every phase to its
        own stopping rule (deterministic given ``random_state``).
    random_state : int, RandomState instance or None, default=None
        Seeds the SDP start, the colouring and the rounding.
    device : str, default="cpu"
        Torch device ("cpu", "cuda", "cuda:1").
    verbose : int, default=0
        0 silent; 1 a line per phase; 2 also progress within phases.

    Attributes
    ----------
    labels_ : ndarray of shape (n_nodes,), dtype int64
        Side of each node, 0 or 1 (node 0 is on side 0).
    cut_value_ : float
        Weight of the edges between the two sides.
    expected_cut_gw_ : float
        Goemans-Williamson expected cut of the SDP solution
        (``sum w_ij arccos(v_i . v_j) / pi``); ``cut_value_`` is never below.
    sdp_value_ : float
        Value of the SDP solution found (a lower bound on the SDP optimum).
    upper_bound_ : float
        Certified upper bound on the max cut: the smallest of the bounds
        certified during the fit (the SDP's dual bound at each of its checks,
        and the total positive weight), or the optimum itself when
        ``exact_`` (every partition was enumerated).
    cut_curve_ : ndarray of shape (n_records, 3)
        The fit's progress: seconds since the fit started, best cut so far
        (NaN before the first) and best certified upper bound so far (the
        total positive weight before the SDP's first certificate), one row
        each time either improved. The last row holds ``cut_value_`` and
        ``upper_bound_``.
    sdp_tol_ : float
        The SDP tolerance used (``sdp_tol`` with "auto" resolved).
    rounding_ : str
        The rounding used (``rounding`` with "auto" resolved); in a
        ``max_time`` budget the rounding is skipped when the search's cut is
        already above the Goemans-Williamson expectation.
    exact_ : bool
        Whether every partition was enumerated: the cut is then a maximum cut
        and ``gap_`` is 0.
    gap_ : float
        ``1 - cut_value_ / upper_bound_``: the cut is within this fraction of
        optimal. 0 when the bound exceeds the cut by no more than rounding
        (``1e-9`` times the total absolute weight), so a graph whose best
        cut is 0 (all weights negative) reports 0, not 1.
    sdp_gap_ : float
        ``(bound - sdp_value_) / bound`` for the SDP's own dual bound (which
        is ``upper_bound_`` unless ``exact_``), with the same rounding rule.
    embedding_ : ndarray of shape (n_nodes, rank)
        The SDP vectors (unit rows).
    fallback_used_ : bool
        Whether the gradient rounding ended below the GW expectation and
        conditional expectations were used.
    n_iter_ : int
        Iterations of the rounding optimiser.
    sdp_n_iter_ : int
        Mixing sweeps (0 for cvxpy).
    converged_ : bool
        Whether the SDP reached ``sdp_tol`` and the rounding stopped at a
        certified second-order stationary point before ``max_iter``.
    grad_norm_, min_eig_ : float
        Certificate of the rounding objective at its final point.
    loss_curve_ : list of float
        Rounding objective per iteration.
    expected_cut_curve_ : list of float
        Expected cut per rounding iteration.
    noise_scale_curve_ : list of float
        Mean noise share ``mean(t_i^2) = mean(1 / (1 + a_i^2))`` per rounding
        iteration: 1 for the plain Gaussian rounding, it collapses toward 0
        as the rounding derandomizes.
    n_features_in_ : int
        Number of nodes seen during fit.

    See Also
    --------
    networkx.algorithms.approximation.maxcut.one_exchange : Greedy local
        search for the max cut.

    References
    ----------
    M. Goemans, D. Williamson, "Improved approximation algorithms for
    maximum cut and satisfiability problems using semidefinite
    programming", J. ACM 42 (1995).

    P.-W. Wang, W.-C. Chang, J. Z. Kolter, "The mixing method: low-rank
    coordinate descent for semidefinite programming with diagonal
    constraints", 2017.

    S. Mahajan, H. Ramesh, "Derandomizing approximation algorithms based on
    semidefinite programming", SIAM J. Comput. 28 (1999).

    N. Tsikouras, Y. Pantis, I. Mitliagkas, C. Tzamos, "A Derandomization
    Framework for Structure Discovery", 2025 (arXiv:2510.19382).

    Examples
    --------
    >>> import networkx as nx
    >>> from sklearn_derand import DerandomizedMaxCut
    >>> graph = nx.cycle_graph(5)
    >>> mc = DerandomizedMaxCut(random_state=0).fit(graph)
    >>> mc.cut_value_, mc.labels_.shape
    (4.0, (5,))
    >>> bool(mc.upper_bound_ >= mc.cut_value_)
    True
    """

    _parameter_constraints: dict = {
        "alpha": [Interval(Real, 0, None, closed="left")],
        "sdp_solver": [StrOptions({"auto", "mixing", "cvxpy"})],
        "rank": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "sdp_tol": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "sdp_max_iter": [Interval(Integral, 1, None, closed="left")],
        "rounding": [StrOptions({"auto", "derandomized", "hyperplane"})],
        "solver": [StrOptions({"adam", "lbfgs", "pgd", "hessian_descent", "gd"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "local_search": ["boolean", StrOptions({"tabu"})],
        "tabu_iter": [Interval(Integral, 1, None, closed="left"), None],
        "exact": ["boolean", StrOptions({"auto"})],
        "max_time": [Interval(Real, 0, None, closed="neither"), None],
        "n_hyperplanes": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "device": [str],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        alpha=1e-3,
        sdp_solver="auto",
        rank="auto",
        sdp_tol="auto",
        sdp_max_iter=5000,
        rounding="auto",
        solver="adam",
        max_iter=300,
        learning_rate=0.05,
        n_init=1,
        local_search="tabu",
        tabu_iter=None,
        n_hyperplanes=1000,
        exact="auto",
        max_time=None,
        random_state=None,
        device="cpu",
        verbose=0,
    ):
        self.alpha = alpha
        self.sdp_solver = sdp_solver
        self.rank = rank
        self.sdp_tol = sdp_tol
        self.sdp_max_iter = sdp_max_iter
        self.rounding = rounding
        self.solver = solver
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.n_init = n_init
        self.local_search = local_search
        self.tabu_iter = tabu_iter
        self.exact = exact
        self.max_time = max_time
        self.n_hyperplanes = n_hyperplanes
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def _validate_graph(self, X, reset):
        X = _as_adjacency(X)
        X = validate_data(
            self,
            X,
            accept_sparse=["csr", "csc", "coo"],
            dtype=np.float64,
            reset=reset,
        )
        return X

    def _solve_sdp(self, W, settings, seed, device, classes, clock):
        """Steps 1-2: the SDP and its certificate, each certified bound
        passed to ``clock``. Returns ``(V, value, upper, sweeps, converged)``;
        in a budget the sweeps stop at 80 % of it."""
        from sklearn_derand._sosp import maxcut as backend

        n = W.shape[0]
        use_cvxpy = self.sdp_solver == "cvxpy" or (
            self.sdp_solver == "auto" and n <= _CVXPY_MAX_NODES
        )
        if W.nnz == 0:
            V = np.zeros((n, 1))
            V[:, 0] = 1.0
            clock.bound_found(0.0)
            return V, 0.0, 0.0, 0, True
        if use_cvxpy:
            V = _solve_sdp_cvxpy(W)
            value = float((W.sum() - np.einsum("ij,ij->", W @ V, V)) / 4.0)
            upper = backend.dual_upper_bound(W, V)[0]
            clock.bound_found(upper)
            return V, value, upper, 0, True
        sdp = backend.solve_sdp_mixing(
            W,
            settings["rank"],
            tol=settings["sdp_tol"],
            max_iter=self.sdp_max_iter,
            seed=seed,
            device=device,
            verbose=self.verbose,
            classes=classes,
            deadline=clock.at(0.8),
            callback=lambda value, upper: clock.bound_found(upper),
        )
        if self.verbose:
            print(
                f"SDP: value {sdp.value:.4f}, certified bound {sdp.upper_bound:.4f} "
                f"({sdp.n_iter} sweeps)"
            )
        return sdp.V, sdp.value, sdp.upper_bound, sdp.n_iter, sdp.converged

    @restore_on_interrupt
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Find a large cut of the graph X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_nodes, n_nodes) or \
                networkx.Graph
            Symmetric weighted adjacency matrix (an asymmetric one is
            symmetrised with a warning; the diagonal is ignored; weights may
            be negative).
        y : Ignored
            Not used, present here for API consistency by convention.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        from sklearn_derand import _sosp
        from sklearn_derand._sosp import maxcut as backend
        from sklearn_derand._sosp.optimize import report_phase

        clock = _Clock(self.max_time)
        X = self._validate_graph(X, reset=True)
        W = _graph_from_matrix(X)
        n = W.shape[0]
        if self.exact is True and n > _EXACT_LIMIT:
            raise ValueError(
                f"exact=True enumerates 2^(n-1) partitions; n={n} nodes is above "
                f"the limit of {_EXACT_LIMIT}. Use exact='auto' or False."
            )
        device = _sosp.resolve_device(self.device)
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        settings = _size_defaults(self, n, W.nnz // 2)
        # Every cut is at most the total positive weight: the bound before
        # any SDP (certified, if weak).
        clock.bound = float(W.data[W.data > 0].sum() / 2.0)
        clock.record()
        self.exact_ = bool(
            W.nnz
            and (self.exact is True or (self.exact == "auto" and n <= _EXACT_MAX_NODES))
            and (clock.deadline is None or _exact_seconds(n) <= 0.5 * self.max_time)
        )
        exact_first = self.exact_ and clock.deadline is not None
        if exact_first:
            # In a budget, a small graph is enumerated first: nothing to search.
            exact_sides, optimum = backend.exact_max_cut(W)
            clock.cut_found(W, exact_sides)
            clock.bound_found(max(clock.cut, optimum))
        elif clock.deadline is not None and W.nnz:
            report_phase("tabu search")
            # Anytime: a cut first (tabu search from a seeded random start
            # for half the budget; its first steps are a steepest ascent),
            # then the SDP's bound, then the tabu search again until the
            # deadline.
            start = np.where(np.random.RandomState(seed).rand(n) < 0.5, -1.0, 1.0)
            clock.cut_found(W, start)
            clock.cut_found(
                W,
                backend.tabu_search(
                    W,
                    start,
                    max_iter=self.tabu_iter,
                    seed=seed,
                    deadline=clock.at(0.5),
                    callback=clock.cut_found_value,
                    tenures=backend.ANYTIME_TABU_TENURES,
                ),
            )
        classes = backend.color_classes(W, seed) if W.nnz else [np.arange(n)]
        report_phase("SDP")
        sdp = self._solve_sdp(W, settings, seed, device, classes, clock)
        V, sdp_value, sdp_upper, sdp_iter, sdp_converged = sdp
        gw = backend.gw_expected_cut(W, V) if W.nnz else 0.0

        # 3. Rounding (in a budget, only when the search is below GW).
        self.fallback_used_ = False
        rounding_info = None
        below_gw = clock.cut < gw - 1e-9 * max(abs(gw), 1.0)
        out_of_time = clock.deadline is not None and clock.left() <= 0
        if W.nnz == 0:
            clock.cut_found(W, np.ones(n))
        elif clock.deadline is not None and not below_gw:
            pass  # the search's cut is already above the GW expectation
        elif settings["rounding"] == "hyperplane" or out_of_time:
            sides, _, _ = backend.hyperplane_rounding(W, V, self.n_hyperplanes, seed)
            clock.cut_found(W, sides)
        else:
            report_phase("rounding")
            rounding_info = backend.derandomized_rounding(
                W,
                V,
                alpha=self.alpha,
                max_iter=self.max_iter,
                solver=self.solver,
                lr=self.learning_rate,
                n_init=self.n_init,
                seed=seed,
                device=device,
                verbose=self.verbose,
            )
            sides = np.where(rounding_info.a >= 0, 1.0, -1.0)
            if backend.cut_value(W, sides) < gw - 1e-9 * max(abs(gw), 1.0):
                # Gradient path ended below GW: derandomize from the better of
                # the optimised distribution and plain GW, by conditional
                # expectations (monotone).
                start = rounding_info.a if rounding_info.expected_cut > gw else None
                sides, _, _ = backend.conditional_expectation_rounding(
                    W, V, start, device=device
                )
                self.fallback_used_ = True
            clock.cut_found(W, sides)
        if self.local_search and W.nnz and not exact_first:
            report_phase("local search")
            sides = clock.sides
            if self.local_search == "tabu":
                sides = backend.tabu_search(
                    W,
                    sides,
                    max_iter=self.tabu_iter,
                    seed=seed,
                    deadline=clock.deadline,
                    callback=clock.cut_found_value,
                    tenures=backend.TABU_TENURES
                    if clock.deadline is None
                    else backend.ANYTIME_TABU_TENURES,
                )
            clock.cut_found(W, backend.local_search(W, sides, classes))
        if clock.cut < gw - 1e-6 * max(abs(gw), 1.0):  # pragma: no cover
            # Quadrature error in the conditional expectations can lose a
            # hair; never return less than the GW expectation.
            best = backend.hyperplane_rounding(W, V, 1000, seed)[0]
            clock.cut_found(W, backend.local_search(W, best, classes))
        sides, cut = clock.sides, clock.cut
        upper = clock.bound
        if self.exact_ and not exact_first:
            # Every partition enumerated: the optimum, and a bound equal to it.
            exact_sides, optimum = backend.exact_max_cut(W)
            if optimum > cut:
                sides, cut = exact_sides, backend.cut_value(W, exact_sides)
            upper = max(cut, optimum)
            clock.cut_found(W, sides)
            clock.bound_found(upper)
        if self.verbose:
            print(f"cut {cut:.4f} (GW expectation {gw:.4f}, bound {upper:.4f})")

        labels = (sides > 0).astype(np.int64)
        if n and labels[0] == 1:
            labels = 1 - labels
        self.labels_ = labels
        self.cut_value_ = float(cut)
        self.expected_cut_gw_ = float(gw)
        self.sdp_value_ = float(sdp_value)
        self.upper_bound_ = float(upper)
        self.gap_ = backend.relative_gap(upper, cut, W)
        self.sdp_gap_ = backend.relative_gap(sdp_upper, sdp_value, W)
        self.embedding_ = np.asarray(V, dtype=np.float64)
        self.sdp_n_iter_ = int(sdp_iter)
        if rounding_info is not None:
            self.n_iter_ = int(rounding_info.n_iter)
            self.grad_norm_ = float(rounding_info.grad_norm)
            self.min_eig_ = float(rounding_info.min_eig)
            self.loss_curve_ = [float(v) for v in rounding_info.loss_curve]
            self.expected_cut_curve_ = list(rounding_info.expected_curve)
            self.noise_scale_curve_ = list(rounding_info.noise_curve)
            rounding_converged = rounding_info.converged
        else:
            self.n_iter_ = 1
            self.grad_norm_ = self.min_eig_ = 0.0
            self.loss_curve_ = []
            self.expected_cut_curve_ = []
            self.noise_scale_curve_ = []
            rounding_converged = True
        self.cut_curve_ = np.array(clock.curve, dtype=np.float64).reshape(-1, 3)
        self.sdp_tol_ = float(settings["sdp_tol"])
        self.rounding_ = settings["rounding"]
        self.converged_ = bool(sdp_converged)
        # Stopped short of sdp_max_iter only by max_time: no warning then.
        if not sdp_converged and sdp_iter >= self.sdp_max_iter:
            warnings.warn(
                f"The SDP did not reach sdp_tol={self.sdp_tol_} within "
                f"sdp_max_iter={self.sdp_max_iter} sweeps (certified gap "
                f"{self.sdp_gap_:.2e}); consider increasing sdp_max_iter.",
                ConvergenceWarning,
            )
        self.rounding_converged_ = bool(rounding_converged)
        return self

    def fit_predict(self, X, y=None):
        """Fit and return the side of each node.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_nodes, n_nodes) or \
                networkx.Graph
            Adjacency matrix.
        y : Ignored
            Not used, present here for API consistency by convention.

        Returns
        -------
        labels : ndarray of shape (n_nodes,)
            0 or 1 for each node.
        """
        return self.fit(X, y).labels_

    def score(self, X, y=None):
        """Weight cut by the fitted partition.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_rows, n_nodes)
            Either the graph itself (or a reweighting of it: a symmetric
            ``(n_nodes, n_nodes)`` matrix), scored by the fitted sides; or,
            as cross-validation passes to a pairwise estimator, a block of
            weights between ``n_rows`` new nodes (rows) and the fitted nodes
            (columns): each new node is put on the side that cuts more of its
            weight to the fitted nodes, and that weight is the score.
        y : Ignored
            Not used, present here for API consistency by convention.

        Returns
        -------
        score : float
            Cut weight (higher is better).
        """
        check_is_fitted(self)
        is_graph = _is_networkx_graph(X)
        X = self._validate_graph(X, reset=False)
        n = self.labels_.shape[0]
        X = sp.csr_matrix(X, dtype=np.float64)
        s = 2.0 * self.labels_ - 1.0
        if is_graph:  # the graph itself (a directed one symmetrised, as in fit)
            W = _graph_from_matrix(X)
            return float((W.sum() - s @ (W @ s)) / 4.0)
        if X.shape[0] == n:
            W = X.copy()
            W.setdiag(0)
            W.eliminate_zeros()
            if abs(W - W.T).sum() <= 1e-12 * max(abs(W).sum(), 1e-300):
                return float((W.sum() - s @ (W @ s)) / 4.0)
        # Block of new nodes x fitted nodes: best side for each new node.
        to_plus = np.asarray(X @ (s > 0).astype(np.float64)).ravel()
        to_minus = np.asarray(X @ (s < 0).astype(np.float64)).ravel()
        return float(np.maximum(to_plus, to_minus).sum())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.pairwise = True
        tags.input_tags.sparse = True
        return tags
