"""Fixed Gaussian nodes make Monte Carlo objectives deterministic."""

import numpy as np
import pytest
import torch

from sklearn_derand._sosp import expectation, gaussian_nodes, make_generator


def test_gauss_hermite_is_exact_on_polynomials():
    nodes = gaussian_nodes(2, 5, method="gauss-hermite")
    assert len(nodes) == 25
    assert float(nodes.weights.sum()) == pytest.approx(1.0)
    moment = expectation(lambda z: z[:, 0] ** 2 * z[:, 1] ** 4, nodes)
    assert float(moment) == pytest.approx(3.0, abs=1e-12)
    odd = expectation(lambda z: z[:, 0] ** 3 * z[:, 1], nodes)
    assert abs(float(odd)) < 1e-12


@pytest.mark.parametrize("method", ["sobol", "antithetic", "monte-carlo"])
def test_random_rules_are_reproducible_and_standard_normal(method):
    a = gaussian_nodes(3, 4096, method=method, generator=make_generator(1))
    b = gaussian_nodes(3, 4096, method=method, generator=make_generator(1))
    c = gaussian_nodes(3, 4096, method=method, generator=make_generator(2))
    assert torch.equal(a.nodes, b.nodes)
    assert not torch.equal(a.nodes, c.nodes)
    z = a.nodes.numpy()
    tol = 5e-3 if method == "sobol" else 0.06
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=tol)
    np.testing.assert_allclose(np.cov(z.T), np.eye(3), atol=4 * tol)
    if method == "antithetic":
        assert float(expectation(lambda z: z[:, 0] ** 3, a)) == pytest.approx(0.0)


def test_sobol_beats_plain_monte_carlo_on_a_smooth_integrand():
    def h(z):
        return torch.cos(z).prod(dim=1)

    exact = np.exp(-0.5) ** 2  # E[cos z] = exp(-1/2)
    errs = {}
    for method in ("sobol", "monte-carlo"):
        errs[method] = np.mean(
            [
                abs(
                    float(
                        expectation(
                            h,
                            gaussian_nodes(
                                2, 1024, method=method, generator=make_generator(s)
                            ),
                        )
                    )
                    - exact
                )
                for s in range(5)
            ]
        )
    assert errs["sobol"] < errs["monte-carlo"] / 5


def test_gaussian_nodes_validation():
    with pytest.raises(ValueError, match="method"):
        gaussian_nodes(2, 10, method="halton")
    with pytest.raises(ValueError, match="too large"):
        gaussian_nodes(10, 10, method="gauss-hermite")
