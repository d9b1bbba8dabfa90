"""pytest-benchmark suite for the fused losses (float32, fastnn only).

    pytest bench/bench_loss.py --benchmark-only
For side-by-side ratios against NumPy and PyTorch use bench/compare.py loss.
"""
import pytest

from fastnn import ops

import cases


@pytest.fixture(scope="module", params=cases.LOSS_SHAPES, ids=cases.shape_id)
def data(request):
    return cases.loss_inputs(*request.param)


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
