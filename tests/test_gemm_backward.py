"""The backward GEMM epilogues and the cache blocking.

ops.matmul_act_grad ((alpha*op(a)@op(b) + beta*out) * act'(x or y)) and
ops.matmul_bias_grad (dW and the column sums of op(b) in one call) against
their NumPy twins in fastnn.reference, under every ISA path this machine
supports (``isa`` fixture) and 1 and 2 threads, float32 and float64, on shapes
that are not multiples of any micro-tile. Also: the blocking chosen from the
CPUID cache sizes, and products under deliberately tiny blockings (every block
loop runs many times) still equal to the reference.
"""
import numpy as np
import pytest

import fastnn
import fastnn.ops as ops
import fastnn.reference as ref
from fastnn import _core

from test_gemm import DTYPES, TRANSPOSES, operands, tolerance

GRAD_ACTS = ["relu", "leaky_relu", "elu", "selu", "sigmoid", "tanh", "swish", "identity"]
# (m, n, k): awkward (primes, one off the tiles), thin (the 10-class layer), MLP-like, k > every KC
SHAPES = [(1, 1, 1), (97, 131, 61), (13, 10, 40), (7, 17, 300), (64, 784, 37), (128, 513, 129), (5, 3, 600)]
_default_threads = fastnn.get_num_threads()


def saved_values(act, m, n, dtype, rng):
    """(x, y) of the activation, with exact zeros and both signs among the x."""
    x = rng.standard_normal((m, n)).astype(dtype)
    x.flat[::7] = 0
    return x, ref.activation(act, x, alpha=0.2 if act == "leaky_relu" else None)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("act", GRAD_ACTS)
def test_act_grad_matches_reference(isa, threads, act, dtype):
    rng = np.random.default_rng(5)
    alpha_act = 0.2 if act == "leaky_relu" else None
    for (m, n, k), (ta, tb) in zip(SHAPES, TRANSPOSES * 2):
        a, b = operands(m, n, k, dtype, ta, tb, seed=6)
        x, y = saved_values(act, m, n, dtype, rng)
        for saved in (dict(x=x), dict(y=y), dict(x=x, y=y)):
            if act == "swish" and "x" not in saved:
                continue
            kw = dict(trans_a=ta, trans_b=tb, activation=act, activation_alpha=alpha_act, **saved)
            got = ops.matmul_act_grad(a, b, **kw)
            want = ref.matmul_act_grad(a, b, **kw)
            # |act'| <= 1.1 for these on the values used; a few ulp for the exp/tanh approximations
            tol = 2 * tolerance(a, b, k, dtype, result=want)
            np.testing.assert_allclose(got, want, rtol=0, atol=tol, err_msg=f"{(m, n, k)} ta={ta} tb={tb} {list(saved)}")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_act_grad_with_alpha_beta_accumulates_before_the_gradient(isa, dtype):
    rng = np.random.default_rng(7)
    m, n, k = 33, 70, 45
    a, b = operands(m, n, k, dtype, False, True)
    x, y = saved_values("tanh", m, n, dtype, rng)
    out0 = rng.standard_normal((m, n)).astype(dtype)
    got = ops.matmul_act_grad(a, b, trans_b=True, activation="tanh", y=y, alpha=0.5, beta=-1.5, out=out0.copy())
    want = ref.matmul_act_grad(a, b, trans_b=True, activation="tanh", y=y, alpha=0.5, beta=-1.5, out=out0.copy())
    np.testing.assert_allclose(got, want, rtol=0, atol=2 * tolerance(a, b, k, dtype, 0.5, -1.5, out0, result=want))


def test_act_grad_relu_is_a_select_nan_and_inf_propagate_as_activation_grad(isa):
    # the fused epilogue must equal the separate activation_grad pass, special values included
    dz = np.array([[1.0, np.inf, -2.0, np.nan]], np.float32)
    w = np.eye(4, dtype=np.float32)
    y = np.array([[0.0, 0.0, 3.0, np.nan]], np.float32)
    got = ops.matmul_act_grad(dz, w, trans_b=True, activation="relu", y=y)
    with np.errstate(invalid="ignore"):  # inf * 0 in the product: NaN, in both
        want = ops.activation_grad("relu", dz @ w.T, y=y)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_bias_grad_matches_reference(isa, threads, dtype):
    rng = np.random.default_rng(8)
    for (m, n, k), (ta, tb) in zip(SHAPES + [(9, 4133, 70)], TRANSPOSES * 2):
        a, b = operands(m, n, k, dtype, ta, tb, seed=9)
        got_w, got_b = ops.matmul_bias_grad(a, b, trans_a=ta, trans_b=tb)
        want_w, want_b = ref.matmul_bias_grad(a, b, trans_a=ta, trans_b=tb)
        np.testing.assert_allclose(got_w, want_w, rtol=0, atol=tolerance(a, b, k, dtype), err_msg=f"{(m, n, k)}")
        bmax = float(np.abs(b).max())
        np.testing.assert_allclose(got_b, want_b, rtol=0, atol=4 * (k + 2) * bmax * np.finfo(dtype).eps,
                                   err_msg=f"{(m, n, k)} ta={ta} tb={tb}")
        # accumulate: beta reads both outputs
        w0, b0 = rng.standard_normal((m, n)).astype(dtype), rng.standard_normal(n).astype(dtype)
        outs = (w0.copy(), b0.copy())
        got = ops.matmul_bias_grad(a, b, trans_a=ta, trans_b=tb, alpha=0.5, beta=2.0, out=outs)
        want = ref.matmul_bias_grad(a, b, trans_a=ta, trans_b=tb, alpha=0.5, beta=2.0, out=(w0.copy(), b0.copy()))
        assert got[0] is outs[0] and got[1] is outs[1]
        np.testing.assert_allclose(got[1], want[1], rtol=0, atol=4 * (k + 4) * max(bmax, 2 * float(np.abs(b0).max()))
                                   * np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_bias_grad_of_empty_products(isa, dtype):
    # m == 0: no product, but the column sums of op(b) are still due; k == 0: zeros
    a, b = np.zeros((6, 0), dtype), np.arange(12, dtype=dtype).reshape(6, 2)
    w, db = ops.matmul_bias_grad(a, b, trans_a=True)
    assert w.shape == (0, 2)
    np.testing.assert_array_equal(db, b.sum(0))
    w, db = ops.matmul_bias_grad(np.zeros((0, 3), dtype), np.zeros((0, 4), dtype), trans_a=True)
    np.testing.assert_array_equal(w, np.zeros((3, 4), dtype))
    np.testing.assert_array_equal(db, np.zeros(4, dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_backward_products_bitwise_equal_for_one_and_two_threads(isa, dtype):
    _core._gemm_set_tuning(-1, 0)  # grain 0: every product is split between the threads
    rng = np.random.default_rng(10)
    try:
        for m, n, k in [(784, 512, 64), (50, 9, 33), (9, 200, 17), (4, 40, 600), (256, 10, 128)]:
            x = rng.standard_normal((k, m)).astype(dtype)
            dz = rng.standard_normal((k, n)).astype(dtype)
            w = rng.standard_normal((m, n)).astype(dtype)
            y = np.maximum(rng.standard_normal((k, m)), 0).astype(dtype)
            res = {}
            for nt in (1, 2):
                fastnn.set_num_threads(nt)
                res[nt] = ops.matmul_bias_grad(x, dz, trans_a=True) + \
                    (ops.matmul_act_grad(dz, w, trans_b=True, activation="elu", y=y),)
            for one, two in zip(res[1], res[2]):
                assert np.array_equal(one, two), (m, n, k)
    finally:
        _core._gemm_set_tuning(-1, -1)
        fastnn.set_num_threads(_default_threads)


def test_thin_band_of_a_split_product_uses_the_same_tile_as_one_thread(isa):
    # Regression: with 2 threads the second column band of a 40-column product is 8
    # wide; it picked the narrow micro-tile (another KC, so other k slices) and the
    # result differed in the last bits from one thread's.
    _core._gemm_set_tuning(-1, 0)
    try:
        a, b = operands(4, 40, 600, np.float32, False, False)
        fastnn.set_num_threads(2)
        two = ops.matmul(a, b)
        fastnn.set_num_threads(1)
        assert np.array_equal(ops.matmul(a, b), two)
    finally:
        _core._gemm_set_tuning(-1, -1)
        fastnn.set_num_threads(_default_threads)


# ---------------------------------------------------------------------------
# bad input: named errors, nothing written
# ---------------------------------------------------------------------------

def test_act_grad_rejects_missing_or_misshapen_saved_values():
    dz, w = np.ones((3, 4), np.float32), np.ones((5, 4), np.float32)
    with pytest.raises(ValueError, match="x: activation 'swish' needs the forward input x"):
        ops.matmul_act_grad(dz, w, trans_b=True, activation="swish", y=np.ones((3, 5), np.float32))
    with pytest.raises(ValueError, match="x, y: give the forward input x or the forward output y"):
        ops.matmul_act_grad(dz, w, trans_b=True, activation="relu")
    with pytest.raises(ValueError, match=r"y: expected shape \(3, 5\), got \(5, 3\)"):
        ops.matmul_act_grad(dz, w, trans_b=True, activation="relu", y=np.ones((5, 3), np.float32))
    with pytest.raises(TypeError, match="y: expected dtype float32"):
        ops.matmul_act_grad(dz, w, trans_b=True, activation="relu", y=np.ones((3, 5)))
    with pytest.raises(ValueError, match="activation: unknown activation 'nope'"):
        ops.matmul_act_grad(dz, w, trans_b=True, activation="nope", y=np.ones((3, 5), np.float32))
    with pytest.raises(ValueError, match="a, b: inner dimensions differ"):
        ops.matmul_act_grad(dz, w, activation="relu", y=np.ones((3, 5), np.float32))


def test_core_checks_the_backward_products_on_its_own():
    a, b, out = np.ones((3, 4), np.float32), np.ones((4, 5), np.float32), np.zeros((3, 5), np.float32)
    with pytest.raises(ValueError, match="x: activation 'softplus' needs the forward input x"):
        _core.matmul_grad(a, b, out, False, False, 1.0, 0.0, "softplus", 0.0, None, out.copy(), None)
    with pytest.raises(ValueError, match=r"bias_grad: expected shape \(5,\)"):
        _core.matmul_grad(a, b, out, False, False, 1.0, 0.0, None, 0.0, None, None, np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="bias_grad: must not share memory with b"):
        _core.matmul_grad(a, b, out, False, False, 1.0, 0.0, None, 0.0, None, None, b[0])
    assert not out.any()


def test_bias_grad_sharing_memory_is_refused_and_nothing_changes():
    x = np.ones((4, 3), np.float32)
    dz = np.arange(8, dtype=np.float32).reshape(4, 2)
    before = dz.copy()
    dw = np.full((3, 2), 7, np.float32)
    with pytest.raises(ValueError, match="out\\[1\\]: the bias gradient must not share memory with b"):
        ops.matmul_bias_grad(x, dz, trans_a=True, out=(dw, dz[1]))
    np.testing.assert_array_equal(dz, before)
    np.testing.assert_array_equal(dw, np.full((3, 2), 7, np.float32))
    with pytest.raises(ValueError, match="out must be a tuple of two arrays"):
        ops.matmul_bias_grad(x, dz, trans_a=True, beta=1.0, out=dw)
    with pytest.raises(ValueError, match=r"out\[1\]: expected shape \(2,\), got \(3,\)"):
        ops.matmul_bias_grad(x, dz, trans_a=True, out=(None, np.zeros(3, np.float32)))


def test_act_grad_out_aliasing_the_saved_values_gives_the_same_result(isa):
    rng = np.random.default_rng(11)
    dz, w = rng.standard_normal((20, 700)).astype(np.float32), rng.standard_normal((30, 700)).astype(np.float32)
    y = np.maximum(rng.standard_normal((20, 30)), 0).astype(np.float32)
    want = ref.matmul_act_grad(dz, w, trans_b=True, activation="relu", y=y)
    got = ops.matmul_act_grad(dz, w, trans_b=True, activation="relu", y=y, out=y)  # dx written over y
    assert got is y
    np.testing.assert_allclose(got, want, rtol=0, atol=tolerance(dz, w, 700, np.float32))


# ---------------------------------------------------------------------------
# blocking
# ---------------------------------------------------------------------------

def test_blocking_is_reported_and_consistent():
    info = _core.gemm_blocking()
    assert info["source"]
    for isa in ("scalar", "avx2", "avx512"):
        assert isinstance(info[isa]["pack_trans_a"], bool)
        for key, s in info[isa].items():
            if key == "pack_trans_a":
                continue
            assert s["mc"] % s["mr"] == 0 and s["nc"] % s["nr"] == 0, (isa, key, s)
            assert 0 < s["kc"] <= 4096 and s["mr"] <= s["mc"] and s["nr"] <= s["nc"], (isa, key, s)
    caches = info["caches"]
    if caches["cpuid_leaf"] != "none":
        assert caches["l1d"] >= 4096 and caches["l2"] >= caches["l1d"]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_products_under_a_tiny_blocking_match_reference(isa, dtype):
    # mc = mr, kc = 16, nc = nr: every one of the five loops runs many times
    dname = np.dtype(dtype).name
    for narrow in (False, True):
        s = _core.gemm_blocking()[isa][dname + ("_narrow" if narrow else "")]
        _core._gemm_set_blocking(isa, dname, narrow, s["mr"], 16, s["nr"])
    try:
        for (m, n, k), (ta, tb) in zip([(97, 131, 61), (13, 10, 40), (40, 70, 33), (31, 7, 100)], TRANSPOSES):
            a, b = operands(m, n, k, dtype, ta, tb)
            got = ops.matmul(a, b, trans_a=ta, trans_b=tb, bias=np.ones(n, dtype), activation="sigmoid")
            want = ref.matmul(a, b, trans_a=ta, trans_b=tb, bias=np.ones(n, dtype), activation="sigmoid")
            np.testing.assert_allclose(got, want, rtol=0, atol=tolerance(a, b, k, dtype, result=want))
            gw, gb = ops.matmul_bias_grad(a, b, trans_a=ta, trans_b=tb)
            ww, wb = ref.matmul_bias_grad(a, b, trans_a=ta, trans_b=tb)
            np.testing.assert_allclose(gw, ww, rtol=0, atol=tolerance(a, b, k, dtype))
            np.testing.assert_allclose(gb, wb, rtol=0, atol=4 * (k + 2) * float(np.abs(b).max()) * np.finfo(dtype).eps)
    finally:
        for narrow in (False, True):
            _core._gemm_set_blocking(isa, dname, narrow, 0, 0, 0)


def test_set_blocking_refuses_unusable_values():
    s = _core.gemm_blocking()["avx2"]["float32"]
    with pytest.raises(ValueError, match="mc must be a multiple of mr"):
        _core._gemm_set_blocking("avx2", "float32", False, s["mr"] + 1, 0, 0)
    assert _core.gemm_blocking()["avx2"]["float32"] == s


def test_fastnn_info_prints_the_blocking_in_use(capsys):
    from fastnn.cli import main
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    isa = _core.active_isa()
    s = _core.gemm_blocking()[isa]["float32"]
    assert "gemm blocking:" in out and "caches:" in out
    assert f"{isa} float32 " in out and f"MC {s['mc']}, KC {s['kc']}, NC {s['nc']}" in out


def test_derived_blocking_follows_blis_rules():
    # Haswell's caches (32 KiB L1d, 256 KiB L2, 8 MiB L3) give BLIS's own Haswell sgemm numbers
    hsw = _core._gemm_derived_blocking(6, 16, 4, 32 << 10, 256 << 10, 8 << 20, 8)
    assert (hsw["kc"], hsw["mc"]) == (256, 168) and hsw["nc"] % 16 == 0
    # a Sapphire Rapids core (48 KiB L1d, 2 MiB L2): what fastnn uses there, unmeasured
    spr = _core._gemm_derived_blocking(8, 32, 4, 48 << 10, 2 << 20, 480 << 20, 2)
    assert spr == {"mr": 8, "nr": 32, "mc": 1024, "kc": 192, "nc": 8192}
    # tiny or absent caches stay inside the clamps the kernels can use
    tiny = _core._gemm_derived_blocking(8, 32, 8, 4096, 8192, 0, 0)
    assert tiny["kc"] == 128 and tiny["mc"] % 8 == 0 and tiny["nc"] >= 4 * 32
