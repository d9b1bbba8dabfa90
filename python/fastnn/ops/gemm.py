"""GEMM: matmul, its fused backward products (matmul_act_grad, matmul_bias_grad), bfloat16."""
from __future__ import annotations

from math import isfinite as _isfinite

import numpy as np

from .. import _core
from . import bf16 as _bf16
from ._common import (_activation_alpha, _activation_name, ACTIVATIONS, _DEFAULT_ALPHA, _float_array,
                      _FLOAT_DTYPES, _out_array, _outs, _real)


# ----------------------------------------------------------------------------
# GEMM  (matmul)
# ----------------------------------------------------------------------------


_BF16_DTYPES = (np.dtype(np.float32),)  # the bf16 products take float32 arrays


def _plain_matrix(x):
    """True for a C-contiguous 2-D float32/float64 ndarray (no checks needed)."""
    return (x.__class__ is np.ndarray and x.ndim == 2 and x.dtype in _FLOAT_DTYPES and x.flags.c_contiguous
            and x.flags.aligned)


def matmul(a, b, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, out=None,
           bias=None, activation=None, activation_alpha=None):
    """``act(alpha * op(a) @ op(b) + beta * out + bias)`` in one fused call.

    op(a) is ``a.T`` when ``trans_a`` (likewise b): op(a) is (m, k), op(b) is
    (k, n), the result (m, n). Transposes are handled inside the kernel, never
    by copying: a transposed view (``x.T``, any Fortran-ordered array) is read in
    place as the array it transposes. ``bias`` has shape (n,) and is added to every row;
    ``activation`` is any name of :func:`activation`, applied while the tile is
    hot. ``beta != 0`` needs ``out`` (its old value is read); with ``beta == 0``
    ``out`` is only written. k == 0 gives ``act(beta * out + bias)``.

    >>> import numpy as np, fastnn.ops as ops
    >>> x = np.ones((2, 3), np.float32); w = np.ones((3, 4), np.float32)
    >>> ops.matmul(x, w, bias=np.full(4, -4, np.float32), activation="relu")
    array([[0., 0., 0., 0.],
           [0., 0., 0., 0.]], dtype=float32)
    """
    c = _fast_product(_core.matmul, _FLOAT_DTYPES, a, b, trans_a, trans_b, alpha, beta, out, bias, activation,
                      activation_alpha)
    if c is not None:
        return c
    return _matmul_checked(a, b, trans_a, trans_b, alpha, beta, out, bias, activation, activation_alpha)


def _as_row_major(x, trans):
    """(x, trans) with a Fortran-ordered 2-D array (a transposed view such as ``w.T``)
    given as the row-major array it transposes and the flag flipped: op(x) is unchanged
    and the kernel reads it in place instead of a copy being made."""
    if x.__class__ is np.ndarray and x.ndim == 2 and not x.flags.c_contiguous and x.flags.f_contiguous:
        return x.T, not trans
    return x, trans


def _fast_product(kernel, dtypes, a, b, trans_a, trans_b, alpha, beta, out, bias, activation, activation_alpha):
    """The fast path of matmul and matmul_bf16, a few hundred nanoseconds of Python: plain
    arguments go straight to `kernel` (out allocated when None, for 2-D `a` of one of
    `dtypes`), which checks them again (dtypes, layout, shapes, finite alpha and beta)
    before any work. Returns None where the path does not apply or the core rejected the
    call: the full checks (_matmul_checked) then copy non-contiguous inputs or raise the
    friendly error."""
    if (trans_a.__class__ is bool and trans_b.__class__ is bool and alpha.__class__ is float
            and beta.__class__ is float and activation_alpha is None
            and a.__class__ is np.ndarray and b.__class__ is np.ndarray
            and (bias is None or bias.__class__ is np.ndarray) and (activation is None or activation.__class__ is str)):
        c = out
        if out is None:
            if beta != 0.0 or a.ndim != 2 or b.ndim != 2 or a.dtype not in dtypes:
                return None
            c = np.empty((a.shape[1] if trans_a else a.shape[0], b.shape[0] if trans_b else b.shape[1]),
                         dtype=a.dtype)
        elif c.__class__ is not np.ndarray:
            return None
        if not a.flags.c_contiguous:  # a transposed view (x.T): read in place, not copied
            a, trans_a = _as_row_major(a, trans_a)
        if not b.flags.c_contiguous:
            b, trans_b = _as_row_major(b, trans_b)
        try:
            kernel(a, b, c, trans_a, trans_b, alpha, beta, bias, activation,
                   0.0 if activation is None else _DEFAULT_ALPHA.get(activation, 0.0))
            return c
        except (TypeError, ValueError):
            pass
    return None


def _matmul_checked(a, b, trans_a, trans_b, alpha, beta, out, bias, activation, activation_alpha,
                    kernel=_core.matmul):
    """matmul with every argument checked (and inputs copied when not C-contiguous);
    ``kernel`` is _core.matmul or _core.matmul_bf16 (same arguments)."""
    if trans_a.__class__ is not bool or trans_b.__class__ is not bool:
        for flag, fname in ((trans_a, "trans_a"), (trans_b, "trans_b")):
            if not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"{fname}: expected a bool, got {type(flag).__name__}")
        trans_a, trans_b = bool(trans_a), bool(trans_b)
    shown = _shown(a, trans_a, b, trans_b)
    (a, trans_a), (b, trans_b) = _as_row_major(a, trans_a), _as_row_major(b, trans_b)
    if not _plain_matrix(a):
        a = _float_array(a, "a", ndim=2)
    if not (_plain_matrix(b) and b.dtype is a.dtype):
        b = _float_array(b, "b", dtype=a.dtype, ndim=2)
    if alpha.__class__ is not float or not _isfinite(alpha):
        alpha = _real(alpha, "alpha")
    if beta.__class__ is not float or not _isfinite(beta):
        beta = _real(beta, "beta")
    m, n = _product_shape(a, b, trans_a, trans_b, beta, out, shown)
    if bias is not None and not (bias.__class__ is np.ndarray and bias.dtype is a.dtype and bias.shape == (n,)
                                 and bias.flags.c_contiguous and bias.flags.aligned):
        bias = _float_array(bias, "bias", dtype=a.dtype, ndim=1, shape=(n,))
    act = None
    act_alpha = 0.0
    if activation is not None:
        act = _activation_name(activation, "activation")
        act_alpha = _activation_alpha(act, activation_alpha, "activation_alpha")
    elif activation_alpha is not None:
        _real(activation_alpha, "activation_alpha")
    if out is None:
        c = np.empty((m, n), dtype=a.dtype)
    elif not (out.__class__ is np.ndarray and out.dtype is a.dtype and out.shape == (m, n)
              and out.flags.c_contiguous and out.flags.writeable and out.flags.aligned):
        c = _out_array(out, "out", dtype=a.dtype, shape=(m, n))
    else:
        c = out
    # out may overlap a, b or bias: the core then computes into a temporary
    kernel(a, b, c, bool(trans_a), bool(trans_b), alpha, beta, bias, act, act_alpha)
    return c


def _grad_product(a, b, trans_a, trans_b, alpha, beta, out):
    """The checked operands of a backward product: (a, b, trans_a, trans_b, alpha, beta, m, n)
    (a transposed view as the array it transposes, its flag flipped)."""
    for flag, fname in ((trans_a, "trans_a"), (trans_b, "trans_b")):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{fname}: expected a bool, got {type(flag).__name__}")
    shown = _shown(a, bool(trans_a), b, bool(trans_b))
    (a, trans_a), (b, trans_b) = _as_row_major(a, bool(trans_a)), _as_row_major(b, bool(trans_b))
    a = _float_array(a, "a", ndim=2)
    b = _float_array(b, "b", dtype=a.dtype, ndim=2)
    alpha, beta = _real(alpha, "alpha"), _real(beta, "beta")
    m, n = _product_shape(a, b, trans_a, trans_b, beta, out, shown)
    return a, b, trans_a, trans_b, alpha, beta, m, n


def _shown(a, trans_a, b, trans_b):
    """The operands as the caller gave them, for _product_shape's message: (a shape, trans_a,
    b shape, trans_b), a shape None where it is not an array yet."""
    return getattr(a, "shape", None), trans_a, getattr(b, "shape", None), trans_b


def _product_shape(a, b, trans_a, trans_b, beta, out, shown=None):
    """(m, n) of op(a) @ op(b), refusing differing inner dimensions and a beta without out.
    shown: _shown of the caller's arguments (the message names those, not a flipped view)."""
    m, k = (a.shape[1], a.shape[0]) if trans_a else a.shape
    kb, n = (b.shape[1], b.shape[0]) if trans_b else b.shape
    if k != kb:
        sa, ta, sb, tb = shown if shown is not None else (a.shape, trans_a, b.shape, trans_b)
        sa, sb = a.shape if sa is None else sa, b.shape if sb is None else sb
        raise ValueError(
            f"a, b: inner dimensions differ: op(a) has shape {(m, k)} (a {tuple(sa)}, trans_a={ta}), "
            f"op(b) has shape {(kb, n)} (b {tuple(sb)}, trans_b={tb})")
    if beta != 0.0 and out is None:
        raise ValueError(f"out: beta = {beta} reads out, so out must be given, got None")
    return m, n


def matmul_act_grad(a, b, *, activation, x=None, y=None, activation_alpha=None, trans_a=False, trans_b=False,
                    alpha=1.0, beta=0.0, out=None):
    """``(alpha * op(a) @ op(b) + beta * out) * act'(.)`` in one fused call: the
    input gradient of a Dense layer times the gradient of the activation that
    produced its input.

    ``x`` / ``y``: that activation's saved forward input / output, shape (m, n),
    as :func:`activation_grad` takes them (sigmoid, tanh: y is cheapest; swish,
    softplus need x; the others take either). In a Dense backward pass, with
    ``dz`` the gradient at this layer's pre-activation, ``W`` its kernel and
    ``h = prev_act(z_prev)`` its input::

        dz_prev = ops.matmul_act_grad(dz, W, trans_b=True, activation=prev_act, y=h)

    equals ``activation_grad(prev_act, dz @ W.T, y=h)`` without the extra pass.

    >>> import numpy as np, fastnn.ops as ops
    >>> dz = np.ones((1, 2), np.float32); w = np.ones((3, 2), np.float32)
    >>> ops.matmul_act_grad(dz, w, trans_b=True, activation="relu", y=np.array([[1, 0, 2]], np.float32))
    array([[2., 0., 2.]], dtype=float32)
    """
    if (out.__class__ is np.ndarray and trans_a.__class__ is bool and trans_b.__class__ is bool
            and alpha.__class__ is float and beta.__class__ is float and _isfinite(alpha) and _isfinite(beta)
            and activation.__class__ is str and activation_alpha is None and activation in ACTIVATIONS):
        (fa, fta), (fb, ftb) = _as_row_major(a, trans_a), _as_row_major(b, trans_b)
        try:  # fast path, as matmul's: the core checks everything; a rejection is reworded below
            _core.matmul_grad(fa, fb, out, fta, ftb, alpha, beta, activation,
                              _core.default_activation_alpha(activation), x, y, None)
            return out
        except (TypeError, ValueError):
            pass
    a, b, trans_a, trans_b, alpha, beta, m, n = _grad_product(a, b, trans_a, trans_b, alpha, beta, out)
    name = _activation_name(activation, "activation")
    act_alpha = _activation_alpha(name, activation_alpha, "activation_alpha")
    if x is not None:
        x = _float_array(x, "x", dtype=a.dtype, shape=(m, n))
    if y is not None:
        y = _float_array(y, "y", dtype=a.dtype, shape=(m, n))
    if name in ("swish", "silu", "softplus") and x is None:
        raise ValueError(f"x: activation {name!r} needs the forward input x for its gradient, got None")
    if name not in ("identity", "linear") and x is None and y is None:
        raise ValueError("x, y: give the forward input x or the forward output y, got neither")
    c = _out_array(out, "out", dtype=a.dtype, shape=(m, n))
    _core.matmul_grad(a, b, c, bool(trans_a), bool(trans_b), alpha, beta, name, act_alpha, x, y, None)
    return c


def matmul_bias_grad(a, b, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, out=None):
    """``(alpha * op(a) @ op(b) + beta * out[0], alpha * op(b).sum(0) + beta * out[1])``
    in one call: a Dense layer's kernel and bias gradients, the bias one (the
    column sums of op(b)) taken while op(b) is packed for the product.

    ``dW, db = ops.matmul_bias_grad(x, dz, trans_a=True)``; ``out`` is an array
    for the product, or a tuple ``(dW, db)`` with an array or None for each
    (``beta != 0`` reads and needs both). ``db`` must not share memory with any
    other operand.

    >>> import numpy as np, fastnn.ops as ops
    >>> x = np.ones((4, 3), np.float32); dz = np.ones((4, 2), np.float32)
    >>> dw, db = ops.matmul_bias_grad(x, dz, trans_a=True)
    >>> dw.shape, db
    ((3, 2), array([4., 4.], dtype=float32))
    """
    if (out.__class__ is tuple and len(out) == 2 and out[0].__class__ is np.ndarray
            and out[1].__class__ is np.ndarray and trans_a.__class__ is bool and trans_b.__class__ is bool
            and alpha.__class__ is float and beta.__class__ is float and _isfinite(alpha) and _isfinite(beta)):
        (fa, fta), (fb, ftb) = _as_row_major(a, trans_a), _as_row_major(b, trans_b)
        try:  # fast path, as matmul's: the core checks everything; a rejection is reworded below
            _core.matmul_grad(fa, fb, out[0], fta, ftb, alpha, beta, None, 0.0, None, None, out[1])
            return out
        except (TypeError, ValueError):
            pass
    out_w, out_b = _outs(out, ("out", "bias_grad"))
    a, b, trans_a, trans_b, alpha, beta, m, n = _grad_product(a, b, trans_a, trans_b, alpha, beta, out_w)
    if beta != 0.0 and out_b is None:
        raise ValueError(f"out: beta = {beta} reads the bias gradient too, so out must be a tuple of two arrays")
    c = _out_array(out_w, "out", dtype=a.dtype, shape=(m, n))
    db = _out_array(out_b, "out[1]", dtype=a.dtype, shape=(n,))
    for other, oname in ((a, "a"), (b, "b"), (c, "out[0]")):
        if np.may_share_memory(db, other):
            raise ValueError(f"out[1]: the bias gradient must not share memory with {oname}")
    _core.matmul_grad(a, b, c, bool(trans_a), bool(trans_b), alpha, beta, None, 0.0, None, None, db)
    return c, db


# ----------------------------------------------------------------------------
# bfloat16  (matmul_bf16, bfloat16_round)
# ----------------------------------------------------------------------------


def matmul_bf16(a, b, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, out=None,
                bias=None, activation=None, activation_alpha=None):
    """:func:`matmul` with bfloat16 operands: ``act(alpha * bf16(op(a)) @ bf16(op(b)) + beta * out + bias)``.

    ``a``, ``b``, ``out`` and ``bias`` are float32 arrays; ``a`` and ``b`` are
    rounded to bfloat16 (nearest even, as :func:`bfloat16_round`) while the
    kernel packs them, products accumulate in float32, and the epilogue
    (alpha, beta, bias, activation) runs in float32. Same arguments, transposes
    and aliasing rules as :func:`matmul`, so the backward products
    ``dX = dY @ W.T`` (``trans_b=True``) and ``dW = X.T @ dY``
    (``trans_a=True``) are one call each.

    Error bound: each element is within ``(2**-7 + 2**-16) * S`` of the exact
    product of the float32 operands, ``S = |alpha| * (|op(a)| @ |op(b)|)``
    (bfloat16 keeps 8 significant bits, so each product is off by at most
    ``2**-7`` of its size), plus the float32 accumulation's ``~k * 2**-24 * S``;
    within ``k * 2**-8 * S`` for every ``k >= 2``.

    Kernels: ``vdpbf16ps`` on CPUs with AVX512-BF16 (``_core.bf16_kernel()``
    says which runs). Elsewhere, or with ``FASTNN_ISA=scalar|avx2|avx512``, a
    fallback rounds copies of the operands to bfloat16 and runs the float32
    GEMM: the same rounding, so the same results up to float32 summation
    order -- correct, not fast. Mixed precision is never refused for lack of
    bf16 instructions, so a model trains the same on every CPU.

    bfloat16 storage (:mod:`fastnn.ops.bf16`): ``a`` and ``b`` may be bfloat16
    bit patterns (uint16, or ml_dtypes.bfloat16), packed by copying the bits:
    the result is bitwise the one of float32 operands holding the same values.
    ``out`` may be such an array too (``beta`` must then be 0): the float32
    result, after bias and activation, is rounded to bfloat16 (nearest even).

    >>> import numpy as np, fastnn.ops as ops
    >>> x = np.full((1, 2), 1 + 2 ** -10, np.float32); w = np.ones((2, 1), np.float32)
    >>> ops.matmul_bf16(x, w)   # 1 + 2**-10 rounds to 1 in bfloat16
    array([[2.]], dtype=float32)
    """
    c = _fast_product(_core.matmul_bf16, _BF16_DTYPES, a, b, trans_a, trans_b, alpha, beta, out, bias, activation,
                      activation_alpha)  # a bits a with out=None: no fast path (the result is float32)
    if c is not None:
        return c
    for x, name in ((a, "a"), (b, "b")):  # named before out, whose dtype check follows a's
        if x.__class__ is np.ndarray and x.dtype != np.float32 and not _bf16.is_bits(x):
            raise TypeError(f"{name}: expected dtype float32 or bfloat16 bits (uint16), got {x.dtype}")
    if _bf16.any_bits(a, b, out):  # bfloat16 bit patterns (ops.bf16)
        return _bf16.matmul_bits(a, b, trans_a, trans_b, alpha, beta, out, bias, activation, activation_alpha,
                                 _product_shape)
    return _matmul_checked(a, b, trans_a, trans_b, alpha, beta, out, bias, activation, activation_alpha,
                           kernel=_core.matmul_bf16)


def bfloat16_round(x, *, out=None):
    """float32 ``x`` rounded to the nearest bfloat16 (ties to even), as float32.

    NaN stays NaN, +-inf stay, values past the largest bfloat16 become +-inf,
    float32 subnormals become signed zeros. ``out`` may be ``x`` (in place).
    """
    if x.__class__ is np.ndarray and x.dtype != np.float32:
        raise TypeError(f"x: expected dtype float32 (bfloat16 operations take float32 arrays), got {x.dtype}")
    x = _float_array(x, "x", dtype=np.float32)
    out = _out_array(out, "out", dtype=x.dtype, shape=x.shape)
    _core.bf16_round(x, out)
    return out
