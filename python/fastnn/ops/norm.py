"""BatchNorm (forward, backward) and dropout."""
from __future__ import annotations

import numbers

import numpy as np

from .. import _core
from ._common import _arrays, _coerced, _float_array, _new_or, _norm_grad_outs, _out_array, _outs, _real


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
    y = _new_or(y, x.shape, x.dtype)
    batch_mean = _new_or(batch_mean, n, x.dtype)
    batch_invstd = _new_or(batch_invstd, n, x.dtype)
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
        outs = _norm_grad_outs(dx, dgamma, dbeta, x)
        try:
            _core.batchnorm_backward(dy, x, gamma, batch_mean, batch_invstd, *outs)
            return outs
        except (TypeError, ValueError):
            pass
    x = _coerced(x, "x", ndim=2)
    dy, gamma = _coerced(dy, "dy"), _coerced(gamma, "gamma")
    batch_mean, batch_invstd = _coerced(batch_mean, "batch_mean"), _coerced(batch_invstd, "batch_invstd")
    n = x.shape[1]
    dx = _new_or(dx, x.shape, x.dtype)
    dgamma = _new_or(dgamma, n, x.dtype)
    dbeta = _new_or(dbeta, n, x.dtype)
    _core.batchnorm_backward(dy, x, gamma, batch_mean, batch_invstd, dx, dgamma, dbeta)
    return dx, dgamma, dbeta

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
