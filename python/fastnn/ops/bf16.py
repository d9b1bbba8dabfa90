"""bfloat16 storage: arrays of bfloat16 bit patterns for the bf16 GEMM.

NumPy has no bfloat16, so fastnn stores bfloat16 values as their bit patterns
in ``uint16`` arrays (the upper half of the float32). An ``ml_dtypes.bfloat16``
array is accepted wherever such an array is, viewed as ``uint16`` (no copy).
:func:`bfloat16_pack` rounds float32 to the bits (nearest even, as
:func:`fastnn.ops.bfloat16_round`), :func:`bfloat16_unpack` widens them back
(exactly). :func:`fastnn.ops.matmul_bf16` takes such arrays for ``a``, ``b``
and ``out`` (see there).
"""
from __future__ import annotations

import numpy as np

from .. import _core
from ._common import (_activation_alpha, _activation_name, _c_aligned, _describe, _float_array, _out_array,
                      _real)

BITS = np.dtype(np.uint16)


def is_bits(x):
    """True for an ndarray of bfloat16 values: uint16 bit patterns or ml_dtypes.bfloat16."""
    return x.__class__ is np.ndarray and (x.dtype == BITS or x.dtype.name == "bfloat16")


def any_bits(*xs):
    return any(is_bits(x) for x in xs)


def _bits_array(x, name, ndim=None):
    """``x`` (uint16 or ml_dtypes.bfloat16) as a C-contiguous uint16 array (a view when possible)."""
    if not is_bits(x):
        raise TypeError(f"{name}: expected bfloat16 bit patterns (uint16 or ml_dtypes.bfloat16), got {_describe(x)}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got {x.ndim} (shape {x.shape})")
    return _c_aligned(x).view(BITS)


def _operand(x, name):
    """A GEMM operand: bfloat16 bits (uint16 view) or a float32 matrix."""
    if is_bits(x):
        return _bits_array(x, name, ndim=2)
    if x.__class__ is np.ndarray and x.dtype != np.float32:
        raise TypeError(f"{name}: expected dtype float32 or bfloat16 bits (uint16), got {x.dtype}")
    return _float_array(x, name, ndim=2)


def _bits_out(out, name, shape):
    """A writeable C-contiguous uint16 view of a bits ``out`` of ``shape``."""
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {out.shape}")
    if not (out.flags.c_contiguous and out.flags.aligned):
        raise ValueError(f"{name}: expected a C-contiguous array, got strides {out.strides}")
    if not out.flags.writeable:
        raise ValueError(f"{name}: expected a writeable array, got a read-only one")
    return out.view(BITS)


def matmul_bits(a, b, trans_a, trans_b, alpha, beta, out, bias, activation, activation_alpha, product_shape):
    """matmul_bf16 with a bfloat16-bits ``a``, ``b`` or ``out``, every argument checked."""
    for flag, fname in ((trans_a, "trans_a"), (trans_b, "trans_b")):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{fname}: expected a bool, got {type(flag).__name__}")
    a, b = _operand(a, "a"), _operand(b, "b")
    alpha, beta = _real(alpha, "alpha"), _real(beta, "beta")
    m, n = product_shape(a, b, bool(trans_a), bool(trans_b), beta, out)
    if bias is not None:
        if bias.__class__ is np.ndarray and bias.dtype != np.float32:
            raise TypeError(f"bias: expected dtype float32, got {bias.dtype}")
        bias = _float_array(bias, "bias", ndim=1, shape=(n,))
    act, act_alpha = None, 0.0
    if activation is not None:
        act = _activation_name(activation, "activation")
        act_alpha = _activation_alpha(act, activation_alpha, "activation_alpha")
    elif activation_alpha is not None:
        _real(activation_alpha, "activation_alpha")
    if out is not None and is_bits(out):
        if beta != 0.0:
            raise ValueError(f"beta: a bfloat16 out is only written (rounded once), so beta must be 0, got {beta}")
        c = _bits_out(out, "out", (m, n))
    else:
        c = out = _out_array(out, "out", dtype=np.float32, shape=(m, n))
    _core.matmul_bf16(a, b, c, bool(trans_a), bool(trans_b), alpha, beta, bias, act, act_alpha)
    return out


def bfloat16_pack(x, *, out=None):
    """float32 ``x`` rounded to bfloat16 (nearest even), as bit patterns: a uint16 array
    (``out`` may be uint16 or ml_dtypes.bfloat16, of x's shape).

    >>> import numpy as np, fastnn.ops as ops
    >>> ops.bfloat16_pack(np.array([1.0, -2.0, 1 + 2 ** -9], np.float32))
    array([16256, 49152, 16256], dtype=uint16)
    """
    if x.__class__ is np.ndarray and x.dtype != np.float32:
        raise TypeError(f"x: expected dtype float32, got {x.dtype}")
    x = _float_array(x, "x")
    if out is None:
        out = np.empty(x.shape, BITS)
    elif not is_bits(out):
        raise TypeError(f"out: expected a uint16 (or ml_dtypes.bfloat16) array, got {_describe(out)}")
    _core.bf16_pack(x, _bits_out(out, "out", x.shape), True)
    return out


def bfloat16_unpack(bits, *, out=None):
    """bfloat16 bit patterns (uint16 or ml_dtypes.bfloat16) widened to float32, exactly."""
    bits = _bits_array(bits, "bits")
    out = _out_array(out, "out", dtype=np.float32, shape=bits.shape)
    _core.bf16_pack(bits, out, False)
    return out
