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


# solver="auto" trains with full-batch L-BFGS up to this many training rows
# and with minibatch Adam above (see the user guide's Cost section).
_LBFGS_MAX_SAMPLES = 20_000
# predict runs over chunks of rows whose hidden activations take about this
# many bytes.
_PREDICT_CHUNK_BYTES = 32 * 2**20


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


def _largest_gap(values, cap):
    """k at the largest ratio values[k-1] / values[k] (k < cap)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size < 2 or values[0] <= 0:
        return 1
    significant = int(np.sum(values > values[0] * 1e-8))
    m = min(cap, significant)
    if m < 2:
        return 1
    ratios = values[: m - 1] / np.maximum(values[1:m], values[0] * 1e-12)
    return int(np.argmax(ratios)) + 1


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
    alpha : float, default=3e-3
        Ridge on the first layer (the paper's lambda). The part of W
        orthogonal to the index subspace shrinks through it; tune it with
        ``GridSearchCV``. In ``benchmarks/bench_subspace.py`` (d=100,
        n=10,000), 3e-3 recovers the subspace on all its models with a
        singular-value gap of W above 5, 1e-3 with a gap of about 5 and
        1e-4 without a gap; the held-out R^2 is the same from 1e-3 to 4e-3.
    iota : float, default=4.0
        Sharpness of the smoothed ReLU (ReLU as iota -> infinity).
    n_components : int or "auto", default="auto"
        Dimension of the subspace returned by :meth:`transform`. ``"auto"``
        cuts the chosen spectrum (see ``subspace``) at its largest ratio
        between consecutive values.
    subspace : {"gradients", "weights"}, default="gradients"
        How the subspace is read from the fitted network. ``"weights"``: top
        right singular vectors of W (the paper's claim). ``"gradients"``: top
        eigenvectors of the expected outer product of the fitted function's
        input gradients, ``E[grad f(x) grad f(x)^T]`` over the training
        inputs, robust to a part of W that has not fully collapsed (lower
        error in the benchmark).
    solver : {"lbfgs", "adam", "pgd", "hessian_descent", "gd"}, default="lbfgs"
        SOSP backend method. ``"lbfgs"``, ``"pgd"``, ``"hessian_descent"``
        and ``"gd"`` are full batch; ``"adam"`` takes minibatch steps.
        ``"pgd"`` and ``"hessian_descent"`` are the paper's methods; the
        part of W off the subspace shrinks like ``exp(-lr * alpha * t)``
        under them, so they need ``learning_rate * alpha * max_iter`` of a
        few units to show structure. L-BFGS (default) measured best.
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
        Norm of the full objective's gradient at the end.
    min_eig_ : float
        Smallest Hessian eigenvalue estimate (Lanczos) there.
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
        "alpha": [Interval(Real, 0, None, closed="left")],
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
        "random_state": ["random_state"],
        "device": [str],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_hidden=64,
        *,
        alpha=3e-3,
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
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

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
        if self.solver == "auto":
            self.solver_ = "lbfgs" if n_train <= _LBFGS_MAX_SAMPLES else "adam"
        result = fit_network(
            X64,
            Ys,
            n_hidden=self.n_hidden,
            alpha=self.alpha,
            iota=self.iota,
            solver=self.solver_,
            max_iter=self.max_iter,
            lr=self.learning_rate,
            batch_size=self.batch_size,
            tol=self.tol,
            n_iter_no_change=self.n_iter_no_change,
            freeze_output_layer=self.freeze_output_layer,
            train=train,
            validation=validation,
            seed=seed,
            device=device,
            verbose=self.verbose,
        )
        self.coefs_ = [result.W.T.copy(), result.a]
        self.intercepts_ = [result.b, result.c]
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
        self._read_subspace(X64, X.dtype)
        return self

    def _input_gradients(self, X):
        """Gradients of the (standardised) outputs w.r.t. x: (n, n_outputs, d)."""
        W, a = self.coefs_[0].T, self.coefs_[1]
        z = X @ W.T + self.intercepts_[0]
        slope = 0.5 * (1.0 + np.tanh(0.5 * self.iota * z))  # ReLU_iota'(z)
        return np.einsum("nh,ho,hd->nod", slope, a, W)

    def _read_subspace(self, X, dtype):
        W = self.coefs_[0].T
        if self.subspace == "weights":
            _, values, Vt = np.linalg.svd(W, full_matrices=True)
            directions = Vt
        else:
            sample = X[: min(len(X), 5000)]
            G = self._input_gradients(sample).reshape(-1, X.shape[1])
            egop = G.T @ G / len(sample)
            eigvals, Q = np.linalg.eigh(egop)
            values = np.sqrt(np.clip(eigvals[::-1], 0.0, None))
            directions = Q[:, ::-1].T
        n_features = X.shape[1]
        values = np.r_[values, np.zeros(max(0, n_features - len(values)))]
        if self.n_components == "auto":
            k = _largest_gap(values, cap=min(n_features, self.n_hidden))
        else:
            k = self.n_components
        self.n_components_ = int(k)
        self.components_ = directions[:k].astype(dtype, copy=True)
        self.singular_values_ = values
        self._n_features_out = self.n_components_

    def _forward(self, X):
        """Outputs on the standardised scale, a chunk of rows at a time."""
        W, a = self.coefs_[0], self.coefs_[1]
        rows = max(64, _PREDICT_CHUNK_BYTES // (8 * (W.shape[1] + 1)))
        out = np.empty((X.shape[0], a.shape[1]))
        for lo in range(0, X.shape[0], rows):
            chunk = np.asarray(X[lo : lo + rows], dtype=np.float64)
            z = self.iota * (chunk @ W + self.intercepts_[0])
            hidden = np.logaddexp(z, 0.0, out=z) / self.iota
            out[lo : lo + rows] = hidden @ a + self.intercepts_[1]
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
