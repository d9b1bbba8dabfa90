"""ops.take_rows (the row gather of the trainer's shuffled batches) against its NumPy
twin, reference.take_rows: bitwise equal (a copy), for every fixed-size dtype, awkward
shapes and both thread counts; the refusals name the argument and leave out as it was."""
from __future__ import annotations

import numpy as np
import pytest

import fastnn
from fastnn import _core, ops, reference
from helpers import releases_the_gil

DTYPES = [np.float32, np.float64, np.int64, np.int8, np.uint16, np.bool_, np.complex128, "S3",
          np.dtype([("a", np.int32), ("b", np.float64)])]


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    before = fastnn.get_num_threads()
    fastnn.set_num_threads(request.param)
    yield request.param
    fastnn.set_num_threads(before)


def _array(shape, dtype, seed=0):
    raw = np.random.default_rng(seed).integers(0, 256, size=int(np.prod(shape)) * np.dtype(dtype).itemsize,
                                                dtype=np.uint8)
    return raw.view(dtype).reshape(shape)


def _same(got, want):
    assert got.shape == want.shape and got.dtype == want.dtype
    assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(7, 5), (7,), (7, 2, 3), (1, 4), (7, 0)])
def test_equals_the_twin(dtype, shape, threads):
    x = _array(shape, dtype)
    idx = np.random.default_rng(1).integers(0, shape[0], size=11)
    want = reference.take_rows(x, idx)
    _same(ops.take_rows(x, idx), want)
    out = np.empty_like(want)
    assert ops.take_rows(x, idx, out=out) is out
    _same(out, want)


@pytest.mark.parametrize("idx_dtype", [np.int64, np.int32, np.intp, np.uint8, np.int16, np.uint64])
def test_index_dtypes(idx_dtype):
    x = _array((9, 3), np.float32)
    idx = np.array([8, 0, 3, 3], dtype=idx_dtype)
    _same(ops.take_rows(x, idx), x[idx.astype(np.int64)])
    _same(ops.take_rows(x, [8, 0, 3, 3]), x[[8, 0, 3, 3]])


def test_awkward_shapes(threads):
    x = _array((5, 4), np.float64)
    _same(ops.take_rows(x, np.array([], np.int64)), x[:0])  # no rows
    _same(ops.take_rows(x, []), x[:0])
    _same(ops.take_rows(x[:1], np.zeros(3, np.int64)), np.repeat(x[:1], 3, axis=0))  # one row, repeated
    _same(ops.take_rows(np.empty((0, 4)), np.array([], np.int64)), np.empty((0, 4)))  # nothing from nothing
    with pytest.raises(ValueError, match=r"^indices: expected values in \[0, 0\)"):
        ops.take_rows(np.empty((0, 4)), np.array([0]))


def test_many_rows_both_thread_counts():
    """A row count far past the threading grain (narrow and wide rows): the threads split
    the rows, the result is the twin's whatever the thread count."""
    rng = np.random.default_rng(2)
    for shape in [(1_200_001,), (40_000, 33), (700, 784)]:  # 4.8, 5.3, 2.2 MB: split at 2 threads
        x = _array(shape, np.float32, seed=3)
        idx = rng.integers(0, shape[0], size=shape[0] + 17)
        want = reference.take_rows(x, idx)
        before = fastnn.get_num_threads()
        try:
            for nt in (1, 2):
                fastnn.set_num_threads(nt)
                _same(ops.take_rows(x, idx), want)
        finally:
            fastnn.set_num_threads(before)


def test_non_contiguous_inputs_are_copied():
    x = _array((6, 8), np.float32)
    idx = np.array([5, 1, 2, 0, 4, 3])
    _same(ops.take_rows(x[:, ::2], idx[::2]), x[:, ::2][idx[::2]])
    _same(ops.take_rows(np.asfortranarray(x), idx[::-1]), x[idx[::-1]])


@pytest.mark.parametrize("bad, idx_dtype, msg", [
    ([0, 1, 6], np.int64, r"^indices: expected values in \[0, 6\) \(the rows of x\), got 6 at position 2"),
    ([0, 1, 6], np.int32, r"^indices: expected values in \[0, 6\) \(the rows of x\), got 6 at position 2"),
    ([0, -1, 2], np.int64, r"^indices: expected values in \[0, 6\) \(the rows of x\), got -1 at position 1 \(neg"),
    ([0, -1, 2], np.int32, r"^indices: expected values in \[0, 6\) \(the rows of x\), got -1 at position 1 \(neg"),
    ([2**40], np.int64, r"^indices: expected values in \[0, 6\).*got 1099511627776 at position 0"),
    ([-2**63], np.int64, r"^indices: expected values in \[0, 6\).*got -9223372036854775808 at position 0"),
])
def test_out_of_range_index_is_refused_before_writing(bad, idx_dtype, msg, threads):
    """Every index is checked before anything is written: the in-range rows before the
    bad one are not copied either (np.take(mode="clip") would clamp instead)."""
    x = _array((6, 3), np.float64)
    out = np.full((len(bad), 3), 7.0)
    with pytest.raises(ValueError, match=msg):
        ops.take_rows(x, np.array(bad, idx_dtype), out=out)
    assert (out == 7.0).all()
    with pytest.raises(ValueError, match=r"^indices: expected values in \[0, 6\)"):
        reference.take_rows(x, np.array(bad, idx_dtype))


def test_huge_unsigned_index_does_not_wrap():
    x = _array((6, 3), np.float32)
    with pytest.raises(ValueError, match=r"^indices: .* got 18446744073709551615 at position 1"):
        ops.take_rows(x, np.array([0, 2**64 - 1], np.uint64))


@pytest.mark.parametrize("bad, err, msg", [
    (np.array([0.0, 1.0]), TypeError, "indices: expected integers, got dtype float64"),
    (np.array([True]), TypeError, "indices: expected integers, got dtype bool"),
    (np.zeros((2, 1), np.int64), ValueError, "indices: expected 1 dimension, got 2"),
    (3, ValueError, "indices: expected 1 dimension, got 0"),
    ("ab", TypeError, "indices: expected integers"),
    (None, TypeError, "indices: expected integers"),
])
def test_bad_indices(bad, err, msg):
    with pytest.raises(err, match="^" + msg):
        ops.take_rows(_array((4, 2), np.float32), bad)


def test_bad_x():
    with pytest.raises(TypeError, match=r"^x: expected a numpy.ndarray, got list"):
        ops.take_rows([[1.0, 2.0]], np.array([0]))
    with pytest.raises(TypeError, match=r"^x: expected a dtype of fixed-size values, got object"):
        ops.take_rows(np.array([[1, "a"]], dtype=object), np.array([0]))
    with pytest.raises(TypeError, match=r"^x: expected a dtype of fixed-size values"):
        ops.take_rows(np.zeros(2, dtype=[("a", object)]), np.array([0]))
    with pytest.raises(ValueError, match=r"^x: expected at least 1 dimension"):
        ops.take_rows(np.array(1.0, np.float32), np.array([0]))
    with pytest.raises(TypeError, match=r"^x: expected a dtype of fixed-size values"):  # the core on its own
        _core.take_rows(np.zeros((2, 1), object), np.array([0]), np.zeros((1, 1), object))


def test_bad_out():
    x = _array((6, 4), np.float32)
    idx = np.array([1, 2])
    sentinel = np.full((2, 4), 9, np.float32)
    cases = [
        (np.zeros((2, 4), np.float64), TypeError, r"^out: expected dtype float32, got float64"),
        (np.zeros((3, 4), np.float32), ValueError, r"^out: expected shape \(2, 4\), got \(3, 4\)"),
        (np.zeros((2, 8), np.float32)[:, ::2], ValueError, r"^out: expected a C-contiguous array"),
        (sentinel.copy(), ValueError, r"^out: expected a writeable array"),
    ]
    cases[-1][0].flags.writeable = False
    for out, err, msg in cases:
        before = out.copy()
        with pytest.raises(err, match=msg):
            ops.take_rows(x, idx, out=out)
        np.testing.assert_array_equal(out, before)


def test_out_overlapping_x_or_indices_is_refused():
    x = _array((6, 4), np.float32)
    snapshot = x.copy()
    with pytest.raises(ValueError, match=r"^out: must not overlap x"):
        ops.take_rows(x, np.array([3, 4]), out=x[:2])
    _same(x, snapshot)
    buf = np.arange(4, dtype=np.int64)  # gathering int64 rows into the indices' own memory
    with pytest.raises(ValueError, match=r"^out: must not overlap indices"):
        ops.take_rows(np.arange(10, dtype=np.int64), buf, out=buf)
    np.testing.assert_array_equal(buf, np.arange(4))
    with pytest.raises(ValueError, match=r"^out: must not overlap x"):  # the core on its own
        _core.take_rows(x, np.array([3, 4]), x[:2])


def test_releases_the_gil():
    # every row 4 times: a call of 25 ms or more on one core, far longer than a busy machine
    # may deschedule the counter thread for (a 6 ms call could see no stamp at all)
    x = _array((8000, 1000), np.float64)
    idx = np.concatenate([np.random.default_rng(s).permutation(8000) for s in range(4)])
    out = np.empty((len(idx), 1000))
    before = fastnn.get_num_threads()
    fastnn.set_num_threads(1)
    try:
        released, seen = releases_the_gil(lambda: ops.take_rows(x, idx, out=out))
    finally:
        fastnn.set_num_threads(before)
    assert released, f"take_rows: {seen}"


# ---------------------------------------------------------------- the trainer's batches
def _numpy_take(a, idx, out):
    return np.take(a, idx, axis=0, out=out, mode="clip")


@pytest.mark.parametrize("layout", ["contiguous", "strided"])
def test_epoch_iterator_batches_are_the_permuted_rows(layout, monkeypatch):
    """Shuffled batches of x (2-D float and 3-D), y (1-D int labels, 2-D float targets) and the
    sample weights are the rows of the epoch's permutation, byte for byte: gathered by the core
    for C-contiguous arrays, by NumPy's take for others (never a copy of the whole array)."""
    from fastnn import trainer
    calls = []
    real = ops.take_rows
    monkeypatch.setattr(ops, "take_rows", lambda *a, **k: calls.append(1) or real(*a, **k))
    rng = np.random.default_rng(6)
    x2, x3 = rng.standard_normal((53, 6)).astype(np.float32), rng.standard_normal((53, 2, 3))
    labels, targets, w = rng.integers(0, 5, 53), rng.standard_normal((53, 4)), rng.random(53)
    for x, y in [(x2, labels), (x3, targets)]:
        ws = w
        if layout == "strided":  # every other row of arrays twice as long
            x, y, ws = (np.repeat(a, 2, axis=0)[::2] for a in (x, y, w))
        it = trainer.EpochIterator(x, y, batch_size=16, shuffle=True, rng=np.random.default_rng(1), sample_weight=ws)
        for _ in range(2):
            got = [(xb.copy(), yb.copy(), wb.copy()) for xb, yb, wb in it.epoch()]
            perm = it._perm
            for step, (xb, yb, wb) in enumerate(got):
                rows = perm[16 * step:16 * step + len(xb)]
                _same(xb, x[rows])
                _same(yb, y[rows])
                _same(wb, ws[rows])
            assert sum(len(b[0]) for b in got) == 53
    assert (len(calls) > 0) == (layout == "contiguous")


def test_fit_trains_bitwise_as_with_numpy_take(monkeypatch):
    """The core's gather changes nothing in training: the weights after two shuffled epochs
    equal, bit for bit, those of the same fit with NumPy's take as the gather."""
    from fastnn import trainer

    def fitted():
        fastnn.utils.set_random_seed(3)
        m = fastnn.Sequential([fastnn.layers.Input((12,)), fastnn.layers.Dense(16, activation="relu"),
                               fastnn.layers.Dense(3, activation="softmax")])
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        rng = np.random.default_rng(7)
        x, y = rng.standard_normal((100, 12)).astype(np.float32), rng.integers(0, 3, 100)
        m.fit(x, y, epochs=2, batch_size=16, verbose=0, seed=5)
        return [v.tobytes() for v in m.get_weights()]

    core = fitted()
    monkeypatch.setattr(trainer, "_take_rows", _numpy_take)
    assert fitted() == core
