"""Learned, deterministic Johnson-Lindenstrauss projections.

:class:`DerandomizedJLProjector` is a drop-in replacement for
:class:`sklearn.random_projection.GaussianRandomProjection`: same
parameters, attributes and behaviour, but the k x d matrix is *learned* to
preserve the pairwise distances of the training set, starting from (or, with
``method="derandomize"``, derandomizing) the Gaussian projection.
"""

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from scipy import linalg
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.exceptions import ConvergenceWarning, DataDimensionalityWarning
from sklearn.random_projection import johnson_lindenstrauss_min_dim
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from sklearn_derand._interrupt import restore_on_interrupt

__all__ = [
    "DerandomizedJLProjector",
    "johnson_lindenstrauss_min_dim",
    "max_pairwise_distortion",
]


def max_pairwise_distortion(X, X_embedded, *, batch_size=1024):
    """Largest relative change of a squared pairwise distance.

    ``max |  ||e_i - e_j||^2 / ||x_i - x_j||^2 - 1  |`` over pairs i < j of
    distinct points (pairs at distance zero are skipped), computed in
    blocks of rows so memory stays ``O(batch_size * n_samples)``.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Original points.
    X_embedded : array-like of shape (n_samples, n_components)
        Their images.
    batch_size : int, default=1024
        Rows per block.

    Returns
    -------
    distortion : float
        0.0 when there are fewer than two distinct points.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_derand.random_projection import max_pairwise_distortion
    >>> X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    >>> float(max_pairwise_distortion(X, 1.1 * X))
    0.21...
    """
    X = check_array(X, accept_sparse=["csr", "csc"], dtype=np.float64)
    E = check_array(X_embedded, accept_sparse=["csr", "csc"], dtype=np.float64)
    if X.shape[0] != E.shape[0]:
        raise ValueError(
            f"X and X_embedded have different numbers of samples "
            f"({X.shape[0]} != {E.shape[0]})."
        )
    E = E.toarray() if sp.issparse(E) else E
    # The ratios do not change when X and E are divided by the same power of
    # two; dividing by X's brings its squared distances into range.
    X, exponent = _unit_scale(X)
    E = np.ldexp(E, -exponent)
    x_sq = np.asarray(X.multiply(X).sum(1)).ravel() if sp.issparse(X) else (X**2).sum(1)
    e_sq = (E**2).sum(1)
    scale = max(float(x_sq.max()) if x_sq.size else 0.0, 1e-300)
    worst = 0.0
    n = X.shape[0]
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        Dx = x_sq[start:stop, None] + x_sq[None, :] - 2 * _dense(X[start:stop] @ X.T)
        De = e_sq[start:stop, None] + e_sq[None, :] - 2 * E[start:stop] @ E.T
        rows = np.arange(start, stop)
        upper = np.arange(n)[None, :] > rows[:, None]
        ok = upper & (Dx > 1e-12 * scale)
        if ok.any():
            ratio = np.maximum(De[ok], 0.0) / Dx[ok]
            worst = max(worst, float(np.abs(ratio - 1.0).max()))
    return worst


def _unit_scale(X):
    """X divided by the power of two nearest ``max |X|`` (exactly), and the
    exponent of that power.

    The result has its largest absolute value in [0.5, 1), so squared
    distances neither overflow nor underflow; the division is exact (a
    change of exponent) for every value that is not subnormal afterwards.
    """
    data = X.data if sp.issparse(X) else np.asarray(X)
    top = float(np.max(np.abs(data))) if data.size else 0.0
    if top == 0.0 or not np.isfinite(top):
        return X, 0
    exponent = int(np.frexp(top)[1])
    if exponent == 0:
        return X, 0
    if sp.issparse(X):
        X = X.astype(np.float64)  # a copy: the caller's matrix is untouched
        X.data = np.ldexp(X.data, -exponent)
        return X, exponent
    return np.ldexp(np.asarray(X, dtype=np.float64), -exponent), exponent


# early_stopping="auto" holds points out from 50 to under 5000 samples.
# Measured with benchmarks/bench_jl.py --held-out (fit on 75 %, max
# distortion over the pairs touching the other 25 %, PCA rescaled by its
# best factor on them as the reference): on 2250 points of the 20-cluster
# mixture (d=500, k=20) held-out pairs 1.006 with it against 1.027 without
# (PCA 0.987); on 7500 points (d=300, k=32) 1.05 against 1.11 (PCA 0.95),
# neither near PCA, while the training pairs of 10^4 points come out at
# 1.07 with it against 0.48 without.
_AUTO_EARLY_STOPPING = (50, 5000)


def _judged(result):
    """The distortion a fit is judged on: over the validation pairs when
    points were held out, else over the training pairs."""
    if result.validation_distortion is not None:
        return result.validation_distortion
    return result.distortion


def _exceed_bound(n_exceed, n_sampled, confidence=0.95):
    """One-sided Clopper-Pearson upper bound on a proportion seen as
    ``n_exceed`` of ``n_sampled`` independent uniform draws."""
    from scipy.stats import beta

    if n_sampled == 0:
        return 1.0
    if n_exceed >= n_sampled:
        return 1.0
    return float(beta.ppf(confidence, n_exceed + 1, n_sampled - n_exceed))


def _dense(M):
    return M.toarray() if sp.issparse(M) else np.asarray(M)


# Per pair, the exact expectation of "derandomize" costs about 100 times the
# direct objective: it learns from a random block of at most this many pairs.
_DERANDOMIZE_PAIRS = 5000

# Sparse inputs up to this many entries are densified for the fit, so dense
# and sparse inputs go through the same arithmetic.
_DENSIFY_LIMIT = 2 * 10**7

# Data with at most this share of nonzero entries (dense or sparse input
# alike) is also kept as a sparse matrix, through which the learning forms
# its images X A^T when that is cheaper.
_SPARSE_SHARE = 0.1


def _canonical(X):
    """The data as the optimisation sees it: float32 precision, then centred,
    and a sparse copy of it (uncentred) when it has few nonzeros.

    Rounding to float32 first makes float32 and float64 inputs (and dense
    and small sparse ones) bit-identical, so they give the same projection:
    the learning involves stopping decisions (best iterate, tolerance) that
    would otherwise amplify rounding differences. Pairwise distortions are
    far above float32 precision, but data with a huge common offset (values
    near 1e8 that differ by 1) would lose its differences: centre such data
    first. Large sparse inputs stay sparse and uncentred (and are their own
    sparse copy). The sparse copy is built from the rounded values, so it
    too is the same for every input format.

    Distortions do not change when the data is scaled, so the data is first
    divided by the power of two nearest its largest absolute value
    (:func:`_unit_scale`): values of 1e-50 or 1e300 would otherwise underflow
    or overflow in float32 (or in the squared distances). Dividing by a power
    of two commutes with rounding, so float32 and float64 inputs still agree.
    """
    X = _unit_scale(X)[0]
    if sp.issparse(X):
        if X.shape[0] * X.shape[1] > _DENSIFY_LIMIT:
            X = X.astype(np.float32).astype(np.float64)
            X.sum_duplicates()
            return X, None
        X = X.toarray()
    # One rounded copy at a time (10^6 x 100 inputs: 0.8 GB each).
    X = np.asarray(X, dtype=np.float32)
    X = X.astype(np.float64)
    sparse = None
    if np.count_nonzero(X) <= _SPARSE_SHARE * X.size:
        sparse = sp.csr_matrix(X)
    X -= X.mean(axis=0)
    return X, sparse


class DerandomizedJLProjector(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Learned, deterministic replacement for a Gaussian random projection.

    A Gaussian random projection preserves all pairwise distances of n
    points within ``1 +- eps`` only with ``O(log(n) / eps^2)`` components,
    and only with high probability. This transformer instead *learns* the
    k x d matrix on the training set's pairwise distances, so the same
    components preserve them far better, or the same quality needs far
    fewer components. Replacing ``GaussianRandomProjection`` by this class is
    enough: parameters, attributes, sparse input and dtypes behave the same.

    Two learning methods:

    - ``"direct"`` (default, best in ``benchmarks/bench_jl.py``): minimise a
      smooth maximum (power mean with p raised 8 -> 32 -> 128; 32 -> 128 on
      a working set of pairs above ``max_pairs``) of the squared pair
      distortions, plus ``alpha`` times their mean square, over the matrix,
      started from the better of exactly the Gaussian matrix that
      ``GaussianRandomProjection(random_state=...)`` draws and rescaled PCA
      (``init``), keeping the best iterate: never worse than that start on
      the pairs that judge it (the training pairs; the validation pairs
      with ``early_stopping``).
    - ``"derandomize"`` (the derandomization paper): optimise a Gaussian
      sampler ``A = M + sigma Z`` for the expected smoothed number of pairs
      whose distortion exceeds ``eps``, plus ``alpha * sigma^2``; at a
      second-order stationary point the noise scale collapses
      (``sigma_max_`` ~ 0) and ``M`` is the answer. Expectations are exact
      in the Gaussian direction and Gauss-Laguerre in the chi-square one.

    Only the component of the matrix on the span of the training data is
    learned; on its orthogonal complement it stays the Gaussian matrix, so
    points outside that span are projected as the random projection would.

    Parameters
    ----------
    n_components : int or "auto", default="auto"
        Dimensionality of the target space. With ``"auto"``, the smallest k
        whose learned projection keeps every pair within ``eps``: the
        validation pairs when points are held out (``early_stopping``, on by
        default from 50 to under 5000 samples), else the training pairs (searched by
        bisection, never above ``n_features``, the JL bound
        ``johnson_lindenstrauss_min_dim(n_samples, eps)`` nor the rank of the
        centred data, where an exact isometry exists). Learning needs far
        fewer dimensions than the JL bound.
    eps : float, default=0.1
        Target distortion: for ``n_components="auto"`` and the violation
        threshold of ``method="derandomize"``. Must be positive.
    method : {"direct", "derandomize"}, default="direct"
        Learning formulation, see above.
    init : {"best", "gaussian", "pca"}, default="best"
        Starting matrix of ``"direct"``: the Gaussian draw of
        ``GaussianRandomProjection(random_state=...)`` (``"gaussian"``); the
        first ``n_components`` principal directions of the training data
        times the single factor that best preserves their pair distances
        (``"pca"``); or whichever of the two preserves the training pairs
        better (``"best"``; the validation pairs when points are held out).
        The best iterate is kept, the start included, so the result is
        never worse than its start on the pairs that judge it (training
        pairs, or validation pairs with ``early_stopping``). Off the span
        of the training data the matrix is the Gaussian draw in every case.
        In ``benchmarks/bench_jl.py`` the PCA start (which ``"best"`` picks
        on every case there) gives lower training distortions than the
        Gaussian one, and lower held-out ones in every case but one (1000
        Gaussian points with ``early_stopping``: 0.791 against 0.725).
    alpha : float, default=1.0
        Regularisation strength (the paper's lambda). For ``"derandomize"``,
        the penalty on the sampler's noise variance ``sigma^2``; for
        ``"direct"``, the weight of the mean squared distortion next to the
        smooth maximum (it trades the worst training pair for typical ones
        and helps held-out points). Tune it with ``GridSearchCV`` (``score``
        is the negative max distortion on held-out points).
    max_iter : int, default=500
        Largest number of optimiser iterations (per fit; the ``"auto"``
        search fits several k).
    tol : float, default=1e-3
        Stop when for ``n_iter_no_change`` iterations neither the best max
        distortion (training, or validation with ``early_stopping``) nor the
        objective improved by this relative amount. The objective counts
        too because the max can sit on a plateau while it falls, e.g. from
        the PCA start on sparse data.
    n_iter_no_change : int, default=20
        See ``tol``.
    early_stopping : "auto" or bool, default="auto"
        Hold out ``validation_fraction`` of the training points and keep the
        iterate (the start included) whose pairs with them are preserved
        best; ``"auto"`` does so from 50 to under 5000 samples. The held-out
        points then take no part in the fit: up to a few thousand points
        the projection generalises better to new points (in
        ``benchmarks/bench_jl.py --held-out``, against PCA rescaled by its
        best factor on the held-out pairs: 4 of 6 cases below it and the
        other 2 within 1 % above, where without it those 2 came out 14 % and
        27 % above), while ``distortion_``, over all training pairs, is
        higher than a fit of every point. At 10^4 mixture points holding
        out cost the training pairs without making new
        points better than PCA, so ``"auto"`` fits every point there. Use
        ``False`` when only the training points will be projected.
    validation_fraction : float, default=0.2
        Share of the points held out with ``early_stopping``.
    max_pairs : int, default=500_000
        Pairs handled at once. Up to it (1000 points), all pairs of the
        fitted points are used. Above it, ``"direct"`` on the CPU learns
        from a working set of pairs that grows with n, not n^2: up to 20,000
        points (a random sample above), each with 8 random partners, its 8
        nearest neighbours and, after every 25 iterations, the 8 worst
        partners a blocked scan finds for it (all points up to 20,000, each
        pair once; about 10^8 pairs of random points above), the scans'
        endpoints joining the set. Elsewhere (another device) it
        learns from blocks of points refreshed toward the worst pairs.
        ``"derandomize"``, whose exact expectations cost about 100 times
        more per pair, learns from one random block of at most 5000 pairs.
        See ``distortion_`` for what is measured exactly.
    solver : {"lbfgs", "adam", "pgd", "hessian_descent", "gd"}, default=None
        Optimiser of the SOSP backend; ``None`` picks ``"lbfgs"`` for
        ``"direct"`` and ``"adam"`` for ``"derandomize"``.
    init_noise : float, default=0.5
        ``"derandomize"`` only: share beta of the starting sampler's variance
        that is noise: ``M = sqrt(1 - beta^2) G``, ``sigma = beta /
        sqrt(k)`` with G the Gaussian matrix. ``1.0`` is the paper's literal
        start (M = 0), a saddle of the expected count where the mean gets no
        gradient; in ``benchmarks/bench_jl.py`` it stalls.
    compute_inverse_components : bool, default=False
        Compute the pseudo-inverse of the components during fit, for
        :meth:`inverse_transform`.
    random_state : int, RandomState instance or None, default=None
        Seeds the Gaussian starting matrix (the same draw as
        ``GaussianRandomProjection``) and the optimiser.
    device : str, default="cpu"
        Torch device for the optimisation ("cpu", "cuda", "cuda:1").
    verbose : int, default=0
        0 is silent; 1 prints a line per stage (and, with a working set, per
        scan: the max distortion over the set and over the scan, the pairs
        added); 2 also every 50 iterations.

    Attributes
    ----------
    n_components_ : int
        Number of components (the value found with ``"auto"``).
    components_ : ndarray of shape (n_components, n_features)
        The learned projection matrix, in the input's dtype.
    inverse_components_ : ndarray of shape (n_features, n_components)
        Pseudo-inverse of the components (with
        ``compute_inverse_components=True``).
    distortion_ : float
        Max ``| ||A(x_i - x_j)||^2 / ||x_i - x_j||^2 - 1 |`` over the pairs
        of training points (held-out validation points included). Exact
        (every pair, in blocks) up to 30,000 points; above, the max over the
        ``n_pairs_checked_`` pairs checked (the working set and the pairs of
        random points with all points), not over all pairs: see
        ``distortion_exact_`` and ``distortion_exceed_bound_``.
    distortion_exact_ : bool
        Whether ``distortion_`` is the max over all training pairs.
    n_pairs_checked_ : int
        Distinct pairs ``distortion_`` is the max over (all pairs when
        ``distortion_exact_``).
    distortion_exceed_bound_ : float
        A 95 % one-sided (Clopper-Pearson) upper confidence bound on the
        share of all training pairs whose distortion exceeds
        ``distortion_``, from a fresh uniform sample of 10^6 pairs not used
        for ``distortion_``; 0.0 when ``distortion_exact_``.
    validation_distortion_ : float or None
        Max distortion over the validation pairs (held-out points with all
        points; above 10^6 such pairs, over a random sample of 250,000 of
        them: a sampled figure, not their max) at the iterate kept; None
        without held-out points.
    sigma_max_ : float
        Largest remaining noise standard deviation of the sampler (how far
        derandomization went; 0.0 for ``"direct"``).
    n_iter_ : int
        Optimiser iterations of the final fit (a closed-form answer, when
        ``n_components_`` reaches the rank of the data, counts as one).
    converged_ : bool
        Whether the final fit stopped before ``max_iter`` (a certified
        second-order stationary point, the ``tol`` criterion, or the target
        distortion reached).
    loss_curve_ : list of float
        Objective value per iteration of the final fit.
    distortion_curve_ : list of float
        Max training-pair distortion of the current matrix (the sampler's
        mean for ``"derandomize"``) per iteration (on the active block of
        pairs when ``max_pairs`` is exceeded).
    sigma_curve_ : list of float
        Noise scale of the sampler per iteration (``"derandomize"`` only).
    grad_norm_ : float
        Gradient norm of the last stage's objective at its final point.
    min_eig_ : float
        Smallest Hessian eigenvalue estimate (Lanczos) there.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features,)
        Names of features seen during fit, when they are all strings.

    See Also
    --------
    sklearn.random_projection.GaussianRandomProjection : The random
        projection this replaces.
    sklearn.decomposition.PCA : Linear dimension reduction by variance.

    References
    ----------
    N. Tsikouras, Y. Pantis, I. Mitliagkas, C. Tzamos, "A Derandomization
    Framework for Structure Discovery: Applications in Neural Networks and
    Beyond", 2025 (arXiv:2510.19382).

    N. Tsikouras, C. Caramanis, C. Tzamos, "Optimization Can Learn Johnson
    Lindenstrauss Embeddings", 2024 (arXiv:2412.07242).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_derand import DerandomizedJLProjector
    >>> rng = np.random.RandomState(0)
    >>> X = rng.rand(40, 30)
    >>> proj = DerandomizedJLProjector(n_components=8, random_state=0).fit(X)
    >>> proj.transform(X).shape
    (40, 8)
    >>> bool(proj.distortion_ < 0.5)
    True
    """

    _parameter_constraints: dict = {
        "n_components": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "eps": [Interval(Real, 0, None, closed="neither")],
        "method": [StrOptions({"direct", "derandomize"})],
        "init": [StrOptions({"best", "gaussian", "pca"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean", StrOptions({"auto"})],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "max_pairs": [Interval(Integral, 1, None, closed="left")],
        "solver": [
            StrOptions({"lbfgs", "adam", "pgd", "hessian_descent", "gd"}),
            None,
        ],
        "init_noise": [Interval(Real, 0, 1, closed="both")],
        "compute_inverse_components": ["boolean"],
        "random_state": ["random_state"],
        "device": [str],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_components="auto",
        *,
        eps=0.1,
        method="direct",
        init="best",
        alpha=1.0,
        max_iter=500,
        tol=1e-3,
        n_iter_no_change=20,
        early_stopping="auto",
        validation_fraction=0.2,
        max_pairs=500_000,
        solver=None,
        init_noise=0.5,
        compute_inverse_components=False,
        random_state=None,
        device="cpu",
        verbose=0,
    ):
        self.n_components = n_components
        self.eps = eps
        self.method = method
        self.init = init
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.max_pairs = max_pairs
        self.solver = solver
        self.init_noise = init_noise
        self.compute_inverse_components = compute_inverse_components
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    @restore_on_interrupt
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the projection from the pairwise distances of X.

        Parameters
        ----------
        X : {ndarray, sparse matrix} of shape (n_samples, n_features)
            Training set.
        y : Ignored
            Not used, present here for API consistency by convention.

        Returns
        -------
        self : object
            Fitted transformer.
        """
        from sklearn_derand import _sosp
        from sklearn_derand._sosp import _jl_kernels
        from sklearn_derand._sosp.jl import DistortionProblem, fit_projection

        if isinstance(self.n_components, (bool, np.bool_)):
            # bool passes the Integral constraint (True == 1) but is a mistake
            raise ValueError(
                f"n_components must be a positive int or 'auto', got "
                f"{self.n_components!r}."
            )
        X = validate_data(
            self, X, accept_sparse=["csr", "csc"], dtype=[np.float64, np.float32]
        )
        n_samples, n_features = X.shape
        device = _sosp.resolve_device(self.device)
        rng = check_random_state(self.random_state)
        # The Gaussian start is drawn first, exactly as GaussianRandomProjection
        # draws it, so random_state=s starts from that projection's matrix.
        start_state = rng.get_state()
        seed = int(rng.randint(np.iinfo(np.int32).max))

        if self.n_components == "auto":
            jl_dim = johnson_lindenstrauss_min_dim(n_samples=n_samples, eps=self.eps)
            if jl_dim <= 0:
                raise ValueError(
                    f"eps={self.eps:f} and n_samples={n_samples} lead to a "
                    f"target dimension of {jl_dim} which is invalid"
                )
        elif self.n_components > n_features:
            warnings.warn(
                "The number of components is higher than the number of"
                f" features: n_features < n_components ({n_features} < "
                f"{self.n_components}).The dimensionality of the problem will "
                "not be reduced.",
                DataDimensionalityWarning,
            )

        fit_mask = self._split(n_samples, seed)
        early_stopping = self._early_stopping(n_samples)
        max_pairs = self.max_pairs
        if self.method == "derandomize":
            max_pairs = min(max_pairs, _DERANDOMIZE_PAIRS)
        if device.type == "cpu":  # a fresh environment: say so once
            working_set = DistortionProblem.uses_working_set(
                int(np.count_nonzero(fit_mask)),
                max_pairs,
                device,
                self.method == "direct",
            )
            notice = _jl_kernels.compile_notice(working_set)
            if notice:
                warnings.warn(f"DerandomizedJLProjector: {notice}.", stacklevel=2)
        X_fit, sparse = _canonical(X)
        problem = DistortionProblem(
            X_fit,
            fit_mask,
            max_pairs,
            device,
            seed,
            sparse=sparse,
            working_set=self.method == "direct",
        )

        def learn(k, target=None):
            start = np.random.RandomState()
            start.set_state(start_state)
            A0 = start.normal(loc=0.0, scale=1.0 / np.sqrt(k), size=(k, n_features))
            return fit_projection(
                problem,
                A0,
                method=self.method,
                init=self.init,
                alpha=self.alpha,
                eps=self.eps,
                max_iter=self.max_iter,
                tol=self.tol,
                n_iter_no_change=self.n_iter_no_change,
                solver=self.solver,
                init_noise=self.init_noise,
                target=target,
                early_stopping=early_stopping,
                seed=seed,
                verbose=self.verbose,
            )

        if self.n_components == "auto":
            k, result = self._search_n_components(learn, problem, n_features, jl_dim)
        else:
            k = self.n_components
            result = learn(k)

        self.n_components_ = int(k)
        self.components_ = result.components.astype(X.dtype, copy=False)
        self.distortion_ = float(result.distortion)
        self._set_report(result.report, problem)
        self.validation_distortion_ = result.validation_distortion
        self.sigma_max_ = float(result.sigma)
        self.n_iter_ = int(result.n_iter)
        self.converged_ = bool(result.converged)
        self.loss_curve_ = [float(v) for v in result.loss_curve]
        self.distortion_curve_ = [float(v) for v in result.distortion_curve]
        self.sigma_curve_ = [float(v) for v in result.sigma_curve]
        self.grad_norm_ = float(result.grad_norm)
        self.min_eig_ = float(result.min_eig)
        if not self.converged_:
            warnings.warn(
                f"{type(self).__name__} did not converge within max_iter="
                f"{self.max_iter} iterations ({result.message}); consider "
                "increasing max_iter or tol.",
                ConvergenceWarning,
            )
        if self.compute_inverse_components:
            self.inverse_components_ = self._compute_inverse_components()
        # Required by ClassNamePrefixFeaturesOutMixin.get_feature_names_out.
        self._n_features_out = self.n_components_
        return self

    def _set_report(self, report, problem):
        """What ``distortion_`` is: exact over all training pairs, or the
        max over the pairs checked, with a confidence bound on the share of
        pairs above it from an independent uniform sample."""
        if report is None or report.exact:
            # Dense fits, block fits (an exact chunked scan) and working-set
            # fits up to _EXACT_REPORT points measure all pairs.
            self.distortion_exact_ = True
            self.n_pairs_checked_ = problem.n * (problem.n - 1) // 2
            self.distortion_exceed_bound_ = 0.0
            return
        self.distortion_exact_ = False
        self.n_pairs_checked_ = int(report.n_checked)
        self.distortion_exceed_bound_ = float(
            _exceed_bound(report.n_exceed, report.n_sampled)
        )

    def _early_stopping(self, n_samples):
        """Whether this fit holds points out: ``early_stopping``, with
        ``"auto"`` on from _AUTO_EARLY_STOPPING points."""
        if self.early_stopping == "auto":
            low, high = _AUTO_EARLY_STOPPING
            return low <= n_samples < high
        return bool(self.early_stopping)

    def _split(self, n_samples, seed):
        """Boolean mask of the points whose pairs are fitted."""
        fit_mask = np.ones(n_samples, dtype=bool)
        if not self._early_stopping(n_samples):
            return fit_mask
        n_val = int(np.ceil(self.validation_fraction * n_samples))
        if n_val < 1 or n_samples - n_val < 2:
            raise ValueError(
                f"early_stopping needs at least 2 fitted points and 1 "
                f"validation point; n_samples={n_samples} with "
                f"validation_fraction={self.validation_fraction} gives "
                f"{n_samples - n_val} and {n_val}."
            )
        order = np.random.RandomState(seed).permutation(n_samples)
        fit_mask[order[:n_val]] = False
        return fit_mask

    def _search_n_components(self, learn, problem, n_features, jl_dim):
        """Smallest k whose learned projection meets eps (bisection).

        At k = rank of the centred data an exact isometry exists, so the top
        of the range is always feasible. PCA rescaled by its best factor
        gives a cheap upper end that the learned projection nearly always
        meets; bisection runs below it (an infeasible probe is recognised
        after its first stage).
        """
        cap = max(1, min(n_features, jl_dim, problem.rank))
        lo, hi = 1, cap
        while lo < hi:  # smallest k where rescaled PCA meets eps
            mid = (lo + hi) // 2
            if problem.pca_distortion(mid) <= self.eps:
                hi = mid
            else:
                lo = mid + 1
        feasible = {}
        result = learn(hi, target=self.eps)
        if _judged(result) <= self.eps:
            feasible[hi] = result
            lo = 1
        else:
            lo, hi = hi + 1, cap
        while lo < hi:
            mid = (lo + hi) // 2
            result = learn(mid, target=self.eps)
            if self.verbose:
                print(f"n_components={mid}: max distortion {_judged(result):.4f}")
            if _judged(result) <= self.eps:
                feasible[mid] = result
                hi = mid
            else:
                lo = mid + 1
        if hi not in feasible:
            feasible[hi] = learn(hi, target=self.eps)
        return hi, feasible[hi]

    def _compute_inverse_components(self):
        """Compute the pseudo-inverse of the components."""
        return linalg.pinv(self.components_, check_finite=False)

    def transform(self, X):
        """Project the data with the learned matrix.

        Parameters
        ----------
        X : {ndarray, sparse matrix} of shape (n_samples, n_features)
            The input data to project into a smaller dimensional space.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
            Projected array.
        """
        check_is_fitted(self)
        X = validate_data(
            self,
            X,
            accept_sparse=["csr", "csc"],
            reset=False,
            dtype=[np.float64, np.float32],
        )
        return _dense(safe_sparse_dot(X, self.components_.T))

    def inverse_transform(self, X):
        """Project data back to its original space.

        Returns an array X_original whose transform would be X, through the
        pseudo-inverse of the components (computed on each call unless
        ``compute_inverse_components=True``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_components)
            Data to be transformed back.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            Reconstructed data.
        """
        check_is_fitted(self)
        X = check_array(X, dtype=[np.float64, np.float32], accept_sparse=("csr", "csc"))
        if X.shape[1] != self.n_components_:
            raise ValueError(
                f"X has {X.shape[1]} columns, but inverse_transform expects "
                f"n_components_={self.n_components_} (the projected width)."
            )
        if self.compute_inverse_components:
            inverse = self.inverse_components_
        else:
            inverse = self._compute_inverse_components()
        return _dense(safe_sparse_dot(X, inverse.T))

    def score(self, X, y=None):
        """Negative max pairwise distortion of X under the projection.

        Higher is better, so ``GridSearchCV`` can tune ``alpha``, ``eps`` or
        ``n_components`` on held-out points.

        Parameters
        ----------
        X : {ndarray, sparse matrix} of shape (n_samples, n_features)
            Points whose pairwise distances should be preserved.
        y : Ignored
            Not used, present here for API consistency by convention.

        Returns
        -------
        score : float
            ``-max_pairwise_distortion(X, self.transform(X))``.
        """
        check_is_fitted(self)
        X = validate_data(
            self,
            X,
            accept_sparse=["csr", "csc"],
            reset=False,
            dtype=[np.float64, np.float32],
        )
        return -max_pairwise_distortion(X, self.transform(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.sparse = True
        return tags
