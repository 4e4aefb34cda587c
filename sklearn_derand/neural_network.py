"""A two-layer network that finds the index subspace of its inputs.

:class:`StructuredTwoLayerRegressor` fits ``y ~ a^T ReLU_iota(W x + b) + c``
with every parameter trained and a small ridge on W, to a certified
second-order stationary point. For data depending on a few directions of x
(multi-index models ``y = h(U x) + noise``) the fitted network predicts well
*and* hands back the subspace it found, as a supervised dimension reduction.
"""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    MultiOutputMixin,
    RegressorMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from sklearn_derand._interrupt import restore_on_interrupt

__all__ = ["StructuredTwoLayerRegressor", "subspace_distance"]


def subspace_distance(A, B):
    """Distance between the row spaces of A and B: ``||sin Theta||_F``.

    Computed as ``||P_A - P_B||_F / sqrt(2)`` with P the orthogonal
    projections, which equals the Frobenius norm of the sines of the
    principal angles when both spaces have the same dimension (and stays a
    metric when they do not).

    Parameters
    ----------
    A : array-like of shape (k, n_features)
        Rows spanning the first subspace (need not be orthonormal).
    B : array-like of shape (m, n_features)
        Rows spanning the second subspace.

    Returns
    -------
    distance : float
        0 for the same subspace; ``sqrt(k)`` for orthogonal k-dimensional
        subspaces.

    Examples
    --------
    >>> from sklearn_derand import subspace_distance
    >>> float(subspace_distance([[1.0, 0.0, 0.0]], [[1.0, 1.0, 0.0]]))
    0.7071...
    """
    A = check_array(A, ensure_2d=True, dtype=np.float64)
    B = check_array(B, ensure_2d=True, dtype=np.float64)
    if A.shape[1] != B.shape[1]:
        raise ValueError(
            f"A and B must have the same number of columns ({A.shape[1]} != "
            f"{B.shape[1]})."
        )

    def basis(M):
        U, s, _ = np.linalg.svd(M.T, full_matrices=False)
        return U[:, s > s.max() * 1e-10] if s.size and s.max() > 0 else U[:, :0]

    Qa, Qb = basis(A), basis(B)
    # ||P_A - P_B||_F^2 = ||(I - P_A) Q_B||_F^2 + ||(I - P_B) Q_A||_F^2,
    # without d x d matrices and without cancellation.
    off_a = Qb - Qa @ (Qa.T @ Qb)
    off_b = Qa - Qb @ (Qb.T @ Qa)
    return float(np.sqrt((np.sum(off_a**2) + np.sum(off_b**2)) / 2.0))


# solver="auto" trains with full-batch L-BFGS; above this many training rows
# minibatch Adam steps start it (see the user guide's Cost section).
_WARMUP_MIN_SAMPLES = 20_000
# The warm-up: Adam with batches of this many rows, for about this many steps
# (whole epochs, at least one), at this step size.
_WARMUP_BATCH = 1000
_WARMUP_STEPS = 1000
_WARMUP_LR = 3e-3
# predict runs over chunks of rows whose hidden activations take about this
# many bytes.
_PREDICT_CHUNK_BYTES = 32 * 2**20


# alpha="auto": the path of ridge strengths tried, smallest first, each fit
# warm-started from the one before (a weak ridge first learns every
# direction; stronger ones then shrink what noise it fitted: from the strong
# end, the fits stayed in the basin of a near-linear model); the best
# validation R^2 on a split of _ALPHA_VALIDATION of the training rows picks
# alpha_ (with solver "auto" or "lbfgs"; other solvers use _ALPHA_DEFAULT). Above
# _ALPHA_PATH_MAX_SAMPLES training rows (or below _ALPHA_PATH_MIN_SAMPLES)
# alpha_ is _ALPHA_DEFAULT without a path.
_ALPHA_PATH = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
_ALPHA_VALIDATION = 0.2
_ALPHA_PATH_MAX_SAMPLES = 20_000
_ALPHA_PATH_MIN_SAMPLES = 25
_ALPHA_DEFAULT = 3e-3
# Up to this many training rows the whole path is fitted; above, it stops
# once two alphas in a row score below the best. On small noisy samples the
# validation R^2 is not unimodal along the path (500 rows, d = 30, noise
# sd 1: 0.28, 0.25, 0.25 for the first three alphas, then higher further on).
_ALPHA_PATH_FULL_SAMPLES = 5000
# n_components="auto": the smallest k whose projected network keeps all but
# this share of the full network's R^2, scored on at most _K_SAMPLES rows.
_K_TOLERANCE = 0.01
_K_SAMPLES = 5000


def _network_output(params, X, iota):
    """``softplus(iota (X W^T + b)) / iota @ a + c`` for a numpy X."""
    z = iota * (X @ params["W"].T + params["b"])
    return np.logaddexp(z, 0.0, out=z) / iota @ params["a"] + params["c"]


def _alpha_path(train_net, X, Y, train, iota, seed):
    """``(alpha, warm start, {alpha: validation R^2}, holdout)`` for
    alpha="auto"; ``holdout`` is ``(network, validation rows)`` for choosing
    ``n_components`` on rows the network did not fit (None without a path).

    Fits on (1 - _ALPHA_VALIDATION) of the training rows along _ALPHA_PATH,
    each from the previous solution, scoring R^2 on the rest; above
    _ALPHA_PATH_FULL_SAMPLES rows the path stops once two alphas in a row
    score below the best. The best alpha's network
    is the warm start of the final fit on all training rows.
    """
    rows = np.arange(len(X)) if train is None else np.asarray(train)
    if not _ALPHA_PATH_MIN_SAMPLES <= len(rows) <= _ALPHA_PATH_MAX_SAMPLES:
        return _ALPHA_DEFAULT, None, {}, None
    fit_rows, val_rows = train_test_split(
        rows, test_size=_ALPHA_VALIDATION, random_state=seed
    )
    fit_rows, val_rows = np.sort(fit_rows), np.sort(val_rows)
    Y_val = Y[val_rows]
    total = float(((Y_val - Y_val.mean(axis=0)) ** 2).sum())
    scores, best, init, worse = {}, None, None, 0
    for alpha in _ALPHA_PATH:
        net = train_net(alpha, fit_rows, None, init)
        init = {"W": net.W, "b": net.b, "a": net.a, "c": net.c}
        residual = _network_output(init, X[val_rows], iota) - Y_val
        score = 1.0 - float((residual**2).sum()) / max(total, 1e-300)
        scores[alpha] = score
        if best is None or score > scores[best[0]]:
            best, worse = (alpha, init), 0
        else:
            worse += 1
            if worse == 2 and len(rows) > _ALPHA_PATH_FULL_SAMPLES:
                break
    return best[0], best[1], scores, (best[1], val_rows)


def _subspace_directions(params, X, iota, readout):
    """``(values, directions)`` of a network, largest first.

    ``"weights"``: singular values and right singular vectors of W.
    ``"gradients"``: square roots of the eigenvalues and eigenvectors of the
    expected outer product of the input gradients of the (standardised)
    outputs, over up to 5,000 rows of X.
    """
    W = params["W"]
    if readout == "weights":
        _, values, Vt = np.linalg.svd(W, full_matrices=True)
        return values, Vt
    sample = X[: min(len(X), _K_SAMPLES)]
    slope = 0.5 * (1.0 + np.tanh(0.5 * iota * (sample @ W.T + params["b"])))
    # Gradients (n, n_outputs, d) of each output: slope * a, through W.
    G = np.einsum("nh,ho,hd->nod", slope, params["a"], W).reshape(-1, W.shape[1])
    eigvals, Q = np.linalg.eigh(G.T @ G / len(sample))
    return np.sqrt(np.clip(eigvals[::-1], 0.0, None)), Q[:, ::-1].T


def _whitening(X):
    """``(mean, S)`` with ``S = Cov(X)^(-1/2)`` (symmetric), the covariance
    summed over chunks of rows (no centred copy of X); directions of variance
    below 1e-12 times the largest are not amplified beyond that level."""
    mean = X.mean(axis=0)
    cov = np.zeros((X.shape[1], X.shape[1]))
    rows = max(1, _PREDICT_CHUNK_BYTES // (8 * X.shape[1]))
    for lo in range(0, len(X), rows):
        chunk = X[lo : lo + rows] - mean
        cov += chunk.T @ chunk
    lam, Q = np.linalg.eigh(cov / len(X))
    lam = np.maximum(lam, 1e-12 * max(lam.max(), 1e-300))
    return mean, (Q / np.sqrt(lam)) @ Q.T


def _unwhiten(params, whitening):
    """The network on whitened inputs ``S (x - mean)`` as one on x:
    ``W -> W S``, ``b -> b - W S mean``."""
    if whitening is None:
        return params
    mean, S = whitening
    W = params["W"] @ S
    return {**params, "W": W, "b": params["b"] - W @ mean}


def _mean_and_scale(Y):
    """Column means and standard deviations (1 where constant), computed on
    Y divided by its largest absolute value so that targets near the float64
    limit (1e200) give finite statistics instead of an overflowing variance.
    """
    top = np.max(np.abs(Y), axis=0)
    top = np.where(top > 0, top, 1.0)
    Z = Y / top
    mean, scale = Z.mean(axis=0) * top, Z.std(axis=0) * top
    return mean, np.where(scale > 0, scale, 1.0)


def _smallest_sufficient_k(params, X, Y, iota, directions, cap):
    """Smallest k whose top-k directions keep the network's fit.

    The network with its inputs projected onto the first k ``directions``
    (``W -> W Q_k Q_k^T``) is scored by R^2 on (X, Y); k is the smallest
    whose R^2 is within _K_TOLERANCE of the full network's explained
    variance. Directions the fit uses only for noise move its R^2 by less
    than that, so they are not counted (a largest-gap rule counted them
    whenever the spectrum below them had collapsed further).
    """
    total = float(((Y - Y.mean(axis=0)) ** 2).sum())
    if total <= 0:
        return 1

    def r2(W):
        residual = _network_output({**params, "W": W}, X, iota) - Y
        return 1.0 - float((residual**2).sum()) / total

    full = r2(params["W"])
    if full <= 0:
        return 1
    for k in range(1, cap):
        Q = directions[:k].T
        if r2(params["W"] @ Q @ Q.T) >= full - _K_TOLERANCE * full:
            return k
    return cap


class StructuredTwoLayerRegressor(
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    RegressorMixin,
    MultiOutputMixin,
    BaseEstimator,
):
    """Two-layer network that predicts y and finds the subspace it depends on.

    The model is ``y_hat = a^T ReLU_iota(W x + b) + c`` with
    ``ReLU_iota(z) = log(1 + exp(iota z)) / iota``; W (n_hidden x
    n_features), b, a and c are all trained, on the squared loss plus a ridge
    ``alpha * ||W||_F^2`` on the first layer only, to a certified
    second-order stationary point (SOSP). For Gaussian inputs the
    derandomization lemma says that at such a point the part of W
    orthogonal to the directions the target depends on vanishes (the trained
    bias b is what makes this work), so the network's first layer, and its
    input gradients, span the index subspace. :meth:`transform` projects
    onto that subspace, so the estimator is also a supervised dimension
    reduction usable in a :class:`~sklearn.pipeline.Pipeline`.

    Inputs are assumed standardised (the lemma is about x ~ N(0, I)): use
    ``make_pipeline(StandardScaler(), StructuredTwoLayerRegressor())``.
    Targets are standardised internally.

    Parameters
    ----------
    n_hidden : int, default=64
        Number of hidden units.
    alpha : float or "auto", default="auto"
        Ridge on the first layer (the paper's lambda). The part of W
        orthogonal to the index subspace shrinks through it. ``"auto"``:
        with the L-BFGS solvers (``"auto"``, ``"lbfgs"``) and 25 to 20,000
        training rows, the best of ``0.003, 0.01, 0.03, 0.1, 0.3, 1`` by
        R^2 on a 20 % validation split, fitted from weak to strong with warm
        starts (``alpha_``, ``alpha_scores_``); otherwise 3e-3. On
        ``load_diabetes`` (5-fold CV R^2 0.49 against 0.12 for 3e-3) and a
        noisy single-index problem (0.66 and one direction against 0.09 and
        50) the path is what makes the defaults hold; see the user guide.
        A float fixes it (tune with ``GridSearchCV``).
    iota : float, default=4.0
        Sharpness of the smoothed ReLU (ReLU as iota -> infinity).
    n_components : int or "auto", default="auto"
        Dimension of the subspace returned by :meth:`transform`. ``"auto"``:
        the smallest k such that the network with its inputs projected onto
        the first k directions (see ``subspace``) keeps 99 % of the full
        network's R^2 on (up to 5,000 of) the training rows. Directions the
        fit uses only for noise do not count (the largest-gap rule used
        before counted 50 of them on a noisy single-index problem).
    subspace : {"gradients", "weights"}, default="gradients"
        How the subspace is read from the fitted network. ``"weights"``: top
        right singular vectors of W (the paper's claim). ``"gradients"``: top
        eigenvectors of the expected outer product of the fitted function's
        input gradients, ``E[grad f(x) grad f(x)^T]`` over the training
        inputs, robust to a part of W that has not fully collapsed (lower
        error in the benchmark).
    solver : {"auto", "lbfgs", "adam", "pgd", "hessian_descent", "gd"}, \
            default="auto"
        SOSP backend method. ``"lbfgs"``, ``"pgd"``, ``"hessian_descent"``
        and ``"gd"`` are full batch; ``"adam"`` takes minibatch steps and
        divides its step size by 10 (twice at most) when the objective
        stalls for ``max(2, n_iter_no_change // 3)`` epochs, which lowers its
        noise floor (subspace error 0.008 against 0.078 without, n=10^5).
        ``"pgd"`` and ``"hessian_descent"`` are the paper's methods; the
        part of W off the subspace shrinks like ``exp(-lr * alpha * t)``
        under them, so they need ``learning_rate * alpha * max_iter`` of a
        few units to show structure. ``"auto"``: L-BFGS, which measured
        best; above 20,000 training rows it starts from about 1,000 steps
        of minibatch Adam (batches of 1,000 rows, step 3e-3), which do most
        of the descent for a fraction of a full pass each and halve the
        L-BFGS iterations (``solver_`` says which ran). Every full pass runs
        over chunks of rows, so memory does not grow with n.
    max_iter : int, default=300
        Iterations (epochs for ``"adam"``).
    learning_rate : float, default=None
        Step size: 1e-3 for Adam, 0.5 for the gradient methods, the initial
        trial step for L-BFGS, when None.
    batch_size : int, default=200
        Minibatch size for ``"adam"``.
    tol : float, default=1e-5
        Gradient tolerance of the SOSP certificate, and the improvement
        below which ``n_iter_no_change`` iterations count as stalled.
    n_iter_no_change : int, default=10
        See ``tol``.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data and keep the iterate
        with the best validation R^2.
    validation_fraction : float, default=0.1
        Share of the data held out with ``early_stopping``.
    freeze_output_layer : bool, default=False
        Keep a at its random initialisation (the paper's experiment).
    whiten : bool, default=False
        Train on whitened inputs ``Cov(X)^(-1/2) (x - mean)`` (estimated on
        the training rows), where correlated Gaussian inputs become the
        isotropic ones the derandomization lemma is about; the network is
        folded back (``W Cov^(-1/2)``), so ``coefs_``, ``components_``,
        ``predict`` and ``transform`` are in the input's coordinates. Costs
        one copy of X during fit. Not supported by :meth:`partial_fit`.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation, the minibatches and the validation split.
    device : str, default="cpu"
        Torch device ("cpu", "cuda", "cuda:1").
    verbose : int, default=0
        0 silent; 1 a summary line; 2 progress every 10 iterations.

    Attributes
    ----------
    coefs_ : list of ndarray
        ``[W.T (n_features, n_hidden), a (n_hidden, n_outputs)]`` on the
        standardised target scale (as in ``MLPRegressor``).
    intercepts_ : list of ndarray
        ``[b (n_hidden,), c (n_outputs,)]``.
    components_ : ndarray of shape (n_components, n_features)
        Orthonormal rows spanning the learned subspace.
    singular_values_ : ndarray
        The spectrum the subspace was read from (singular values of W, or
        square roots of the gradient outer product's eigenvalues), largest
        first.
    n_components_ : int
        Dimension of the learned subspace.
    y_mean_, y_scale_ : ndarray of shape (n_outputs,)
        Target standardisation.
    n_iter_ : int
        Iterations (epochs for Adam) run.
    converged_ : bool
        Whether training stopped before ``max_iter``: a certified SOSP or
        the ``tol`` criterion.
    grad_norm_ : float
        Norm of the objective's gradient at the end, on the rows of
        ``certificate_samples_``.
    min_eig_ : float
        Smallest Hessian eigenvalue estimate (Lanczos) there, on the same
        rows.
    alpha_ : float
        The ridge used for the final fit (``alpha``, or the one chosen by
        ``alpha="auto"``).
    alpha_scores_ : dict of float to float
        Validation R^2 of each ridge of the ``alpha="auto"`` path (empty
        when no path ran).
    certificate_samples_ : int
        Rows of the objective that ``grad_norm_`` and ``min_eig_`` (the SOSP
        certificate) are computed on: all training rows up to 20,000, above
        that a random subsample of 20,000 of them (a Lanczos run is some
        dozens of Hessian-vector products, each a pass over its rows).
    solver_ : str
        The solver that ran: ``solver``, or for ``"auto"`` ``"lbfgs"`` or
        ``"adam+lbfgs"`` (Adam warm-up, then L-BFGS).
    loss_curve_ : list of float
        Objective per iteration (per epoch for Adam).
    validation_scores_ : list of float
        Validation R^2 per check (``early_stopping`` only).
    best_validation_score_ : float or None
        Best validation R^2 (``early_stopping`` only).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features,)
        Names of features seen during fit, when they are all strings.

    See Also
    --------
    sklearn.neural_network.MLPRegressor : Multi-layer perceptron regressor.
    sklearn.cross_decomposition.PLSRegression : Regression with a supervised
        linear dimension reduction.
    subspace_distance : Compare the learned subspace with a known one.

    References
    ----------
    N. Tsikouras, Y. Pantis, I. Mitliagkas, C. Tzamos, "A Derandomization
    Framework for Structure Discovery: Applications in Neural Networks and
    Beyond", 2025 (arXiv:2510.19382).

    A. Mousavi-Hosseini, S. Park, M. Girotti, I. Mitliagkas, M. A. Erdogdu,
    "Neural networks efficiently learn low-dimensional representations with
    SGD", ICLR 2023.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_derand import StructuredTwoLayerRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(500, 6)
    >>> y = np.tanh(X[:, 0] + X[:, 1])
    >>> model = StructuredTwoLayerRegressor(n_hidden=16, random_state=0).fit(X, y)
    >>> model.n_components_, model.transform(X).shape
    (1, (500, 1))
    >>> bool(model.score(X, y) > 0.95)
    True
    """

    _parameter_constraints: dict = {
        "n_hidden": [Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "iota": [Interval(Real, 0, None, closed="neither")],
        "n_components": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "subspace": [StrOptions({"gradients", "weights"})],
        "solver": [
            StrOptions({"auto", "lbfgs", "adam", "pgd", "hessian_descent", "gd"})
        ],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither"), None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "freeze_output_layer": ["boolean"],
        "whiten": ["boolean"],
        "random_state": ["random_state"],
        "device": [str],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_hidden=64,
        *,
        alpha="auto",
        iota=4.0,
        n_components="auto",
        subspace="gradients",
        solver="auto",
        max_iter=300,
        learning_rate=None,
        batch_size=200,
        tol=1e-5,
        n_iter_no_change=10,
        early_stopping=False,
        validation_fraction=0.1,
        freeze_output_layer=False,
        whiten=False,
        random_state=None,
        device="cpu",
        verbose=0,
    ):
        self.n_hidden = n_hidden
        self.alpha = alpha
        self.iota = iota
        self.n_components = n_components
        self.subspace = subspace
        self.solver = solver
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.freeze_output_layer = freeze_output_layer
        self.whiten = whiten
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    @restore_on_interrupt
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Train the network and read off its subspace.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Standardised inputs.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        from sklearn_derand import _sosp
        from sklearn_derand._sosp.network import fit_network

        X, y = validate_data(
            self,
            X,
            y,
            dtype=[np.float64, np.float32],
            multi_output=True,
            y_numeric=True,
        )
        if self.n_components != "auto" and self.n_components > X.shape[1]:
            raise ValueError(
                f"n_components={self.n_components} must be at most "
                f"n_features={X.shape[1]}."
            )
        device = _sosp.resolve_device(self.device)
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        self._y_1d = y.ndim == 1
        Y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        self.y_mean_, self.y_scale_ = _mean_and_scale(Y)
        Ys = (Y - self.y_mean_) / self.y_scale_
        X64 = np.asarray(X, dtype=np.float64)
        train = validation = None
        if self.early_stopping:
            train, validation = train_test_split(
                np.arange(len(X64)),
                test_size=self.validation_fraction,
                random_state=seed,
            )
            if len(validation) < 2 or len(train) < 2:
                raise ValueError(
                    "early_stopping needs at least 2 training and 2 validation "
                    f"samples; got {len(train)} and {len(validation)}."
                )
            train, validation = np.sort(train), np.sort(validation)
        n_train = len(X64) if train is None else len(train)
        self.solver_ = self.solver
        warmup_epochs = 0
        if self.solver == "auto":
            self.solver_ = "lbfgs"
            if n_train > _WARMUP_MIN_SAMPLES:
                self.solver_ = "adam+lbfgs"
                steps_per_epoch = -(-n_train // _WARMUP_BATCH)
                warmup_epochs = max(1, round(_WARMUP_STEPS / steps_per_epoch))
        self.__dict__.pop("_adam_state", None)

        whitening, X_fit = None, X64
        if self.whiten:
            whitening = _whitening(X64 if train is None else X64[train])
            X_fit = (X64 - whitening[0]) @ whitening[1]  # one copy of X

        def train_net(alpha, rows, held_out, init):
            return fit_network(
                X_fit,
                Ys,
                n_hidden=self.n_hidden,
                alpha=alpha,
                iota=self.iota,
                solver="lbfgs" if warmup_epochs else self.solver_,
                max_iter=self.max_iter,
                lr=self.learning_rate,
                batch_size=_WARMUP_BATCH if warmup_epochs else self.batch_size,
                warmup_epochs=warmup_epochs,
                warmup_lr=_WARMUP_LR,
                lr_decays=2,
                tol=self.tol,
                n_iter_no_change=self.n_iter_no_change,
                freeze_output_layer=self.freeze_output_layer,
                train=rows,
                validation=held_out,
                init=init,
                seed=seed,
                device=device,
                verbose=max(0, self.verbose - 1),
            )

        alpha, init, self.alpha_scores_, holdout = self.alpha, None, {}, None
        if self.alpha == "auto" and self.solver_ in ("lbfgs", "adam+lbfgs"):
            alpha, init, self.alpha_scores_, holdout = _alpha_path(
                train_net, X_fit, Ys, train, self.iota, seed
            )
            if holdout is not None:  # in the input's coordinates
                held, val_rows = holdout
                holdout = (_unwhiten(held, whitening), X64[val_rows], Ys[val_rows])
            if self.verbose:
                print(f"alpha='auto': alpha_={alpha:g}")
        elif self.alpha == "auto":
            alpha = _ALPHA_DEFAULT
        self.alpha_ = float(alpha)
        result = train_net(self.alpha_, train, validation, init)
        network = _unwhiten(
            {"W": result.W, "b": result.b, "a": result.a, "c": result.c}, whitening
        )
        self.coefs_ = [network["W"].T.copy(), network["a"]]
        self.intercepts_ = [network["b"], network["c"]]
        self.n_iter_ = int(result.n_iter)
        self.converged_ = bool(result.converged)
        self.grad_norm_ = float(result.grad_norm)
        self.min_eig_ = float(result.min_eig)
        self.certificate_samples_ = int(result.certificate_samples)
        self.loss_curve_ = [float(v) for v in result.loss_curve]
        self.validation_scores_ = list(result.validation_scores)
        self.best_validation_score_ = result.best_validation_score
        if not self.converged_:
            warnings.warn(
                f"{type(self).__name__} did not converge ({result.message}); "
                + (
                    "consider a smaller learning_rate."
                    if result.diverged
                    else f"consider increasing max_iter={self.max_iter} or tol."
                ),
                ConvergenceWarning,
            )
        self._read_subspace(X64, Y, X.dtype, holdout)
        return self

    @restore_on_interrupt
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y):
        """One epoch of minibatch Adam on (X, y), continuing the last fit.

        For data that does not fit in memory, or arrives in pieces (e.g.
        through :class:`dask_ml.wrappers.Incremental`): each call takes
        ``batch_size`` steps through the rows given, with Adam's moments
        kept between calls (as :meth:`MLPRegressor.partial_fit
        <sklearn.neural_network.MLPRegressor.partial_fit>` does). The first
        call initialises the network and fixes the target standardisation
        from its rows; after :meth:`fit`, a call continues from the fitted
        network. ``n_iter_`` counts the calls and ``loss_curve_`` holds the
        objective on each call's rows after its pass. No call certifies an
        SOSP: ``converged_`` is False, ``grad_norm_`` is the gradient norm on
        the call's rows (``certificate_samples_`` of them) and ``min_eig_``
        is NaN. The subspace is read from the call's rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Standardised inputs.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.

        Returns
        -------
        self : object
            The updated estimator.
        """
        from sklearn_derand import _sosp
        from sklearn_derand._sosp.network import adam_pass

        if self.whiten:
            raise ValueError(
                "whiten=True is not supported by partial_fit: whiten the "
                "stream beforehand (e.g. with sklearn.decomposition.PCA("
                "whiten=True) fitted on a sample)."
            )
        first = not hasattr(self, "coefs_")
        X, y = validate_data(
            self,
            X,
            y,
            dtype=[np.float64, np.float32],
            multi_output=True,
            y_numeric=True,
            reset=first,
        )
        Y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        if first:
            y_mean, y_scale = _mean_and_scale(Y)
            n_iter, loss_curve = 0, []
            seed = int(
                check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
            )
        elif Y.shape[1] != self.y_mean_.shape[0]:
            raise ValueError(
                f"y has {Y.shape[1]} outputs, but the network was fitted with "
                f"{self.y_mean_.shape[0]}."
            )
        state = getattr(self, "_adam_state", None)
        if state is None and not first:  # continue from fit(), fresh moments
            state = self._params()
        alpha = _ALPHA_DEFAULT if self.alpha == "auto" else float(self.alpha)
        if not first:
            y_mean, y_scale, n_iter = self.y_mean_, self.y_scale_, self.n_iter_
            loss_curve = list(self.loss_curve_)
            seed = getattr(self, "_partial_seed", 0)
        X64 = np.asarray(X, dtype=np.float64)
        state, loss, grad_norm = adam_pass(
            state,
            X64,
            (Y - y_mean) / y_scale,
            n_hidden=self.n_hidden,
            alpha=alpha,
            iota=self.iota,
            lr=1e-3 if self.learning_rate is None else self.learning_rate,
            batch_size=self.batch_size,
            freeze_output_layer=self.freeze_output_layer,
            seed=seed + n_iter,
            device=_sosp.resolve_device(self.device),
        )
        if not (np.isfinite(loss) and all(np.isfinite(state[k]).all() for k in "Wbac")):
            raise ValueError(
                "partial_fit diverged (the objective is not finite); the "
                "previous network is kept: use a smaller learning_rate or "
                "standardise X."
            )
        if first:
            self._y_1d = y.ndim == 1
        self.y_mean_, self.y_scale_, self._partial_seed = y_mean, y_scale, seed
        self._adam_state = state
        self.coefs_ = [state["W"].T.copy(), state["a"].copy()]
        self.intercepts_ = [state["b"].copy(), state["c"].copy()]
        self.n_iter_ = n_iter + 1
        self.loss_curve_ = [*loss_curve, loss]
        self.converged_ = False
        self.grad_norm_ = float(grad_norm)
        self.min_eig_ = float("nan")
        self.certificate_samples_ = len(X64)
        self.solver_ = "adam"
        self.alpha_ = alpha
        self.alpha_scores_ = {}
        self.validation_scores_ = []
        self.best_validation_score_ = None
        self._read_subspace(X64, Y, X.dtype)
        return self

    def _params(self):
        """The fitted network as the dict ``W, b, a, c`` (W of n_hidden rows)."""
        return {
            "W": self.coefs_[0].T,
            "b": self.intercepts_[0],
            "a": self.coefs_[1],
            "c": self.intercepts_[1],
        }

    def _read_subspace(self, X, Y, dtype, holdout=None):
        """Directions, spectrum and dimension of the learned subspace.

        ``holdout``, when given, is ``(params, X_held, Y_held)``: a network
        fitted without the rows ``X_held`` (standardised targets
        ``Y_held``), on which ``n_components="auto"`` is chosen; otherwise
        it is chosen on (up to 5,000 of) the training rows.
        """
        params = self._params()
        values, directions = _subspace_directions(params, X, self.iota, self.subspace)
        n_features = X.shape[1]
        values = np.r_[values, np.zeros(max(0, n_features - len(values)))]
        if self.n_components != "auto":
            k = self.n_components
        elif holdout is not None:
            held, X_held, Y_held = holdout
            _, held_directions = _subspace_directions(held, X, self.iota, self.subspace)
            k = _smallest_sufficient_k(
                held,
                X_held,
                Y_held,
                self.iota,
                held_directions,
                cap=min(n_features, self.n_hidden),
            )
        else:
            rows = slice(0, min(len(X), _K_SAMPLES))
            k = _smallest_sufficient_k(
                params,
                X[rows],
                (np.asarray(Y[rows]) - self.y_mean_) / self.y_scale_,
                self.iota,
                directions,
                cap=min(n_features, self.n_hidden),
            )
        self.n_components_ = int(k)
        self.components_ = directions[:k].astype(dtype, copy=True)
        self.singular_values_ = values
        self._n_features_out = self.n_components_

    def _forward(self, X):
        """Outputs on the standardised scale, a chunk of rows at a time."""
        params = self._params()
        rows = max(64, _PREDICT_CHUNK_BYTES // (8 * (params["W"].shape[0] + 1)))
        out = np.empty((X.shape[0], params["a"].shape[1]))
        for lo in range(0, X.shape[0], rows):
            chunk = np.asarray(X[lo : lo + rows], dtype=np.float64)
            out[lo : lo + rows] = _network_output(params, chunk, self.iota)
        return out

    def predict(self, X):
        """Predict with the trained network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Standardised inputs.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Predictions (1-d if fitted on a 1-d target).
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        Y = self._forward(X) * self.y_scale_ + self.y_mean_
        Y = Y.astype(X.dtype, copy=False)
        return Y.ravel() if self._y_1d else Y

    def score(self, X, y, sample_weight=None):
        """Coefficient of determination R^2 of the prediction.

        As :meth:`sklearn.base.RegressorMixin.score`, computed on the
        standardised target scale, which leaves R^2 unchanged and keeps
        targets near the float64 limit from overflowing its sums of squares.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Standardised inputs.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            True targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        score : float
            R^2 of ``self.predict(X)`` against ``y`` (averaged uniformly over
            outputs).
        """
        from sklearn.metrics import r2_score

        y_pred = self.predict(X)
        y = np.asarray(y, dtype=np.float64)
        scale = self.y_scale_ if y.ndim > 1 else self.y_scale_[0]
        return r2_score(y / scale, y_pred / scale, sample_weight=sample_weight)

    def transform(self, X):
        """Project X onto the learned subspace.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Standardised inputs.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
            Coordinates in the learned subspace (``X @ components_.T``).
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return X @ self.components_.T.astype(X.dtype, copy=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
