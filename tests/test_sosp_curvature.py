"""Hessian-vector products, Lanczos and the SOSP certificate."""

import numpy as np
import pytest
import torch

from sklearn_derand._sosp import certify, hessian_vector_product, make_generator


def _random_problem(n, seed):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, n, generator=g, dtype=torch.float64)
    A = (A + A.T) / 2
    c = torch.randn(n, generator=g, dtype=torch.float64)
    x0 = torch.randn(n, generator=g, dtype=torch.float64)

    def fun(p):
        x = p["x"]
        return 0.5 * x @ A @ x + torch.sin(c @ x) + (x**3).sum() / 6

    return fun, {"x": x0}


def _dense_hessian(fun, params):
    x = params["x"]
    return torch.autograd.functional.hessian(lambda z: fun({"x": z}), x).numpy()


@pytest.mark.parametrize("seed", range(3))
def test_hvp_matches_finite_differences(seed):
    fun, params = _random_problem(12, seed)
    x = params["x"]
    _, _, hvp = hessian_vector_product(lambda z: fun({"x": z}), x)
    v = torch.randn(
        12, generator=torch.Generator().manual_seed(99), dtype=torch.float64
    )
    eps = 1e-5

    def grad_at(z):
        _, gz, _ = hessian_vector_product(lambda t: fun({"x": t}), z)
        return gz

    fd = (grad_at(x + eps * v) - grad_at(x - eps * v)) / (2 * eps)
    np.testing.assert_allclose(hvp(v).numpy(), fd.numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("seed", range(5))
def test_certificate_lambda_min_agrees_with_eigvalsh(seed):
    n = 15
    fun, params = _random_problem(n, seed)
    lam = np.linalg.eigvalsh(_dense_hessian(fun, params))[0]
    cert = certify(fun, params, rho=1e-3, max_lanczos=n, generator=make_generator(seed))
    assert abs(cert.min_eig - lam) <= cert.residual + 1e-8
    # A Ritz value is never below lambda_min.
    assert cert.min_eig >= lam - 1e-10
    assert cert.verdict == (
        "negative_curvature" if lam < cert.threshold else cert.verdict
    )


def test_certificate_with_partial_krylov_space_is_within_its_residual():
    # Well-separated lowest eigenvalue: Lanczos finds it long before n steps.
    n = 300
    rng = np.random.RandomState(0)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    eigs = np.concatenate([[-3.0], rng.uniform(1.0, 2.0, n - 1)])
    H = torch.as_tensor((Q * eigs) @ Q.T)

    def fun(p):
        return 0.5 * p["x"] @ H @ p["x"]

    cert = certify(
        fun,
        {"x": torch.zeros(n, dtype=torch.float64)},
        rho=1e-6,
        max_lanczos=40,
        generator=make_generator(0),
    )
    assert cert.verdict == "negative_curvature" and cert.rigorous
    assert cert.n_hvp < 40
    assert abs(cert.min_eig - eigs[0]) <= cert.residual + 1e-10
    direction = cert.direction.numpy()
    assert abs(direction @ Q[:, 0]) > 0.99


def test_rigorous_certificate_on_a_convex_problem_stops_early():
    n = 500
    rng = np.random.RandomState(1)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    eigs = rng.uniform(1.0, 2.0, n)
    H = torch.as_tensor((Q * eigs) @ Q.T)

    def fun(p):
        return 0.5 * p["x"] @ H @ p["x"]

    cert = certify(
        fun,
        {"x": torch.zeros(n, dtype=torch.float64)},
        rho=1e-6,
        smoothness=2.0,
        delta=1e-3,
        max_lanczos=100,
        generator=make_generator(0),
    )
    assert cert.verdict == "sosp"
    assert cert.rigorous and cert.failure_probability <= 1e-3
    assert cert.n_hvp < 40


def test_hidden_negative_eigenvalue_is_never_certified_rigorously():
    # A trained point with a cluster of tiny eigenvalues and one slightly
    # negative eigenvalue hidden in it: a few Lanczos steps cannot see it.
    # Whatever the verdict, it must not claim a rigorous SOSP.
    n = 400
    rng = np.random.RandomState(2)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    eigs = np.concatenate(
        [[-2e-3], rng.uniform(0.0, 1e-4, 300), rng.uniform(1.0, 50.0, n - 301)]
    )
    H = torch.as_tensor((Q * eigs) @ Q.T)

    def fun(p):
        return 0.5 * p["x"] @ H @ p["x"]

    for smoothness in (None, 50.0):
        cert = certify(
            fun,
            {"x": torch.zeros(n, dtype=torch.float64)},
            rho=1e-6,
            smoothness=smoothness,
            max_lanczos=30,
            generator=make_generator(3),
        )
        assert cert.threshold == pytest.approx(-1e-3)
        if cert.verdict == "sosp":
            assert not cert.rigorous


def test_certificate_flags_a_large_gradient():
    def fun(p):
        return (p["x"] ** 2).sum() + p["x"].sum()

    cert = certify(
        fun,
        {"x": torch.zeros(3, dtype=torch.float64)},
        rho=1e-3,
        generator=make_generator(0),
    )
    assert cert.verdict == "not_stationary"
    assert cert.grad_norm == pytest.approx(np.sqrt(3))
    assert cert.min_eig == pytest.approx(2.0)


def test_certificate_of_a_linear_function():
    def fun(p):
        return p["x"].sum() * 0.0

    cert = certify(
        fun,
        {"x": torch.ones(4, dtype=torch.float64)},
        rho=1e-3,
        generator=make_generator(0),
    )
    assert cert.verdict == "sosp" and cert.min_eig == 0.0


def test_non_finite_hessian_gives_an_inconclusive_certificate():
    def fun(p):
        return torch.sqrt(p["x"] ** 2).sum()  # |x|: not twice differentiable at 0

    cert = certify(
        fun,
        {"x": torch.zeros(3, dtype=torch.float64)},
        rho=1e-3,
        generator=make_generator(0),
    )
    assert cert.verdict == "inconclusive"
    assert not cert.rigorous and np.isnan(cert.min_eig)
