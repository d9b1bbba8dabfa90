"""pytest-benchmark suite for the activations (float32, fastnn only).

    pytest bench/bench_eltwise.py --benchmark-only
For side-by-side ratios against NumPy and PyTorch use bench/compare.py eltwise.
"""
import numpy as np
import pytest

from fastnn import ops

import cases

NAMES = cases.ACTIVATIONS


data = cases.data_fixture(cases.ELTWISE_SIZES, cases.eltwise_inputs, ids=lambda n: f"{n >> 20}M")


@pytest.mark.parametrize("name", NAMES)
def test_forward(benchmark, data, name):
    x, _ = data
    out = np.empty_like(x)
    benchmark(ops.activation, name, x, out=out)


@pytest.mark.parametrize("name", NAMES)
def test_gradient(benchmark, data, name):
    x, dy = data
    out = np.empty_like(x)
    if name in ("swish", "softplus"):
        benchmark(ops.activation_grad, name, dy, x=x, out=out)
    else:
        benchmark(ops.activation_grad, name, dy, y=ops.activation(name, x), out=out)


def test_softmax(benchmark):
    x = np.random.default_rng(1).standard_normal((4096, 1000)).astype(np.float32)
    out = np.empty_like(x)
    benchmark(ops.softmax, x, out=out)
