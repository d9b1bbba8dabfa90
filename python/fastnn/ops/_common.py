"""Argument checks shared by every ops family, and the activation registry."""
from __future__ import annotations

import numbers

import numpy as np

from .. import _core


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
    return _c_aligned(x)


def _c_aligned(x, dtype=None):
    """x itself when C-contiguous, aligned and of `dtype`, else an aligned C-contiguous copy.
    (Not np.ascontiguousarray: it keeps a misaligned array as it is -- misaligned element
    loads are undefined behaviour in the kernels -- and turns a 0-d array into shape (1,).)"""
    if x.flags.c_contiguous and x.flags.aligned and (dtype is None or x.dtype == dtype):
        return x
    return np.array(x, dtype=dtype, order="C", copy=True)


def _out_array(out, name, *, dtype, shape):
    """Validate or allocate an output array of the given dtype and shape."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    return _written_array(out, name, dtype, shape)


def _written_array(a, name, dtype, shape, as_="", why=""):
    """An array an op writes (never copied): of `dtype` and `shape` (None: any float dtype,
    any shape), C-contiguous, writeable and aligned; `as_` and `why` word the errors."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {_describe(a)}")
    if dtype is None and a.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{name}: expected dtype float32 or float64, got {a.dtype}")
    if dtype is not None and a.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {np.dtype(dtype)}{as_}, got {a.dtype}")
    if shape is not None and tuple(a.shape) != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}{as_}, got {a.shape}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array{why}, got strides {a.strides}")
    if not a.flags.writeable:
        raise ValueError(f"{name}: expected a writeable array{why}, got a read-only one")
    if not a.flags.aligned:
        raise ValueError(f"{name}: expected an aligned array{why}, got one at a misaligned address")
    return a


def _outs(out, names):
    """``out`` of an op with several outputs, as NumPy's ufuncs take it: None, an array
    for the first output, or a tuple with one array (or None: allocate) per output.
    Anything else but a tuple stands for the first output, refused (as not an array)
    where that output is checked: after the inputs, so a bad input is named first."""
    k = len(names)
    if out is None:
        return (None,) * k
    if not isinstance(out, tuple):
        return (out,) + (None,) * (k - 1)
    if len(out) == k:
        return out
    raise TypeError(f"out: expected None, an array for {names[0]}, or a tuple of {k} arrays or None "
                    f"({', '.join(names)}), got {_describe(out)}")


def _coerced(x, name, *, ndim=None):
    """An input after _core rejected a call: an ndarray (else a TypeError naming it), copied
    when it is a float array that is not C-contiguous and aligned (all _core cannot take as
    it is); with `ndim`, that many dimensions (needed before _core sees it: outputs are
    allocated from its shape). Everything else is _core's to check."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray of float32 or float64, got {_describe(x)}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got {x.ndim} (shape {x.shape})")
    return _c_aligned(x) if x.dtype in _FLOAT_DTYPES else x


def _arrays(*named):
    """In-place or output arrays are never copied: only a non-array is named here."""
    for a, name in named:
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name}: expected a numpy.ndarray, got {_describe(a)}")


def _new_or(out, shape, dtype):
    """The given output (checked by _core, after the inputs: a bad input is named first
    even when out is wrong too) or a new array."""
    if out is None:
        return np.empty(shape, dtype if dtype in _FLOAT_DTYPES else np.float64)
    return out


def _norm_grad_outs(dx, dgamma, dbeta, like):
    """The outputs of a normalization backward on the fast path: the given ones, or new arrays
    (dx of ``like``'s shape, dgamma and dbeta one value per feature, like's dtype)."""
    n = like.shape[1]
    return (np.empty(like.shape, like.dtype) if dx is None else dx,
            np.empty(n, like.dtype) if dgamma is None else dgamma,
            np.empty(n, like.dtype) if dbeta is None else dbeta)


def _state_array(a, name, like, like_name):
    """An in-place state or parameter array: same dtype and shape as `like` (None: any
    float array), C-contiguous and writeable (never copied: the update must land in it)."""
    if like is None:
        return _written_array(a, name, None, None, why=" (it is updated in place)")
    return _written_array(a, name, like.dtype, like.shape, f" (as {like_name})", " (it is updated in place)")


def _real(v, name, *, low=None, high=None, low_open=False, high_open=False, finite=True):
    """Validate a real scalar; returns it as float."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(v).__name__}")
    try:
        v = float(v)
    except OverflowError:  # an int beyond the float range, e.g. 10**400
        raise ValueError(f"{name}: expected a finite number, got an integer of {int(v).bit_length()} bits") from None
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

# The activation registry (names, aliases, default alpha, what the gradient needs),
# one table in the core: name -> {"canonical", "alpha" (default; None: takes none), "grad_needs"}.
REGISTRY = _core.activations()
ACTIVATIONS = tuple(REGISTRY)
_DEFAULT_ALPHA = {name: row["alpha"] or 0.0 for name, row in REGISTRY.items()}
_DEFAULT_ALPHA[None] = 0.0


def _activation_name(name, argname="name"):
    if name.__class__ is str and name in REGISTRY:
        return name
    if not isinstance(name, str):
        raise TypeError(f"{argname}: expected an activation name (str), got {type(name).__name__}")
    raise ValueError(f"{argname}: unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}")


def _activation_alpha(name, alpha, argname="alpha"):
    if alpha is None:
        return _DEFAULT_ALPHA[name]
    return _real(alpha, argname)
