"""
=========================================================
Derandomized rounding for MAXCUT, iteration by iteration
=========================================================

Goemans-Williamson rounding cuts a graph with a *random* hyperplane through
the SDP vectors: :math:`s_i = \\mathrm{sign}(v_i \\cdot z)`. The derandomized
rounding treats the hyperplane as the random object of the lemma,
:math:`s_i = \\mathrm{sign}(t_i\\, v_i \\cdot z + \\mu_i)`, and maximises the
expected cut (closed form, no sampling) with a small penalty ``alpha`` on the
noise scale. The noise collapses and a deterministic cut is left whose value
is at least the random rounding's expectation (Figure 5 of the paper).

On a random graph with 18 nodes the maximum cut can be found by brute force
(:math:`2^{17}` partitions), so every curve is compared with the optimum.
"""

import itertools

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np

from sklearn_derand import DerandomizedMaxCut

G = nx.gnp_random_graph(18, 0.4, seed=3)
A = nx.to_numpy_array(G)
n = A.shape[0]
edges = np.array(G.edges())


def cut_values(sides):
    """Cut weight of each row of a (n_partitions, n) array of 0/1 sides."""
    return (sides[:, edges[:, 0]] != sides[:, edges[:, 1]]).sum(axis=1)


# Brute force: node 0 stays on side 0 (a cut and its mirror are equal).
sides = np.array(list(itertools.product([0, 1], repeat=n - 1)), dtype=np.int8)
sides = np.hstack([np.zeros((len(sides), 1), dtype=np.int8), sides])
optimum = cut_values(sides).max()

est = DerandomizedMaxCut(local_search=False, random_state=0).fit(A)

# Random hyperplanes through the same SDP vectors (classic GW rounding).
rng = np.random.RandomState(0)
Z = rng.randn(est.embedding_.shape[1], 1000)
hyperplane_cuts = cut_values((est.embedding_ @ Z > 0).T.astype(np.int8))

fig, axes = plt.subplots(1, 2, figsize=(11, 4))
ax = axes[0]
ax.plot(est.expected_cut_curve_, label="expected cut of the rounding")
ax.axhline(optimum, color="k", ls="--", label=f"maximum cut (brute force) = {optimum}")
ax.axhline(est.upper_bound_, color="gray", ls=":", label="certified SDP bound")
ax.axhline(est.expected_cut_gw_, color="C1", label="GW expected cut")
ax.axhline(
    np.median(hyperplane_cuts), color="C2", ls="-.", label="random hyperplane, median"
)
ax.axhline(hyperplane_cuts.max(), color="C2", ls=":", label="best of 1000 hyperplanes")
ax.set_xlabel("iteration")
ax.set_ylabel("cut weight")
ax.set_title(f"Final deterministic cut: {est.cut_value_:.0f}")
ax.legend(fontsize=8)

ax = axes[1]
ax.semilogy(est.noise_scale_curve_)
ax.set_xlabel("iteration")
ax.set_ylabel(r"mean noise scale $t_i^2$")
ax.set_title("The randomness collapses")
fig.tight_layout()
plt.show()

print(
    f"optimum {optimum}, derandomized {est.cut_value_:.0f}, GW expectation "
    f"{est.expected_cut_gw_:.2f}, hyperplanes: median "
    f"{np.median(hyperplane_cuts):.0f}, best {hyperplane_cuts.max()}"
)
