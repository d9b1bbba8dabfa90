"""Weight constraints' kernels: norm_constraint (Keras's MaxNorm, UnitNorm, MinMaxNorm) and
non_neg (NonNeg), in place. ``fastnn.constraints`` and the native training step both call
them, so their results are bitwise the same; ``fastnn._reference_constraints`` holds the
NumPy twins (the formulas constraints.py computed with NumPy)."""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import _core
from ._common import _describe

_RULES = ("max_norm", "unit_norm", "min_max_norm")


def _axes(shape, axis):
    """The axes of ``axis`` (an int or a tuple of ints) as sorted non-negative ints; ValueError
    when one is out of range for an array of ``shape`` or repeated."""
    ndim = len(shape)
    given = axis if isinstance(axis, tuple) else (axis,)
    if any(isinstance(a, bool) or not isinstance(a, numbers.Integral) for a in given):
        raise TypeError(f"axis: expected an int or a tuple of ints, got {axis!r}")
    if any(not -ndim <= a < ndim for a in given):
        raise ValueError(f"axis: {axis} is out of range for a variable of shape {tuple(shape)}")
    axes = sorted(int(a) % ndim for a in given)
    if len(set(axes)) != len(axes):
        raise ValueError(f"axis: expected distinct axes, got {axis!r}")
    return axes


def constraint_view(shape, axis):
    """(outer, r, inner): a C-order array of ``shape`` viewed as (outer, r, inner) with the norms
    over ``axis`` as its r, when those axes are adjacent (an int always is); None when not
    (``norm_constraint`` then moves them last in a copy).

    >>> constraint_view((784, 256), 0), constraint_view((3, 4, 5), (1, 2))
    ((1, 784, 256), (3, 20, 1))
    """
    axes = _axes(shape, axis)
    if axes and axes != list(range(axes[0], axes[-1] + 1)):
        return None
    lo, hi = (axes[0], axes[-1] + 1) if axes else (len(shape), len(shape))
    return math.prod(shape[:lo]), math.prod(shape[lo:hi]), math.prod(shape[hi:])


def _float_target(w):
    if not isinstance(w, np.ndarray):
        raise TypeError(f"w: expected a numpy.ndarray, got {_describe(w)}")
    if w.dtype.kind != "f":
        raise TypeError(f"w: expected a floating-point array, got dtype {w.dtype}")
    if not w.flags.writeable:
        raise ValueError("w: expected a writeable array (it is projected in place)")


def _in_place(w, run):
    """run(a) on w itself when the kernel takes it (float32/float64, C-contiguous, aligned),
    else on a float64 (other float dtypes) or contiguous copy written back into w."""
    if w.dtype in (np.float32, np.float64) and w.flags.c_contiguous and w.flags.aligned:
        run(w)
        return
    a = np.ascontiguousarray(w, dtype=w.dtype if w.dtype in (np.float32, np.float64) else np.float64)
    run(a)
    w[...] = a


def norm_constraint(w, rule, axis=0, *, min_value=0.0, max_value=1.0, rate=1.0):
    """Project the float array ``w`` in place by the L2 norms of its slices along ``axis``:
    ``rule`` "max_norm" (``w *= clip(n, 0, max_value) / (1e-7 + n)``), "unit_norm"
    (``w /= 1e-7 + n``) or "min_max_norm" (``w *= (rate * clip(n, min_value, max_value) +
    (1 - rate) * n) / (1e-7 + n)``). Each norm is accumulated in float64 (rows in order) and
    rounded to w's dtype; the scale is computed in w's dtype as the formulas round it (no fused
    multiply-add). Within 2e-6 (float32) / 1e-14 (float64) relative of the NumPy twins
    (``fastnn._reference_constraints``), whose float32 sums round in float32; bitwise the same
    for any thread count. Other float dtypes are computed in float64 and rounded back.

    >>> import numpy as np, fastnn.ops as ops
    >>> w = np.array([[3.0, 0.1], [4.0, 0.0]])
    >>> ops.norm_constraint(w, "max_norm", max_value=2.0); w.round(3)
    array([[1.2, 0.1],
           [1.6, 0. ]])
    """
    _float_target(w)
    if rule not in _RULES:
        raise ValueError(f"rule: expected one of {', '.join(map(repr, _RULES))}, got {rule!r}")
    values = {"min_value": min_value, "max_value": max_value, "rate": rate}
    for k, v in values.items():
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
            raise TypeError(f"{k}: expected a real number, got {_describe(v)}")
    view = constraint_view(w.shape, axis)
    if view is None:  # non-adjacent axes: kept axes first, the reduced ones last, in a copy
        axes = _axes(w.shape, axis)
        kept = [a for a in range(w.ndim) if a not in axes]
        t = np.ascontiguousarray(np.transpose(w, kept + axes))
        r = math.prod(w.shape[a] for a in axes)
        norm_constraint(t.reshape(-1, r), rule, 1, min_value=min_value, max_value=max_value, rate=rate)
        np.transpose(w, kept + axes)[...] = t
        return
    args = (rule, *view, float(min_value), float(max_value), float(rate))
    _in_place(w, lambda a: _core.norm_constraint(a, *args))


def non_neg(w):
    """``np.maximum(w, 0, out=w)``, bitwise (NaN stays NaN, -0.0 becomes 0.0), in place."""
    _float_target(w)
    _in_place(w, _core.non_neg)
