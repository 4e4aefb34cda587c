"""Fixed nodes for Gaussian expectations E_z[h(z)], z ~ N(0, I_dim).

An objective that averages over the same nodes at every step is a
deterministic function of its parameters, so gradients, Hessian-vector
products and the SOSP certificate all refer to one function (common random
numbers across steps, not fresh noise each step).
"""

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["GaussianNodes", "expectation", "gaussian_nodes"]

_METHODS = ("gauss-hermite", "sobol", "antithetic", "monte-carlo")


@dataclass(frozen=True)
class GaussianNodes:
    """Nodes (n_nodes, dim) and weights (n_nodes,) summing to one."""

    nodes: torch.Tensor
    weights: torch.Tensor

    def __len__(self):
        return self.nodes.shape[0]


def gaussian_nodes(
    dim,
    n_nodes,
    *,
    method="sobol",
    generator=None,
    dtype=torch.float64,
    device="cpu",
):
    """Nodes and weights approximating the standard normal law in ``dim`` dims.

    Parameters
    ----------
    dim : int
        Dimension of z.
    n_nodes : int
        For ``"gauss-hermite"``, nodes per dimension (the rule is the tensor
        product, ``n_nodes**dim`` points, exact for polynomials of degree up
        to ``2 * n_nodes - 1`` in each coordinate: use it in low dimension).
        For the others, the total number of points (``"antithetic"`` rounds
        it up to an even number).
    method : {"gauss-hermite", "sobol", "antithetic", "monte-carlo"}
        ``"sobol"``: scrambled Sobol points mapped through the normal
        quantile (low variance, any dimension). ``"antithetic"``: pairs
        (z, -z), exact for odd functions. ``"monte-carlo"``: plain draws.
    generator : torch.Generator, optional
        Source of randomness for the random rules (never the global RNG).
    dtype, device :
        Of the returned tensors.

    Returns
    -------
    GaussianNodes
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}.")
    dim, n_nodes = int(dim), int(n_nodes)
    if dim < 1 or n_nodes < 1:
        raise ValueError("dim and n_nodes must be positive.")
    if method == "gauss-hermite":
        if n_nodes**dim > 10**7:
            raise ValueError(
                f"a Gauss-Hermite grid of {n_nodes}**{dim} points is too large; "
                "use method='sobol' in this dimension."
            )
        x, w = np.polynomial.hermite_e.hermegauss(n_nodes)
        w = w / w.sum()
        grids = np.meshgrid(*([x] * dim), indexing="ij")
        wgrids = np.meshgrid(*([w] * dim), indexing="ij")
        nodes = np.stack([g.ravel() for g in grids], axis=1)
        weights = np.prod(np.stack([g.ravel() for g in wgrids], axis=1), axis=1)
        return GaussianNodes(
            torch.as_tensor(nodes, dtype=dtype, device=device),
            torch.as_tensor(weights, dtype=dtype, device=device),
        )
    seed = int(torch.randint(2**31 - 1, (1,), generator=generator).item())
    if method == "sobol":
        engine = torch.quasirandom.SobolEngine(dim, scramble=True, seed=seed)
        u = engine.draw(n_nodes, dtype=torch.float64)
        # Keep the quantile finite: the scrambled points are never exactly 0
        # or 1 in exact arithmetic, but can round there.
        u = u.clamp(1e-12, 1.0 - 1e-12)
        nodes = torch.special.ndtri(u)
    else:
        local = torch.Generator().manual_seed(seed)
        half = (n_nodes + 1) // 2 if method == "antithetic" else n_nodes
        nodes = torch.randn(half, dim, generator=local, dtype=torch.float64)
        if method == "antithetic":
            nodes = torch.cat([nodes, -nodes], dim=0)
    nodes = nodes.to(dtype=dtype, device=device)
    weights = torch.full(
        (nodes.shape[0],), 1.0 / nodes.shape[0], dtype=dtype, device=device
    )
    return GaussianNodes(nodes, weights)


def expectation(h, nodes):
    """Approximate E_z[h(z)] with fixed ``nodes``.

    ``h`` maps a (n_nodes, dim) tensor to (n_nodes, ...) values; the result
    is their weighted mean over the first axis.
    """
    values = h(nodes.nodes)
    w = nodes.weights.reshape((-1,) + (1,) * (values.dim() - 1))
    return (w * values).sum(dim=0)
