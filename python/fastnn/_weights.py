"""Sample weights and class weights in the loss, as Keras applies them.

Every fastnn loss is a mean over the batch of a per-sample loss ``l_i``; with weights
``w_i`` the loss is Keras's ``sum_over_batch_size`` reduction ``sum_i w_i l_i / m`` and
its gradient with respect to sample ``i``'s output is ``w_i`` times the unweighted one.
The fused losses (softmax cross-entropy and sigmoid BCE on logits, mean squared error) run
their weighted kernels (ops' ``sample_weight``: the native step calls the same ones, so the
two steps agree bitwise); any other loss scales its gradient here and sums ``w_i l_i`` in
NumPy. Metrics stay unweighted (Keras's ``metrics``; it weights only ``weighted_metrics``).

>>> import numpy as np
>>> from fastnn import losses
>>> loss, d = weighted_value_and_grad(losses.get("mse"), np.array([[1.0], [3.0]]),
...                                   np.array([[0.0], [0.0]]), np.array([1.0, 0.0]), False)
>>> loss, d[:, 0].tolist()
(0.5, [1.0, 0.0])
"""
from __future__ import annotations

import numpy as np

from . import losses as _losses
from . import ops as _ops

_EPS = _losses._EPS


def _lse(z):
    mx = z.max(axis=1, keepdims=True)
    return (mx + np.log(np.exp(z - mx).sum(axis=1, keepdims=True)))[:, 0]


def per_sample_loss(loss, pred, y, logits):
    """The per-sample losses ``l_i`` (float64, shape (m,)) whose mean is ``loss``'s value."""
    p = np.asarray(pred, dtype=np.float64)
    m = p.shape[0]
    p2 = p.reshape(m, -1)
    if isinstance(loss, _losses.SparseCategoricalCrossentropy):
        rows = np.arange(m)
        if logits:
            return _lse(p2) - p2[rows, y]
        return -np.log(np.clip(p2[rows, y], _EPS, 1 - _EPS))
    t = np.asarray(y, dtype=np.float64).reshape(m, -1)
    if isinstance(loss, _losses.CategoricalCrossentropy):
        if logits:
            return (t * (_lse(p2)[:, None] - p2)).sum(axis=1)
        return -(t * np.log(np.clip(p2, _EPS, 1 - _EPS))).sum(axis=1)
    if isinstance(loss, _losses.BinaryCrossentropy):
        if logits:
            return (np.maximum(p2, 0) - p2 * t + np.log1p(np.exp(-np.abs(p2)))).mean(axis=1)
        q = np.clip(p2, _EPS, 1 - _EPS)
        return -(t * np.log(q) + (1 - t) * np.log(1 - q)).mean(axis=1)
    if type(loss) is _losses.MeanSquaredError:
        return ((p2 - t) ** 2).mean(axis=1)
    if type(loss) is _losses.MeanAbsoluteError:
        return np.abs(p2 - t).mean(axis=1)
    # any other loss: one row at a time (exact, slower)
    return np.array([loss.value_and_grad(pred[i:i + 1], y[i:i + 1], logits)[0] for i in range(m)])


def _fused(loss, pred, y, w, logits):
    """The weighted kernel's (value, gradient) for a loss whose value_and_grad is one fused
    kernel (its arguments as it passes them), else None."""
    kind = type(loss)
    if kind is _losses.MeanSquaredError:
        return _ops.mean_squared_error(pred, y, sample_weight=w)
    if not logits:
        return None
    if kind is _losses.SparseCategoricalCrossentropy:
        return _ops.softmax_cross_entropy(pred, y, sample_weight=w)
    if kind is _losses.CategoricalCrossentropy:
        return _ops.softmax_cross_entropy(pred, loss._smoothed(y), sample_weight=w)
    if kind is _losses.BinaryCrossentropy:
        return _ops.binary_cross_entropy_with_logits(pred, loss._smoothed(y), sample_weight=w)
    return None


def weighted_value_and_grad(loss, pred, y, sample_weight, logits):
    """``(sum_i w_i l_i / m, gradient)``; ``sample_weight`` None: the loss's own result."""
    if sample_weight is None:
        return loss.value_and_grad(pred, y, logits)
    per_output = getattr(loss, "weighted_value_and_grad", None)  # several outputs (multi_io)
    if per_output is not None:
        return per_output(pred, y, sample_weight, logits)
    w = np.asarray(sample_weight)
    fused = _fused(loss, pred, y, w, logits)
    if fused is not None:
        return fused
    value, grad = loss.value_and_grad(pred, y, logits)
    grad *= w.astype(grad.dtype).reshape((-1,) + (1,) * (grad.ndim - 1))
    value = float(np.dot(per_sample_loss(loss, pred, y, logits), w.astype(np.float64)) / w.shape[0])
    return value, grad


# ---------------------------------------------------------------- class weights
def check_class_weight(class_weight, num_classes):
    """A dict {class index: weight} as a float64 lookup table of ``num_classes`` entries
    (missing classes weigh 1, as in Keras), or None."""
    if class_weight is None:
        return None
    if not isinstance(class_weight, dict):
        raise TypeError(f"class_weight: expected a dict {{class index: weight}}, got {type(class_weight).__name__}")
    table = np.ones(max(num_classes, 2), dtype=np.float64)
    for k, v in class_weight.items():
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k < table.shape[0]:
            raise ValueError(f"class_weight: keys must be class indices in [0, {table.shape[0]}), got {k!r}")
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
                or not np.isfinite(v) or v < 0:
            raise ValueError(f"class_weight: expected finite weights >= 0, got {v!r} for class {k}")
        table[int(k)] = float(v)
    return table


def class_ids(y):
    """The class of each target row: ids as given, argmax of one-hot rows, or ``y > 0.5``
    for one binary output."""
    y = np.asarray(y)
    if y.ndim == 1:
        return np.rint(y).astype(np.int64) if y.dtype.kind == "f" else y.astype(np.int64)
    if y.shape[1] == 1:
        return (y[:, 0] > 0.5).astype(np.int64)
    return np.argmax(y, axis=1)


def combine(sample_weight, table, y, dtype):
    """sample_weight times the class weight of each row of y (either may be None)."""
    if table is None:
        return sample_weight
    cw = table[np.clip(class_ids(y), 0, table.shape[0] - 1)].astype(dtype)
    return cw if sample_weight is None else sample_weight * cw
