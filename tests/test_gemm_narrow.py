"""Narrow products (C at most 16 columns wide): gemm/narrow_impl.h.

C = op(a) @ op(b) with few columns (the 10-class output layer's X·W and its
dW = X.T @ dY) runs without packing: row by row with masked vectors when
op(a) = a, as the transposed product accumulated along m when op(a) = a.T.
The tuning hook forces that path on (every n it can take; on the scalar path
n <= 2) or off (the blocked loops), with the small-m swap off so that small m
reach it too; every result is checked against the NumPy twins
(fastnn.reference) under every ISA path, float32 and float64, 1 and 2 threads,
with n and k around the vector widths (8, 16) and m around the row blocks
(6, 12, 16 rows; 16, 32, 64 columns of the transposed kernel).
"""
import numpy as np
import pytest

import fastnn.ops as ops
import fastnn.reference as ref
from fastnn import _core

from test_gemm import DTYPES, TRANSPOSES, check_epilogue, operands, tolerance
from test_gemm_backward import saved_values
from test_gemm_small import results_on_2_1_2_threads

N_VALUES = [1, 2, 3, 7, 8, 9, 10, 15, 16, 17, 20]
K_VALUES = [1, 2, 5, 8, 10, 16, 17, 64, 129]
M_VALUES = [1, 5, 6, 7, 12, 13, 16, 17, 33, 64, 65, 130]


def _shapes(count, seed):
    """(m, n, k): the MLP's 10-class products, then `count` drawn from the grids above."""
    rng = np.random.default_rng(seed)
    drawn = [(int(rng.choice(M_VALUES)), int(rng.choice(N_VALUES)), int(rng.choice(K_VALUES))) for _ in range(count)]
    return [(64, 10, 128), (128, 10, 64), (256, 10, 128), (130, 16, 33)] + drawn


SHAPES = _shapes(24, seed=1)


@pytest.fixture(params=["narrow", "blocked"])
def path(request):
    # swap_max_m 0: small m take the narrow path too (by default m <= 64 with a big op(b) runs swapped)
    _core._gemm_set_tuning(-1, -1, -1, 0, 1 << 20 if request.param == "narrow" else 0)
    yield request.param
    _core._gemm_set_tuning(-1, -1)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("epi", [dict(), dict(alpha=-0.5, beta=2.0, bias=True), dict(bias=True, activation="relu"),
                                 dict(beta=1.0, bias=True, activation="leaky_relu", activation_alpha=0.2),
                                 dict(alpha=1.5, bias=True, activation="tanh"), dict(alpha=0.0, beta=1.0)],
                         ids=["plain", "alpha-beta-bias", "bias-relu", "beta-bias-leaky", "alpha-bias-tanh",
                              "alpha0-beta1"])
def test_narrow_product_matches_reference(isa, threads, path, epi, dtype):
    rng = np.random.default_rng(2)
    for m, n, k in SHAPES:
        for ta, tb in TRANSPOSES:
            check_epilogue(m, n, k, ta, tb, epi, dtype, rng, seed=m * 1000 + n * 10 + k, label=path)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_every_n_and_k_up_to_20(isa, path, dtype):
    # every width around the thresholds against the reference, both kernels (trans_a or not)
    for n in range(1, 21):
        for k in (1, 3, 16, 20):
            for ta, tb in TRANSPOSES:
                a, b = operands(37, n, k, dtype, ta, tb, seed=n + k)
                got = ops.matmul(a, b, trans_a=ta, trans_b=tb)
                want = ref.matmul(a, b, trans_a=ta, trans_b=tb)
                np.testing.assert_allclose(got, want, rtol=0, atol=tolerance(a, b, k, dtype),
                                           err_msg=f"n={n} k={k} ta={ta} tb={tb} {path}")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("act", ["relu", "leaky_relu", "tanh", "swish"])
def test_narrow_act_grad_matches_reference(isa, threads, path, act, dtype):
    # dX = (dz @ W.T) * act'(.) into a narrow layer (the 10 x 10 of a small net), every transpose
    rng = np.random.default_rng(3)
    for (m, n, k), (ta, tb) in zip(SHAPES, TRANSPOSES * 8):
        a, b = operands(m, n, k, dtype, ta, tb, seed=4)
        x, y = saved_values(act, m, n, dtype, rng)
        saved = dict(x=x) if act == "swish" else dict(y=y)
        out0 = rng.standard_normal((m, n)).astype(dtype)
        kw = dict(trans_a=ta, trans_b=tb, activation=act, alpha=0.5, beta=-1.0, **saved)
        if act == "leaky_relu":
            kw["activation_alpha"] = 0.2
        want = ref.matmul_act_grad(a, b, out=out0.copy(), **kw)
        got = ops.matmul_act_grad(a, b, out=out0.copy(), **kw)
        tol = 2 * tolerance(a, b, k, dtype, 0.5, -1.0, out0, result=want)
        np.testing.assert_allclose(got, want, rtol=0, atol=tol, err_msg=f"{(m, n, k)} ta={ta} tb={tb} {path}")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_narrow_bias_grad_matches_reference(isa, threads, path, dtype):
    # dW = x.T @ dz and db = dz.sum(0) of the output layer, with and without accumulation
    rng = np.random.default_rng(5)
    for (m, n, k), (ta, tb) in zip(SHAPES, TRANSPOSES * 8):
        a, b = operands(m, n, k, dtype, ta, tb, seed=6)
        for alpha, beta in ((1.0, 0.0), (0.5, 1.5)):
            w0 = rng.standard_normal((m, n)).astype(dtype)
            b0 = rng.standard_normal(n).astype(dtype)
            want_w, want_b = ref.matmul_bias_grad(a, b, trans_a=ta, trans_b=tb, alpha=alpha, beta=beta,
                                                  out=(w0.copy(), b0.copy()))
            got_w, got_b = ops.matmul_bias_grad(a, b, trans_a=ta, trans_b=tb, alpha=alpha, beta=beta,
                                                out=(w0.copy(), b0.copy()))
            msg = f"{(m, n, k)} ta={ta} tb={tb} alpha={alpha} beta={beta} {path}"
            np.testing.assert_allclose(got_w, want_w, rtol=0, atol=tolerance(a, b, k, dtype, alpha, beta, w0),
                                       err_msg=msg)
            bmax = float(np.abs(b).max())
            np.testing.assert_allclose(got_b, want_b, rtol=0,
                                       atol=4 * (k + 2) * bmax * abs(alpha) * np.finfo(dtype).eps
                                       + 4 * abs(beta) * float(np.abs(b0).max()) * np.finfo(dtype).eps,
                                       err_msg=msg)


def test_narrow_product_never_reads_out_when_beta_is_zero(isa, path):
    for ta, tb in TRANSPOSES:
        a, b = operands(70, 10, 33, np.float32, ta, tb)
        out = np.full((70, 10), np.nan, np.float32)
        bias = np.ones(10, np.float32)
        ops.matmul(a, b, trans_a=ta, trans_b=tb, out=out, bias=bias, activation="relu")
        want = ref.matmul(a, b, trans_a=ta, trans_b=tb, bias=bias, activation="relu")
        np.testing.assert_allclose(out, want, rtol=0, atol=tolerance(a, b, 33, np.float32, bias=bias))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_narrow_out_aliasing_an_operand(isa, path, dtype):
    # out is a (m = k, n = k) or b (k = m): the core computes into a temporary
    rng = np.random.default_rng(7)
    for ta, tb in TRANSPOSES:
        a = rng.standard_normal((10, 10)).astype(dtype)
        b = rng.standard_normal((10, 10)).astype(dtype)
        want = ref.matmul(a, b, trans_a=ta, trans_b=tb, beta=0.5, out=a.copy())
        got = ops.matmul(a, b, trans_a=ta, trans_b=tb, beta=0.5, out=a)
        assert got is a
        np.testing.assert_allclose(got, want, rtol=0, atol=tolerance(a, b, 10, dtype, 1.0, 0.5, want))
        a = rng.standard_normal((10, 10)).astype(dtype)
        want = ref.matmul(a, b, trans_a=ta, trans_b=tb, bias=a[0].copy())
        got = ops.matmul(a, b, trans_a=ta, trans_b=tb, bias=a[0], out=b)  # out overlaps b, bias a
        np.testing.assert_allclose(got, want, rtol=0, atol=tolerance(a, b, 10, dtype, bias=a[0]))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_narrow_product_is_bitwise_the_same_on_1_and_2_threads(isa, path, dtype):
    # grain 0: every product is split by rows; band edges fall inside the row blocks and transposes
    _core._gemm_set_tuning(-1, 0, -1, 0, 1 << 20 if path == "narrow" else 0)
    rng = np.random.default_rng(8)
    for (m, n, k), (ta, tb) in zip(SHAPES, TRANSPOSES * 8):
        a, b = operands(m, n, k, dtype, ta, tb, seed=9)
        bias = rng.standard_normal(n).astype(dtype)
        runs = results_on_2_1_2_threads(
            lambda: (ops.matmul(a, b, trans_a=ta, trans_b=tb, bias=bias, activation="elu"),
                     *ops.matmul_bias_grad(a, b, trans_a=ta, trans_b=tb)))
        for r in runs[1:]:
            assert all(np.array_equal(x, y) for x, y in zip(runs[0], r)), ((m, n, k), ta, tb)


def test_default_thresholds_take_the_narrow_path_and_match_the_blocked_loops(isa):
    # the defaults (narrow up to 16 columns; small m swapped first) against the forced blocked loops
    rng = np.random.default_rng(10)
    for (m, n, k), (ta, tb) in zip([(64, 10, 128), (128, 10, 256), (2, 10, 128), (300, 16, 5)], TRANSPOSES):
        a, b = operands(m, n, k, np.float32, ta, tb, seed=11)
        bias = rng.standard_normal(n).astype(np.float32)
        got = ops.matmul(a, b, trans_a=ta, trans_b=tb, bias=bias, activation="relu")
        _core._gemm_set_tuning(-1, -1, -1, -1, 0)
        try:
            blocked = ops.matmul(a, b, trans_a=ta, trans_b=tb, bias=bias, activation="relu")
        finally:
            _core._gemm_set_tuning(-1, -1)
        np.testing.assert_allclose(got, blocked, rtol=0, atol=2 * tolerance(a, b, k, np.float32, bias=bias))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_narrow_products_split_at_the_default_grain_stay_bitwise(isa, dtype):
    # big enough for 2 threads at the narrow path's own grain (gemm.cpp kNarrowGrainMacs)
    for (m, n, k), ta in (((512, 10, 128), False), ((128, 10, 1024), True), ((1000, 16, 64), False)):
        a, b = operands(m, n, k, dtype, ta, False, seed=12)
        runs = results_on_2_1_2_threads(lambda: ops.matmul(a, b, trans_a=ta, bias=b[0], activation="relu"))
        assert np.array_equal(runs[0], runs[1]) and np.array_equal(runs[0], runs[2]), (m, n, k)
        want = ref.matmul(a, b, trans_a=ta, bias=b[0], activation="relu")
        np.testing.assert_allclose(runs[0], want, rtol=0, atol=tolerance(a, b, k, dtype, bias=b[0]))
