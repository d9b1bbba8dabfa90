"""LayerNorm over the last axis of a (batch, features) matrix (forward, backward)."""
from __future__ import annotations

import numpy as np

from .. import _core
from ._common import _coerced, _new_or, _norm_grad_outs, _outs, _real


def _optional(a, name):
    return None if a is None else _coerced(a, name)


def layernorm_forward(x, gamma=None, beta=None, *, eps=1e-3, out=None):
    """LayerNorm of each row of a (m, n) x: ``(y, xhat, inv)``.

    ``mean_i``, ``var_i`` (biased) over row i's n features, ``inv_i = 1 / sqrt(var_i + eps)``,
    ``xhat = (x - mean) * inv``, ``y = xhat * gamma + beta``; gamma / beta (n,) may be None
    (Keras's ``scale`` / ``center`` off: 1 / 0). Sums in x's dtype (fastnn/norm/layernorm.h);
    bitwise independent of the thread count. ``out``: an (m, n) array for y (may be x itself),
    or a tuple ``(y, xhat, inv)`` of arrays or None (xhat (m, n), inv (m,)).

    >>> import numpy as np, fastnn.ops as ops
    >>> y, xhat, inv = ops.layernorm_forward(np.array([[1.0, 3.0]]), eps=1e-12)
    >>> y.round(6).tolist()
    [[-1.0, 1.0]]
    """
    y, xhat, inv = _outs(out, ("y", "xhat", "inv"))
    if type(x) is np.ndarray and x.ndim == 2 and type(eps) is float:
        # Once per layer per step: _core checks every argument, before it writes anything.
        outs = (np.empty(x.shape, x.dtype) if y is None else y,
                np.empty(x.shape, x.dtype) if xhat is None else xhat,
                np.empty(x.shape[0], x.dtype) if inv is None else inv)
        try:
            _core.layernorm_forward(x, gamma, beta, *outs, eps)
            return outs
        except (TypeError, ValueError):
            pass
    # Rejected: copy what only needs a copy, name what _core cannot, and call it again.
    x = _coerced(x, "x", ndim=2)
    gamma, beta = _optional(gamma, "gamma"), _optional(beta, "beta")
    eps = _real(eps, "eps")
    y = _new_or(y, x.shape, x.dtype)
    xhat = _new_or(xhat, x.shape, x.dtype)
    inv = _new_or(inv, x.shape[0], x.dtype)
    _core.layernorm_forward(x, gamma, beta, y, xhat, inv, eps)
    return y, xhat, inv


def layernorm_backward(dy, xhat, inv, gamma=None, *, out=None):
    """Gradients ``(dx, dgamma, dbeta)`` of :func:`layernorm_forward` from its ``xhat`` and ``inv``.

    ``dbeta = sum_rows dy``, ``dgamma = sum_rows dy * xhat`` (rows added in order), and with
    ``g = dy * gamma``: ``dx = inv * (g - mean(g) - xhat * mean(g * xhat))``, means over each
    row's features. ``out``: an (m, n) array for dx (may be dy itself), or a tuple
    ``(dx, dgamma, dbeta)`` of arrays or None.
    """
    dx, dgamma, dbeta = _outs(out, ("dx", "dgamma", "dbeta"))
    if type(xhat) is np.ndarray and xhat.ndim == 2:  # as in layernorm_forward
        outs = _norm_grad_outs(dx, dgamma, dbeta, xhat)
        try:
            _core.layernorm_backward(dy, xhat, inv, gamma, *outs)
            return outs
        except (TypeError, ValueError):
            pass
    xhat = _coerced(xhat, "xhat", ndim=2)
    dy, inv, gamma = _coerced(dy, "dy"), _coerced(inv, "inv"), _optional(gamma, "gamma")
    n = xhat.shape[1]
    dx = _new_or(dx, xhat.shape, xhat.dtype)
    dgamma = _new_or(dgamma, n, xhat.dtype)
    dbeta = _new_or(dbeta, n, xhat.dtype)
    _core.layernorm_backward(dy, xhat, inv, gamma, dx, dgamma, dbeta)
    return dx, dgamma, dbeta
