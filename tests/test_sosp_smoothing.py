"""The smooth surrogates: cubic step, smoothed ReLU, Phi and Phi2."""

import numpy as np
import pytest
import torch
from scipy.interpolate import BSpline
from scipy.stats import multivariate_normal, norm

from sklearn_derand._sosp import (
    bivariate_normal_cdf,
    sign_disagreement_probability,
    smoothed_relu,
    smoothed_step,
)


def _t(x):
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


def test_smoothed_step_is_the_integrated_quadratic_bspline():
    # Independent reference: scipy's B-spline basis on the uniform knots of
    # the ramp, integrated from the threshold.
    threshold, width = 0.3, 0.6
    knots = threshold + width * np.arange(4) / 3.0
    basis = BSpline.basis_element(knots, extrapolate=False)
    xs = np.linspace(-0.5, 1.5, 401)
    ref = np.array(
        [basis.integrate(knots[0], min(max(x, knots[0]), knots[-1])) for x in xs]
    ) / basis.integrate(knots[0], knots[-1])
    got = smoothed_step(_t(xs), threshold, width).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-12)
    assert np.all(got[xs <= threshold] == 0.0)
    assert np.all(got[xs >= threshold + width] == 1.0)
    assert np.all(np.diff(got) >= 0)
    assert got[np.argmin(np.abs(xs - (threshold + width / 2)))] == pytest.approx(0.5)


def test_smoothed_step_is_twice_continuously_differentiable():
    threshold, width = 0.0, 1.0
    knots = [0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0]
    for knot in knots:
        for side in (-1e-7, 1e-7):
            x = torch.tensor(knot + side, dtype=torch.float64, requires_grad=True)
            y = smoothed_step(x, threshold, width)
            (d1,) = torch.autograd.grad(y, x, create_graph=True)
            (d2,) = torch.autograd.grad(d1, x)
            values = (y.detach().item(), d1.detach().item(), d2.item())
            if side < 0:
                left = values
            else:
                right = values
        np.testing.assert_allclose(left, right, atol=1e-5)
    with pytest.raises(ValueError, match="width"):
        smoothed_step(_t([0.0]), 0.0, 0.0)


def test_smoothed_relu_is_stable_and_close_to_relu():
    x = _t([-1e4, -30.0, -1.0, 0.0, 1.0, 30.0, 1e4])
    for iota in (0.5, 4.0, 100.0):
        y = smoothed_relu(x, iota).numpy()
        assert np.all(np.isfinite(y))
        np.testing.assert_allclose(y, np.logaddexp(iota * x.numpy(), 0) / iota)
        assert np.all(y - np.maximum(x.numpy(), 0) <= np.log(2) / iota + 1e-12)
        assert np.all(y >= np.maximum(x.numpy(), 0))
    with pytest.raises(ValueError, match="iota"):
        smoothed_relu(x, 0.0)


RHOS = [
    -1.0,
    -0.999999,
    -0.9999,
    -0.99,
    -0.93,
    -0.92,
    -0.5,
    0.0,
    0.3,
    0.75,
    0.92,
    0.93,
    0.99,
    0.9999,
    0.999999,
    1.0,
]


@pytest.mark.parametrize("r", RHOS)
def test_bivariate_normal_cdf_matches_scipy(r):
    grid = np.linspace(-4.0, 4.0, 9)
    h, k = (a.ravel() for a in np.meshgrid(grid, grid))
    got = bivariate_normal_cdf(_t(h), _t(k), _t(np.full_like(h, r))).numpy()
    if abs(r) == 1.0:
        ref = (
            norm.cdf(np.minimum(h, k))
            if r > 0
            else np.maximum(0.0, norm.cdf(h) + norm.cdf(k) - 1.0)
        )
    else:
        cov = [[1.0, r], [r, 1.0]]
        ref = np.array(
            [
                multivariate_normal.cdf([a, b], cov=cov, abseps=1e-12, releps=1e-12)
                for a, b in zip(h, k)
            ]
        )
    np.testing.assert_allclose(got, ref, atol=1e-7, rtol=0)


def test_bivariate_normal_cdf_limits_and_validation():
    inf = float("inf")
    got = bivariate_normal_cdf(_t([inf, -inf, 0.3]), _t([0.3, 0.3, inf]), _t(0.5))
    np.testing.assert_allclose(got.numpy(), [norm.cdf(0.3), 0.0, norm.cdf(0.3)])
    with pytest.raises(ValueError, match="correlations"):
        bivariate_normal_cdf(_t(0.0), _t(0.0), _t(1.5))


def test_bivariate_normal_cdf_derivatives_match_finite_differences():
    h = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64, requires_grad=True)
    k = torch.tensor([-0.4, 0.7, 1.5], dtype=torch.float64, requires_grad=True)
    r = torch.tensor([0.6, -0.95, 0.97], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(bivariate_normal_cdf, (h, k, r))
    assert torch.autograd.gradgradcheck(bivariate_normal_cdf, (h, k, r))


def test_gaussian_rounding_probability_is_goemans_williamson_at_zero_offset():
    r = _t(np.linspace(-0.99, 0.99, 21))
    zero = torch.zeros_like(r)
    got = sign_disagreement_probability(zero, zero, r).numpy()
    np.testing.assert_allclose(got, np.arccos(r.numpy()) / np.pi, atol=1e-13)
    # With offsets, check against a direct Monte Carlo estimate.
    rng = np.random.RandomState(0)
    z = rng.standard_normal((400_000, 2))
    rr = 0.4
    x, y = z[:, 0], rr * z[:, 0] + np.sqrt(1 - rr**2) * z[:, 1]
    mc = np.mean(np.sign(x + 0.5) != np.sign(y - 0.2))
    exact = float(sign_disagreement_probability(_t(0.5), _t(-0.2), _t(rr)))
    assert abs(mc - exact) < 4e-3


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fixed_correlation_cdf_has_finite_gradients_at_unit_correlation(dtype):
    from sklearn_derand._sosp import FixedCorrelationBVN

    r = torch.tensor([1.0, -1.0, 0.9999999, 0.3], dtype=dtype)
    h = torch.tensor([0.2, -0.1, 0.5, 1.0], dtype=dtype, requires_grad=True)
    k = torch.tensor([0.3, 0.4, 0.5, -1.0], dtype=dtype, requires_grad=True)
    value = FixedCorrelationBVN(r).cdf(h, k).sum()
    gh, gk = torch.autograd.grad(value, (h, k))
    assert torch.isfinite(gh).all() and torch.isfinite(gk).all()
    np.testing.assert_allclose(
        FixedCorrelationBVN(r).cdf(h, k).detach().double().numpy(),
        bivariate_normal_cdf(h.double(), k.double(), r.double()).detach().numpy(),
        atol=1e-6 if dtype == torch.float32 else 1e-12,
    )


@pytest.mark.parametrize("contiguous", [False, True])
def test_disagreement_and_partials_match_autograd(contiguous):
    # Correlations in every band of Genz's rules, |r| = 1 included; sorted
    # by |r| the bands are contiguous slices, unsorted they are gathered.
    from sklearn_derand._sosp import FixedCorrelationBVN

    rng = np.random.RandomState(0)
    r = np.concatenate([rng.uniform(-1, 1, 40), [1.0, -1.0, 0.95, -0.93, 0.0]])
    if contiguous:
        r = r[np.argsort(np.searchsorted([0.3, 0.75, 0.925], np.abs(r), "right"))]
    r = _t(r)
    a_i = _t(rng.normal(0, 1.5, r.shape)).requires_grad_(True)
    a_j = _t(rng.normal(0, 1.5, r.shape)).requires_grad_(True)
    bvn = FixedCorrelationBVN(r)
    p, d_i, d_j = bvn.disagreement_and_partials(a_i, a_j)
    ref = sign_disagreement_probability(a_i, a_j, bvn)
    g_i, g_j = torch.autograd.grad(ref.sum(), (a_i, a_j))
    np.testing.assert_allclose(p.numpy(), ref.detach().numpy(), atol=1e-14)
    np.testing.assert_allclose(d_i.numpy(), g_i.numpy(), atol=1e-12)
    np.testing.assert_allclose(d_j.numpy(), g_j.numpy(), atol=1e-12)
    # and both agree with the general bivariate normal CDF
    general = sign_disagreement_probability(a_i, a_j, r)
    np.testing.assert_allclose(p.numpy(), general.detach().numpy(), atol=1e-12)
