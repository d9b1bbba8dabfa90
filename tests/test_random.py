"""Philox4x32-10 and dropout: known answers, bitwise parity with the twin,
independence from the thread count, statistics."""
import numpy as np
import pytest

import fastnn
import fastnn.ops as ops
import fastnn.reference as ref
from fastnn import _core





# Random123 known-answer vectors for philox4x32-10: (counter, key, result)
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("ctr,key,expect", KAT)
def test_philox_matches_random123_known_answers(ctr, key, expect):
    assert tuple(_core.philox4x32(list(ctr), list(key))) == expect
    got = ref.philox4x32(np.array([ctr], dtype=np.uint32), key)
    assert tuple(int(v) for v in got[0]) == expect


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rate", [0.0, 0.1, 0.5, 0.9])
def test_dropout_is_bitwise_equal_to_the_twin(isa_threads, dtype, rate):
    rng = np.random.default_rng(0)
    for shape in [(1,), (3,), (63,), (65,), (7, 13), (2, 3, 101), (40_003,)]:
        x = rng.standard_normal(shape).astype(dtype)
        for seed in (0, 1, 2**32 + 5, 2**64 - 1):
            y, mask = ops.dropout(x, rate, seed=seed)
            y_ref, mask_ref = ref.dropout(x, rate, seed=seed)
            assert y.dtype == mask.dtype == dtype and y.shape == mask.shape == shape
            assert np.array_equal(mask, mask_ref), (shape, seed)
            assert np.array_equal(y, y_ref), (shape, seed)


def test_dropout_mask_does_not_depend_on_thread_count():
    x = np.ones(1_000_003, np.float32)
    old = fastnn.get_num_threads()
    masks = []
    try:
        for t in (1, 2, 3):
            fastnn.set_num_threads(t)
            masks.append(ops.dropout(x, 0.3, seed=42)[1])
    finally:
        fastnn.set_num_threads(old)
    assert np.array_equal(masks[0], masks[1]) and np.array_equal(masks[0], masks[2])


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_dropout_statistics_over_a_million_values(rate):
    n = 1_000_000
    x = np.random.default_rng(1).uniform(0.5, 1.5, n).astype(np.float32)
    y, mask = ops.dropout(x, rate, seed=7)
    kept = np.count_nonzero(mask)
    sd = np.sqrt(n * rate * (1 - rate))
    assert abs(kept - n * (1 - rate)) <= 4 * sd
    assert set(np.unique(mask)) == {np.float32(0), np.float32(1 / (1 - rate))}
    # E[y] = E[x]: inverted dropout keeps the mean (4 sd of the mean of y)
    sd_mean = np.std(y.astype(np.float64)) / np.sqrt(n)
    assert abs(y.mean(dtype=np.float64) - x.mean(dtype=np.float64)) <= 4 * sd_mean


def test_rate_zero_is_the_identity():
    x = np.random.default_rng(2).standard_normal((33, 17))
    y, mask = ops.dropout(x, 0.0, seed=3)
    assert np.array_equal(y, x) and np.all(mask == 1.0)


def test_different_seeds_give_different_masks_and_same_seed_the_same():
    x = np.ones(10_000)
    assert not np.array_equal(ops.dropout(x, 0.5, seed=1)[1], ops.dropout(x, 0.5, seed=2)[1])
    assert np.array_equal(ops.dropout(x, 0.5, seed=1)[1], ops.dropout(x, 0.5, seed=1)[1])


def test_dropout_out_argument_and_in_place():
    x = np.random.default_rng(3).standard_normal(1000).astype(np.float32)
    y_ref, _ = ref.dropout(x, 0.4, seed=9)
    out = np.empty_like(x)
    y, _ = ops.dropout(x, 0.4, seed=9, out=out)
    assert y is out and np.array_equal(out, y_ref)
    ops.dropout(x, 0.4, seed=9, out=x)
    assert np.array_equal(x, y_ref)


def test_dropout_rejects_bad_arguments():
    x = np.ones(10, np.float32)
    for rate in (1.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="rate"):
            ops.dropout(x, rate, seed=0)
    with pytest.raises(TypeError, match="seed"):
        ops.dropout(x, 0.5, seed=1.5)
    with pytest.raises(TypeError, match="x"):
        ops.dropout(x.astype(np.int64), 0.5, seed=1)
    with pytest.raises(TypeError, match="out"):
        ops.dropout(x, 0.5, seed=1, out=np.empty(10, np.float64))
    with pytest.raises(ValueError, match="out"):
        ops.dropout(x, 0.5, seed=1, out=np.empty(11, np.float32))
    with pytest.raises(ValueError, match="rate"):
        _core.dropout(x, 1.0, 0, np.empty_like(x), None)
    with pytest.raises(ValueError, match="out"):
        _core.dropout(x, 0.5, 0, np.empty(3, np.float32), None)


def test_dropout_out_tuple_receives_y_and_mask():
    x = np.random.default_rng(0).standard_normal((5, 37))
    want_y, want_mask = ops.dropout(x, 0.3, seed=11)
    y, mask = np.empty_like(x), np.empty_like(x)
    got_y, got_mask = ops.dropout(x, 0.3, seed=11, out=(y, mask))
    assert got_y is y and got_mask is mask
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(mask, want_mask)
    with pytest.raises(ValueError, match=r"out\[1\]"):
        ops.dropout(x, 0.3, seed=11, out=(y, y))
    with pytest.raises(TypeError, match=r"out\[1\]"):
        ops.dropout(x, 0.3, seed=11, out=(y, mask.astype(np.float32)))
