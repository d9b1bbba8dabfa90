"""NumPy twins of the fused losses weighted per sample (``ops.softmax_cross_entropy``,
``ops.binary_cross_entropy_with_logits`` and ``ops.mean_squared_error`` with
``sample_weight``): the oracle of tests/test_weighted_loss_ops.py.

The loss ``sum_i w_i l_i / m`` with the per-row losses ``l_i`` in float64 (the kernels
compute them in the input's dtype, then sum in float64: the twin agrees within the
tolerance of tests/test_weighted_loss_ops.py), the gradient the unweighted twin's times
``w_i`` in the input's dtype.
"""
from __future__ import annotations

import numpy as np

from . import reference as _ref


def _weights(sample_weight, like):
    return np.asarray(sample_weight).reshape(like.shape[0]).astype(like.dtype)


def _weighted(rows, grad, w, out):
    """(sum_i w_i rows_i / m, grad with row i times w_i) (out: grad written there too)."""
    value = float(np.dot(rows, w.astype(np.float64)) / rows.shape[0])
    g = grad * w.reshape((-1,) + (1,) * (grad.ndim - 1))
    return value, _ref._into(out, g.astype(grad.dtype))


def softmax_cross_entropy(logits, labels, *, sample_weight, out=None):
    """Row i's loss -sum_j t_ij log softmax(z_i)_j (ids: t one-hot), weighted."""
    z = np.asarray(logits, dtype=np.float64)
    logp = z - z.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    labels = np.asarray(labels)
    if labels.dtype.kind in "iu":
        t = np.zeros_like(z)
        t[np.arange(z.shape[0]), labels] = 1
    else:
        t = labels.astype(logits.dtype).astype(np.float64)
    rows = -np.where(t != 0, t * logp, 0).sum(axis=1)
    _, grad = _ref.softmax_cross_entropy(logits, labels)
    return _weighted(rows, grad, _weights(sample_weight, logits), out)


def binary_cross_entropy_with_logits(logits, targets, *, sample_weight, out=None):
    """Row i's loss the mean of max(z, 0) - z t + log1p(exp(-|z|)) over its values, weighted."""
    m = logits.shape[0]
    z = np.asarray(logits, dtype=np.float64).reshape(m, -1)
    t = targets.astype(logits.dtype).astype(np.float64).reshape(m, -1)
    rows = (np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))).mean(axis=1)
    _, grad = _ref.binary_cross_entropy_with_logits(logits, targets)
    return _weighted(rows, grad, _weights(sample_weight, logits), out)


def mean_squared_error(pred, target, *, sample_weight, out=None):
    """Row i's loss the mean of (p - t)^2 over its values, weighted."""
    m = pred.shape[0]
    d = (np.asarray(pred, dtype=np.float64) - target.astype(pred.dtype).astype(np.float64)).reshape(m, -1)
    _, grad = _ref.mean_squared_error(pred, target)
    return _weighted((d * d).mean(axis=1), grad, _weights(sample_weight, pred), out)
