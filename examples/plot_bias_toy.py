"""
=====================================================
The derandomization lemma on a toy: why b must train
=====================================================

The lemma says that for :math:`f(w, b) = E_x[g(wx + b)] + \\lambda w^2` with
:math:`x \\sim N(0, 1)`, every second-order stationary point has a small
:math:`w`; at an exact one, :math:`w = 0`. The randomness :math:`wx`
collapses and a deterministic answer :math:`b` is left. This needs the bias
:math:`b` to be trainable.

Take :math:`g(u) = -\\exp(-(u - 2)^2 / 2)`, a well at :math:`u = 2`. The
expectation has a closed form,

.. math::

    E_x[g(wx + b)] = -\\frac{1}{\\sqrt{1 + w^2}}
    \\exp\\Big(-\\frac{(b - 2)^2}{2 (1 + w^2)}\\Big).

* With :math:`b` frozen at 0, the only way to reach the well is to spread
  :math:`wx` out: the minimiser keeps a large :math:`w` until the ridge
  :math:`\\lambda` is strong enough to switch it off (Figure 1 of the
  paper).
* With :math:`b` trained, the minimiser moves :math:`b` to the well and
  :math:`w^* = 0` for every :math:`\\lambda > 0`: derandomized (Figure 2).
"""

import matplotlib.pyplot as plt
import numpy as np


def objective(w, b, lam):
    """E_x[g(w x + b)] + lam w^2, in closed form."""
    s = 1.0 + w**2
    return -np.exp(-((b - 2.0) ** 2) / (2 * s)) / np.sqrt(s) + lam * w**2


w_grid = np.linspace(0.0, 4.0, 4001)
b_grid = np.linspace(-1.0, 4.0, 501)
lambdas = np.linspace(0.0, 0.12, 121)

w_frozen, w_trained, b_trained = [], [], []
for lam in lambdas:
    # b frozen at 0: minimise over w on a fine grid (global, not a local step)
    w_frozen.append(w_grid[np.argmin(objective(w_grid, 0.0, lam))])
    # b trained: minimise over (w, b) jointly
    values = objective(w_grid[:, None], b_grid[None, :], lam)
    i, j = np.unravel_index(np.argmin(values), values.shape)
    w_trained.append(w_grid[i])
    b_trained.append(b_grid[j])

fig, axes = plt.subplots(1, 2, figsize=(10, 4))
ax = axes[0]
ax.plot(lambdas, w_frozen, label="b frozen at 0")
ax.plot(lambdas, w_trained, label="b trained", lw=3, ls="--")
ax.set_xlabel(r"ridge $\lambda$")
ax.set_ylabel(r"minimiser $|w^*|$ (noise scale)")
ax.set_title("Figure 1: the noise survives only with b frozen")
ax.legend()

ax = axes[1]
lam = 0.02
W, B = np.meshgrid(np.linspace(-3, 3, 301), b_grid)
contours = ax.contourf(B, W, objective(W, B, lam), levels=30, cmap="viridis")
fig.colorbar(contours, ax=ax, label="f(w, b)")
w0 = w_grid[np.argmin(objective(w_grid, 0.0, lam))]
ax.plot([0, 0], [-w0, w0], "wo", label="best with b = 0")
ax.plot([2.0], [0.0], "r*", ms=14, label="global minimiser (w = 0)")
ax.axvline(0.0, color="w", lw=0.8, ls=":")
ax.set_xlabel("b")
ax.set_ylabel("w")
ax.set_title(rf"Figure 2: landscape at $\lambda$ = {lam}")
ax.legend(loc="lower right")
fig.tight_layout()
plt.show()

print(
    f"lambda = {lam}: b frozen -> w* = {w0:.3f}; b trained -> w* = "
    f"{w_trained[20]:.3f}, b* = {b_trained[20]:.2f}"
)

# %%
# With :math:`b` frozen, :math:`w = 0` is a *stationary point that is not a
# minimum* for small :math:`\lambda` (the curvature in :math:`w` is
# negative there): an optimiser that only looks at gradients may stop on it,
# one that escapes saddles finds the noisy minimiser. With :math:`b` trained,
# the lemma rules out any second-order stationary point with a large
# :math:`w`. The estimators of this package use exactly this: the noise of
# a random projection, of the hidden inputs orthogonal to the signal, or of a
# rounding hyperplane, enters next to a trainable shift, and a certified
# second-order stationary point has none left.
