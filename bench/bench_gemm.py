"""pytest-benchmark suite for matmul (fastnn only).

    pytest bench/bench_gemm.py --benchmark-only
For side-by-side GFLOP/s and ratios against NumPy and PyTorch, and the
fraction of the FMA peak, use bench/compare.py gemm.
"""
import numpy as np
import pytest

from fastnn import ops

MLP = [784, 512, 256, 256, 128, 10]


def _operands(m, n, k, dtype, ta, tb):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    return a, b, np.empty((m, n), dtype)


@pytest.mark.parametrize("size", [256, 512, 1024, 2048])
def test_square_f32(benchmark, size):
    a, b, c = _operands(size, size, size, np.float32, False, False)
    benchmark(ops.matmul, a, b, out=c)


def test_square_f64_1024(benchmark):
    a, b, c = _operands(1024, 1024, 1024, np.float64, False, False)
    benchmark(ops.matmul, a, b, out=c)


MLP_CASES = []
for _batch in (64, 256):
    for _fi, _fo in zip(MLP[:-1], MLP[1:]):
        MLP_CASES += [(f"b{_batch}-{_fi}-{_fo}-fwd", _batch, _fo, _fi, False, False),
                      (f"b{_batch}-{_fi}-{_fo}-dX", _batch, _fi, _fo, False, True),
                      (f"b{_batch}-{_fi}-{_fo}-dW", _fi, _fo, _batch, True, False)]


@pytest.mark.parametrize("case", MLP_CASES, ids=[c[0] for c in MLP_CASES])
def test_mlp_training_product(benchmark, case):
    _, m, n, k, ta, tb = case
    a, b, c = _operands(m, n, k, np.float32, ta, tb)
    benchmark(ops.matmul, a, b, trans_a=ta, trans_b=tb, out=c)


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_dense_forward_fused(benchmark, activation):
    a, b, c = _operands(128, 512, 784, np.float32, False, False)
    bias = np.zeros(512, np.float32)
    benchmark(ops.matmul, a, b, bias=bias, activation=activation, out=c)
