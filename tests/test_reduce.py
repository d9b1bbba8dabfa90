"""Clipping and reductions against their twins: global-norm clipping (fixed
partition, reproducible for any thread count, NaN/inf reported), clip by value,
column sums."""
import numpy as np
import pytest

import fastnn
import fastnn.ops as ops
import fastnn.reference as ref
from fastnn import _core





def grads_of(dtype, sizes=((784, 13), (13,), (1,), (70_001,), (17, 3)), seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in sizes]


# norms are accumulated in float64 in both: 1e-12 relative for either dtype;
# scaled arrays then match to the rounding of one multiply in the dtype.
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("max_norm", [1.0, 1e6])
def test_clip_by_global_norm_matches_twin(isa_threads, dtype, max_norm):
    g = grads_of(dtype)
    g_ref = [a.copy() for a in g]
    norm = ops.clip_by_global_norm(g, max_norm)
    norm_ref = ref.clip_by_global_norm(g_ref, max_norm)
    assert isinstance(norm, float)
    assert abs(norm - norm_ref) <= 1e-12 * norm_ref
    for a, b in zip(g, g_ref):
        np.testing.assert_allclose(a, b, rtol=2e-7 if dtype == np.float32 else 1e-15, atol=0)


def test_clip_by_global_norm_is_bitwise_the_same_for_any_thread_count():
    old = fastnn.get_num_threads()
    out = []
    try:
        for t in (1, 2, 3):
            fastnn.set_num_threads(t)
            g = grads_of(np.float32, sizes=((1_000_003,), (5,)))
            out.append((ops.clip_by_global_norm(g, 1.0), g))
    finally:
        fastnn.set_num_threads(old)
    for norm, g in out[1:]:
        assert norm == out[0][0]
        assert all(np.array_equal(a, b) for a, b in zip(g, out[0][1]))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_gradient_is_reported_and_nothing_is_clipped(bad):
    g = grads_of(np.float32)
    g[3][12345] = bad
    before = [a.copy() for a in g]
    norm = ops.clip_by_global_norm(g, 1.0)
    assert not np.isfinite(norm)
    for a, b in zip(g, before):
        np.testing.assert_array_equal(a, b)


def test_clip_by_global_norm_mixed_dtypes_and_empty_list():
    g = [np.full(4, 3.0, np.float32), np.full(4, 4.0, np.float64)]
    assert ops.clip_by_global_norm(g, 100.0) == pytest.approx(10.0)
    assert ops.clip_by_global_norm([], 1.0) == 0.0


def test_clip_by_global_norm_rejects_bad_arguments():
    g = grads_of(np.float32)
    for bad in (0.0, -1.0, float("inf")):
        with pytest.raises(ValueError, match="max_norm"):
            ops.clip_by_global_norm(g, bad)
    with pytest.raises(TypeError, match="grads"):
        ops.clip_by_global_norm(g[0], 1.0)
    ro = g[1].copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"grads\[1\]"):
        ops.clip_by_global_norm([g[0], ro], 1.0)
    with pytest.raises(ValueError, match=r"grads\[0\]"):
        ops.clip_by_global_norm([g[3][::2]], 1.0)
    with pytest.raises(ValueError, match="max_norm"):
        _core.clip_by_global_norm(g, 0.0)
    with pytest.raises(TypeError, match=r"grads\[0\]"):
        _core.clip_by_global_norm([np.ones(3, np.int32)], 1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_by_value_matches_twin(isa_threads, dtype):
    for n in (1, 7, 33, 70_001):
        g = np.random.default_rng(n).standard_normal(n).astype(dtype) * 3
        g[0] = np.nan if n > 1 else g[0]
        g_ref = g.copy()
        norm = ops.clip_by_value(g, 1.5)
        norm_ref = ref.clip_by_value(g_ref, 1.5)
        assert (np.isnan(norm) and np.isnan(norm_ref)) or abs(norm - norm_ref) <= 1e-12 * norm_ref
        np.testing.assert_array_equal(g, g_ref)


def test_clip_by_value_rejects_bad_limit():
    g = np.ones(4, np.float32)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="limit"):
            ops.clip_by_value(g, bad)


# float32 column sums add rows in order, like NumPy's axis-0 sum: agree to
# m * 2^-24 relative of the sum of |x| (in practice bitwise).
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_column_sum_matches_twin(isa_threads, dtype):
    for shape in [(1, 1), (1, 17), (128, 10), (7, 33), (300, 129), (4096, 512), (3, 1000)]:
        x = np.random.default_rng(shape[1]).standard_normal(shape).astype(dtype)
        got = ops.column_sum(x)
        expect = ref.column_sum(x)
        assert got.shape == (shape[1],) and got.dtype == dtype
        bound = np.abs(x).sum(axis=0, dtype=np.float64) * (shape[0] * 2.0 ** -24 if dtype == np.float32 else 1e-12)
        assert np.all(np.abs(got.astype(np.float64) - expect) <= bound + 1e-300), shape


def test_column_sum_of_zero_rows_is_zero_and_bad_ndim_is_an_error():
    assert np.array_equal(ops.column_sum(np.zeros((0, 5))), np.zeros(5))
    with pytest.raises(ValueError, match="x: expected 2 dimensions"):
        ops.column_sum(np.ones(5))
    with pytest.raises(ValueError, match="out"):
        _core.column_sum(np.ones((3, 5)), np.empty(4))


def test_column_sum_into_out_reuses_the_buffer():
    x = np.random.default_rng(3).standard_normal((33, 17))
    out = np.empty(17)
    assert ops.column_sum(x, out=out) is out
    np.testing.assert_allclose(out, ref.column_sum(x), rtol=1e-12)
    with pytest.raises(ValueError, match=r"out: expected shape \(17,\), got \(16,\)"):
        ops.column_sum(x, out=np.empty(16))
