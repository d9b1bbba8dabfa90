"""Checked Python wrappers over the compiled core: the ops contract.

Every function takes NumPy arrays of one float dtype (float32 or float64),
returns new arrays unless ``out=`` is given, and raises ``TypeError`` (wrong
type or dtype) or ``ValueError`` (wrong shape, value or layout) naming the
argument, what was expected and what came. Non-contiguous inputs are copied; a
non-contiguous, read-only or wrongly typed ``out=`` is an error. Each kernel
releases the GIL. ``fastnn.reference`` holds a NumPy twin of every function.
"""
from __future__ import annotations

import numbers

import numpy as np

from . import _core

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# ----------------------------------------------------------------------------
# argument checks shared by all kernel families
# ----------------------------------------------------------------------------


def _describe(x):
    if isinstance(x, np.ndarray):
        return f"array of dtype {x.dtype} and shape {x.shape}"
    return type(x).__name__


def _float_array(x, name, *, dtype=None, ndim=None, shape=None):
    """Validate an input array; returns it C-contiguous (copied only if needed)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray of float32 or float64, got {_describe(x)}")
    if x.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{name}: expected dtype float32 or float64, got {x.dtype}")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {dtype} (the dtype of the other operands), got {x.dtype}")
    if ndim is not None:
        ndims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in ndims:
            want = " or ".join(str(n) for n in ndims)
            raise ValueError(f"{name}: expected {want} dimensions, got {x.ndim} (shape {x.shape})")
    if shape is not None and tuple(x.shape) != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {x.shape}")
    return np.ascontiguousarray(x)


def _out_array(out, name, *, dtype, shape):
    """Validate or allocate an output array of the given dtype and shape."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {_describe(out)}")
    if out.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {np.dtype(dtype)}, got {out.dtype}")
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {out.shape}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array, got strides {out.strides}")
    if not out.flags.writeable:
        raise ValueError(f"{name}: expected a writeable array, got a read-only one")
    return out


def _state_array(a, name, like, like_name):
    """An in-place state or parameter array: same dtype and shape as `like`,
    C-contiguous and writeable (never copied: the update must land in it)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {_describe(a)}")
    if a.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{name}: expected dtype float32 or float64, got {a.dtype}")
    if like is not None and a.dtype != like.dtype:
        raise TypeError(f"{name}: expected dtype {like.dtype} (as {like_name}), got {a.dtype}")
    if like is not None and a.shape != like.shape:
        raise ValueError(f"{name}: expected shape {like.shape} (as {like_name}), got {a.shape}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array (it is updated in place)")
    if not a.flags.writeable:
        raise ValueError(f"{name}: expected a writeable array (it is updated in place)")
    return a


def _real(v, name, *, low=None, high=None, low_open=False, high_open=False, finite=True):
    """Validate a real scalar; returns it as float."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(v).__name__}")
    v = float(v)
    if finite and not np.isfinite(v):
        raise ValueError(f"{name}: expected a finite number, got {v}")
    if low is not None and (v < low or (low_open and v == low)):
        bound = f"> {low}" if low_open else f">= {low}"
        raise ValueError(f"{name}: expected a value {bound}, got {v}")
    if high is not None and (v > high or (high_open and v == high)):
        bound = f"< {high}" if high_open else f"<= {high}"
        raise ValueError(f"{name}: expected a value {bound}, got {v}")
    return v


# ----------------------------------------------------------------------------
# activations
# ----------------------------------------------------------------------------

ACTIVATIONS = ("identity", "linear", "relu", "leaky_relu", "elu", "selu",
               "sigmoid", "tanh", "swish", "silu", "softplus")
_ALPHA_ACTIVATIONS = ("leaky_relu", "elu")


def _activation_name(name, argname="name"):
    if not isinstance(name, str):
        raise TypeError(f"{argname}: expected an activation name (str), got {type(name).__name__}")
    if name not in ACTIVATIONS:
        raise ValueError(f"{argname}: unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}")
    return name


def _activation_alpha(name, alpha, argname="alpha"):
    if alpha is None:
        return _core.default_activation_alpha(name)
    return _real(alpha, argname)


def activation(name, x, *, alpha=None, out=None):
    """y = act(x) elementwise, any shape.

    name: identity (linear), relu, leaky_relu (alpha, default 0.01), elu (alpha,
    default 1.0), selu, sigmoid, tanh, swish (silu), softplus.

    >>> import numpy as np, fastnn.ops as ops
    >>> ops.activation("relu", np.array([-1.0, 2.0]))
    array([0., 2.])
    """
    name = _activation_name(name)
    a = _activation_alpha(name, alpha)
    x = _float_array(x, "x")
    y = _out_array(out, "out", dtype=x.dtype, shape=x.shape)
    _core.activation_forward(name, x, y, a)
    return y


def activation_grad(name, dy, *, x=None, y=None, alpha=None, out=None):
    """dL/dx = dy * act'(x), given the forward input ``x`` and/or output ``y``.

    sigmoid and tanh are cheapest from y; swish and softplus need x; the relu
    family, elu and selu take either.
    """
    name = _activation_name(name)
    a = _activation_alpha(name, alpha)
    dy = _float_array(dy, "dy")
    if x is not None:
        x = _float_array(x, "x", dtype=dy.dtype, shape=dy.shape)
    if y is not None:
        y = _float_array(y, "y", dtype=dy.dtype, shape=dy.shape)
    if name in ("swish", "silu", "softplus") and x is None:
        raise ValueError(f"x: activation {name!r} needs the forward input x for its gradient, got None")
    if name not in ("identity", "linear") and x is None and y is None:
        raise ValueError("x, y: give the forward input x or the forward output y, got neither")
    dx = _out_array(out, "out", dtype=dy.dtype, shape=dy.shape)
    _core.activation_backward(name, dy, x, y, dx, a)
    return dx


def softmax(x, *, out=None):
    """Row-wise (last axis) softmax, numerically stable."""
    x = _float_array(x, "x", ndim=(1, 2))
    y = _out_array(out, "out", dtype=x.dtype, shape=x.shape)
    _core.softmax(x, y, False)
    return y


def log_softmax(x, *, out=None):
    """Row-wise (last axis) log-softmax, numerically stable."""
    x = _float_array(x, "x", ndim=(1, 2))
    y = _out_array(out, "out", dtype=x.dtype, shape=x.shape)
    _core.softmax(x, y, True)
    return y


# ----------------------------------------------------------------------------
# GEMM  (matmul)
# ----------------------------------------------------------------------------


from math import isfinite as _isfinite  # noqa: E402


def _plain_matrix(x):
    """True for a C-contiguous 2-D float32/float64 ndarray (no checks needed)."""
    return x.__class__ is np.ndarray and x.ndim == 2 and x.dtype in _FLOAT_DTYPES and x.flags.c_contiguous


def matmul(a, b, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, out=None,
           bias=None, activation=None, activation_alpha=None):
    """``act(alpha * op(a) @ op(b) + beta * out + bias)`` in one fused call.

    op(a) is ``a.T`` when ``trans_a`` (likewise b): op(a) is (m, k), op(b) is
    (k, n), the result (m, n). Transposes are handled inside the kernel, never
    by copying. ``bias`` has shape (n,) and is added to every row;
    ``activation`` is any name of :func:`activation`, applied while the tile is
    hot. ``beta != 0`` needs ``out`` (its old value is read); with ``beta == 0``
    ``out`` is only written. k == 0 gives ``act(beta * out + bias)``.

    >>> import numpy as np, fastnn.ops as ops
    >>> x = np.ones((2, 3), np.float32); w = np.ones((3, 4), np.float32)
    >>> ops.matmul(x, w, bias=np.full(4, -4, np.float32), activation="relu")
    array([[0., 0., 0., 0.],
           [0., 0., 0., 0.]], dtype=float32)
    """
    # Fast paths keep the per-call cost near a microsecond: the MLP products
    # that matter most are only a few microseconds of arithmetic.
    if trans_a.__class__ is not bool or trans_b.__class__ is not bool:
        for flag, fname in ((trans_a, "trans_a"), (trans_b, "trans_b")):
            if not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"{fname}: expected a bool, got {type(flag).__name__}")
        trans_a, trans_b = bool(trans_a), bool(trans_b)
    if not _plain_matrix(a):
        a = _float_array(a, "a", ndim=2)
    if not (_plain_matrix(b) and b.dtype is a.dtype):
        b = _float_array(b, "b", dtype=a.dtype, ndim=2)
    if alpha.__class__ is not float or not _isfinite(alpha):
        alpha = _real(alpha, "alpha")
    if beta.__class__ is not float or not _isfinite(beta):
        beta = _real(beta, "beta")
    m, k = (a.shape[1], a.shape[0]) if trans_a else a.shape
    kb, n = (b.shape[1], b.shape[0]) if trans_b else b.shape
    if k != kb:
        raise ValueError(
            f"a, b: inner dimensions differ: op(a) has shape {(m, k)} (a {a.shape}, trans_a={trans_a}), "
            f"op(b) has shape {(kb, n)} (b {b.shape}, trans_b={trans_b})")
    if beta != 0.0 and out is None:
        raise ValueError(f"out: beta = {beta} reads out, so out must be given, got None")
    if bias is not None and not (bias.__class__ is np.ndarray and bias.dtype is a.dtype and bias.shape == (n,)
                                 and bias.flags.c_contiguous):
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
              and out.flags.c_contiguous and out.flags.writeable):
        c = _out_array(out, "out", dtype=a.dtype, shape=(m, n))
    else:
        c = out
    # out may overlap a, b or bias: the core then computes into a temporary
    _core.matmul(a, b, c, bool(trans_a), bool(trans_b), alpha, beta, bias, act, act_alpha)
    return c



# ----------------------------------------------------------------------------
# BatchNorm  (batchnorm_forward, batchnorm_backward)
# ----------------------------------------------------------------------------


# ----------------------------------------------------------------------------
# losses  (softmax_cross_entropy, binary_cross_entropy_with_logits, mean_squared_error)
# ----------------------------------------------------------------------------


# ----------------------------------------------------------------------------
# optimizer updates  (sgd_update, rmsprop_update, adagrad_update, adam_update)
# ----------------------------------------------------------------------------


# ----------------------------------------------------------------------------
# dropout
# ----------------------------------------------------------------------------


# ----------------------------------------------------------------------------
# clipping and reductions  (clip_by_global_norm, clip_by_value, column_sum)
# ----------------------------------------------------------------------------
