"""Transposed views as GEMM operands (``ops.matmul(x.T, dy)``, as NumPy users write it).

A Fortran-ordered 2-D operand is the transpose of a row-major array: the products read it
in place with the transpose flag flipped (it was copied into a new array before, 4 MB for
a 1000 x 1000 float32 operand). Checked: every combination of views and flags gives the
product the contiguous copies give, bitwise, for matmul, matmul_bf16, matmul_act_grad and
matmul_bias_grad, float32 and float64, 1 and 2 threads; no copy is allocated (tracemalloc
sees NumPy's allocations); a shape mismatch names the arrays as the caller passed them.
"""
import itertools
import tracemalloc

import numpy as np
import pytest

import fastnn
import fastnn.ops as ops
import fastnn.reference as ref

SHAPES = [(1, 1, 1), (37, 41, 29), (128, 512, 784), (64, 10, 128), (300, 17, 5)]
_default_threads = fastnn.get_num_threads()


@pytest.fixture(params=[1, 2], ids=["1t", "2t"])
def threads(request):
    fastnn.set_num_threads(request.param)
    yield request.param
    fastnn.set_num_threads(_default_threads)


def stored(op_shape, trans, view, dtype, rng):
    """An operand whose op() has op_shape: stored transposed when trans; as a Fortran-ordered
    view of that storage when view (the same values, the other layout)."""
    shape = op_shape[::-1] if trans else op_shape
    x = rng.standard_normal(shape).astype(dtype)
    return np.asfortranarray(x) if view else x


CASES = list(itertools.product([False, True], repeat=4))  # (trans_a, trans_b, a a view, b a view)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_matmul_reads_views_in_place_bitwise(threads, dtype):
    rng = np.random.default_rng(0)
    for (m, n, k), (ta, tb, va, vb) in itertools.product(SHAPES, CASES):
        a = stored((m, k), ta, va, dtype, rng)
        b = stored((k, n), tb, vb, dtype, rng)
        bias = rng.standard_normal(n).astype(dtype)
        got = ops.matmul(a, b, trans_a=ta, trans_b=tb, bias=bias, activation="relu")
        want = ops.matmul(np.ascontiguousarray(a), np.ascontiguousarray(b), trans_a=ta, trans_b=tb, bias=bias,
                          activation="relu")
        np.testing.assert_array_equal(got, want, err_msg=f"{(m, n, k)} ta={ta} tb={tb} views {va} {vb}")
        opa = a.T if ta else a
        opb = b.T if tb else b
        np.testing.assert_allclose(got, np.maximum(opa.astype(np.float64) @ opb + bias, 0),
                                   rtol=1e-4 if dtype == np.float32 else 1e-12, atol=1e-4 if dtype == np.float32 else 1e-12)
        out = np.full((m, n), 0.5, dtype)  # beta reads out; alpha scales
        ops.matmul(a, b, trans_a=ta, trans_b=tb, alpha=2.0, beta=-1.0, out=out)
        want = np.full((m, n), 0.5, dtype)
        ops.matmul(np.ascontiguousarray(a), np.ascontiguousarray(b), trans_a=ta, trans_b=tb, alpha=2.0, beta=-1.0,
                   out=want)
        np.testing.assert_array_equal(out, want)


def test_backward_products_read_views_bitwise(threads):
    rng = np.random.default_rng(1)
    for (m, n, k), (ta, tb, va, vb) in itertools.product(SHAPES, CASES):
        a = stored((m, k), ta, va, np.float32, rng)
        b = stored((k, n), tb, vb, np.float32, rng)
        y = np.maximum(rng.standard_normal((m, n)).astype(np.float32), 0)
        ca, cb = np.ascontiguousarray(a), np.ascontiguousarray(b)
        got = ops.matmul_act_grad(a, b, trans_a=ta, trans_b=tb, activation="relu", y=y)
        want = ops.matmul_act_grad(ca, cb, trans_a=ta, trans_b=tb, activation="relu", y=y)
        np.testing.assert_array_equal(got, want)
        gw, gb = ops.matmul_bias_grad(a, b, trans_a=ta, trans_b=tb)
        ww, wb = ops.matmul_bias_grad(ca, cb, trans_a=ta, trans_b=tb)
        np.testing.assert_array_equal(gw, ww)
        np.testing.assert_array_equal(gb, wb)
        np.testing.assert_allclose(gb, (b.T if tb else b).astype(np.float64).sum(0), rtol=1e-5, atol=1e-4)


def test_matmul_bf16_reads_views_bitwise(threads):
    rng = np.random.default_rng(2)
    for (m, n, k), (ta, tb, va, vb) in itertools.product(SHAPES[:4], CASES):
        a = stored((m, k), ta, va, np.float32, rng)
        b = stored((k, n), tb, vb, np.float32, rng)
        got = ops.matmul_bf16(a, b, trans_a=ta, trans_b=tb)
        want = ops.matmul_bf16(np.ascontiguousarray(a), np.ascontiguousarray(b), trans_a=ta, trans_b=tb)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("fn", ["matmul", "matmul_act_grad", "matmul_bias_grad", "matmul_bf16"])
def test_a_view_is_not_copied(fn):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1000, 800)).astype(np.float32)   # 3.2 MB
    dy = rng.standard_normal((1000, 600)).astype(np.float32)  # 2.4 MB
    out = np.empty((800, 600), np.float32)
    db = np.empty(600, np.float32)
    y = np.ones((800, 600), np.float32)
    calls = {
        "matmul": lambda: ops.matmul(x.T, dy, out=out),
        "matmul_act_grad": lambda: ops.matmul_act_grad(x.T, dy, activation="relu", y=y, out=out),
        "matmul_bias_grad": lambda: ops.matmul_bias_grad(x.T, dy, out=(out, db)),
        "matmul_bf16": lambda: ops.matmul_bf16(x.T, dy, out=out),
    }
    call = calls[fn]
    call()
    want = out.copy()
    tracemalloc.start()
    try:
        call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100_000, f"{fn}(x.T, ...) allocated {peak} bytes (a copy of x.T is 3,200,000)"
    np.testing.assert_array_equal(out, want)
    ref_val = ref.matmul(x.T.astype(np.float64), dy.astype(np.float64)) if fn != "matmul_act_grad" else None
    if ref_val is not None and fn != "matmul_bf16":
        np.testing.assert_allclose(out, ref_val, rtol=1e-4, atol=1e-3)


def test_a_mismatch_names_the_arrays_as_passed():
    x = np.ones((4, 3), np.float32)
    w = np.ones((5, 2), np.float32)
    with pytest.raises(ValueError, match=r"a, b: inner dimensions differ: op\(a\) has shape \(3, 4\) "
                                         r"\(a \(3, 4\), trans_a=False\), op\(b\) has shape \(5, 2\) "
                                         r"\(b \(5, 2\), trans_b=False\)"):
        ops.matmul(x.T, w)
    with pytest.raises(ValueError, match=r"\(a \(3, 4\), trans_a=False\)"):
        ops.matmul_bias_grad(x.T, w)
    with pytest.raises(ValueError, match=r"\(b \(2, 5\), trans_b=True\)"):
        ops.matmul_act_grad(x, w.T, trans_b=True, activation="relu", y=np.ones((4, 2), np.float32))


def test_views_that_are_not_transposes_still_work():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((30, 40)).astype(np.float32)
    b = rng.standard_normal((20, 50)).astype(np.float32)
    for av, bv in [(a[::2], b[:, ::2]), (a[::-1], b[::-1]), (a[:, 5:25].T, b[:, :25])]:
        if av.shape[1] != bv.shape[0]:
            bv = rng.standard_normal((av.shape[1], 7)).astype(np.float32)[:, ::-1]
        got = ops.matmul(av, bv)
        np.testing.assert_allclose(got, av.astype(np.float64) @ bv, rtol=1e-4, atol=1e-4)
