"""
=======================================
Tuning alpha with GridSearchCV
=======================================

``alpha`` is the paper's :math:`\\lambda` in every estimator: the ridge that
makes the randomness collapse. It is an ordinary hyper-parameter. Here the
regressor sits in a pipeline after a :class:`~sklearn.preprocessing.StandardScaler`
(the inputs are assumed standardised) and ``GridSearchCV`` picks ``alpha``
by held-out :math:`R^2`; the recovered subspace is checked against the truth
with :func:`~sklearn_derand.subspace_distance`.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_derand import StructuredTwoLayerRegressor, subspace_distance

rng = np.random.RandomState(0)
d, n = 15, 2000
U = np.linalg.qr(rng.randn(d, 2))[0].T
X = 3.0 * rng.randn(n, d) + 1.0  # not standardised: the scaler handles it
Z = (X - 1.0) / 3.0 @ U.T
y = np.tanh(Z[:, 0]) + Z[:, 1] ** 2 + 0.1 * rng.randn(n)

model = make_pipeline(
    StandardScaler(),
    StructuredTwoLayerRegressor(n_hidden=32, max_iter=1000, random_state=0),
)
alphas = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1]
search = GridSearchCV(
    model, {"structuredtwolayerregressor__alpha": alphas}, cv=3, n_jobs=1
).fit(X, y)

errors = []
for alpha in alphas:
    net = model.set_params(structuredtwolayerregressor__alpha=alpha).fit(X, y)[-1]
    errors.append(subspace_distance(net.components_[:2], U))

fig, ax1 = plt.subplots(figsize=(6, 4))
ax1.semilogx(alphas, search.cv_results_["mean_test_score"], "o-", label="CV $R^2$")
ax1.set_xlabel("alpha")
ax1.set_ylabel("mean cross-validated $R^2$")
ax2 = ax1.twinx()
ax2.semilogx(alphas, errors, "s--", color="C1", label="subspace error")
ax2.set_ylabel(r"subspace error $\|\sin\Theta\|_F$", color="C1")
ax1.set_title(
    f"best alpha = {search.best_params_['structuredtwolayerregressor__alpha']:g}"
)
fig.tight_layout()
plt.show()

best = search.best_estimator_[-1]
print(f"best alpha {search.best_params_}, CV R^2 {search.best_score_:.4f}")
best_error = errors[alphas.index(best.alpha)]
print(f"found {best.n_components_} components, error {best_error:.3f}")

# %%
# The fitted pipeline is also a supervised dimension reduction:
# ``transform`` maps inputs to the learned subspace.
print(search.best_estimator_.transform(X[:3]).round(3))
