"""Smooth surrogates used by the objectives: step, ReLU and normal CDFs.

Every function here is a torch function, differentiable twice (so the
curvature certificate can take Hessian-vector products through it).
"""

import math

import numpy as np
import torch

__all__ = [
    "FixedCorrelationBVN",
    "bivariate_normal_cdf",
    "norm_cdf",
    "norm_pdf",
    "sign_disagreement_probability",
    "smoothed_relu",
    "smoothed_step",
]

_SQRT_2PI = math.sqrt(2.0 * math.pi)
_TWO_PI = 2.0 * math.pi
# Gauss-Legendre rules on [-1, 1] for the bivariate normal CDF: Genz uses
# 6, 12 and 20 points for |r| < 0.3, < 0.75 and above.
_GL = {m: np.polynomial.legendre.leggauss(m) for m in (6, 12, 20)}


def smoothed_step(x, threshold=0.0, width=1.0):
    """C2 piecewise-cubic step: 0 below ``threshold``, 1 above ``threshold + width``.

    The step is the integral of the uniform quadratic B-spline supported on
    ``[threshold, threshold + width]``: three cubic pieces joined with
    matching value, slope and curvature, so it is twice continuously
    differentiable, monotone, and exactly 0 / 1 outside the ramp. Its slope is
    at most ``2.25 / width``, its curvature at most ``9 / width**2`` and its
    third derivative (the Hessian-Lipschitz constant) at most
    ``54 / width**3``.

    Parameters
    ----------
    x : torch.Tensor
        Points at which to evaluate the step.
    threshold : float, default=0.0
        Where the step starts to rise.
    width : float, default=1.0
        Length of the ramp (the paper's epsilon_1). Must be positive.

    Returns
    -------
    torch.Tensor
        Step values in [0, 1], same shape as ``x``.
    """
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}.")
    u = torch.clamp(3.0 * (x - threshold) / width, 0.0, 3.0)
    # Cumulative quadratic B-spline, each piece written in its own variable.
    first = u**3 / 6.0
    v = u - 1.0
    middle = 1.0 / 6.0 + v / 2.0 + v**2 / 2.0 - v**3 / 3.0
    w = 3.0 - u
    last = 1.0 - w**3 / 6.0
    return torch.where(u < 1.0, first, torch.where(u < 2.0, middle, last))


def smoothed_relu(x, iota=1.0):
    """Softplus ReLU_iota(x) = log(1 + exp(iota * x)) / iota, computed stably.

    It is ``iota / 4``-smooth and ``sqrt(3) * iota**2 / 9``-Hessian-Lipschitz,
    and converges to ``max(x, 0)`` as ``iota`` grows (the gap is at most
    ``log(2) / iota``).
    """
    if iota <= 0:
        raise ValueError(f"iota must be positive, got {iota}.")
    return torch.logaddexp(iota * x, torch.zeros_like(x)) / iota


def norm_cdf(x):
    """Standard normal CDF Phi(x)."""
    return torch.special.ndtr(x)


def norm_pdf(x):
    """Standard normal density phi(x)."""
    return torch.exp(-0.5 * x * x) / _SQRT_2PI


def _genz_high_closed_form(a, a_s, bs, hk):
    """Closed-form part of Genz's expansion for |r| >= 0.925.

    ``a_s = 1 - r^2``, ``a = sqrt(a_s)``, ``bs = (h - k)^2``, ``hk = h k``
    (k sign-flipped for r < 0). Returns the value and the coefficients
    ``c``, ``d`` shared with :func:`_genz_high_integrand`.
    """
    phi = torch.special.ndtr
    c = (4.0 - hk) / 8.0
    d = (12.0 - hk) / 16.0
    val = (
        a
        * torch.exp(-(bs / a_s + hk) / 2.0)
        * (1.0 - c * (bs - a_s) * (1.0 - d * bs / 5.0) / 3.0 + c * d * a_s * a_s / 5.0)
    )
    b = torch.sqrt(bs)
    tail = (
        torch.exp(-hk / 2.0)
        * math.sqrt(_TWO_PI)
        * phi(-b / a)
        * b
        * (1.0 - c * bs * (1.0 - d * bs / 5.0) / 3.0)
    )
    return val - torch.where(hk > -160.0, tail, torch.zeros_like(tail)), c, d


def _genz_high_integrand(xs, rs, bs, hk, c, d):
    """Integrand of the remaining smooth integral (nodes on the last axis:
    ``xs = t^2``, ``rs = sqrt(1 - xs)``)."""
    bs2, hk2, c2, d2 = bs[..., None], hk[..., None], c[..., None], d[..., None]
    return torch.exp(-(bs2 / xs + hk2) / 2.0) * (
        torch.exp(-hk2 * (1.0 - rs) / (2.0 * (1.0 + rs))) / rs
        - (1.0 + c2 * xs * (1.0 + d2 * xs))
    )


def _bvn_upper(h, k, r):
    """P(X > h, Y > k) for a standard bivariate normal with correlation r.

    Genz (2004)'s method: for |r| < 0.925 a Gauss-Legendre rule on the
    integral over arcsin(r) of the bivariate density (Drezner & Wesolowsky
    1990); for |r| >= 0.925 the singular part near |r| = 1 is removed
    analytically and the remainder integrated by Gauss-Legendre. Vectorised:
    h, k, r are 1-d tensors of the same length, without gradients.
    """
    out = torch.empty_like(h)
    rules = {
        m: (
            torch.as_tensor(x, dtype=h.dtype, device=h.device),
            torch.as_tensor(w, dtype=h.dtype, device=h.device),
        )
        for m, (x, w) in _GL.items()
    }
    gl_x, gl_w = rules[20]
    phi = torch.special.ndtr
    abs_r = r.abs()

    for m, lo_r, hi_r in ((6, 0.0, 0.3), (12, 0.3, 0.75), (20, 0.75, 0.925)):
        band = (abs_r >= lo_r) & (abs_r < hi_r)
        if not band.any():
            continue
        x_m, w_m = rules[m]
        hl, kl, rl = h[band], k[band], r[band]
        hk = (hl * kl)[:, None]
        hs = ((hl * hl + kl * kl) / 2.0)[:, None]
        asr = torch.asin(rl)
        sn = torch.sin(asr[:, None] * (x_m + 1.0) / 2.0)
        integrand = torch.exp((sn * hk - hs) / (1.0 - sn * sn))
        out[band] = (integrand @ w_m) * asr / (2.0 * _TWO_PI) + phi(-hl) * phi(-kl)

    high = abs_r >= 0.925
    if high.any():
        hh, kh, rh = h[high], k[high], r[high]
        neg = rh < 0
        kh = torch.where(neg, -kh, kh)
        hk = hh * kh
        bvn = torch.zeros_like(hh)
        inner = rh.abs() < 1.0
        if inner.any():
            hi, ki, ri, hki = hh[inner], kh[inner], rh[inner], hk[inner]
            a_s = (1.0 - ri) * (1.0 + ri)
            a = torch.sqrt(a_s)
            bs = (hi - ki) ** 2
            val, c, d = _genz_high_closed_form(a, a_s, bs, hki)
            # Remaining smooth integral over t in [0, a], Gauss-Legendre.
            t = (a[:, None] / 2.0) * (gl_x + 1.0)
            xs = t * t
            rs = torch.sqrt(1.0 - xs)
            integrand = _genz_high_integrand(xs, rs, bs, hki, c, d)
            val = val + (a / 2.0) * (integrand @ gl_w)
            bvn[inner] = -val / _TWO_PI
        pos_part = bvn + phi(-torch.maximum(hh, kh))
        neg_part = -bvn + torch.clamp(phi(-hh) - phi(-kh), min=0.0)
        out[high] = torch.where(neg, neg_part, pos_part)
    return out.clamp_(0.0, 1.0)


class _BivariateNormalCDF(torch.autograd.Function):
    """Phi2 with closed-form first derivatives written in torch operations.

    Because ``backward`` is itself built from differentiable torch operations
    on the saved inputs, second derivatives (and Hessian-vector products)
    work through ``create_graph=True``.
    """

    @staticmethod
    def forward(ctx, h, k, r):
        ctx.save_for_backward(h, k, r)
        shape = h.shape
        val = _bvn_upper(-h.reshape(-1), -k.reshape(-1), r.reshape(-1))
        return val.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        h, k, r = ctx.saved_tensors
        rc, inv_s = _clamped_correlation(r)
        dh, dk = _phi2_partials(h, k, rc, inv_s)
        q = (h * h - 2.0 * rc * h * k + k * k) * (0.5 * inv_s * inv_s)
        dr = torch.exp(-q) * inv_s / _TWO_PI
        return grad * dh, grad * dk, grad * dr


def _clamped_correlation(r):
    """r with |r| < 1 kept in the working precision (1 - 1e-15 is 1.0 in
    float32), and 1 / sqrt(1 - r^2)."""
    margin = 4.0 * torch.finfo(r.dtype).eps
    rc = r.clamp(-1.0 + margin, 1.0 - margin)
    return rc, 1.0 / torch.sqrt((1.0 - rc) * (1.0 + rc))


def _phi2_partials(h, k, rc, inv_s):
    """dPhi2/dh = phi(h) Phi((k - r h) / sqrt(1 - r^2)) and its mirror
    image dPhi2/dk (torch operations, so differentiable again)."""
    dh = norm_pdf(h) * norm_cdf((k - rc * h) * inv_s)
    dk = norm_pdf(k) * norm_cdf((h - rc * k) * inv_s)
    return dh, dk


def bivariate_normal_cdf(h, k, r):
    """Bivariate standard normal CDF Phi2(h, k; r) = P(X <= h, Y <= k).

    Parameters
    ----------
    h, k, r : torch.Tensor or float
        Limits and correlation (broadcast together). Infinite limits are
        supported; ``r`` must lie in [-1, 1].

    Returns
    -------
    torch.Tensor
        Probabilities, accurate to about 1e-15 absolute (Genz, 2004).
        Differentiable twice in ``h``, ``k`` and ``r``.

    References
    ----------
    A. Genz, "Numerical computation of rectangular bivariate and trivariate
    normal and t probabilities", Statistics and Computing 14 (2004).
    """
    h, k, r = torch.broadcast_tensors(*_as_float_tensors(h, k, r))
    if torch.any((r < -1.0) | (r > 1.0)):
        raise ValueError("correlations must lie in [-1, 1].")
    # Limits beyond +-40 are numerically infinite for a standard normal.
    h = h.clamp(-40.0, 40.0)
    k = k.clamp(-40.0, 40.0)
    return _BivariateNormalCDF.apply(h, k, r)


class FixedCorrelationBVN:
    """Phi2(h, k; r) for many (h, k) pairs with correlations fixed once.

    The rounding of a MAXCUT SDP evaluates the same correlations at every
    step; the Gauss-Legendre nodes ``sin(asin(r) (x + 1) / 2)`` and their
    weights are computed once here, so each evaluation costs one exponential
    per node. Values agree with :func:`bivariate_normal_cdf`; derivatives are
    the same closed forms (twice differentiable).
    """

    def __init__(self, r):
        r = torch.as_tensor(r)
        if not r.is_floating_point():
            r = r.to(torch.float64)
        if torch.any((r < -1.0) | (r > 1.0)):
            raise ValueError("correlations must lie in [-1, 1].")
        self.r = r
        self.bands = []
        abs_r = r.abs()
        for m, lo_r, hi_r in ((6, 0.0, 0.3), (12, 0.3, 0.75), (20, 0.75, 0.925)):
            idx = _index_or_slice((abs_r >= lo_r) & (abs_r < hi_r))
            if idx is None:
                continue
            x, w = (torch.as_tensor(v, dtype=r.dtype, device=r.device) for v in _GL[m])
            asr = torch.asin(r[idx])
            sn = torch.sin(asr[:, None] * (x + 1.0) / 2.0)
            inv = 1.0 / (1.0 - sn * sn)
            scale = w * (asr / (2.0 * _TWO_PI))[:, None]
            self.bands.append((idx, sn * inv, inv, scale))
        # For the closed-form derivatives, computed once.
        self.r_clamped, self.inv_s = _clamped_correlation(r)
        self.high = _index_or_slice(abs_r >= 0.925)
        if self.high is not None:
            rh = r[self.high]
            inner = rh.abs() < 1.0
            a_s = (1.0 - rh) * (1.0 + rh)
            a = torch.sqrt(a_s)
            x, w = (torch.as_tensor(v, dtype=r.dtype, device=r.device) for v in _GL[20])
            t = (a[:, None] / 2.0) * (x + 1.0)
            xs = t * t
            rs = torch.sqrt(1.0 - xs)
            self.high_parts = (rh, inner, a_s, a, xs, rs, (a / 2.0)[:, None] * w)

    def _upper(self, h, k):
        """P(X > h, Y > k) (no gradient); the last axis runs over the pairs,
        leading axes (e.g. restarts) broadcast."""
        out = torch.empty_like(h)
        phi = torch.special.ndtr
        for idx, sn_inv, inv, scale in self.bands:
            hb, kb = h[..., idx], k[..., idx]
            hs = ((hb * hb + kb * kb) / 2.0)[..., None]
            integrand = torch.exp(sn_inv * (hb * kb)[..., None] - hs * inv)
            out[..., idx] = (integrand * scale).sum(-1) + phi(-hb) * phi(-kb)
        if self.high is not None:
            out[..., self.high] = self._upper_high(h[..., self.high], k[..., self.high])
        return out.clamp_(0.0, 1.0)

    def _upper_high(self, h, k):
        """Genz's |r| >= 0.925 branch with the r-only parts precomputed."""
        rh, inner, a_s, a, xs, rs, wa = self.high_parts
        phi = torch.special.ndtr
        neg = rh < 0
        k = torch.where(neg, -k, k)
        hk = h * k
        bs = (h - k) ** 2
        a_safe = torch.where(inner, a, torch.ones_like(a))
        as_safe = torch.where(inner, a_s, torch.ones_like(a_s))
        val, c, d = _genz_high_closed_form(a_safe, as_safe, bs, hk)
        xs_safe = torch.where(inner[:, None], xs, torch.ones_like(xs))
        rs_safe = torch.where(inner[:, None], rs, torch.ones_like(rs))
        integrand = _genz_high_integrand(xs_safe, rs_safe, bs, hk, c, d)
        val = val + (integrand * wa).sum(-1)
        bvn = torch.where(inner, -val / _TWO_PI, torch.zeros_like(val))
        pos = bvn + phi(-torch.maximum(h, k))
        negv = -bvn + torch.clamp(phi(-h) - phi(-k), min=0.0)
        return torch.where(neg, negv, pos)

    def cdf(self, h, k):
        """Phi2(h, k; r) with the fixed r (h, k of the same shape as r)."""
        h = h.clamp(-40.0, 40.0)
        k = k.clamp(-40.0, 40.0)
        return _FixedBVNFunction.apply(h, k, self)

    def partials(self, h, k):
        """dPhi2/dh and dPhi2/dk with the fixed r (differentiable again)."""
        return _phi2_partials(h, k, self.r_clamped, self.inv_s)

    def disagreement_and_partials(self, a_i, a_j):
        """``P[sign(X + a_i) != sign(Y + a_j)]`` and its two partial
        derivatives, in one pass and without autograd.

        ``P = Phi(a_i) + Phi(a_j) - 2 Phi2(a_i, a_j; r)``, so
        ``dP/da_i = phi(a_i) (1 - 2 Phi((a_j - r a_i) / sqrt(1 - r^2)))``:
        the derivatives need no quadrature. Same values as
        :func:`sign_disagreement_probability`, for objectives that supply
        their own gradient.
        """
        with torch.no_grad():
            a_i = a_i.clamp(-40.0, 40.0)
            a_j = a_j.clamp(-40.0, 40.0)
            both = self._upper(-a_i, -a_j)
            p = norm_cdf(a_i) + norm_cdf(a_j) - 2.0 * both
            d_i, d_j = self.partials(a_i, a_j)
            return p, norm_pdf(a_i) - 2.0 * d_i, norm_pdf(a_j) - 2.0 * d_j


def _index_or_slice(mask):
    """Positions where ``mask`` holds: a slice when they are contiguous (a
    view, no gather), an index tensor otherwise, None when there are none."""
    idx = torch.nonzero(mask).ravel()
    if idx.numel() == 0:
        return None
    lo, hi = int(idx[0]), int(idx[-1]) + 1
    return slice(lo, hi) if hi - lo == idx.numel() else idx


class _FixedBVNFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, k, bvn):
        ctx.save_for_backward(h, k)
        ctx.bvn = bvn
        return bvn._upper(-h, -k)

    @staticmethod
    def backward(ctx, grad):
        h, k = ctx.saved_tensors
        dh, dk = ctx.bvn.partials(h, k)
        return grad * dh, grad * dk, None


def sign_disagreement_probability(a_i, a_j, r):
    """P[sign(X + a_i) != sign(Y + a_j)] for standard normals with correlation r.

    This is the probability that a Gaussian rounding with offsets cuts an
    edge: ``Phi(a_i) + Phi(a_j) - 2 Phi2(a_i, a_j; r)``; at ``a = 0`` it is
    Goemans-Williamson's ``arccos(r) / pi``. ``r`` may be a
    :class:`FixedCorrelationBVN` (precomputed correlations).
    """
    if isinstance(r, FixedCorrelationBVN):
        both = r.cdf(a_i, a_j)
    else:
        a_i, a_j, r = torch.broadcast_tensors(*_as_float_tensors(a_i, a_j, r))
        both = bivariate_normal_cdf(a_i, a_j, r)
    return norm_cdf(a_i) + norm_cdf(a_j) - 2.0 * both


def _as_float_tensors(*values):
    ref = next((v for v in values if isinstance(v, torch.Tensor)), None)
    dtype = ref.dtype if ref is not None and ref.is_floating_point() else None
    dtype = dtype or torch.float64
    device = ref.device if ref is not None else None
    return [torch.as_tensor(v, dtype=dtype, device=device) for v in values]


# Cubic pieces of the smoothed step in u = 3 (x - threshold) / width, as
# coefficients of 1, u, u^2, u^3 (see smoothed_step).
_STEP_PIECES = (
    (0.0, 0.0, 0.0, 1.0 / 6.0),
    (0.5, -1.5, 1.5, -1.0 / 3.0),
    (-3.5, 4.5, -1.5, 1.0 / 6.0),
)


def _truncated_normal_moments(lo, hi, mean, std, max_order):
    """int_lo^hi s^m N(s; mean, std^2) ds for m = 0..max_order (stable in std).

    Recursion from integrating by parts:
    T_{m+1} = mean T_m + std^2 m T_{m-1} - std^2 [s^m N(s)]_lo^hi.
    """
    zlo = (lo - mean) / std
    zhi = (hi - mean) / std
    # std^2 * density = std * phi(z): bounded as std -> 0.
    plo = std * norm_pdf(zlo)
    phi_ = std * norm_pdf(zhi)
    moments = [norm_cdf(zhi) - norm_cdf(zlo)]
    prev = torch.zeros_like(moments[0])
    lo_pow = torch.ones_like(lo)
    hi_pow = torch.ones_like(hi)
    for m in range(max_order):
        boundary = phi_ * hi_pow - plo * lo_pow
        nxt = mean * moments[m] + (std * std) * m * prev - boundary
        prev = moments[m]
        moments.append(nxt)
        lo_pow = lo_pow * lo
        hi_pow = hi_pow * hi
    return moments


def expected_smoothed_step_of_square(r, sigma, threshold, width):
    """E[smoothed_step((r + sigma g)^2, threshold, width)], g ~ N(0, 1), exactly.

    Each cubic piece of the step is a polynomial of degree 6 in
    s = r + sigma g ~ N(r, sigma^2), so its expectation over the interval
    where it applies is a combination of truncated-normal moments: closed
    form, smooth in (r, sigma, threshold), and stable as sigma -> 0 (where it
    tends to ``smoothed_step(r**2, ...)``). All arguments broadcast; the
    three pieces and both signs of s are evaluated in one batch.
    """
    r, sigma, threshold = torch.broadcast_tensors(
        *_as_float_tensors(r, sigma, threshold)
    )
    sigma = sigma.clamp_min(1e-300)
    span = 40.0 * sigma + 1.0

    def root(x):
        return torch.sqrt(x.clamp_min(0.0))

    # Knots of the ramp in q = s^2, and their square roots.
    offsets = torch.arange(4, dtype=r.dtype, device=r.device) * (width / 3.0)
    roots = root(threshold[..., None] + offsets)  # (..., 4)
    top = roots[..., 3]
    total = norm_cdf((-top - r) / sigma) + norm_cdf((r - top) / sigma)
    # Intervals in s for the 3 pieces x 2 signs: [+lo, +hi) and (-hi, -lo].
    lo = torch.cat([roots[..., :3], -roots[..., 1:]], dim=-1)  # (..., 6)
    hi = torch.cat([roots[..., 1:], -roots[..., :3]], dim=-1)
    r6, s6, span6 = r[..., None], sigma[..., None], span[..., None]
    lo = torch.maximum(lo, r6 - span6)
    hi = torch.minimum(torch.maximum(hi, lo), r6 + span6)
    moments = _truncated_normal_moments(lo, hi, r6, s6, 6)
    # Polynomial of each piece in q = s^2, with u = alpha q + beta.
    alpha = 3.0 / width
    beta = (-3.0 / width) * threshold[..., None]
    coeffs = torch.as_tensor(_STEP_PIECES, dtype=r.dtype, device=r.device)
    coeffs = torch.cat([coeffs, coeffs], dim=0)  # pieces for both signs
    for p in range(4):
        # coefficient of q^p: sum_i a_i C(i, p) alpha^p beta^(i - p)
        c_p = sum(
            coeffs[:, i] * (math.comb(i, p) * alpha**p) * beta ** (i - p)
            for i in range(p, 4)
        )
        total = total + (c_p * moments[2 * p]).sum(-1)
    return total.clamp(0.0, 1.0)
