"""The direct JL objective: compiled CPU kernels against the torch forms."""

import math
import threading

import numpy as np
import pytest
import torch

from sklearn_derand._sosp import _jl_kernels
from sklearn_derand._sosp.jl import (
    DistortionProblem,
    _DirectObjective,
    _distortion_loss_terms,
)


def _problem(n, rank, seed, duplicate=True):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, rank) @ rng.randn(rank, 2 * rank)
    if duplicate:
        X[3] = X[1]  # a zero-distance pair: inactive
    problem = DistortionProblem(
        X, np.ones(n, dtype=bool), 10**6, torch.device("cpu"), seed
    )
    P = torch.as_tensor(rng.randn(n, 4) * 0.4)
    return problem, P


def _objective(problem, p, alpha):
    def fun(P):
        return _DirectObjective.apply(P, problem, p, alpha)[0]

    return fun


def _reference(problem, p, alpha):
    def fun(P):
        return _distortion_loss_terms(
            P, problem.inv, problem.mask_f, p, alpha, problem.n_active
        )

    return fun


@pytest.mark.parametrize("p", [8.0, 128.0])
@pytest.mark.parametrize("n", [17, 30])  # odd and even: the row pairing
def test_value_gradient_and_hvp_equal_autograd(p, n):
    problem, P = _problem(n, 6, seed=n)
    assert problem.inv_sym is not None  # the compiled path is taken
    assert problem.n_active == n * (n - 1) // 2 - 1
    V = torch.as_tensor(np.random.RandomState(1).randn(*P.shape))
    results = []
    for fun in (_objective(problem, p, 0.3), _reference(problem, p, 0.3)):
        x = P.clone().requires_grad_(True)
        value = fun(x)
        (g,) = torch.autograd.grad(value, x, create_graph=True)
        (hv,) = torch.autograd.grad(g, x, grad_outputs=V)
        results.append((float(value), g.detach().numpy(), hv.numpy()))
    (v1, g1, h1), (v2, g2, h2) = results
    assert v1 == pytest.approx(v2, rel=1e-12)
    np.testing.assert_allclose(g1, g2, rtol=1e-9, atol=1e-12 * np.abs(g2).max())
    np.testing.assert_allclose(h1, h2, rtol=1e-8, atol=1e-11 * np.abs(h2).max())


def test_compiled_and_torch_paths_give_the_same_backward():
    problem, P = _problem(25, 5, seed=3)
    grads = []
    for inv_sym in (problem.inv_sym, None):  # None: the torch (GPU) path
        problem.inv_sym = inv_sym
        x = P.clone().requires_grad_(True)
        value, top = _DirectObjective.apply(x, problem, 32.0, 1.0)
        value.backward()
        grads.append((float(value), float(top), x.grad.numpy()))
    (v1, t1, g1), (v2, t2, g2) = grads
    assert (v1, t1) == pytest.approx((v2, t2), rel=1e-12)
    np.testing.assert_allclose(g1, g2, rtol=1e-9, atol=1e-13)


def test_max_and_ratio_range_equal_brute_force():
    problem, P = _problem(21, 4, seed=5)
    X = problem.Y
    iu = np.triu_indices(21, 1)
    D = ((X[:, None] - X[None]) ** 2).sum(-1)[iu]
    DP = ((P.numpy()[:, None] - P.numpy()[None]) ** 2).sum(-1)[iu]
    ratio = DP[D > problem.tiny] / D[D > problem.tiny]
    lo, hi = problem._kernel_ratio_range(P)
    assert (lo, hi) == pytest.approx((ratio.min(), ratio.max()), rel=1e-12)
    expected = np.abs(ratio - 1).max()
    assert problem.all_pairs_max(P) == pytest.approx(expected, rel=1e-12)
    # The chunked torch form (block mode and validation use it) agrees.
    assert problem._max_over(P, problem.fit_idx, problem.fit_idx)[0] == (
        pytest.approx(expected, rel=1e-12)
    )
    # Without pairs: the documented empty range.
    lo, hi = _jl_kernels.ratio_range(np.zeros((2, 3)), np.zeros((3, 3)))
    assert (lo, hi) == (math.inf, 0.0)


def test_threads_use_the_serial_build_and_agree_with_the_parallel_one():
    problem, P = _problem(40, 6, seed=7)
    Pt = np.ascontiguousarray(P.numpy().T)
    args = (Pt, problem.inv_sym, 5)
    seen = []

    def work():
        seen.append(_jl_kernels.direct_value(*args))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _jl_kernels.direct_value.serial.signatures
    expected = _jl_kernels.direct_value.parallel(*args)
    assert len(seen) == 3
    for value in seen:
        assert value == pytest.approx(expected, rel=1e-12)
