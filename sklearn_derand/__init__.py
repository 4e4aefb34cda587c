"""Derandomization by second-order stationary points, as scikit-learn estimators.

Importing this package does not import torch: the torch backend
(:mod:`sklearn_derand._sosp`) is loaded the first time an estimator is fitted.
"""

__version__ = "0.1.0.dev0"

__all__ = ["__version__"]
