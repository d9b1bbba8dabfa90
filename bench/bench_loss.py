"""pytest-benchmark suite for the fused losses (float32, fastnn only).

    pytest bench/bench_loss.py --benchmark-only
For side-by-side ratios against NumPy and PyTorch use bench/compare.py loss.
"""
import pytest

from fastnn import ops

import cases


data = cases.data_fixture(cases.LOSS_SHAPES, cases.loss_inputs)

# (op, which target): integer labels or probability rows
LOSSES = {
    "softmax_cross_entropy_ids": (ops.softmax_cross_entropy, 1),
    "softmax_cross_entropy_probabilities": (ops.softmax_cross_entropy, 2),
    "binary_cross_entropy_with_logits": (ops.binary_cross_entropy_with_logits, 2),
    "mean_squared_error": (ops.mean_squared_error, 2),
}


@pytest.mark.parametrize("name", LOSSES)
def test_loss(benchmark, data, name):
    op, target = LOSSES[name]
    benchmark(op, data[0], data[target])
