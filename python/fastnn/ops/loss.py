"""Fused losses: softmax_cross_entropy, binary_cross_entropy_with_logits, mean_squared_error.

Each takes ``sample_weight``: one weight ``w_i`` per row (the first axis is the batch); the
loss is then Keras's ``sum_over_batch_size`` reduction ``sum_i w_i l_i / m`` (``l_i`` row
i's loss: its cross-entropy, or the mean of its elementwise losses) and the gradient's row
i the unweighted gradient's (bitwise) times ``w_i`` in the input's dtype. The weights are
taken as given, in the input's dtype (fit checks them finite and >= 0; NaN gives NaN).
Twins: ``fastnn._reference_weighted``."""
from __future__ import annotations

import numpy as np

from .. import _core
from ._common import _c_aligned, _describe, _float_array, _out_array


# ----------------------------------------------------------------------------
# losses  (softmax_cross_entropy, binary_cross_entropy_with_logits, mean_squared_error)
# ----------------------------------------------------------------------------


def _logits_matrix(logits):
    z = _float_array(logits, "logits", ndim=2)
    if z.shape[0] == 0 or z.shape[1] == 0:
        raise ValueError(f"logits: expected a non-empty (m, C) matrix, got shape {z.shape}")
    return z


def _sample_weight(sample_weight, like):
    """The row weights as the kernels take them (like's dtype, C-contiguous), or None."""
    if sample_weight is None:
        return None
    return _row_weights(sample_weight, like.shape[0] if like.ndim else 1, like.dtype)


def _row_weights(sample_weight, m, dtype):
    """m row weights (shape (m,) or (m, 1), numbers) in dtype, C-contiguous; TypeError or
    ValueError naming sample_weight otherwise."""
    w = np.asarray(sample_weight)
    if w.dtype.kind not in "fiub":
        raise TypeError(f"sample_weight: expected numbers, got dtype {w.dtype}")
    if w.shape not in ((m,), (m, 1)):
        raise ValueError(f"sample_weight: expected shape ({m},) (one weight per row), got {w.shape}")
    return _c_aligned(w.reshape(m), dtype)


def _grad_out(out, like):
    """Gradient output: validated out= or a new array (the core refuses one that overlaps an input)."""
    return _out_array(out, "out", dtype=like.dtype, shape=like.shape)


def softmax_cross_entropy(logits, labels, *, out=None, sample_weight=None):
    """Fused mean softmax cross-entropy and its gradient: ``(loss, dlogits)``.

    logits: (m, C). labels: integer class ids of shape (m,) (any integer
    dtype), or float rows of shape (m, C) (one-hot or probabilities).
    ``loss = -mean_i sum_j t_ij log softmax(z)_ij``,
    ``dlogits = (softmax(z) * sum_j t_ij - t) / m``. Numerically stable.
    ``out``: optional (m, C) array for dlogits (not overlapping logits).
    ``sample_weight``: m row weights (module docstring): ``sum_i w_i l_i / m``.

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
    w = _sample_weight(sample_weight, z)
    kind = labels.dtype.kind
    if kind in "iu":
        if labels.shape != (m,):
            raise ValueError(f"labels: expected class ids of shape {(m,)}, got {labels.shape} "
                             "(pass one-hot rows as a float array)")
        if labels.dtype == np.uint64 and m and labels.max() >= C:  # would wrap in int64
            i = int(np.argmax(labels >= C))
            raise ValueError(f"labels: class id {labels[i]} at index {i} is out of range [0, {C})")
        ids = _c_aligned(labels, np.int64)
        loss = _core.softmax_cross_entropy_ids(z, ids, dlogits, w)  # checks the range, names a bad id
    elif kind in "fb":
        if labels.shape != (m, C):
            raise ValueError(f"labels: expected target rows of shape {(m, C)}, got {labels.shape}")
        t = _c_aligned(labels, z.dtype)
        loss = _core.softmax_cross_entropy_probs(z, t, dlogits, w)
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


def binary_cross_entropy_with_logits(logits, targets, *, out=None, sample_weight=None):
    """Mean sigmoid cross-entropy over all elements and its gradient: ``(loss, dlogits)``.

    ``loss = mean(max(z, 0) - z t + log1p(exp(-|z|)))``, ``dlogits = (sigmoid(z) - t) / z.size``.
    ``sample_weight``: one weight per row of logits (module docstring).
    """
    z, t = _elementwise_pair(logits, targets, "logits", "targets")
    grad = _grad_out(out, z)
    loss = _core.binary_cross_entropy_with_logits(z, t, grad, _sample_weight(sample_weight, z))
    return loss, grad


def mean_squared_error(pred, target, *, out=None, sample_weight=None):
    """Mean over all elements of ``(pred - target)^2`` and its gradient ``2 (pred - target) / size``;
    ``sample_weight``: one weight per row of pred (module docstring)."""
    p, t = _elementwise_pair(pred, target, "pred", "target")
    grad = _grad_out(out, p)
    loss = _core.mean_squared_error(p, t, grad, _sample_weight(sample_weight, p))
    return loss, grad
