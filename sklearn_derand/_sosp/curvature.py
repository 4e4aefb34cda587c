"""Hessian-vector products, Lanczos and the second-order certificate.

A point x is a rho-SOSP of f when ||grad f(x)|| <= rho and
lambda_min(Hess f(x)) >= -sqrt(K rho), K the Hessian-Lipschitz constant.
The gradient half is a number. The curvature half is checked with Lanczos on
Hessian-vector products started from a random unit vector:

* a Ritz value below -sqrt(K rho) *proves* negative curvature (Ritz values
  never go below lambda_min);
* the converse is probabilistic. Kuczynski & Wozniakowski (1992): after m
  Lanczos steps from a uniformly random start, for a symmetric matrix with
  spectral width at most W, P[theta_min - lambda_min > eps W] <=
  1.648 sqrt(n) exp(-sqrt(eps) (2m - 1)). With a proven bound ||H|| <= L
  (``smoothness``), W <= 2L and the certificate is *rigorous* with that
  failure probability. Without one, W is estimated from the Ritz values and
  the certificate is *heuristic*: clustered small eigenvalues at a trained
  point can hide below a converged-looking Ritz value.
"""

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.linalg import eigh_tridiagonal

from sklearn_derand._sosp._utils import flatten, randn, unflattener

__all__ = ["Certificate", "certify", "hessian_vector_product", "lanczos"]

VERDICTS = ("sosp", "negative_curvature", "not_stationary", "inconclusive")
_MIN_HEURISTIC_STEPS = 10


@dataclass
class Certificate:
    """Outcome of :func:`certify` at one point.

    Attributes
    ----------
    verdict : {"sosp", "negative_curvature", "not_stationary", "inconclusive"}
        ``"sosp"``: gradient and curvature conditions hold;
        ``"negative_curvature"``: a direction of curvature below the
        threshold was found (a proof, see ``direction``);
        ``"not_stationary"``: curvature is fine but the gradient is above
        ``rho``; ``"inconclusive"``: Lanczos did not settle the curvature.
    grad_norm : float
    min_eig : float
        Smallest Ritz value: an upper bound on lambda_min of the Hessian.
    residual : float
        ``||H y - min_eig y||`` for the Ritz vector y: some eigenvalue lies
        within this distance of ``min_eig``.
    threshold : float
        ``-sqrt(K rho)``.
    rigorous : bool
        Whether the curvature verdict is proved (negative curvature found,
        an invariant Krylov subspace, or a Kuczynski-Wozniakowski bound with
        a proven spectral bound) rather than heuristic.
    failure_probability : float or None
        Bound on the probability that lambda_min is below ``threshold``
        although the verdict says otherwise (0 for an exact Krylov space);
        None when negative curvature was found.
    n_hvp : int
        Hessian-vector products used.
    direction : torch.Tensor or None
        Unit Ritz vector of ``min_eig`` (flat), for escaping saddles.
    """

    verdict: str
    grad_norm: float
    min_eig: float
    residual: float
    threshold: float
    rigorous: bool
    failure_probability: float | None
    n_hvp: int
    direction: torch.Tensor | None = field(default=None, repr=False)

    @property
    def is_sosp(self):
        return self.verdict == "sosp"


def hessian_vector_product(fun, x, parts=None):
    """Return ``(f, g, hvp)`` at flat ``x``: value, gradient and an HVP closure.

    The gradient graph is built once with ``create_graph=True`` and reused by
    every product (double backward). With ``parts``, a list of functions whose
    sum is the objective (e.g. its terms over chunks of data), each product
    is summed over the parts, one part's graph at a time: memory stays that
    of one part, at the price of recomputing each part's gradient per
    product.
    """
    if parts is not None:
        return _chunked_hessian_vector_product(parts, x)
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        f = fun(x)
        (g,) = torch.autograd.grad(f, x, create_graph=True, allow_unused=True)
    if g is None:
        g = torch.zeros_like(x)
    differentiable = g.requires_grad

    def hvp(v):
        if not differentiable:
            return torch.zeros_like(x)
        (hv,) = torch.autograd.grad(
            g, x, grad_outputs=v, retain_graph=True, allow_unused=True
        )
        return torch.zeros_like(x) if hv is None else hv.detach()

    return f.detach(), g.detach(), hvp


def _chunked_hessian_vector_product(parts, x):
    x = x.detach()
    f = torch.zeros((), dtype=x.dtype, device=x.device)
    g = torch.zeros_like(x)
    for part in parts:
        z = x.clone().requires_grad_(True)
        with torch.enable_grad():
            value = part(z)
            (gp,) = torch.autograd.grad(value, z, allow_unused=True)
        f += value.detach()
        if gp is not None:
            g += gp

    def hvp(v):
        out = torch.zeros_like(x)
        for part in parts:
            z = x.clone().requires_grad_(True)
            with torch.enable_grad():
                (gp,) = torch.autograd.grad(
                    part(z), z, create_graph=True, allow_unused=True
                )
                if gp is None or not gp.requires_grad:
                    continue
                (hv,) = torch.autograd.grad(gp, z, grad_outputs=v, allow_unused=True)
            if hv is not None:
                out += hv
        return out

    return f, g, hvp


@dataclass
class _LanczosState:
    theta: np.ndarray
    vectors: np.ndarray
    residual: float
    beta: float
    m: int


def lanczos(
    hvp, n, *, max_iter, generator=None, dtype=torch.float64, device="cpu", stop=None
):
    """Lanczos with full reorthogonalisation for the smallest eigenvalue.

    Parameters
    ----------
    hvp : callable
        ``v -> H v`` on flat tensors of length ``n``.
    n : int
        Dimension.
    max_iter : int
        Largest Krylov dimension (capped at ``n``).
    generator : torch.Generator, optional
        For the random start vector.
    stop : callable, optional
        ``state -> bool`` called after each step with the current Ritz data;
        True ends the iteration.

    Returns
    -------
    theta_min, ritz_vector, residual, n_hvp, exact, state
        ``exact`` is True when the Krylov space became invariant (or reached
        dimension n), so its Ritz values are eigenvalues of H; ``state``
        holds all Ritz values of the last step.
    """
    m_max = max(1, min(int(max_iter), n))
    Q = torch.empty((m_max, n), dtype=dtype, device=device)
    q = randn(n, generator=generator, dtype=dtype, device=device)
    Q[0] = q / torch.linalg.vector_norm(q)
    alphas, betas = [], []
    exact = False
    state = None
    for j in range(m_max):
        w = hvp(Q[j])
        if not bool(torch.isfinite(w).all()):
            # The Hessian is not finite here: nothing can be concluded.
            nan = np.array([np.nan])
            state = _LanczosState(nan, np.ones((1, 1)), np.nan, np.nan, j + 1)
            return np.nan, Q[0].clone(), np.nan, j + 1, False, state
        alphas.append(float(torch.dot(Q[j], w)))
        basis = Q[: j + 1]
        for _ in range(2):  # full reorthogonalisation, twice is enough
            w = w - basis.T @ (basis @ w)
        beta = float(torch.linalg.vector_norm(w))
        if j == 0:
            theta, S = np.array(alphas), np.ones((1, 1))
        else:
            theta, S = eigh_tridiagonal(np.array(alphas), np.array(betas))
        scale = max(float(np.max(np.abs(theta))), 1e-300)
        state = _LanczosState(
            theta=theta,
            vectors=S,
            residual=beta * abs(float(S[-1, 0])),
            beta=beta,
            m=j + 1,
        )
        if beta <= 1e-10 * scale or j + 1 == n:
            exact = True
            break
        if stop is not None and stop(state):
            break
        if j + 1 < m_max:
            betas.append(beta)
            Q[j + 1] = w / beta
    m = state.m
    s = torch.as_tensor(state.vectors[:, 0], dtype=dtype, device=device)
    y = s @ Q[:m]
    y = y / torch.linalg.vector_norm(y)
    return float(state.theta[0]), y, state.residual, m, exact, state


def _kw_failure_probability(n, m, gap, width):
    """Kuczynski-Wozniakowski bound for a random-start Lanczos of m steps."""
    if gap <= 0 or width <= 0:
        return 1.0
    exponent = -math.sqrt(gap / width) * (2 * m - 1)
    return min(1.0, 1.648 * math.sqrt(n) * math.exp(exponent))


def certify_flat(
    fun,
    x,
    rho,
    *,
    hessian_lipschitz=1.0,
    smoothness=None,
    max_lanczos=50,
    delta=0.01,
    generator=None,
    parts=None,
):
    """:func:`certify` on a flat parameter vector (used by the optimiser).

    ``parts``, when given, replaces ``fun``: functions of the flat vector
    whose sum is the objective, differentiated one at a time (see
    :func:`hessian_vector_product`).
    """
    rho = float(rho)
    if rho <= 0:
        raise ValueError(f"rho must be positive, got {rho}.")
    threshold = -math.sqrt(float(hessian_lipschitz) * rho)
    _, g, hvp = hessian_vector_product(fun, x, parts)
    grad_norm = float(torch.linalg.vector_norm(g))
    n = x.numel()

    def probability(state):
        gap = state.theta[0] - threshold
        if smoothness is not None:
            width = 2.0 * float(smoothness)
        else:
            # Heuristic: as if the spectrum were symmetric about 0 and no
            # wider than the Ritz values seen so far.
            width = 2.0 * (float(np.max(np.abs(state.theta))) + state.residual)
        return _kw_failure_probability(n, state.m, gap, width)

    # A width estimated from very few Ritz values is meaningless; never trust
    # it before a minimum Krylov dimension.
    min_steps = 1 if smoothness is not None else min(n, _MIN_HEURISTIC_STEPS)

    def stop(state):
        if state.theta[0] < threshold:
            # Proven already; refine the direction a little so a
            # negative-curvature step has a useful length and heading.
            converged = state.residual <= 0.1 * abs(state.theta[0])
            return converged or state.m >= min(n, _MIN_HEURISTIC_STEPS)
        return state.m >= min_steps and probability(state) <= delta

    theta, y, residual, n_hvp, exact, state = lanczos(
        hvp,
        n,
        max_iter=max_lanczos,
        generator=generator,
        dtype=x.dtype,
        device=x.device,
        stop=stop,
    )
    if not math.isfinite(theta):
        verdict, rigorous, prob = "inconclusive", False, None
    elif theta < threshold:
        verdict, rigorous, prob = "negative_curvature", True, None
    else:
        if exact:
            rigorous, prob, ok = True, 0.0, True
        else:
            prob = probability(state)
            rigorous = smoothness is not None and prob <= delta
            # Heuristic acceptance: the Ritz value has converged above the
            # threshold (an eigenvalue lies within the residual of it).
            ok = state.m >= min_steps and (
                prob <= delta or theta - residual >= threshold
            )
        if not ok:
            verdict = "inconclusive"
        else:
            verdict = "sosp" if grad_norm <= rho else "not_stationary"
    return Certificate(
        verdict=verdict,
        grad_norm=grad_norm,
        min_eig=theta,
        residual=residual,
        threshold=threshold,
        rigorous=rigorous,
        failure_probability=prob,
        n_hvp=n_hvp,
        direction=y,
    )


def certify(
    fun,
    params,
    rho,
    *,
    hessian_lipschitz=1.0,
    smoothness=None,
    max_lanczos=50,
    delta=0.01,
    generator=None,
    parts=None,
):
    """Check whether ``params`` is a rho-second-order stationary point of ``fun``.

    Parameters
    ----------
    fun : callable
        ``params -> scalar tensor``, twice differentiable.
    params : dict of str to torch.Tensor
        The point.
    rho : float
        Gradient tolerance; the curvature threshold is ``-sqrt(K rho)``.
    hessian_lipschitz : float, default=1.0
        K, the Hessian-Lipschitz constant of ``fun``.
    smoothness : float, optional
        A proven bound L on ``||Hess f||`` near the point. With it the
        certificate is rigorous (up to ``failure_probability``); without it
        the spectral width is estimated and the certificate is heuristic.
    max_lanczos : int, default=50
        Largest Krylov dimension; Lanczos stops earlier once the verdict is
        settled.
    delta : float, default=0.01
        Acceptable failure probability for a "no negative curvature" verdict.
    generator : torch.Generator, optional
        For the random Lanczos start.
    parts : list of callable, optional
        Functions ``params -> scalar tensor`` whose sum is the objective to
        certify, used instead of ``fun`` and differentiated one at a time
        (memory of one part; see :func:`hessian_vector_product`).

    Returns
    -------
    Certificate
    """
    x, _ = flatten(params)
    unflatten = unflattener(params)
    flat_parts = None
    if parts is not None:
        flat_parts = [(lambda z, part=part: part(unflatten(z))) for part in parts]
    return certify_flat(
        lambda z: fun(unflatten(z)),
        x,
        rho,
        hessian_lipschitz=hessian_lipschitz,
        smoothness=smoothness,
        max_lanczos=max_lanczos,
        delta=delta,
        generator=generator,
        parts=flat_parts,
    )
