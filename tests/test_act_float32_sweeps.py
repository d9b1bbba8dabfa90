"""float32 tanh and sigmoid (csrc/fastnn/simd/vecmath_impl.h vtanh, vsigmoid) on dense
sweeps of float32 inputs where a wrong kernel would show, on every ISA path. tanh: near 0,
both sides of the internal split at |x| = 0.5625, around the clamp (9.1) and the last
non-saturated values (~9.01), every exponent, plus exact special values, oddness and
every tail length. sigmoid: across its clamps and the whole useful range.
The whole float32 range is checked by bench/act_exhaustive.py (too slow for CI)."""
import numpy as np
import pytest

from fastnn import ops
from test_activations import ULP_BOUND, ulp_error

F32 = np.float32


def floats_between(lo, hi, step=1):
    """Every `step`-th float32 in [lo, hi] (lo, hi >= 0), by bit pattern."""
    a, b = np.array([lo, hi], F32).view(np.uint32)
    return np.arange(a, b + 1, step, dtype=np.uint32).view(F32)


def floats_around(v, k):
    """The 2k+1 float32 values nearest to v (v > 0)."""
    c = int(np.array(v, F32).view(np.uint32))
    return np.arange(c - k, c + k + 1, dtype=np.uint32).view(F32)


SWEEPS = {
    "near_zero": floats_between(2.0 ** -14, 2.0 ** -6, 61),       # ~ 1.1M values, small regime, n = 0
    "split": floats_around(0.5625, 1 << 18),                       # both regimes of vtanh
    "mid": floats_between(0.25, 4.0, 29),                          # n = -1 ... 6
    "saturation": floats_between(8.0, 9.5, 3),                     # n >= 23 and the clamp
    "every_exponent": np.ldexp(np.float32(1) + np.arange(64, dtype=F32) / 64,
                               np.repeat(np.arange(-126, 6), 64)[:, None]).astype(F32).ravel(),
}


@pytest.mark.parametrize("sweep", list(SWEEPS))
def test_tanh_float32_dense_sweeps_within_bound(isa, sweep):
    x = SWEEPS[sweep]
    for xs in (x, -x):
        y = ops.activation("tanh", xs)
        err = ulp_error(y, np.tanh(xs.astype(np.float64)))
        assert err <= ULP_BOUND["tanh"], (sweep, err)
        assert np.all(np.abs(y) <= 1)


def test_tanh_float32_is_odd_bitwise(isa):
    x = np.concatenate([SWEEPS[s] for s in SWEEPS])
    np.testing.assert_array_equal(ops.activation("tanh", -x).view(np.uint32),
                                  (-ops.activation("tanh", x)).view(np.uint32))


def test_tanh_float32_special_values(isa):
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 9.02, 9.1, 9.2, 20, 88.8, 1e30,
                  np.finfo(F32).max, np.finfo(F32).tiny, 1e-40], F32)
    y = ops.activation("tanh", x)
    assert y[0] == 0 and not np.signbit(y[0]) and y[1] == 0 and np.signbit(y[1])  # tanh(-0) = -0
    assert y[2] == 1 and y[3] == -1 and np.isnan(y[4]) and np.isnan(y[5])
    np.testing.assert_array_equal(y[6:13], 1)  # saturated: exactly 1
    np.testing.assert_array_equal(ops.activation("tanh", -x[6:13]), -1)
    assert y[13] == x[13]  # tanh(x) = x to float32 precision at FLT_MIN
    assert y[14] in (0, x[14])  # a subnormal: itself, or 0 where denormals are flushed
    # every float32 at or above the point where float32(tanh) is 1 gives exactly 1
    first_one = np.nonzero(np.tanh(SWEEPS["saturation"].astype(np.float64)).astype(F32) == 1)[0][0]
    np.testing.assert_array_equal(ops.activation("tanh", SWEEPS["saturation"][first_one:]), 1)


@pytest.mark.parametrize("n", range(1, 34))
def test_tanh_float32_tails_match_whole_vectors(isa, n):
    """Tail lengths 1..33 (partial vectors after 0, 1, 2 whole ones of 8 or 16 lanes)
    give what the same values give in a long array, NaN and inf lanes included."""
    rng = np.random.default_rng(n)
    long = (rng.standard_normal(4096) * 3).astype(F32)
    long[::17] = np.nan
    long[5::19] = np.inf
    long[7::23] = -0.0
    want = ops.activation("tanh", long)
    for start in (0, 1, 100):
        got = ops.activation("tanh", long[start:start + n].copy())
        np.testing.assert_array_equal(got.view(np.uint32), want[start:start + n].view(np.uint32))


# ---------------------------------------------------------------- sigmoid (vsigmoid)
# vsigmoid clamps -x to [-18, 88.9] and builds 2^128 = +inf for n = 128: sweeps across
# both clamps, the n = 127/128 step (x ~ -88.38) and the whole useful range.
SIGMOID_SWEEPS = {
    "low": -floats_between(86.0, 90.0, 3),
    "high": floats_between(16.0, 19.0, 3),
    "range": np.concatenate([-floats_between(2.0 ** -20, 86.0, 211), floats_between(2.0 ** -20, 16.0, 211)]),
}


@pytest.mark.parametrize("sweep", list(SIGMOID_SWEEPS))
def test_sigmoid_float32_dense_sweeps_within_bound(isa, sweep):
    x = SIGMOID_SWEEPS[sweep]
    y = ops.activation("sigmoid", x)
    r = 1 / (1 + np.exp(-x.astype(np.float64)))
    assert ulp_error(y, r) <= ULP_BOUND["sigmoid"]
    assert np.all((y >= 0) & (y <= 1))
    tiny = r < np.finfo(F32).tiny  # below FLT_MIN: 0 or the subnormal, never more
    assert np.all(y[tiny] <= np.finfo(F32).tiny)
    np.testing.assert_array_equal(y[x.astype(np.float64) >= 17.33], 1)  # 1 - 2^-25 and above round to 1


def test_sigmoid_float32_special_values(isa):
    x = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 88.38, -88.38, -88.9, -89, -1e30, 1e30], F32)
    y = ops.activation("sigmoid", x)
    assert y[0] == 1 and y[1] == 0 and np.isnan(y[2]) and y[3] == 0.5 and y[4] == 0.5
    assert y[5] == 1 and np.all(y[6:8] < np.finfo(F32).tiny) and np.all(y[8:10] == 0) and y[10] == 1
