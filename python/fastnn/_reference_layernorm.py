"""The NumPy twins of LayerNorm over the last axis (:func:`fastnn.ops.layernorm_forward`,
``layernorm_backward``) for :mod:`fastnn.reference`: plain formulas in the dtype of the
arrays. Imports only NumPy."""
from __future__ import annotations

import numpy as np


def layernorm_forward(x, gamma=None, beta=None, *, eps=1e-3, out=None):
    """mean, biased var over each row; inv = 1 / sqrt(var + eps); xhat = (x - mean) * inv;
    y = xhat * gamma + beta. Returns ``(y, xhat, inv)`` (out ignored: the twin allocates)."""
    t = x.dtype.type
    mean = x.mean(axis=1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=1, keepdims=True)
    inv = t(1) / np.sqrt(var + t(eps))
    xhat = (x - mean) * inv
    y = xhat * gamma if gamma is not None else xhat.copy()
    if beta is not None:
        y = y + beta
    return y, xhat, inv[:, 0]


def layernorm_backward(dy, xhat, inv, gamma=None, *, out=None):
    """dbeta = sum dy, dgamma = sum dy * xhat over the rows; g = dy * gamma;
    dx = inv * (g - mean(g) - xhat * mean(g * xhat)) per row. Returns ``(dx, dgamma, dbeta)``."""
    g = dy * gamma if gamma is not None else dy
    dx = inv[:, None] * (g - g.mean(axis=1, keepdims=True) - xhat * (g * xhat).mean(axis=1, keepdims=True))
    return dx, (dy * xhat).sum(axis=0), dy.sum(axis=0)
