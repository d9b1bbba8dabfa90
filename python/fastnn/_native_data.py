"""What the native step and the native epoch take besides the plan (native_step.py): the
sample weights as the plan takes them, the epoch's data per iterator, the scratch buffers."""
from __future__ import annotations

import typing
import weakref

import numpy as np

from .ops.loss import _row_weights


def step_weights(sample_weight, dtype, m):
    """The ``m`` sample weights as the plan's weighted loss takes them: in the model's dtype,
    C-contiguous, converted by ops.loss._row_weights as ops' ``sample_weight`` (which
    _weights.weighted_value_and_grad passes them to) converts them; None without weights; False
    when the Python step must take them (not a numeric array of m weights: it converts them or
    raises)."""
    if sample_weight is None:
        return None
    if sample_weight.__class__ is not np.ndarray:
        return False
    try:
        return _row_weights(sample_weight, m, dtype)
    except (TypeError, ValueError):
        return False


class EpochData(typing.NamedTuple):
    """What the native epoch keeps per iterator: the loss kind, the labels as the plan takes
    them (y itself when it already is; smoothed by _native_loss when the loss smooths), the
    batch buffers (x flattened, labels), the sample weights as the plan takes them and their
    batch buffer (None, None without), the loss's label smoothing the labels were made with."""
    kind: str
    labels: np.ndarray
    xbuf: np.ndarray
    ybuf: np.ndarray
    weights: typing.Optional[np.ndarray]
    wbuf: typing.Optional[np.ndarray]
    smoothing: typing.Optional[float] = 0.0


# model -> {name: array}: the native epoch's buffers, kept from one fit to the next
_SCRATCH: "weakref.WeakKeyDictionary[object, dict]" = weakref.WeakKeyDictionary()


def scratch(model, name, shape, dtype):
    """The model's buffer ``name`` of that shape and dtype (made, or remade, when needed)."""
    bufs = _SCRATCH.setdefault(model, {})
    a = bufs.get(name)
    if a is None or a.shape != shape or a.dtype != dtype:
        a = bufs[name] = np.empty(shape, dtype)
    return a
