"""Saddle-escaping minimisation to a certified second-order stationary point.

All methods share one loop and one stopping rule: when the (full) gradient
norm is at most ``rho``, the curvature certificate of
:mod:`~sklearn_derand._sosp.curvature` is computed at that point; the run
stops with ``converged=True`` only if it says "sosp". What happens when it
finds negative curvature is what distinguishes the methods:

* ``"gd"`` — nothing: plain gradient descent, the reference that can stall
  at a strict saddle (it then never reports convergence there);
* ``"pgd"`` — perturbed gradient descent (Jin, Ge, Netrapalli, Kakade &
  Jordan, 2017): a uniform perturbation in a ball of radius
  ``perturbation_radius``, then ``t_thres`` steps before the next one;
* ``"hessian_descent"`` — a step along the Lanczos direction of negative
  curvature (sign chosen to descend), of length ``2 |lambda| / K`` (the
  minimiser of the cubic model, ``neg_curvature_step="cubic"``) or
  ``3 sqrt(rho) / K`` (``"paper"``), backtracked until the objective
  decreases;
* ``"adam"`` — Adam steps with the same perturbation rule as ``"pgd"``: the
  practical choice for stochastic objectives (``stochastic_fun``);
* ``"lbfgs"`` — limited-memory BFGS (two-loop recursion, Armijo
  backtracking) with the same perturbation rule; the history is cleared at
  each perturbation. Fast on smooth deterministic objectives.

Jin et al. detect saddles by waiting ``t_thres`` steps after a perturbation
and checking the decrease of f; a handful of Lanczos Hessian-vector products
at the candidate point answers the same question for far fewer iterations,
so that is the rule used here.
"""

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from sklearn_derand._sosp._utils import flatten, randn, unflattener
from sklearn_derand._sosp.curvature import certify_flat

__all__ = ["METHODS", "IterationInfo", "SOSPResult", "minimize"]

METHODS = ("gd", "pgd", "hessian_descent", "adam", "lbfgs")

# Progress hooks for the command line: a callable taking (n_iter, loss) and
# one taking a phase name, set through :func:`progress_hook` only; library
# code leaves them None.
_PROGRESS = None
_PHASE = None


def progress_hook(fn, phase=None):
    """Set (or clear, with None) the per-iteration progress callable and the
    callable told when a new phase of a fit begins."""
    global _PROGRESS, _PHASE
    _PROGRESS, _PHASE = fn, phase


def report_phase(name):
    """Tell the progress display, if there is one, that ``name`` began."""
    if _PHASE is not None:
        _PHASE(name)


@dataclass
class SOSPResult:
    """Result of :func:`minimize`.

    Attributes
    ----------
    params : dict of str to torch.Tensor
        Final parameters (detached), shaped like the input.
    n_iter : int
        Iterations: points at which the objective was evaluated by the main
        loop (one entry of ``loss_curve`` each), including the final one
        when the run stops on a certificate or a callback.
    converged : bool
        True only if the final point was certified a rho-SOSP.
    grad_norm, min_eig : float
        Gradient norm and smallest Ritz value of the Hessian at the end.
    n_grad, n_hvp : int
        Gradient evaluations (of ``fun`` and ``stochastic_fun``) and
        Hessian-vector products.
    n_perturbations : int
        Perturbations or negative-curvature steps taken.
    loss_curve : list of float
        Objective value at each iteration (the minibatch value when a
        ``stochastic_fun`` drives the steps).
    message : str
        Why the run stopped.
    certificate : Certificate
        The last certificate (at the final point).
    time : float
        Wall-clock seconds.
    """

    params: dict
    n_iter: int
    converged: bool
    grad_norm: float
    min_eig: float
    n_grad: int
    n_hvp: int
    n_perturbations: int
    loss_curve: list = field(repr=False)
    message: str
    certificate: object = field(repr=False)
    time: float = 0.0


@dataclass
class IterationInfo:
    """What a ``callback`` sees at each iteration, before the step."""

    n_iter: int
    loss: float
    grad_norm: float | None
    params: dict = field(repr=False)


def _value_and_grad(fun, x):
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        f = fun(x)
        (g,) = torch.autograd.grad(f, x, allow_unused=True)
    if g is None:
        g = torch.zeros_like(x)
    return f.detach(), g


def _uniform_ball(n, radius, generator, dtype, device):
    direction = randn(n, generator=generator, dtype=dtype, device=device)
    direction = direction / torch.linalg.vector_norm(direction)
    u = float(torch.rand(1, generator=generator, dtype=torch.float64))
    return radius * u ** (1.0 / n) * direction


def _negative_curvature_step(
    fun, x, g, cert, *, step, rho, hessian_lipschitz, generator
):
    """Descend along the certificate's direction, backtracking on f."""
    v = cert.direction
    slope = float(torch.dot(g, v))
    if slope == 0.0:
        sign = 1.0 if float(torch.rand(1, generator=generator)) < 0.5 else -1.0
    else:
        sign = -math.copysign(1.0, slope)
    if step == "cubic":
        eta = 2.0 * abs(cert.min_eig) / hessian_lipschitz
    else:
        eta = 3.0 * math.sqrt(rho) / hessian_lipschitz
    with torch.no_grad():
        f0 = float(fun(x))
        for direction in (sign, -sign):
            t = eta
            for _ in range(40):
                candidate = x + direction * t * v
                if float(fun(candidate)) < f0:
                    return candidate
                t /= 2.0
    return x


class _LBFGSMemory:
    """Curvature pairs (s, y) of L-BFGS and the product of its inverse
    Hessian approximation with a vector.

    The product is that of the two-loop recursion (Nocedal and Wright,
    Algorithm 7.4, with ``H0 = gamma I``, ``gamma = s.y / y.y`` of the
    newest pair), written with the pairs' dot products: for ``q0 = -g``,
    ``a_i = rho_i (s_i.q0 - sum_{j > i} a_j s_i.y_j)``, ``b_i = rho_i (gamma
    (y_i.q0 - sum_j a_j y_i.y_j) + sum_{j < i} (a_j - b_j) s_j.y_i)`` and
    ``-H g = gamma (q0 - Y^T a) + S^T (a - b)``. The pairs are rows of one
    buffer and their dot products are kept as each pair arrives, so a
    product is two matrix-vector products with the buffer, where the loops
    took 4m vector operations (JL fits of sklearn's sparse setting, 10,000
    parameters, m = 10: update and product together 0.13 against 0.42 ms).
    The same iterates up to rounding. With ``size=0`` nothing is kept and
    the product is ``-g``.
    """

    def __init__(self, size):
        self.size = size
        self.buffer = None  # (size, 2, n): s and y of the pair in slot t
        self.order = []  # the pairs' slots, oldest first
        # In pair order (oldest first): 1 / s.y, s_i . y_j and y_i . y_j.
        self.rho = np.zeros(size)
        self.sy = np.zeros((size, size))
        self.yy = np.zeros((size, size))

    def __len__(self):
        return len(self.order)

    def clear(self):
        self.order = []

    def update(self, s, y):
        sy = float(torch.dot(s, y))
        if sy <= 1e-10 * float(
            torch.linalg.vector_norm(s) * torch.linalg.vector_norm(y)
        ):
            return
        if self.size == 0:
            return
        if self.buffer is None:
            self.buffer = s.new_empty((self.size, 2, s.numel()))
        m = len(self.order)
        if m == self.size:  # forget the oldest pair
            slot = self.order.pop(0)
            m -= 1
            self.sy[:m, :m] = self.sy[1:, 1:]
            self.yy[:m, :m] = self.yy[1:, 1:]
            self.rho[:m] = self.rho[1:]
        else:
            slot = m  # slots 0 .. m - 1 are taken
        self.order.append(slot)
        self.buffer[slot, 0] = s
        self.buffer[slot, 1] = y
        # Every kept s and y against the new s and y, in pair order (two
        # matrix-vector products: 20 against 70 us for one with [s, y]).
        rows = self.buffer[: m + 1].reshape(2 * m + 2, -1)
        with_s = (rows @ s).reshape(m + 1, 2).cpu().numpy()[self.order]
        with_y = (rows @ y).reshape(m + 1, 2).cpu().numpy()[self.order]
        self.sy[: m + 1, m] = with_y[:, 0]  # s_i . y_new
        self.sy[m, : m + 1] = with_s[:, 1]  # s_new . y_j
        self.yy[: m + 1, m] = self.yy[m, : m + 1] = with_y[:, 1]
        self.sy[m, m] = sy
        self.rho[m] = 1.0 / sy

    def direction(self, g):
        """``-H g``."""
        m = len(self.order)
        if m == 0:
            return -g
        rows = self.buffer[:m].reshape(2 * m, -1)
        # s_i . q0 and y_i . q0 in pair order, q0 = -g.
        proj = -(rows @ g).reshape(m, 2).cpu().numpy()[self.order]
        # The two triangular recurrences, m^2 / 2 scalar steps each, in
        # Python floats (numpy's and scipy's per-call costs dominate them).
        sy, rho, sq = self.sy[:m, :m].tolist(), self.rho[:m].tolist(), proj[:, 0]
        a = [0.0] * m
        for i in range(m - 1, -1, -1):
            row, acc = sy[i], sq[i]
            for j in range(i + 1, m):
                acc -= a[j] * row[j]
            a[i] = rho[i] * acc
        yy = self.yy[:m, :m]
        gamma = sy[-1][-1] / yy[-1, -1]
        yr = (gamma * (proj[:, 1] - yy @ np.array(a))).tolist()
        b = [0.0] * m
        for i in range(m):
            acc = yr[i]
            for j in range(i):
                acc += (a[j] - b[j]) * sy[j][i]
            b[i] = rho[i] * acc
        a, b = np.array(a), np.array(b)
        coef = np.empty((m, 2))
        coef[self.order, 0] = a - b
        coef[self.order, 1] = -gamma * a
        coef = torch.as_tensor(coef.reshape(-1), dtype=g.dtype, device=g.device)
        return torch.addmv(g, rows.T, coef, beta=-gamma)


def _armijo(fun, value_and_grad, x, f0, g, direction, t, c1=1e-4, max_halvings=40):
    """Backtracking line search; returns the accepted point (x if none) and
    ``(value, gradient)`` there when the first trial was accepted (else
    None). ``value_and_grad(z)`` gives both at z, ``fun(z)`` the value.

    The first trial, nearly always accepted by L-BFGS, is evaluated with its
    gradient, which the next iteration needs at exactly that point: one
    objective evaluation per iteration instead of two. Backtracking trials
    are evaluated without gradients.
    """
    slope = float(torch.dot(g, direction))
    candidate = x + t * direction
    value, grad = value_and_grad(candidate)
    if math.isfinite(float(value)) and float(value) <= f0 + c1 * t * slope:
        return candidate, (value, grad)
    with torch.no_grad():
        for _ in range(max_halvings - 1):
            t *= 0.5
            candidate = x + t * direction
            value = float(fun(candidate))
            if math.isfinite(value) and value <= f0 + c1 * t * slope:
                return candidate, None
    return x, None


def _nan_if_none(value):
    return math.nan if value is None else float(value)


def minimize(
    fun,
    params,
    *,
    method="adam",
    rho=1e-4,
    hessian_lipschitz=1.0,
    smoothness=None,
    max_iter=1000,
    lr=None,
    betas=(0.9, 0.999),
    adam_eps=1e-8,
    perturbation_radius=None,
    t_thres=20,
    neg_curvature_step="cubic",
    max_lanczos=50,
    delta=0.01,
    require_rigorous=False,
    stochastic_fun=None,
    stochastic_value_and_grad=None,
    check_every=1,
    history_size=10,
    lr_scale=None,
    generator=None,
    callback=None,
    certify_at_end=True,
    value_and_grad=None,
    certificate_parts=None,
    lr_schedule=None,
):
    """Minimise ``fun`` to a certified rho-second-order stationary point.

    Parameters
    ----------
    fun : callable
        ``params -> scalar tensor``: the (deterministic) objective whose
        SOSP is sought. Twice differentiable.
    params : dict of str to torch.Tensor
        Starting point. Not modified.
    method : {"gd", "pgd", "hessian_descent", "adam"}, default="adam"
    rho : float, default=1e-4
        Gradient tolerance; the curvature threshold is ``-sqrt(K rho)``.
    hessian_lipschitz : float, default=1.0
        K, the Hessian-Lipschitz constant (sets the curvature threshold and
        the negative-curvature step).
    smoothness : float, optional
        A proven bound on ``||Hess f||``; makes the certificate rigorous.
        For gradient methods it also sets the default step ``1 / smoothness``.
    max_iter : int, default=1000
    lr : float, optional
        Step size. Defaults: ``1e-3`` for Adam, ``1`` for L-BFGS (the
        initial trial step of its line search; the first step is normalised
        to length ``lr``), ``1 / smoothness`` or ``1e-2`` for the gradient
        methods.
    betas, adam_eps :
        Adam's moment decay rates and denominator constant.
    perturbation_radius : float, optional
        Radius of the uniform-ball perturbation of "pgd" / "adam". Defaults
        to ``rho``.
    t_thres : int, default=20
        Iterations after a perturbation (or an inconclusive certificate)
        before the curvature is checked again.
    neg_curvature_step : {"cubic", "paper"}, default="cubic"
        Step length of "hessian_descent" along negative curvature.
    max_lanczos, delta, require_rigorous :
        Passed to the certificate; with ``require_rigorous=True`` a heuristic
        "sosp" verdict does not stop the run.
    stochastic_fun : callable, optional
        ``(params, n_iter) -> scalar tensor`` driving the steps (e.g. a
        minibatch loss); ``fun`` is then evaluated every ``check_every``
        iterations for the stopping rule and the certificate.
    stochastic_value_and_grad : callable, optional
        ``(params, n_iter) -> (value, grads)``: ``stochastic_fun`` with its
        gradient computed by the caller (``grads`` a dict shaped like
        ``params``); either may be given.
    check_every : int, default=1
    history_size : int, default=10
        Number of curvature pairs kept by L-BFGS.
    lr_scale : dict of str to float, optional
        Per-parameter multipliers of the step size of the first-order
        methods ("gd", "pgd", "hessian_descent", "adam"), e.g. to let a
        scalar noise scale move faster than a large matrix.
    generator : torch.Generator, optional
        The only source of randomness (Lanczos starts, perturbations).
    callback : callable, optional
        Called with an :class:`IterationInfo` each iteration; a truthy return
        stops the run (message "stopped by callback").
    certify_at_end : bool, default=True
        Certify the final point when the run ended without a certificate
        there (max_iter, callback). ``False`` skips it, for callers that
        certify a different point themselves (e.g. a best iterate); the
        result then has ``min_eig`` NaN and the last gradient norm seen.
    value_and_grad : callable, optional
        ``params -> (value, grads)``, ``grads`` a dict shaped like
        ``params``: ``fun`` and its gradient computed by the caller (e.g. in
        closed form), used for the steps instead of autograd through
        ``fun``, which still gives the values alone (line search trials) and
        the certificate's derivatives.
    lr_schedule : callable, optional
        ``n_iter -> float``: a multiplier of Adam's step size at each
        iteration (e.g. lowered by a callback when the objective stalls).
    certificate_parts : list of callable, optional
        Functions ``params -> scalar tensor`` whose sum is the objective the
        certificate checks, differentiated one at a time so that its
        Hessian-vector products need the memory of one part (e.g. ``fun``'s
        terms over chunks of data, or over a subsample of them: the
        certificate then certifies that sum). Default: ``[fun]``.

    Returns
    -------
    SOSPResult
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    if neg_curvature_step not in ("cubic", "paper"):
        raise ValueError("neg_curvature_step must be 'cubic' or 'paper'.")
    if rho <= 0 or hessian_lipschitz <= 0:
        raise ValueError("rho and hessian_lipschitz must be positive.")
    if max_iter < 0:
        raise ValueError("max_iter must be non-negative.")
    if not isinstance(params, dict):
        raise TypeError("params must be a dict of tensors.")
    start = time.perf_counter()
    x, _ = flatten(params)
    unflatten = unflattener(params)
    n = x.numel()

    def flat_fun(z):
        return fun(unflatten(z))

    if value_and_grad is None:

        def flat_value_and_grad(z):
            return _value_and_grad(flat_fun, z)

    else:

        def flat_value_and_grad(z):
            value, grads = value_and_grad(unflatten(z))
            flat = torch.cat([grads[name].reshape(-1) for name in params])
            return value.detach(), flat

    flat_stochastic = None
    if stochastic_fun is not None or stochastic_value_and_grad is not None:
        if stochastic_fun is None:

            def stochastic_fun(p, it):
                return stochastic_value_and_grad(p, it)[0]

        def flat_stochastic(z, it):
            return stochastic_fun(unflatten(z), it)

    if stochastic_value_and_grad is not None:

        def stochastic_step_value_and_grad(z, it):
            value, grads = stochastic_value_and_grad(unflatten(z), it)
            flat = torch.cat([grads[name].reshape(-1) for name in params])
            return value.detach(), flat

    elif stochastic_fun is not None:

        def stochastic_step_value_and_grad(z, it):
            return _value_and_grad(lambda w: flat_stochastic(w, it), z)

    if method == "lbfgs" and flat_stochastic is not None:
        raise ValueError("method='lbfgs' needs a deterministic objective.")
    if lr is None:
        if method == "lbfgs":
            lr = 1.0
        elif method == "adam":
            lr = 1e-3
        else:
            lr = 1.0 / smoothness if smoothness is not None else 1e-2
    radius = rho if perturbation_radius is None else perturbation_radius
    cert_kwargs = {
        "parts": None
        if certificate_parts is None
        else [(lambda z, part=part: part(unflatten(z))) for part in certificate_parts],
        "hessian_lipschitz": hessian_lipschitz,
        "smoothness": smoothness,
        "max_lanczos": max_lanczos,
        "delta": delta,
        "generator": generator,
    }
    m1 = torch.zeros_like(x)
    m2 = torch.zeros_like(x)
    adam_t = 0
    memory = _LBFGSMemory(history_size)
    prev_x = prev_g = None
    step = torch.full_like(x, float(lr))
    if lr_scale:
        unknown = set(lr_scale) - set(params)
        if unknown:
            raise ValueError(f"lr_scale names unknown parameters {sorted(unknown)}.")
        views = unflatten(step)
        for name, factor in lr_scale.items():
            views[name].mul_(float(factor))
    loss_curve = []
    n_grad = n_hvp = n_perturbations = 0
    next_check = 0
    converged = False
    grad_norm = None
    message = f"reached max_iter={max_iter} without a certified SOSP"
    cert = None
    cert_at_x = False
    it = 0
    accepted = None  # (point, value, gradient) from the line search
    while it < max_iter:
        if flat_stochastic is None:
            if accepted is not None and accepted[0] is x:
                f, g = accepted[1], accepted[2]
            else:
                f, g = flat_value_and_grad(x)
            n_grad += 1
            full_g = g
        else:
            f, g = stochastic_step_value_and_grad(x, it)
            n_grad += 1
            full_g = None
            if it % check_every == 0:
                _, full_g = flat_value_and_grad(x)
                n_grad += 1
        loss = float(f)
        loss_curve.append(loss)
        if not math.isfinite(loss):
            message = f"objective is not finite ({loss}) at iteration {it}"
            break
        grad_norm = None if full_g is None else float(torch.linalg.vector_norm(full_g))
        if _PROGRESS is not None:
            _PROGRESS(it, loss)
        if callback is not None and callback(
            IterationInfo(it, loss, grad_norm, unflatten(x.detach()))
        ):
            message = "stopped by callback"
            break
        cert_at_x = False
        if grad_norm is not None and grad_norm <= rho and it >= next_check:
            cert = certify_flat(flat_fun, x, rho, **cert_kwargs)
            cert_at_x = True
            n_hvp += cert.n_hvp
            n_grad += 1
            if cert.verdict == "sosp" and (cert.rigorous or not require_rigorous):
                converged = True
                message = "certified rho-SOSP"
                break
            if cert.verdict == "negative_curvature" and method != "gd":
                if method == "hessian_descent":
                    x = _negative_curvature_step(
                        flat_fun,
                        x,
                        full_g,
                        cert,
                        step=neg_curvature_step,
                        rho=rho,
                        hessian_lipschitz=hessian_lipschitz,
                        generator=generator,
                    )
                else:
                    x = x + _uniform_ball(n, radius, generator, x.dtype, x.device)
                    next_check = it + t_thres
                memory.clear()
                prev_x = None
                n_perturbations += 1
                it += 1
                continue
            next_check = it + t_thres
        # First-order step.
        if method == "adam":
            adam_t += 1
            m1.mul_(betas[0]).add_(g, alpha=1.0 - betas[0])
            m2.mul_(betas[1]).addcmul_(g, g, value=1.0 - betas[1])
            m1_hat = m1 / (1.0 - betas[0] ** adam_t)
            m2_hat = m2 / (1.0 - betas[1] ** adam_t)
            factor = 1.0 if lr_schedule is None else float(lr_schedule(it))
            x = x - (factor * step) * m1_hat / (m2_hat.sqrt() + adam_eps)
        elif method == "lbfgs":
            if prev_x is not None:
                memory.update(x - prev_x, g - prev_g)
            direction = memory.direction(g)
            if not len(memory) or float(torch.dot(direction, g)) >= 0.0:
                memory.clear()
                gnorm = float(torch.linalg.vector_norm(g))
                direction = -g / max(gnorm, 1e-300)
                t0 = lr
            else:
                t0 = 1.0
            prev_x, prev_g = x, g
            x_new, at_new = _armijo(
                flat_fun, flat_value_and_grad, x, loss, g, direction, t0
            )
            accepted = None if at_new is None else (x_new, *at_new)
            if x_new is x:
                # No decrease along a descent direction: numerically stuck.
                message = "line search failed (no further decrease possible)"
                it += 1
                break
            x = x_new
        else:
            x = x - step * g
        it += 1
    if not cert_at_x and certify_at_end:
        cert = certify_flat(flat_fun, x, rho, **cert_kwargs)
        n_hvp += cert.n_hvp
        n_grad += 1
        saddle = cert.verdict == "negative_curvature" and cert.grad_norm <= rho
        if not converged and saddle:
            message += "; the final point is a saddle (negative curvature)"
    elif not cert_at_x:
        cert = None
    return SOSPResult(
        params={k: v.detach().clone() for k, v in unflatten(x).items()},
        n_iter=len(loss_curve),
        converged=converged,
        grad_norm=cert.grad_norm if cert else _nan_if_none(grad_norm),
        min_eig=cert.min_eig if cert else math.nan,
        n_grad=n_grad,
        n_hvp=n_hvp,
        n_perturbations=n_perturbations,
        loss_curve=loss_curve,
        message=message,
        certificate=cert,
        time=time.perf_counter() - start,
    )
