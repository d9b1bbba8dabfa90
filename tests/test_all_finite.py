"""ops.all_finite: np.isfinite(x).all() (reference.all_finite) without the temporary, on every
ISA path, 1 and 2 threads; the trainer's x check goes through it."""
import numpy as np
import pytest

import fastnn
from fastnn import layers, ops, reference

SIZES = [0, 1, 3, 15, 16, 17, 63, 64, 65, 127, 128, 129, 1000, 300_001]
BAD = [np.nan, np.inf, -np.inf]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", SIZES)
def test_finite_arrays(isa_threads, dtype, n):
    rng = np.random.default_rng(n)
    x = (rng.standard_normal(n) * 10.0 ** rng.integers(-30, 30, n)).astype(dtype)
    info = np.finfo(dtype)
    if n >= 4:  # the extremes of the finite range, signed zeros and subnormals are finite
        x[:4] = [info.max, -info.max, -0.0, info.smallest_subnormal]
    assert ops.all_finite(x) is True
    assert reference.all_finite(x) is True


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", BAD, ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("n", [1, 17, 65, 129, 1000, 300_001])
def test_one_bad_value_anywhere(isa_threads, dtype, bad, n):
    """One NaN or infinity at the start, the end, a SIMD tail, a block edge or the middle."""
    x = np.ones(n, dtype)
    for at in sorted({0, n - 1, n // 2, max(0, n - 5), min(n - 1, 64), min(n - 1, 131_072)}):
        x[at] = bad
        assert ops.all_finite(x) is False, at
        assert reference.all_finite(x) is False
        x[at] = 1.0
    assert ops.all_finite(x) is True


def test_shapes_and_layouts():
    x = np.arange(24.0).reshape(2, 3, 4)
    assert ops.all_finite(x) is True
    x[1, 2, 3] = np.nan
    assert ops.all_finite(x) is False
    assert ops.all_finite(x[:, :, :2]) is True  # a strided view: the NaN is outside it
    assert ops.all_finite(np.asfortranarray(x)) is False
    assert ops.all_finite(np.array(np.inf, np.float32)) is False  # 0-d
    assert ops.all_finite(np.array(2.5)) is True
    ro = np.ones(10)
    ro.flags.writeable = False
    assert ops.all_finite(ro) is True


@pytest.mark.parametrize("bad, err, msg", [
    (np.ones(3, np.int64), TypeError, r"^x: expected dtype float32 or float64, got int64"),
    (np.ones(3, np.float16), TypeError, r"^x: expected dtype float32 or float64, got float16"),
    ([1.0, 2.0], TypeError, r"^x: expected a numpy.ndarray"),
])
def test_refusals_name_x(bad, err, msg):
    with pytest.raises(err, match=msg):
        ops.all_finite(bad)


def test_fit_still_refuses_a_nan_input_naming_its_index():
    model = fastnn.Sequential([layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.ones((50, 3), np.float32)
    x[37, 2] = np.inf
    with pytest.raises(ValueError, match=r"^x: contains NaN or infinity \(first at index \(37, 2\)\)"):
        model.fit(x, np.ones((50, 2), np.float32), epochs=1, verbose=0)
    assert not model.built or model.optimizer.iterations == 0
