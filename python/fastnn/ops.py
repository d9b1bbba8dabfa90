"""Checked Python wrappers over the compiled core: the ops contract.

Every function takes NumPy arrays of one float dtype (float32 or float64),
returns new arrays unless ``out=`` is given, and raises ``TypeError`` (wrong
type or dtype) or ``ValueError`` (wrong shape, value or layout) naming the
argument, what was expected and what came. Non-contiguous inputs are copied; a
non-contiguous, read-only or wrongly typed ``out=`` is an error. Each kernel
releases the GIL. ``fastnn.reference`` holds a NumPy twin of every function.

bfloat16 (mixed precision): :func:`matmul_bf16` and :func:`bfloat16_round`
take and return float32 arrays (NumPy has no bfloat16); the operands are
rounded to bfloat16 inside the kernel, once, and products accumulate in
float32. Any other dtype is a ``TypeError``.
"""
from __future__ import annotations

import numbers
from math import isfinite as _isfinite

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
    if not out.flags.aligned:
        raise ValueError(f"{name}: expected an aligned array, got one at a misaligned address")
    return out


def _outs(out, names):
    """``out`` of an op with several outputs, as NumPy's ufuncs take it: None, an array
    for the first output, or a tuple with one array (or None: allocate) per output."""
    k = len(names)
    if out is None:
        return (None,) * k
    if isinstance(out, np.ndarray):
        return (out,) + (None,) * (k - 1)
    if isinstance(out, tuple) and len(out) == k:
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


def _new_or(out, name, shape, dtype):
    """The given output (checked by _core) or a new array."""
    if out is None:
        return np.empty(shape, dtype if dtype in _FLOAT_DTYPES else np.float64)
    _arrays((out, name))
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
    if not a.flags.aligned:
        raise ValueError(f"{name}: expected an aligned array (it is updated in place), got a misaligned one")
    return a


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


def activation(name, x, *, alpha=None, out=None):
    """y = act(x) elementwise, any shape.

    name: any of ``ACTIVATIONS`` (the registry ``_core.activations()``): linear
    (identity), relu, leaky_relu (alpha, default 0.2: Keras's
    ``keras.activations.leaky_relu`` negative_slope), elu (alpha, default 1.0),
    selu, sigmoid, tanh, swish (silu), softplus.

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

    What each one needs is the registry's ``grad_needs``: swish and softplus need x
    ("x"); the others take either ("x_or_y"; sigmoid and tanh are cheapest from y).
    """
    name = _activation_name(name)
    a = _activation_alpha(name, alpha)
    dy = _float_array(dy, "dy")
    if x is not None:
        x = _float_array(x, "x", dtype=dy.dtype, shape=dy.shape)
    if y is not None:
        y = _float_array(y, "y", dtype=dy.dtype, shape=dy.shape)
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


def _plain_matrix(x):
    """True for a C-contiguous 2-D float32/float64 ndarray (no checks needed)."""
    return (x.__class__ is np.ndarray and x.ndim == 2 and x.dtype in _FLOAT_DTYPES and x.flags.c_contiguous
            and x.flags.aligned)


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
    # Fast path, about a microsecond of Python: plain arguments go straight to
    # the core, which checks them again (dtypes, layout, shapes) before any
    # work; whatever it rejects is re-run through the full checks below, which
    # copy non-contiguous inputs or raise the friendly error.
    if (a.__class__ is np.ndarray and b.__class__ is np.ndarray and a.ndim == 2 and b.ndim == 2
            and trans_a.__class__ is bool and trans_b.__class__ is bool
            and alpha.__class__ is float and beta.__class__ is float and _isfinite(alpha) and _isfinite(beta)
            and (activation is None or activation.__class__ is str) and activation_alpha is None
            and (bias is None or bias.__class__ is np.ndarray)):
        c = out
        if out is None and beta == 0.0 and a.dtype in _FLOAT_DTYPES:
            c = np.empty((a.shape[1] if trans_a else a.shape[0], b.shape[0] if trans_b else b.shape[1]),
                         dtype=a.dtype)
        if c.__class__ is np.ndarray:
            try:
                _core.matmul(a, b, c, trans_a, trans_b, alpha, beta, bias, activation,
                             0.0 if activation is None else _DEFAULT_ALPHA.get(activation, 0.0))
                return c
            except (TypeError, ValueError):
                pass
    return _matmul_checked(a, b, trans_a, trans_b, alpha, beta, out, bias, activation, activation_alpha)


def _matmul_checked(a, b, trans_a, trans_b, alpha, beta, out, bias, activation, activation_alpha,
                    kernel=_core.matmul):
    """matmul with every argument checked (and inputs copied when not C-contiguous);
    ``kernel`` is _core.matmul or _core.matmul_bf16 (same arguments)."""
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
    """The checked operands of a backward product: (a, b, alpha, beta, m, n, out or None)."""
    for flag, fname in ((trans_a, "trans_a"), (trans_b, "trans_b")):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{fname}: expected a bool, got {type(flag).__name__}")
    a = _float_array(a, "a", ndim=2)
    b = _float_array(b, "b", dtype=a.dtype, ndim=2)
    alpha, beta = _real(alpha, "alpha"), _real(beta, "beta")
    m, k = (a.shape[1], a.shape[0]) if trans_a else a.shape
    kb, n = (b.shape[1], b.shape[0]) if trans_b else b.shape
    if k != kb:
        raise ValueError(
            f"a, b: inner dimensions differ: op(a) has shape {(m, k)} (a {a.shape}, trans_a={bool(trans_a)}), "
            f"op(b) has shape {(kb, n)} (b {b.shape}, trans_b={bool(trans_b)})")
    if beta != 0.0 and out is None:
        raise ValueError(f"out: beta = {beta} reads out, so out must be given, got None")
    return a, b, alpha, beta, m, n


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
        try:  # fast path, as matmul's: the core checks everything; a rejection is reworded below
            _core.matmul_grad(a, b, out, trans_a, trans_b, alpha, beta, activation,
                              _core.default_activation_alpha(activation), x, y, None)
            return out
        except (TypeError, ValueError):
            pass
    a, b, alpha, beta, m, n = _grad_product(a, b, trans_a, trans_b, alpha, beta, out)
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
        try:  # fast path, as matmul's: the core checks everything; a rejection is reworded below
            _core.matmul_grad(a, b, out[0], trans_a, trans_b, alpha, beta, None, 0.0, None, None, out[1])
            return out
        except (TypeError, ValueError):
            pass
    out_w, out_b = _outs(out, ("out", "bias_grad"))
    a, b, alpha, beta, m, n = _grad_product(a, b, trans_a, trans_b, alpha, beta, out_w)
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
# BatchNorm  (batchnorm_forward, batchnorm_backward)
# ----------------------------------------------------------------------------


def batchnorm_forward(x, gamma, beta, running_mean, running_var, *, momentum=0.99, eps=1e-3,
                      training=True, out=None):
    """BatchNorm over the batch axis of a (m, n) x: ``(y, batch_mean, batch_invstd)``.

    Training (``training=True``): normalise with the batch mean and biased
    variance, ``y = (x - mean) / sqrt(var + eps) * gamma + beta``, and update
    ``running_mean`` and ``running_var`` in place (Keras convention:
    ``run = momentum * run + (1 - momentum) * batch``, the running variance
    from the unbiased batch variance ``var * m / (m - 1)``). Needs m >= 2.
    Inference: ``y = x * scale + shift`` with ``scale = gamma / sqrt(running_var + eps)``,
    ``shift = beta - running_mean * scale``; returns the running mean and its invstd.
    ``out``: optional (m, n) array for y (may be x itself: in place), or a tuple
    ``(y, batch_mean, batch_invstd)`` of arrays or None, as NumPy's ufuncs take it
    (a layer passes its own buffers: nothing is allocated).

    >>> import numpy as np, fastnn.ops as ops
    >>> x = np.array([[1.0, 2.0], [3.0, 6.0]])
    >>> y, mean, invstd = ops.batchnorm_forward(x, np.ones(2), np.zeros(2), np.zeros(2), np.ones(2), eps=1e-12)
    >>> y.round(6).tolist(), mean.tolist()
    ([[-1.0, -1.0], [1.0, 1.0]], [2.0, 4.0])
    """
    y, batch_mean, batch_invstd = _outs(out, ("y", "batch_mean", "batch_invstd"))
    if type(x) is np.ndarray and x.ndim == 2 and type(momentum) is float and type(eps) is float \
            and type(training) is bool:
        # Once per layer per step: _core checks every argument, before it touches anything.
        n = x.shape[1]
        outs = (np.empty(x.shape, x.dtype) if y is None else y,
                np.empty(n, x.dtype) if batch_mean is None else batch_mean,
                np.empty(n, x.dtype) if batch_invstd is None else batch_invstd)
        try:
            _core.batchnorm_forward(x, gamma, beta, running_mean, running_var, *outs, momentum, eps, training)
            return outs
        except (TypeError, ValueError):
            pass
    # Rejected: copy what only needs a copy, name what _core cannot name, and call it
    # again; every other fact (dtypes, shapes, values, overlap) is _core's to check.
    x = _coerced(x, "x", ndim=2)
    gamma, beta = _coerced(gamma, "gamma"), _coerced(beta, "beta")
    _arrays((running_mean, "running_mean"), (running_var, "running_var"))
    eps, momentum = _real(eps, "eps"), _real(momentum, "momentum")
    if training is not True and training is not False:
        raise TypeError(f"training: expected a bool, got {type(training).__name__}")
    m, n = x.shape
    y = _new_or(y, "out", x.shape, x.dtype)
    batch_mean = _new_or(batch_mean, "out[1] (batch_mean)", n, x.dtype)
    batch_invstd = _new_or(batch_invstd, "out[2] (batch_invstd)", n, x.dtype)
    _core.batchnorm_forward(x, gamma, beta, running_mean, running_var, y, batch_mean, batch_invstd,
                            momentum, eps, bool(training))
    return y, batch_mean, batch_invstd


def batchnorm_backward(dy, x, gamma, batch_mean, batch_invstd, *, out=None):
    """Gradients ``(dx, dgamma, dbeta)`` of training-mode BatchNorm.

    ``batch_mean`` and ``batch_invstd`` are the forward's; with
    ``xhat = (x - mean) * invstd``: ``dbeta = sum dy``, ``dgamma = sum dy * xhat``,
    ``dx = gamma * invstd / m * (m * dy - dbeta - xhat * dgamma)`` (sums over the batch).
    ``out``: optional (m, n) array for dx (may be dy itself: in place), or a tuple
    ``(dx, dgamma, dbeta)`` of arrays or None.
    """
    dx, dgamma, dbeta = _outs(out, ("dx", "dgamma", "dbeta"))
    if type(x) is np.ndarray and x.ndim == 2:  # as in batchnorm_forward
        n = x.shape[1]
        outs = (np.empty(x.shape, x.dtype) if dx is None else dx,
                np.empty(n, x.dtype) if dgamma is None else dgamma,
                np.empty(n, x.dtype) if dbeta is None else dbeta)
        try:
            _core.batchnorm_backward(dy, x, gamma, batch_mean, batch_invstd, *outs)
            return outs
        except (TypeError, ValueError):
            pass
    x = _coerced(x, "x", ndim=2)
    dy, gamma = _coerced(dy, "dy"), _coerced(gamma, "gamma")
    batch_mean, batch_invstd = _coerced(batch_mean, "batch_mean"), _coerced(batch_invstd, "batch_invstd")
    n = x.shape[1]
    dx = _new_or(dx, "out", x.shape, x.dtype)
    dgamma = _new_or(dgamma, "out[1] (dgamma)", n, x.dtype)
    dbeta = _new_or(dbeta, "out[2] (dbeta)", n, x.dtype)
    _core.batchnorm_backward(dy, x, gamma, batch_mean, batch_invstd, dx, dgamma, dbeta)
    return dx, dgamma, dbeta


# ----------------------------------------------------------------------------
# losses  (softmax_cross_entropy, binary_cross_entropy_with_logits, mean_squared_error)
# ----------------------------------------------------------------------------


def _logits_matrix(logits):
    z = _float_array(logits, "logits", ndim=2)
    if z.shape[0] == 0 or z.shape[1] == 0:
        raise ValueError(f"logits: expected a non-empty (m, C) matrix, got shape {z.shape}")
    return z


def _grad_out(out, like):
    """Gradient output: validated out= or a new array (the core refuses one that overlaps an input)."""
    return _out_array(out, "out", dtype=like.dtype, shape=like.shape)


def softmax_cross_entropy(logits, labels, *, out=None):
    """Fused mean softmax cross-entropy and its gradient: ``(loss, dlogits)``.

    logits: (m, C). labels: integer class ids of shape (m,) (any integer
    dtype), or float rows of shape (m, C) (one-hot or probabilities).
    ``loss = -mean_i sum_j t_ij log softmax(z)_ij``,
    ``dlogits = (softmax(z) * sum_j t_ij - t) / m``. Numerically stable.
    ``out``: optional (m, C) array for dlogits (not overlapping logits).

    >>> import numpy as np, fastnn.ops as ops
    >>> loss, d = ops.softmax_cross_entropy(np.zeros((2, 4)), np.array([0, 3]))
    >>> round(loss, 6)   # log(4)
    1.386294
    """
    z = _logits_matrix(logits)
    m, C = z.shape
    if not isinstance(labels, np.ndarray):
        raise TypeError(f"labels: expected a numpy.ndarray of class ids or target rows, got {_describe(labels)}")
    dlogits = _grad_out(out, z)
    kind = labels.dtype.kind
    if kind in "iu":
        if labels.shape != (m,):
            raise ValueError(f"labels: expected class ids of shape {(m,)}, got {labels.shape} "
                             "(pass one-hot rows as a float array)")
        if labels.dtype == np.uint64 and m and labels.max() >= C:  # would wrap in int64
            i = int(np.argmax(labels >= C))
            raise ValueError(f"labels: class id {labels[i]} at index {i} is out of range [0, {C})")
        ids = _c_aligned(labels, np.int64)
        loss = _core.softmax_cross_entropy_ids(z, ids, dlogits)  # checks the range, names a bad id
    elif kind in "fb":
        if labels.shape != (m, C):
            raise ValueError(f"labels: expected target rows of shape {(m, C)}, got {labels.shape}")
        t = _c_aligned(labels, z.dtype)
        loss = _core.softmax_cross_entropy_probs(z, t, dlogits)
    else:
        raise TypeError(f"labels: expected an integer or float dtype, got {labels.dtype}")
    return loss, dlogits


def _elementwise_pair(a, b, aname, bname):
    a = _float_array(a, aname)
    if not isinstance(b, np.ndarray):
        raise TypeError(f"{bname}: expected a numpy.ndarray, got {_describe(b)}")
    if b.shape != a.shape:
        raise ValueError(f"{bname}: expected shape {a.shape} (as {aname}), got {b.shape}")
    if b.dtype.kind not in "fiub":
        raise TypeError(f"{bname}: expected a numeric dtype, got {b.dtype}")
    if a.size == 0:
        raise ValueError(f"{aname}: expected at least one element, got shape {a.shape}")
    return a, _c_aligned(b, a.dtype)


def binary_cross_entropy_with_logits(logits, targets, *, out=None):
    """Mean sigmoid cross-entropy over all elements and its gradient: ``(loss, dlogits)``.

    ``loss = mean(max(z, 0) - z t + log1p(exp(-|z|)))``, ``dlogits = (sigmoid(z) - t) / z.size``.
    """
    z, t = _elementwise_pair(logits, targets, "logits", "targets")
    grad = _grad_out(out, z)
    loss = _core.binary_cross_entropy_with_logits(z, t, grad)
    return loss, grad


def mean_squared_error(pred, target, *, out=None):
    """Mean over all elements of ``(pred - target)^2`` and its gradient ``2 (pred - target) / size``."""
    p, t = _elementwise_pair(pred, target, "pred", "target")
    grad = _grad_out(out, p)
    loss = _core.mean_squared_error(p, t, grad)
    return loss, grad



# ----------------------------------------------------------------------------
# optimizer updates  (sgd_update, rmsprop_update, adagrad_update, adam_update)
# ----------------------------------------------------------------------------

# Every update works in place on ``param`` and its state arrays (same dtype and
# shape, C-contiguous, writeable: typically views of the model's flat arena) in
# one fused pass, and returns None. All arguments are checked before anything
# is written, so a bad call never leaves a partial update.


def _param_and_grad(param, grad):
    param = _state_array(param, "param", None, None)
    grad = _float_array(grad, "grad", dtype=param.dtype, shape=param.shape)
    return param, grad


def _weight_decay(weight_decay):
    return _real(weight_decay, "weight_decay", low=0.0)


def sgd_update(param, grad, velocity=None, *, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    """SGD in place, Keras form. g = grad + weight_decay * param;
    plain (momentum 0): p -= lr g;  momentum: v = momentum v - lr g, p += v;
    Nesterov: v as above, p += momentum v - lr g. ``velocity`` is needed when momentum > 0.

    >>> import numpy as np, fastnn.ops as ops
    >>> p = np.ones(3); ops.sgd_update(p, np.full(3, 0.5), lr=0.1); p
    array([0.95, 0.95, 0.95])
    """
    param, grad = _param_and_grad(param, grad)
    lr = _real(lr, "lr", low=0.0)
    momentum = _real(momentum, "momentum", low=0.0, high=1.0, high_open=True)
    if not isinstance(nesterov, (bool, np.bool_)):
        raise TypeError(f"nesterov: expected a bool, got {type(nesterov).__name__}")
    weight_decay = _weight_decay(weight_decay)
    if momentum != 0.0:
        if velocity is None:
            raise ValueError(f"velocity: expected an array of shape {param.shape} when momentum > 0, got None")
        velocity = _state_array(velocity, "velocity", param, "param")
    elif velocity is not None:
        velocity = _state_array(velocity, "velocity", param, "param")
    _core.sgd_update(param, grad, velocity if momentum != 0.0 else None, lr, momentum, bool(nesterov), weight_decay)


def rmsprop_update(param, grad, sq_avg, *, lr, rho=0.9, eps=1e-7, weight_decay=0.0):
    """RMSProp in place: s = rho s + (1 - rho) g^2;  p -= lr g / (sqrt(s) + eps)."""
    param, grad = _param_and_grad(param, grad)
    sq_avg = _state_array(sq_avg, "sq_avg", param, "param")
    lr = _real(lr, "lr", low=0.0)
    rho = _real(rho, "rho", low=0.0, high=1.0, high_open=True)
    eps = _real(eps, "eps", low=0.0, low_open=True)
    _core.rmsprop_update(param, grad, sq_avg, lr, rho, eps, _weight_decay(weight_decay))


def adagrad_update(param, grad, accum, *, lr, eps=1e-7, weight_decay=0.0):
    """Adagrad in place: a += g^2;  p -= lr g / (sqrt(a) + eps)."""
    param, grad = _param_and_grad(param, grad)
    accum = _state_array(accum, "accum", param, "param")
    lr = _real(lr, "lr", low=0.0)
    eps = _real(eps, "eps", low=0.0, low_open=True)
    _core.adagrad_update(param, grad, accum, lr, eps, _weight_decay(weight_decay))


def adam_update(param, grad, m, v, *, lr, beta1=0.9, beta2=0.999, eps=1e-7, step,
                weight_decay=0.0, decoupled=False):
    """Adam in place with bias correction (Kingma & Ba), step t >= 1:
    m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
    p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
    weight_decay is added to g (L2), or with ``decoupled=True`` (AdamW) p *= 1 - lr wd first.

    >>> import numpy as np, fastnn.ops as ops
    >>> p, g = np.zeros(2), np.array([1.0, -1.0]); m, v = np.zeros(2), np.zeros(2)
    >>> ops.adam_update(p, g, m, v, lr=0.1, step=1); np.round(p, 6)
    array([-0.1,  0.1])
    """
    param, grad = _param_and_grad(param, grad)
    m = _state_array(m, "m", param, "param")
    v = _state_array(v, "v", param, "param")
    lr = _real(lr, "lr", low=0.0)
    beta1 = _real(beta1, "beta1", low=0.0, high=1.0, high_open=True)
    beta2 = _real(beta2, "beta2", low=0.0, high=1.0, high_open=True)
    eps = _real(eps, "eps", low=0.0, low_open=True)
    if isinstance(step, (bool, np.bool_)) or not isinstance(step, numbers.Integral):
        raise TypeError(f"step: expected an int, got {type(step).__name__}")
    if step < 1 or step >= 2**63:
        raise ValueError(f"step: expected an integer in [1, 2**63), got {step}")
    if not isinstance(decoupled, (bool, np.bool_)):
        raise TypeError(f"decoupled: expected a bool, got {type(decoupled).__name__}")
    _core.adam_update(param, grad, m, v, lr, beta1, beta2, eps, int(step),
                      _weight_decay(weight_decay), bool(decoupled))


# ----------------------------------------------------------------------------
# dropout
# ----------------------------------------------------------------------------


def dropout(x, rate, *, seed, out=None):
    """Inverted dropout: y = x * mask, mask_i = 1 / (1 - rate) when u_i >= rate, else 0.

    u_i comes from Philox4x32-10 keyed by ``seed`` (an int, taken modulo 2^64)
    at counter i // 4, word i % 4: the result depends only on the seed and the
    element index, never on the thread count. Returns ``(y, mask)``, mask in
    x's dtype, so the backward pass is ``dx = dy * mask``. rate 0 is the identity.
    ``out``: optional array for y, or a tuple ``(y, mask)`` of arrays or None.

    >>> import numpy as np, fastnn.ops as ops
    >>> y, mask = ops.dropout(np.ones(4), 0.0, seed=1); y
    array([1., 1., 1., 1.])
    """
    x = _float_array(x, "x")
    rate = _real(rate, "rate", low=0.0, high=1.0, high_open=True)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed: expected an int, got {type(seed).__name__}")
    y, mask = _outs(out, ("y", "mask"))
    y = _out_array(y, "out", dtype=x.dtype, shape=x.shape)
    mask = _out_array(mask, "out[1] (mask)", dtype=x.dtype, shape=x.shape)
    _core.dropout(x, rate, int(seed) & 0xFFFFFFFFFFFFFFFF, y, mask)
    return y, mask


# ----------------------------------------------------------------------------
# clipping and reductions  (clip_by_global_norm, clip_by_value, column_sum)
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

    >>> import numpy as np, fastnn.ops as ops
    >>> x = np.full((1, 2), 1 + 2 ** -10, np.float32); w = np.ones((2, 1), np.float32)
    >>> ops.matmul_bf16(x, w)   # 1 + 2**-10 rounds to 1 in bfloat16
    array([[2.]], dtype=float32)
    """
    # fast path as matmul's: plain arguments straight to the core (which checks them
    # before any work); whatever it rejects goes through the full checks
    if (a.__class__ is np.ndarray and b.__class__ is np.ndarray and a.ndim == 2 and b.ndim == 2
            and trans_a.__class__ is bool and trans_b.__class__ is bool
            and alpha.__class__ is float and beta.__class__ is float and _isfinite(alpha) and _isfinite(beta)
            and (activation is None or activation.__class__ is str) and activation_alpha is None
            and (bias is None or bias.__class__ is np.ndarray)):
        c = out
        if out is None and beta == 0.0 and a.dtype == np.float32:
            c = np.empty((a.shape[1] if trans_a else a.shape[0], b.shape[0] if trans_b else b.shape[1]),
                         dtype=np.float32)
        if c.__class__ is np.ndarray:
            try:
                _core.matmul_bf16(a, b, c, trans_a, trans_b, alpha, beta, bias, activation,
                                  0.0 if activation is None else _core.default_activation_alpha(activation))
                return c
            except (TypeError, ValueError):
                pass
    return _matmul_checked(a, b, trans_a, trans_b, alpha, beta, out, bias, activation, activation_alpha,
                           kernel=_core.matmul_bf16)


def bfloat16_round(x, *, out=None):
    """float32 ``x`` rounded to the nearest bfloat16 (ties to even), as float32.

    NaN stays NaN, +-inf stay, values past the largest bfloat16 become +-inf,
    float32 subnormals become signed zeros. ``out`` may be ``x`` (in place).
    """
    x = _float_array(x, "x")
    out = _out_array(out, "out", dtype=x.dtype, shape=x.shape)
    _core.bf16_round(x, out)
    return out
