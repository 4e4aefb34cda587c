"""minimize(): saddles escaped, the derandomization lemma, the paper's toy."""

import math

import numpy as np
import pytest
import torch

from sklearn_derand._sosp import (
    METHODS,
    expectation,
    gaussian_nodes,
    make_generator,
    minimize,
    resolve_device,
    smoothed_relu,
)

ESCAPING = [m for m in METHODS if m != "gd"]


def strict_saddle(p):
    x, y = p["z"][0], p["z"][1]
    return x**2 / 2 + y**4 / 4 - y**2 / 2


def _lr(method):
    return 0.05 if method == "adam" else 0.1


@pytest.mark.parametrize("method", ESCAPING)
def test_strict_saddle_is_escaped(method):
    res = minimize(
        strict_saddle,
        {"z": torch.zeros(2, dtype=torch.float64)},
        method=method,
        rho=1e-6,
        max_iter=3000,
        lr=_lr(method),
        generator=make_generator(0),
    )
    assert res.converged, res.message
    assert res.n_perturbations >= 1
    np.testing.assert_allclose(np.abs(res.params["z"].numpy()), [0, 1], atol=1e-5)
    assert res.min_eig > 0.9 and res.grad_norm <= 1e-6


def test_gradient_descent_never_claims_convergence_at_a_saddle():
    res = minimize(
        strict_saddle,
        {"z": torch.zeros(2, dtype=torch.float64)},
        method="gd",
        rho=1e-6,
        max_iter=200,
        lr=0.1,
        generator=make_generator(0),
    )
    assert not res.converged
    assert "saddle" in res.message
    assert res.certificate.verdict == "negative_curvature"
    assert res.min_eig == pytest.approx(-1.0, abs=1e-8)


def _factorisation_problem(seed=1, n=8, r=2):
    g = torch.Generator().manual_seed(seed)
    B = torch.randn(n, r, generator=g, dtype=torch.float64)
    M = B @ B.T

    def fun(p):
        U = p["U"]
        return ((U @ U.T - M) ** 2).sum()

    return fun, {"U": torch.zeros(n, r, dtype=torch.float64)}


@pytest.mark.parametrize("method", ESCAPING)
def test_matrix_factorisation_from_zero_reaches_a_global_minimum(method):
    fun, params = _factorisation_problem()
    res = minimize(
        fun,
        params,
        method=method,
        rho=1e-6,
        max_iter=5000,
        lr=0.01,
        generator=make_generator(0),
    )
    assert res.converged, res.message
    assert float(fun(res.params)) < 1e-10
    assert res.certificate.rigorous
    # The starting point was a strict saddle and the input was not modified.
    assert torch.count_nonzero(params["U"]) == 0


def test_gradient_descent_stalls_at_zero_in_matrix_factorisation():
    fun, params = _factorisation_problem()
    res = minimize(
        fun,
        params,
        method="gd",
        rho=1e-6,
        max_iter=300,
        lr=0.01,
        generator=make_generator(0),
    )
    assert not res.converged
    assert res.min_eig < -1.0


def _lemma_objective(lam):
    # f(W, b) = E_x[g(Wx + b)] + lam ||W||^2, x ~ N(0, I_2), with a smooth
    # non-convex g of degree 4; 10-point Gauss-Hermite per dimension is exact
    # for it, so Stein's identity (the lemma's engine) holds exactly.
    nodes = gaussian_nodes(2, 10, method="gauss-hermite")

    def g(u):
        return ((u**2 - 1) ** 2).sum(dim=1) / 4 + 0.3 * u[:, 0] * u[:, 1]

    def fun(p):
        W, b = p["W"], p["b"]
        value = expectation(lambda x: g(x @ W.T + b), nodes)
        return value + lam * (W**2).sum()

    return fun


@pytest.mark.parametrize("method", ESCAPING)
@pytest.mark.parametrize("lam", [0.05, 0.5])
def test_derandomization_lemma_bound_holds_at_the_returned_point(method, lam):
    rho, K = 1e-7, 1.0
    gen = torch.Generator().manual_seed(3)
    params = {
        "W": torch.randn(2, 2, generator=gen, dtype=torch.float64),
        "b": torch.randn(2, generator=gen, dtype=torch.float64),
    }
    fun = _lemma_objective(lam)
    res = minimize(
        fun,
        params,
        method=method,
        rho=rho,
        hessian_lipschitz=K,
        max_iter=20000,
        lr=0.02 if method == "adam" else 0.1,
        generator=make_generator(0),
    )
    assert res.converged, res.message
    bound = rho / (2 * lam - math.sqrt(K * rho))
    w_norm = float(torch.linalg.norm(res.params["W"]))
    assert w_norm <= bound
    # Started far from it: the noise scale really collapsed.
    assert float(torch.linalg.norm(params["W"])) > 1.0


def _toy(lam, iota, train_bias, n_nodes=80):
    nodes = gaussian_nodes(1, n_nodes, method="gauss-hermite")

    def fun(p):
        w = p["w"]
        b = p["b"] if train_bias else torch.zeros(1, dtype=torch.float64)
        value = expectation(
            lambda x: (smoothed_relu(w * x[:, 0] + b, iota) ** 3 - 1) ** 2, nodes
        )
        return value.sum() + lam * (w**2).sum()

    return fun


@pytest.mark.parametrize("lam", [1e-4, 1e-2])
def test_paper_toy_trained_bias_collapses_w(lam):
    iota, rho = 10.0, 1e-9
    fun = _toy(lam, iota, train_bias=True)
    params = {
        "w": torch.ones(1, dtype=torch.float64),
        "b": torch.zeros(1, dtype=torch.float64),
    }
    res = minimize(
        fun,
        params,
        method="hessian_descent",
        rho=rho,
        max_iter=20000,
        lr=0.02,
        generator=make_generator(0),
    )
    assert res.converged, res.message
    w = float(res.params["w"])
    assert abs(w) <= rho / (2 * lam - math.sqrt(rho))
    relu_b = float(smoothed_relu(res.params["b"], iota))
    assert relu_b == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize(
    ("lam", "collapses"), [(1e-4, False), (0.1, False), (0.3, False), (1.0, True)]
)
def test_paper_toy_frozen_bias_keeps_w_until_lambda_is_large(lam, collapses):
    fun = _toy(lam, 10.0, train_bias=False)
    res = minimize(
        fun,
        {"w": torch.ones(1, dtype=torch.float64)},
        method="hessian_descent",
        rho=1e-8,
        max_iter=20000,
        lr=0.02,
        generator=make_generator(0),
    )
    assert res.converged, res.message
    w = abs(float(res.params["w"]))
    if collapses:
        assert w < 1e-6
    else:
        assert w > 0.2


def test_callback_stops_and_sees_params():
    seen = []

    def callback(info):
        seen.append((info.n_iter, info.loss, info.params["z"].clone()))
        return info.n_iter == 4

    res = minimize(
        strict_saddle,
        {"z": torch.tensor([0.5, 0.5], dtype=torch.float64)},
        method="gd",
        lr=0.1,
        max_iter=100,
        callback=callback,
        generator=make_generator(0),
    )
    assert res.message == "stopped by callback"
    assert [s[0] for s in seen] == [0, 1, 2, 3, 4]
    assert len(res.loss_curve) == 5


def test_same_generator_seed_same_result():
    fun, params = _factorisation_problem()
    a = minimize(
        fun,
        params,
        method="pgd",
        rho=1e-6,
        lr=0.01,
        max_iter=3000,
        generator=make_generator(5),
    )
    b = minimize(
        fun,
        params,
        method="pgd",
        rho=1e-6,
        lr=0.01,
        max_iter=3000,
        generator=make_generator(5),
    )
    assert torch.equal(a.params["U"], b.params["U"])
    assert a.loss_curve == b.loss_curve


@pytest.mark.parametrize("method", ["lbfgs", "pgd"])
def test_caller_gradients_replace_autograd_for_the_steps(method):
    # A closed-form value and gradient give the same iterates as autograd,
    # and the certificate still comes from ``fun``.
    calls = []

    def value_and_grad(p):
        calls.append(1)
        x, y = p["z"][0], p["z"][1]
        value = strict_saddle(p)
        return value, {"z": torch.stack([x, y**3 - y])}

    kwargs = {"method": method, "rho": 1e-6, "max_iter": 2000, "lr": 0.1}
    start = {"z": torch.tensor([0.3, 1e-3], dtype=torch.float64)}
    auto = minimize(strict_saddle, start, generator=make_generator(0), **kwargs)
    given = minimize(
        strict_saddle,
        start,
        generator=make_generator(0),
        value_and_grad=value_and_grad,
        **kwargs,
    )
    assert given.converged and auto.converged
    assert len(calls) >= given.n_iter
    assert given.loss_curve == pytest.approx(auto.loss_curve, rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(given.params["z"], auto.params["z"], atol=1e-12)
    assert given.min_eig == pytest.approx(auto.min_eig, rel=1e-9)


def _two_loop(pairs, g):
    """The textbook L-BFGS two-loop recursion (Nocedal and Wright, Alg. 7.4)."""
    q, alphas = -g, []
    for s, y in reversed(pairs):
        a = float(torch.dot(s, q)) / float(torch.dot(s, y))
        alphas.append(a)
        q = q - a * y
    s, y = pairs[-1]
    q = q * (float(torch.dot(s, y)) / float(torch.dot(y, y)))
    for (s, y), a in zip(pairs, reversed(alphas)):
        b = float(torch.dot(y, q)) / float(torch.dot(s, y))
        q = q + (a - b) * s
    return q


def test_lbfgs_product_equals_the_two_loop_recursion():
    """The memory's product from kept dot products against the two loops:
    filling, forgetting the oldest pairs (slots reused out of order),
    skipping a pair without curvature, and after a reset."""
    from sklearn_derand._sosp.optimize import _LBFGSMemory

    gen = torch.Generator().manual_seed(0)
    n = 40
    A = torch.randn(n, n, generator=gen, dtype=torch.float64)
    H = A @ A.T + n * torch.eye(n, dtype=torch.float64)
    memory, pairs = _LBFGSMemory(4), []
    assert len(memory) == 0
    g = torch.randn(n, generator=gen, dtype=torch.float64)
    assert torch.equal(memory.direction(g), -g)
    for it in range(11):
        s = torch.randn(n, generator=gen, dtype=torch.float64)
        if it == 6:  # s.y = 0: no curvature, not kept
            y = torch.randn(n, generator=gen, dtype=torch.float64)
            y -= float(torch.dot(s, y)) / float(torch.dot(s, s)) * s
        else:
            y = H @ s
            pairs = [*pairs, (s, y)][-4:]
        memory.update(s, y)
        assert len(memory) == len(pairs)
        g = torch.randn(n, generator=gen, dtype=torch.float64)
        expected = _two_loop(pairs, g)
        got = memory.direction(g)
        assert float((got - expected).norm()) <= 1e-12 * float(expected.norm())
        if it == 5:  # six pairs in four slots: the oldest went first
            assert memory.order == [2, 3, 0, 1]
        if it == 7:
            memory.clear()
            pairs = []
    assert memory.order == [0, 1, 2]
    # No memory at all: steepest descent.
    empty = _LBFGSMemory(0)
    empty.update(s, y)
    assert len(empty) == 0 and torch.equal(empty.direction(g), -g)


def test_stochastic_adam_on_least_squares_is_certified_on_the_full_objective():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(256, 5, generator=g, dtype=torch.float64)
    w_true = torch.arange(5, dtype=torch.float64)
    y = X @ w_true

    def full(p):
        return ((X @ p["w"] - y) ** 2).mean()

    def minibatch(p, it):
        idx = slice((it % 8) * 32, (it % 8 + 1) * 32)
        return ((X[idx] @ p["w"] - y[idx]) ** 2).mean()

    res = minimize(
        full,
        {"w": torch.zeros(5, dtype=torch.float64)},
        method="adam",
        stochastic_fun=minibatch,
        check_every=8,
        rho=1e-5,
        lr=0.05,
        max_iter=20000,
        generator=make_generator(0),
    )
    assert res.converged, res.message
    np.testing.assert_allclose(res.params["w"].numpy(), w_true.numpy(), atol=1e-4)


def test_non_finite_objective_stops_with_a_message():
    def fun(p):
        return torch.log(p["x"]).sum()

    res = minimize(
        fun,
        {"x": torch.tensor([-1.0], dtype=torch.float64)},
        method="gd",
        max_iter=10,
        generator=make_generator(0),
    )
    assert not res.converged and "not finite" in res.message


def test_argument_validation():
    params = {"z": torch.zeros(2, dtype=torch.float64)}
    with pytest.raises(ValueError, match="method"):
        minimize(strict_saddle, params, method="newton")
    with pytest.raises(ValueError, match="positive"):
        minimize(strict_saddle, params, rho=0.0)
    with pytest.raises(TypeError, match="dict"):
        minimize(strict_saddle, torch.zeros(2))
    with pytest.raises(ValueError, match="neg_curvature_step"):
        minimize(strict_saddle, params, neg_curvature_step="big")


def test_device_strings_are_validated():
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu")
    with pytest.raises(ValueError):
        resolve_device(3)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
