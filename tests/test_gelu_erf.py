"""The float32 vector erf and gelu (csrc/fastnn/simd/vecmath_erf_impl.h, eltwise/gelu_impl.h)
on dense float32 sweeps, on every ISA path `_core.isa_supported` reports.

Bounds (ulp of the float64 result, results >= FLT_MIN), as measured by
bench/erf_exhaustive.py over every 13th float32 bit pattern, both signs (every ISA path):
  erf            ERF_ULP = 3: max 2.31 ulp (scalar: no FMA in its polynomials), 1.41 (avx2, avx512)
  gelu exact     GELU_ULP = 8: max 6.74 ulp (scalar), 6.12 (avx2, avx512), x Phi(x) in both
                 tails (no 1 + erf cancellation for x < 0: relative accuracy down to
                 FLT_MIN, x ~ -13.2); the error is exp's (2 ulp) plus erfc's factor and
                 the products
  gelu tanh form GELU_TANH_ULP * (1 + max(0, -2v)), GELU_TANH_ULP = 4: max 3.07 (1 + ...),
                 vs the float64 twin; for x << 0, y = x / (1 + exp(-2v)) and the float32
                 rounding of 2v (~|2v| eps) grows the error with |2v| (the function's own
                 conditioning there: d log y / d log x ~ 3|v|); x > 0: 4 ulp.
The sweeps below cover every exponent, both sides of each internal split (|x| = 1 for
erf, |x| = sqrt2/2 for gelu), the tails down to FLT_MIN, and every tail length."""
import math

import numpy as np
import pytest

from fastnn import _core, ops, reference as ref
from test_act_float32_sweeps import floats_around, floats_between
from test_activations import ulp_error

F32 = np.float32
ERF_ULP, GELU_ULP, GELU_TANH_ULP = 3, 8, 4
_erf = np.vectorize(math.erf, otypes=[np.float64])


def erf32(x):
    y = np.empty_like(x)
    _core.erf(x, y)
    return y


SWEEPS = {
    "tiny": floats_between(2.0 ** -30, 2.0 ** -6, 2003),
    "split_erf": floats_around(1.0, 1 << 16),
    "split_gelu": floats_around(0.70710678, 1 << 16),
    "mid": floats_between(0.05, 4.0, 257),
    "tail": floats_between(4.0, 13.5, 97),
    "every_exponent": np.ldexp(np.float32(1) + np.arange(32, dtype=F32) / 32,
                               np.repeat(np.arange(-126, 8), 32)[:, None]).astype(F32).ravel(),
}


@pytest.mark.parametrize("sweep", list(SWEEPS))
def test_erf_float32_sweeps_within_bound(isa, sweep):
    x = np.concatenate([SWEEPS[sweep], -SWEEPS[sweep]])
    assert ulp_error(erf32(x), _erf(x.astype(np.float64))) <= ERF_ULP


def test_erf_float32_odd_and_special_values(isa):
    x = np.concatenate([SWEEPS[s] for s in SWEEPS])
    np.testing.assert_array_equal(erf32(-x).view(np.uint32), (-erf32(x)).view(np.uint32))
    s = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 3.92, 9.5, 100.0], F32)
    y = erf32(s)
    assert y[0] == 0 and not np.signbit(y[0]) and y[1] == 0 and np.signbit(y[1])
    assert y[2] == 1 and y[3] == -1 and np.isnan(y[4])
    np.testing.assert_array_equal(y[5:], 1)  # erf(3.92) rounds to 1 in float32
    assert np.all(np.abs(erf32(SWEEPS["mid"])) <= 1)


def test_erf_float64_is_libm(isa):
    x = np.linspace(-6, 6, 1001)
    np.testing.assert_allclose(erf32(x), _erf(x), rtol=2e-16, atol=0)


@pytest.mark.parametrize("sweep", list(SWEEPS))
@pytest.mark.parametrize("approximate", [False, True])
def test_gelu_float32_sweeps_within_bound(isa, sweep, approximate):
    x = np.concatenate([SWEEPS[sweep], -SWEEPS[sweep]])
    y = ops.activation("gelu", x, alpha=float(approximate))
    x64 = x.astype(np.float64)
    r = ref.activation("gelu", x64, alpha=float(approximate))
    if not approximate:
        assert ulp_error(y, r) <= GELU_ULP
        return
    w = 2 * np.sqrt(2 / np.pi) * (x64 + 0.044715 * x64 ** 3)
    tail = 1 + np.maximum(0.0, -np.nan_to_num(w))
    normal = np.abs(r) >= np.finfo(F32).tiny
    sp = np.spacing(np.abs(r).astype(F32)).astype(np.float64)
    err = np.where(normal, np.abs(y - r) / sp, 0.0) / tail
    assert err.max() <= GELU_TANH_ULP


@pytest.mark.parametrize("approximate", [False, True])
def test_gelu_float32_special_values(isa, approximate):
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e30, -1e30, -14.0, -20.0], F32)
    a = float(approximate)
    y = ops.activation("gelu", x, alpha=a)
    assert y[0] == 0 and y[1] == 0 and np.signbit(y[1]) and y[2] == np.inf
    assert y[3] == 0 and np.isnan(y[4]) and y[5] == x[5]  # gelu(-inf) = -0, the limit (not inf * 0)
    assert np.all(y[6:] == 0)  # below FLT_MIN: flushed (x Phi(x) < 1e-39 there)
    d = ops.activation_grad("gelu", np.ones_like(x), x=x, alpha=a)
    assert d[0] == 0.5 and d[2] == 1 and d[3] == 0 and np.isnan(d[4]) and d[5] == 1 and np.all(d[6:] == 0)


@pytest.mark.parametrize("n", range(1, 34))
def test_gelu_float32_tails_match_whole_vectors(isa, n):
    rng = np.random.default_rng(n)
    long = (rng.standard_normal(4096) * 4).astype(F32)
    long[::17] = np.nan
    long[5::19] = -np.inf
    for a in (0.0, 1.0):
        want = ops.activation("gelu", long, alpha=a)
        dwant = ops.activation_grad("gelu", np.ones_like(long), x=long, alpha=a)
        for start in (0, 1, 100):
            xs = long[start:start + n].copy()
            np.testing.assert_array_equal(ops.activation("gelu", xs, alpha=a).view(np.uint32),
                                          want[start:start + n].view(np.uint32))
            np.testing.assert_array_equal(ops.activation_grad("gelu", np.ones_like(xs), x=xs, alpha=a),
                                          dwant[start:start + n])
