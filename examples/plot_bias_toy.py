"""
=====================================================
The derandomization lemma on the paper's toy
=====================================================

The lemma says that for :math:`f(w, b) = E_x[g(wx + b)] + \\lambda w^2` with
:math:`x \\sim N(0, 1)`, every second-order stationary point has a small
:math:`w`; at an exact one, :math:`w = 0`: the randomness :math:`wx`
collapses and a deterministic answer :math:`b` is left. This needs the bias
:math:`b` to be trainable.

The paper's toy takes :math:`g(u) = (\\mathrm{ReLU}(u)^3 - 1)^2`.

* With :math:`b` frozen at 0, the only way to make :math:`\\mathrm{ReLU}(wx)^3`
  reach 1 is to spread :math:`wx` out: the minimiser :math:`w^*` stays away
  from 0 until the ridge :math:`\\lambda` is large (about 0.45; Figure 1 of
  the paper).
* With :math:`b` trained, :math:`\\mathrm{ReLU}(b) = 1` and :math:`w^* = 0`
  for every :math:`\\lambda`: derandomized (Figure 2).

The expectations are computed by quadrature on a fine grid and minimised
globally over a grid of :math:`(w, b)`.
"""

import matplotlib.pyplot as plt
import numpy as np

x = np.linspace(-9.0, 9.0, 3601)
pdf = np.exp(-(x**2) / 2) / np.sqrt(2 * np.pi)
weights = pdf * (x[1] - x[0])


def expected_loss(w, b):
    """E_x[(ReLU(w x + b)^3 - 1)^2] for an array of w and one b."""
    u = np.maximum(np.multiply.outer(w, x) + b, 0.0)
    return ((u**3 - 1.0) ** 2) @ weights


w_grid = np.linspace(0.0, 1.5, 751)
b_grid = np.linspace(-0.5, 1.5, 201)
loss_frozen = expected_loss(w_grid, 0.0)  # b = 0
# b trained: for each w, the best b on the grid
losses = np.array([expected_loss(w_grid, b) for b in b_grid])  # (b, w)
best_b = b_grid[np.argmin(losses, axis=0)]
loss_trained = losses.min(axis=0)

lambdas = np.logspace(-4, 0, 81)
w_frozen = [w_grid[np.argmin(loss_frozen + lam * w_grid**2)] for lam in lambdas]
w_trained = [w_grid[np.argmin(loss_trained + lam * w_grid**2)] for lam in lambdas]

fig, axes = plt.subplots(1, 2, figsize=(11, 4))
ax = axes[0]
ax.semilogx(lambdas, w_frozen, label="b frozen at 0")
ax.semilogx(lambdas, w_trained, lw=3, ls="--", label="b trained")
ax.set_xlabel(r"ridge $\lambda$")
ax.set_ylabel(r"minimiser $|w^*|$ (noise scale)")
ax.set_title("Figure 1: the noise survives only with b frozen")
ax.legend()

ax = axes[1]
for lam in [1e-3, 0.1, 0.45, 1.0]:
    ax.plot(w_grid, loss_frozen + lam * w_grid**2, label=rf"b = 0, $\lambda$={lam:g}")
ax.plot(
    w_grid,
    loss_trained + 1e-3 * w_grid**2,
    "k--",
    lw=2,
    label=r"best b, $\lambda$=1e-3",
)
ax.set_ylim(-0.05, 1.6)
ax.set_xlabel("w")
ax.set_ylabel(r"$f(w, b)$")
ax.set_title("Figure 2: the objective along w")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

i = np.argmax(np.array(w_frozen) == 0.0)
print(
    f"b frozen: w* = {w_frozen[i - 1]:.3f} at lambda = {lambdas[i - 1]:.3f}, "
    f"w* = 0 from lambda = {lambdas[i]:.3f} on"
)
print(
    f"b trained: w* = {max(w_trained):.3g} for every lambda; "
    f"ReLU(b*) = {max(best_b[0], 0):.2f} at w = 0"
)

# %%
# With :math:`b` frozen, :math:`w = 0` is a stationary point but not the
# minimiser for small :math:`\lambda`: the noise is doing useful work. With
# :math:`b` trained, the lemma rules out any second-order stationary point
# with a large :math:`w`, and the minimiser is deterministic. The estimators
# of this package use exactly this: the noise of a random projection, of the
# hidden inputs orthogonal to the signal, or of a rounding hyperplane, enters
# next to a trainable shift, and a certified second-order stationary point
# has none left. ``tests/test_sosp_optimize.py`` checks the same toy with the
# package's saddle-escaping optimiser (smoothed ReLU, Gauss-Hermite nodes).
