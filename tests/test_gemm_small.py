"""Small-batch products (m <= 64): computed as their transpose (gemm_impl.h gemm_swapped).

C = op(a) @ op(b) with few rows runs as S = op(b).T @ op(a).T, so the weights
are read in place, then S is transposed into C with the epilogue (beta * out,
bias, activation or its gradient). The tuning hook forces the swapped path on
(any transposes, any m) or off, and every result is checked against the NumPy
twins (fastnn.reference) under every ISA path and 1 and 2 threads; the
swapped product split between threads equals the 1-thread one bitwise.
"""
import numpy as np
import pytest

import fastnn
import fastnn.ops as ops
import fastnn.reference as ref
from fastnn import _core

from test_gemm import DTYPES, TRANSPOSES, check_epilogue, operands, tolerance
from test_gemm_backward import saved_values

# (m, n, k): one row, odd sizes (not multiples of any tile or of the 16x16
# transpose), batch 32 and 64 (k > KC), the 10-class layer
SHAPES = [(1, 7, 5), (5, 40, 13), (17, 33, 29), (32, 200, 96), (64, 130, 520), (32, 10, 128), (3, 19, 600)]
_default_threads = fastnn.get_num_threads()


@pytest.fixture(params=["swapped", "unswapped"])
def swap(request):
    _core._gemm_set_tuning(-1, -1, -1, 1 << 20 if request.param == "swapped" else 0)
    yield request.param
    _core._gemm_set_tuning(-1, -1)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("epi", [dict(), dict(alpha=-0.5, beta=2.0, bias=True), dict(bias=True, activation="relu"),
                                 dict(beta=1.0, bias=True, activation="leaky_relu", activation_alpha=0.2),
                                 dict(alpha=1.5, bias=True, activation="tanh")],
                         ids=["plain", "alpha-beta-bias", "bias-relu", "beta-bias-leaky", "alpha-bias-tanh"])
def test_small_m_product_matches_reference(isa, threads, swap, epi, dtype):
    rng = np.random.default_rng(11)
    for m, n, k in SHAPES:
        for ta, tb in TRANSPOSES:
            check_epilogue(m, n, k, ta, tb, epi, dtype, rng, seed=12, label=swap)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("act", ["relu", "tanh", "swish"])
def test_small_m_act_grad_matches_reference(isa, threads, swap, act, dtype):
    # the Dense backward dX = (dz @ W.T) * act'(.) at small batches
    rng = np.random.default_rng(13)
    for m, n, k in SHAPES:
        a, b = operands(m, n, k, dtype, False, True, seed=14)
        x, y = saved_values(act, m, n, dtype, rng)
        saved = dict(x=x) if act == "swish" else dict(y=y)
        out0 = rng.standard_normal((m, n)).astype(dtype)
        kw = dict(trans_b=True, activation=act, alpha=0.5, beta=-1.0, **saved)
        want = ref.matmul_act_grad(a, b, out=out0.copy(), **kw)
        got = ops.matmul_act_grad(a, b, out=out0.copy(), **kw)
        tol = 2 * tolerance(a, b, k, dtype, 0.5, -1.0, out0, result=want)
        np.testing.assert_allclose(got, want, rtol=0, atol=tol, err_msg=f"{(m, n, k)} {swap}")


def test_swapped_product_never_reads_out_when_beta_is_zero(isa, swap):
    a, b = operands(32, 200, 70, np.float32, False, True)
    out = np.full((32, 200), np.nan, np.float32)
    ops.matmul(a, b, trans_b=True, out=out, bias=np.ones(200, np.float32), activation="relu")
    want = ref.matmul(a, b, trans_b=True, bias=np.ones(200, np.float32), activation="relu")
    np.testing.assert_allclose(out, want, rtol=0, atol=tolerance(a, b, 70, np.float32, bias=np.ones(1)))


def results_on_2_1_2_threads(fn):
    """[fn() with 2 threads, with 1, with 2 again]; the default thread count restored after."""
    runs = []
    try:
        for nt in (2, 1, 2):
            fastnn.set_num_threads(nt)
            runs.append(fn())
    finally:
        fastnn.set_num_threads(_default_threads)
    return runs


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_swapped_product_is_bitwise_the_same_on_1_and_2_threads(isa, swap, dtype):
    # grain 0: every product is split; band edges fall inside the 16-wide transposes
    _core._gemm_set_tuning(-1, 0, -1, 1 << 20 if swap == "swapped" else 0)
    rng = np.random.default_rng(15)
    for (m, n, k), (ta, tb) in zip(SHAPES, TRANSPOSES * 2):
        a, b = operands(m, n, k, dtype, ta, tb, seed=16)
        bias = rng.standard_normal(n).astype(dtype)
        runs = results_on_2_1_2_threads(
            lambda: ops.matmul(a, b, trans_a=ta, trans_b=tb, bias=bias, activation="elu"))
        assert np.array_equal(runs[0], runs[1]) and np.array_equal(runs[0], runs[2]), ((m, n, k), ta, tb)


def test_bias_gradient_products_are_never_swapped_and_stay_right(isa):
    # dW = x.T @ dz with db: the column sums of op(b) are taken while it is packed
    _core._gemm_set_tuning(-1, -1, -1, 1 << 20)
    try:
        x, dz = operands(8, 12, 32, np.float32, True, False)
        dw, db = ops.matmul_bias_grad(x, dz, trans_a=True)
        np.testing.assert_allclose(dw, x.T @ dz, rtol=0, atol=tolerance(x, dz, 32, np.float32))
        np.testing.assert_allclose(db, dz.sum(0), rtol=1e-5, atol=1e-5)
    finally:
        _core._gemm_set_tuning(-1, -1)
