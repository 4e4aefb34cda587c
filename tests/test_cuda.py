"""``device="cuda"`` end to end for every estimator (needs a CUDA GPU).

Without one, these tests are skipped and the CPU-only behaviour is tested
instead: asking for CUDA fails at fit with a clear ValueError.
"""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from sklearn_derand import (
    DerandomizedJLProjector,
    DerandomizedMaxCut,
    StructuredTwoLayerRegressor,
    subspace_distance,
)

needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device"
)


def _estimators():
    return [
        DerandomizedJLProjector(8, random_state=0),
        DerandomizedMaxCut(random_state=0),
        StructuredTwoLayerRegressor(n_hidden=8, random_state=0),
    ]


def _data():
    rng = np.random.RandomState(0)
    X = rng.randn(300, 6)
    y = np.tanh(X[:, 0])
    W = (rng.rand(40, 40) < 0.2).astype(float)
    W = np.triu(W, 1)
    return X, y, W + W.T


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("est", _estimators(), ids=lambda e: type(e).__name__)
def test_cuda_without_a_gpu_is_a_clear_error(est):
    X, y, W = _data()
    est.set_params(device="cuda")
    with pytest.raises(ValueError, match="CUDA is not available"):
        if isinstance(est, DerandomizedMaxCut):
            est.fit(W)
        else:
            est.fit(X, y)


@needs_cuda
def test_projector_on_cuda_matches_cpu():
    X = load_digits().data[:200]
    cpu = DerandomizedJLProjector(16, random_state=0).fit(X)
    gpu = DerandomizedJLProjector(16, random_state=0, device="cuda").fit(X)
    assert isinstance(gpu.components_, np.ndarray)
    assert gpu.distortion_ < 0.3
    assert abs(gpu.distortion_ - cpu.distortion_) < 0.05


@needs_cuda
def test_maxcut_on_cuda_is_certified():
    _, _, W = _data()
    cpu = DerandomizedMaxCut(random_state=0).fit(W)
    gpu = DerandomizedMaxCut(random_state=0, device="cuda").fit(W)
    assert isinstance(gpu.labels_, np.ndarray)
    assert gpu.cut_value_ >= gpu.expected_cut_gw_ - 1e-9
    assert gpu.upper_bound_ >= gpu.cut_value_
    assert gpu.upper_bound_ == pytest.approx(cpu.upper_bound_, rel=1e-3)


@needs_cuda
def test_regressor_on_cuda_finds_the_direction():
    X, y, _ = _data()
    gpu = StructuredTwoLayerRegressor(
        n_hidden=8, n_components=1, random_state=0, device="cuda"
    ).fit(X, y)
    assert isinstance(gpu.coefs_[0], np.ndarray)
    assert gpu.score(X, y) > 0.95
    assert subspace_distance(gpu.components_, [[1, 0, 0, 0, 0, 0]]) < 0.1
