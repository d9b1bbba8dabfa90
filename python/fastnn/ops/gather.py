"""Row gather: take_rows (the trainer's shuffled batch)."""
from __future__ import annotations

import numpy as np

from .. import _core
from ._common import _c_aligned, _describe, _out_array


# ----------------------------------------------------------------------------
# row gather  (take_rows)
# ----------------------------------------------------------------------------


def take_rows(x, indices, *, out=None):
    """``x[indices]`` along the first axis: ``out[r] = x[indices[r]]``, shape
    ``(len(indices),) + x.shape[1:]``, x's dtype.

    ``x`` is an array of any fixed-size dtype (float, integer, bool, bytes; not
    object) with at least one dimension; its rows are copied as bytes, the
    rows to come prefetched (a shuffled batch drawn from a training set far
    larger than the caches), split between threads past 2 MB per thread. ``indices`` is
    1-D, of integers. Every index must be in ``[0, len(x))``, and all of them
    are checked before anything is written: a negative index is refused (NumPy's
    ``np.take(..., mode="clip")`` would silently clamp it to row 0, and Python's
    ``x[-1]`` would count from the end; neither is what a sample order means).
    ``out`` (optional) must have the result's shape and dtype, be C-contiguous,
    writeable and share no memory with ``x`` or ``indices``. A non-contiguous
    ``x`` is copied first (pass a large training set C-contiguous).

    >>> import numpy as np, fastnn.ops as ops
    >>> ops.take_rows(np.arange(6.0).reshape(3, 2), np.array([2, 0]))
    array([[4., 5.],
           [0., 1.]])
    """
    # Fast path: plain arrays go straight to the core, which checks everything
    # again before writing; whatever it rejects is re-run through the checks below.
    if x.__class__ is np.ndarray and indices.__class__ is np.ndarray and out.__class__ is np.ndarray:
        try:
            _core.take_rows(x, indices, out)
            return out
        except (TypeError, ValueError):
            pass
    x = _rows_source(x)
    indices = _row_indices(indices, len(x))
    out = _out_array(out, "out", dtype=x.dtype, shape=(len(indices),) + x.shape[1:])
    _core.take_rows(x, indices, out)
    return out


def _rows_source(x):
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x: expected a numpy.ndarray, got {_describe(x)}")
    if x.dtype.hasobject:
        raise TypeError(f"x: expected a dtype of fixed-size values, got {x.dtype} (Python objects)")
    if x.ndim < 1:
        raise ValueError("x: expected at least 1 dimension (rows first), got a 0-d array")
    return _c_aligned(x)


def _row_indices(indices, n):
    """indices as a C-contiguous int64 (or int32) vector; values checked by the core."""
    if not isinstance(indices, np.ndarray):
        try:
            arr = np.asarray(indices)
        except (TypeError, ValueError) as e:
            raise TypeError(f"indices: expected a 1-D array of integers, got {_describe(indices)}") from e
        empty_list = arr.size == 0 and arr.dtype == np.float64  # [] is float64 to NumPy
        indices = arr.astype(np.int64) if empty_list else arr
    if indices.dtype == np.bool_ or indices.dtype.kind not in "iu":
        raise TypeError(f"indices: expected integers, got dtype {indices.dtype}")
    if indices.ndim != 1:
        raise ValueError(f"indices: expected 1 dimension, got {indices.ndim} (shape {indices.shape})")
    if indices.dtype in (np.dtype(np.int64), np.dtype(np.int32)):
        return _c_aligned(indices)
    if indices.dtype.kind == "u" and indices.size and int(indices.max()) >= n:
        bad = int(np.argmax(indices >= n))  # an unsigned value past int64 must not wrap to a negative one
        raise ValueError(f"indices: expected values in [0, {n}) (the rows of x), got {int(indices[bad])} "
                         f"at position {bad}")
    return _c_aligned(indices, np.int64)
