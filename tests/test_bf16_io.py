"""bfloat16 storage for the bf16 GEMM: operands given as bit patterns (uint16, or
ml_dtypes.bfloat16 viewed as uint16) and a bfloat16 result (ops.bf16).

Contract (gemm_bf16.h, Bf16Io): a bits operand is packed by copying its bits, so
the product is *bitwise* the one of float32 operands holding the same bfloat16
values, on every path (``path`` fixture: each ISA's fallback, and the
AVX512-BF16 kernel where the CPU has it) and thread count; a bits ``out`` is
the float32 result (after alpha, bias, activation) rounded to nearest even.
"""
import numpy as np
import pytest

import fastnn.ops as ops
import fastnn.reference as ref
from fastnn import _core

TRANSPOSES = [(False, False), (False, True), (True, False), (True, True)]
SHAPES = [(1, 1, 1), (7, 17, 33), (17, 33, 7), (33, 257, 17), (16, 16, 1031), (64, 10, 256), (100, 130, 785),
          (130, 40, 64)]


def u32(x):
    return np.asarray(x, np.float32).view(np.uint32)


def rounded(shape, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    return ref.bfloat16_round((scale * rng.standard_normal(shape)).astype(np.float32))


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_bits_operands_are_bitwise_the_float32_path(bf16_path, threads, shape):
    m, n, k = shape
    for ta, tb in TRANSPOSES:
        a = rounded((k, m) if ta else (m, k), 1)
        b = rounded((n, k) if tb else (k, n), 2)
        bias = rounded((n,), 3)
        kw = dict(trans_a=ta, trans_b=tb, bias=bias, activation="tanh")
        want = ops.matmul_bf16(a, b, **kw)
        a16, b16 = ops.bfloat16_pack(a), ops.bfloat16_pack(b)
        for x, y in ((a16, b), (a, b16), (a16, b16)):
            np.testing.assert_array_equal(u32(ops.matmul_bf16(x, y, **kw)), u32(want), err_msg=str((ta, tb)))
        # a bits out: the float32 result rounded (nearest even), after bias and activation
        # (tanh: rounded from the float32 block; relu / none: from the registers when k fits one pass)
        for act in ("tanh", "relu", None):
            kw["activation"] = act
            want = ops.matmul_bf16(a, b, **kw)
            out = np.empty((m, n), np.uint16)
            assert ops.matmul_bf16(a16, b, out=out, **kw) is out
            np.testing.assert_array_equal(out, ref.bfloat16_pack(want), err_msg=str((ta, tb, act)))


@pytest.mark.parametrize("activation", [None, "relu", "leaky_relu", "sigmoid"])
def test_bits_out_matches_the_twin(bf16_path, activation):
    m, n, k = 45, 70, 37
    a16 = ops.bfloat16_pack(rounded((m, k), 4))
    w = rounded((k, n), 5)
    bias = np.random.default_rng(6).standard_normal(n).astype(np.float32)
    got = ops.matmul_bf16(a16, w, bias=bias, activation=activation, out=np.empty((m, n), np.uint16))
    want = ref.matmul_bf16(a16, w, bias=bias, activation=activation, out=np.empty((m, n), np.uint16))
    # the float32 results differ by accumulation order only, so the rounded ones by at most one bf16 ulp
    diff = np.abs(ops.bfloat16_unpack(got).astype(np.float64) - ref.bfloat16_unpack(want))
    assert np.all(diff <= 2.0 ** -7 * np.abs(ref.bfloat16_unpack(want)) + 1e-6)
    assert np.mean(got == want) > 0.98


def test_ml_dtypes_bfloat16_arrays_are_viewed_as_bits(bf16_path):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    a, b = rounded((9, 20), 7), rounded((20, 33), 8)
    want = ops.matmul_bf16(a, b, activation="relu")
    got = ops.matmul_bf16(a.astype(ml_dtypes.bfloat16), b.astype(ml_dtypes.bfloat16), activation="relu")
    np.testing.assert_array_equal(u32(got), u32(want))
    out = np.empty((9, 33), ml_dtypes.bfloat16)
    assert ops.matmul_bf16(a.astype(ml_dtypes.bfloat16), b, activation="relu", out=out) is out
    np.testing.assert_array_equal(out.astype(np.float32), want.astype(ml_dtypes.bfloat16).astype(np.float32))
    np.testing.assert_array_equal(ops.bfloat16_pack(want), want.astype(ml_dtypes.bfloat16).view(np.uint16))


@pytest.mark.parametrize("n", [0, 1, 31, 32, 33, 1000, 300_001])
def test_pack_and_unpack_are_bitwise_the_twins(bf16_path, threads, n):
    rng = np.random.default_rng(n)
    x = rng.integers(0, 2 ** 32, n, dtype=np.uint64).astype(np.uint32).view(np.float32)
    got = ops.bfloat16_pack(x)
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got, ref.bfloat16_pack(x))
    np.testing.assert_array_equal(u32(ops.bfloat16_unpack(got)), u32(ref.bfloat16_round(x)))
    np.testing.assert_array_equal(u32(ref.bfloat16_unpack(got)), u32(ref.bfloat16_round(x)))


def test_aliasing_bits_out_with_an_operand_is_computed_as_without(bf16_path):
    a16 = ops.bfloat16_pack(rounded((8, 8), 9))
    b = rounded((8, 8), 10)
    want = ops.matmul_bf16(a16, b, out=np.empty((8, 8), np.uint16))
    got = ops.matmul_bf16(a16, b, out=a16)
    assert got is a16
    np.testing.assert_array_equal(got, want)


def test_bad_bits_arguments_are_refused_and_change_nothing():
    a16 = ops.bfloat16_pack(rounded((4, 3), 11))
    b = rounded((3, 5), 12)
    out = np.full((4, 5), 7, np.uint16)
    with pytest.raises(ValueError, match="beta: a bfloat16 out"):
        ops.matmul_bf16(a16, b, out=out, beta=1.0)
    with pytest.raises(ValueError, match="beta: a bfloat16"):
        _core.matmul_bf16(a16, b, out, False, False, 1.0, 1.0, None, None, 0.0)
    with pytest.raises(ValueError, match="out: expected shape"):
        ops.matmul_bf16(a16, b, out=np.empty((5, 4), np.uint16))
    with pytest.raises(ValueError, match="a, b: inner dimensions differ"):
        ops.matmul_bf16(a16, b, trans_a=True, out=out)
    with pytest.raises(TypeError, match="b: expected dtype float32"):
        ops.matmul_bf16(a16, b.astype(np.float64))
    with pytest.raises(TypeError, match="bias: expected dtype float32"):
        ops.matmul_bf16(a16, b, bias=np.ones(5, np.uint16))
    with pytest.raises(TypeError, match="a: expected dtype float32"):
        ops.matmul_bf16(a16.astype(np.int16), b)
    with pytest.raises(TypeError, match="out: expected a uint16"):
        ops.bfloat16_pack(b, out=np.empty((3, 5), np.float32))
    with pytest.raises(TypeError, match="bits: expected bfloat16 bit patterns"):
        ops.bfloat16_unpack(b)
    np.testing.assert_array_equal(out, np.full((4, 5), 7, np.uint16))


def test_non_contiguous_bits_operands_are_copied(bf16_path):
    a = rounded((10, 12), 13)
    b = rounded((6, 7), 14)
    a16 = ops.bfloat16_pack(a)[:, ::2]  # (10, 6), strided
    want = ops.matmul_bf16(np.ascontiguousarray(a[:, ::2]), b)
    np.testing.assert_array_equal(u32(ops.matmul_bf16(a16, b)), u32(want))
