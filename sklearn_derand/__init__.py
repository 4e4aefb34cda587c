"""Derandomization by second-order stationary points, as scikit-learn estimators.

Importing this package does not import torch: the torch backend
(:mod:`sklearn_derand._sosp`) is loaded the first time an estimator is fitted.
"""

from sklearn_derand.maxcut import DerandomizedMaxCut
from sklearn_derand.neural_network import (
    StructuredTwoLayerRegressor,
    subspace_distance,
)
from sklearn_derand.random_projection import (
    DerandomizedJLProjector,
    johnson_lindenstrauss_min_dim,
    max_pairwise_distortion,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "DerandomizedJLProjector",
    "DerandomizedMaxCut",
    "StructuredTwoLayerRegressor",
    "__version__",
    "johnson_lindenstrauss_min_dim",
    "max_pairwise_distortion",
    "subspace_distance",
]
