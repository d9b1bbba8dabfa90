"""Clipping and reductions: clip_by_global_norm, clip_by_value, column_sum, all_finite,
sum_squares and abs_sum (the L2 and L1 weight penalties)."""
from __future__ import annotations

import numpy as np

from .. import _core
from ._common import _describe, _float_array, _out_array, _real, _state_array


# ----------------------------------------------------------------------------
# clipping and reductions  (clip_by_global_norm, clip_by_value, column_sum, all_finite,
# sum_squares, abs_sum)
# ----------------------------------------------------------------------------


def clip_by_global_norm(grads, max_norm):
    """Scale every array of ``grads`` in place by max_norm / norm when their global
    L2 norm exceeds ``max_norm``; returns the norm before clipping (a float).

    The norm is accumulated in float64 over fixed blocks, so it is bitwise the
    same for any thread count. A NaN or inf anywhere gives a non-finite norm and
    leaves every array untouched: the caller sees it, nothing is clipped into garbage.
    """
    if isinstance(grads, np.ndarray) or not isinstance(grads, (list, tuple)):
        raise TypeError(f"grads: expected a list or tuple of arrays, got {_describe(grads)}")
    grads = [_state_array(g, f"grads[{i}]", None, None) for i, g in enumerate(grads)]
    max_norm = _real(max_norm, "max_norm", low=0.0, low_open=True)
    return _core.clip_by_global_norm(grads, max_norm)


def clip_by_value(grad, limit):
    """Clamp every element of ``grad`` to [-limit, limit] in place (NaN stays NaN);
    returns the L2 norm before clipping."""
    grad = _state_array(grad, "grad", None, None)
    limit = _real(limit, "limit", low=0.0, low_open=True)
    return _core.clip_by_value(grad, limit)


def column_sum(x, *, out=None):
    """Sum over the rows of a (m, n) matrix: the bias gradient, shape (n,)."""
    x = _float_array(x, "x", ndim=2)
    out = _out_array(out, "out", dtype=x.dtype, shape=(x.shape[1],))
    _core.column_sum(x, out)
    return out


def all_finite(x):
    """Whether no element of the float32/float64 array ``x`` is NaN or infinite:
    ``np.isfinite(x).all()`` without its boolean temporary (one read of x, in parallel,
    the GIL released). The trainer checks every x it is given with it.

    >>> import numpy as np, fastnn.ops as ops
    >>> ops.all_finite(np.array([1.0, -2.0])), ops.all_finite(np.array([1.0, np.nan]))
    (True, False)
    """
    x = _float_array(x, "x")
    return bool(_core.all_finite(x))


def sum_squares(x):
    """``sum(x**2)`` of a float32/float64 array as a Python float: each value widened to
    float64 (a float32 square is then exact), accumulated in float64 over fixed blocks of
    16384 values added in order, so it is bitwise the same for any thread count (not NumPy's
    pairwise order: within 1e-12 relative of ``reference.sum_squares``). The L2 penalty of
    ``regularizers`` (and the native training step) computes with it.

    >>> import numpy as np, fastnn.ops as ops
    >>> ops.sum_squares(np.array([1.0, -2.0], np.float32))
    5.0
    """
    return float(_core.sum_squares(_float_array(x, "x")))


def abs_sum(x):
    """``sum(|x|)`` of a float32/float64 array as a Python float, accumulated like
    :func:`sum_squares` (float64, fixed blocks; within 1e-12 relative of
    ``reference.abs_sum``): the L1 penalty of ``regularizers``.

    >>> import numpy as np, fastnn.ops as ops
    >>> ops.abs_sum(np.array([1.5, -2.0]))
    3.5
    """
    return float(_core.abs_sum(_float_array(x, "x")))
