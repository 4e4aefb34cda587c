"""Private torch backend: find and certify second-order stationary points.

This is the only package of ``sklearn_derand`` that imports torch. It knows
nothing about estimators: objectives come in as closures over dicts of
tensors, results go out as :class:`SOSPResult`.
"""

from sklearn_derand._sosp._utils import (
    make_generator,
    resolve_device,
    to_numpy,
    to_tensor,
)
from sklearn_derand._sosp.curvature import (
    Certificate,
    certify,
    hessian_vector_product,
    lanczos,
)
from sklearn_derand._sosp.expectations import (
    GaussianNodes,
    expectation,
    gaussian_nodes,
)
from sklearn_derand._sosp.optimize import (
    METHODS,
    IterationInfo,
    SOSPResult,
    minimize,
)
from sklearn_derand._sosp.smoothing import (
    FixedCorrelationBVN,
    bivariate_normal_cdf,
    norm_cdf,
    norm_pdf,
    sign_disagreement_probability,
    smoothed_relu,
    smoothed_step,
)

__all__ = [
    "METHODS",
    "Certificate",
    "FixedCorrelationBVN",
    "GaussianNodes",
    "IterationInfo",
    "SOSPResult",
    "bivariate_normal_cdf",
    "certify",
    "expectation",
    "gaussian_nodes",
    "hessian_vector_product",
    "lanczos",
    "make_generator",
    "minimize",
    "norm_cdf",
    "norm_pdf",
    "resolve_device",
    "sign_disagreement_probability",
    "smoothed_relu",
    "smoothed_step",
    "to_numpy",
    "to_tensor",
]
