"""pytest-benchmark suite for the fused losses (float32, fastnn only).

    pytest bench/bench_loss.py --benchmark-only
For side-by-side ratios against NumPy and PyTorch use bench/compare.py loss.
"""
import numpy as np
import pytest

from fastnn import ops

SHAPES = [(128, 10), (4096, 1000)]


@pytest.fixture(scope="module", params=SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def data(request):
    m, C = request.param
    rng = np.random.default_rng(0)
    z = (rng.standard_normal((m, C)) * 3).astype(np.float32)
    ids = rng.integers(0, C, m).astype(np.int64)
    probs = rng.random((m, C)).astype(np.float32)
    probs /= probs.sum(axis=1, keepdims=True)
    return z, ids, probs


def test_softmax_cross_entropy_ids(benchmark, data):
    z, ids, _ = data
    benchmark(ops.softmax_cross_entropy, z, ids)


def test_softmax_cross_entropy_probabilities(benchmark, data):
    z, _, probs = data
    benchmark(ops.softmax_cross_entropy, z, probs)


def test_binary_cross_entropy_with_logits(benchmark, data):
    z, _, probs = data
    benchmark(ops.binary_cross_entropy_with_logits, z, probs)


def test_mean_squared_error(benchmark, data):
    z, _, probs = data
    benchmark(ops.mean_squared_error, z, probs)
