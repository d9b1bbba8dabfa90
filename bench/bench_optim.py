"""pytest-benchmark suite for the optimizer updates, dropout and clipping.

    PYTHONPATH=python python3 -m pytest bench/bench_optim.py --benchmark-only -q
"""
import numpy as np
import pytest

import fastnn.ops as ops

import cases

SIZES = cases.OPTIM_SIZES  # the 784-512-256-256-128-10 MLP, and a 10M arena


def arrays(n, k):
    rng = np.random.default_rng(0)
    return [rng.standard_normal(n).astype(np.float32) * (1e-2 if i else 1) for i in range(k)]


@pytest.mark.parametrize("n", SIZES)
def test_adam_update(benchmark, n):
    p, g, m, v = arrays(n, 4)
    v[:] = np.abs(v)
    benchmark(lambda: ops.adam_update(p, g, m, v, lr=1e-3, step=10))


@pytest.mark.parametrize("n", SIZES)
def test_sgd_momentum_update(benchmark, n):
    p, g, vel = arrays(n, 3)
    benchmark(lambda: ops.sgd_update(p, g, vel, lr=1e-3, momentum=0.9))


@pytest.mark.parametrize("n", SIZES)
def test_rmsprop_update(benchmark, n):
    p, g, s = arrays(n, 3)
    s[:] = np.abs(s)
    benchmark(lambda: ops.rmsprop_update(p, g, s, lr=1e-3))


@pytest.mark.parametrize("shape", [(128, 512), (4096, 1024)])
def test_dropout(benchmark, shape):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    out = np.empty_like(x)
    benchmark(lambda: ops.dropout(x, 0.5, seed=1, out=out))


def test_clip_by_global_norm(benchmark):
    g = arrays(633_226, 1)
    benchmark(lambda: ops.clip_by_global_norm(g, 1e9))


@pytest.mark.parametrize("shape", [(128, 512), (4096, 512)])
def test_column_sum(benchmark, shape):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    benchmark(lambda: ops.column_sum(x))
