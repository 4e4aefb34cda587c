"""
==========================================================
Swapping GaussianRandomProjection for a learned projection
==========================================================

A common pipeline compresses features with a random projection before a
distance-based model. :class:`~sklearn_derand.DerandomizedJLProjector` takes
the same parameters, so changing the class name is the whole migration.
Here a k-nearest-neighbours classifier on the digits runs after a projection
to ``k`` dimensions; the learned projection keeps distances, and with them
the neighbours, far better at small ``k``.
"""

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.random_projection import GaussianRandomProjection

from sklearn_derand import DerandomizedJLProjector, max_pairwise_distortion

X, y = load_digits(return_X_y=True)
X, y = X[:600], y[:600]
ks = [4, 8, 16]

scores = {"GaussianRandomProjection": [], "DerandomizedJLProjector": []}
for k in ks:
    for name, projection in [
        ("GaussianRandomProjection", GaussianRandomProjection(k, random_state=0)),
        ("DerandomizedJLProjector", DerandomizedJLProjector(k, random_state=0)),
    ]:
        model = make_pipeline(projection, KNeighborsClassifier(n_neighbors=3))
        scores[name].append(cross_val_score(model, X, y, cv=3).mean())

baseline = cross_val_score(KNeighborsClassifier(n_neighbors=3), X, y, cv=3).mean()

fig, ax = plt.subplots(figsize=(6, 4))
for name, values in scores.items():
    ax.plot(ks, values, "o-", label=name)
ax.axhline(baseline, color="k", ls="--", label="no projection (d = 64)")
ax.set_xlabel("n_components")
ax.set_ylabel("3-fold accuracy of 3-NN")
ax.set_xticks(ks)
ax.legend()
fig.tight_layout()
plt.show()

for i, k in enumerate(ks):
    print(
        f"k={k:2d}: Gaussian {scores['GaussianRandomProjection'][i]:.3f}, "
        f"learned {scores['DerandomizedJLProjector'][i]:.3f}"
    )

# %%
# The projection is fitted on the training folds only; the distortion of
# the training pairs is ``distortion_``, and any embedding can be measured
# with :func:`~sklearn_derand.max_pairwise_distortion`.
proj = DerandomizedJLProjector(16, random_state=0).fit(X[:300])
gauss = GaussianRandomProjection(16, random_state=0).fit(X[:300])
print(
    f"max distortion on the 300 training points: learned {proj.distortion_:.3f}, "
    f"Gaussian {max_pairwise_distortion(X[:300], gauss.transform(X[:300])):.3f}"
)
print(
    f"on 300 new points: learned "
    f"{max_pairwise_distortion(X[300:], proj.transform(X[300:])):.3f}, Gaussian "
    f"{max_pairwise_distortion(X[300:], gauss.transform(X[300:])):.3f}"
)
