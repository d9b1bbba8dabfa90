"""pytest-benchmark suite for BatchNorm (float32, fastnn only).

    pytest bench/bench_norm.py --benchmark-only
For side-by-side ratios against NumPy and PyTorch use bench/compare.py norm.
"""
import numpy as np
import pytest

from fastnn import ops

SHAPES = [(128, 512), (256, 1024), (4096, 512)]


@pytest.fixture(scope="module", params=SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def data(request):
    m, n = request.param
    rng = np.random.default_rng(0)
    x = rng.standard_normal((m, n)).astype(np.float32)
    dy = rng.standard_normal((m, n)).astype(np.float32)
    gamma = rng.standard_normal(n).astype(np.float32)
    beta = rng.standard_normal(n).astype(np.float32)
    return x, dy, gamma, beta, np.zeros(n, np.float32), np.ones(n, np.float32)


def test_forward_training(benchmark, data):
    x, _, g, b, rm, rv = data
    benchmark(ops.batchnorm_forward, x, g, b, rm, rv)


def test_forward_inference(benchmark, data):
    x, _, g, b, rm, rv = data
    benchmark(ops.batchnorm_forward, x, g, b, rm, rv, training=False)


def test_backward(benchmark, data):
    x, dy, g, b, rm, rv = data
    _, mean, invstd = ops.batchnorm_forward(x, g, b, rm.copy(), rv.copy())
    benchmark(ops.batchnorm_backward, dy, x, g, mean, invstd)


def test_forward_training_and_backward(benchmark, data):
    x, dy, g, b, rm, rv = data

    def step():
        _, mean, invstd = ops.batchnorm_forward(x, g, b, rm, rv)
        return ops.batchnorm_backward(dy, x, g, mean, invstd)

    benchmark(step)
