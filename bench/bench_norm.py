"""pytest-benchmark suite for BatchNorm (float32, fastnn only).

    pytest bench/bench_norm.py --benchmark-only
For side-by-side ratios against NumPy and PyTorch use bench/compare.py norm.
"""

from fastnn import ops

import cases


data = cases.data_fixture(cases.NORM_SHAPES, cases.norm_inputs)


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
