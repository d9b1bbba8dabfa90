"""The native step's fused loss (native_step.py): which loss kernel the plan calls and the
labels as the Python step passes them to it. Label smoothing (``CategoricalCrossentropy``
and ``BinaryCrossentropy``'s ``label_smoothing``) runs natively: the targets are smoothed
by the loss's own ``_smoothed`` (NumPy's ``y * (1 - ls) + ls / classes``, the Python
step's operations on the same array) and converted to the model's dtype as the kernels
convert them (``ops._c_aligned``), then the plan's loss is the usual kernel on probability
targets (``xent_probs``, ``bce_logits``). Smoothing is elementwise, so the native epoch
smooths its whole label array once: each batch's rows have the bits the Python step's
smoothing of that batch gives. (Keras's sparse categorical cross-entropy has no smoothing.)
Mean absolute error and Huber (``"mae"``, ``"huber"``, unweighted) run natively too: their
value_and_grad's NumPy arithmetic and their ``ops.abs_sum`` (csrc/fastnn/step/losses_more.cpp)."""
from __future__ import annotations

import numpy as np

from . import losses as _losses
from . import ops as _ops

_XENT = (_losses.CategoricalCrossentropy, _losses.SparseCategoricalCrossentropy)
_DIFF = {_losses.MeanAbsoluteError: "mae", _losses.Huber: "huber"}  # losses of pred - y in NumPy


def _delta_ok(loss):
    """Huber's delta as the plan takes it (a float, finite, > 0: set after construction, another
    value runs the Python step); True for other losses."""
    d = getattr(loss, "delta", 1.0) if type(loss) is _losses.Huber else 1.0
    return type(d) is float and 0.0 < d < float("inf")


def key(model):
    """What the plan copied from the loss: Huber's delta."""
    return getattr(model.loss, "delta", None) if type(model.loss) is _losses.Huber else None


def attach(native, model, kind):
    """The loss's parameters into the plan: Huber's delta."""
    if kind == "huber":
        native.set_huber_delta(model.loss.delta)


def smoothing(loss):
    """The loss's label smoothing: 0.0 without; None when not a plain float (set after
    construction: the Python step computes with it, or raises)."""
    ls = getattr(loss, "label_smoothing", 0.0)
    return ls if type(ls) is float and 0.0 <= ls <= 1.0 else None


def _smoothed_kind(model, yb, loss_on_logits):
    """("xent_probs" | "bce_logits", the smoothed labels in the model's dtype) or None: the
    loss's ``_smoothed`` on the labels as given (integer or bool rows turn float64 there),
    converted as ``ops.softmax_cross_entropy`` / ``binary_cross_entropy_with_logits`` do."""
    loss, dtype = model.loss, model.dtype
    if not loss_on_logits or yb.ndim != 2 or yb.shape[1] != model.output_shape[-1] or yb.dtype.kind not in "fiub":
        return None
    if type(loss) is _losses.CategoricalCrossentropy:  # CategoricalCrossentropy.value_and_grad, _weights._fused
        return "xent_probs", _ops._c_aligned(np.asarray(loss._smoothed(yb)), dtype)
    if type(loss) is _losses.BinaryCrossentropy:
        return "bce_logits", _ops._c_aligned(np.asarray(loss._smoothed(yb)), dtype)
    return None


def weighted_ok(kind):
    """Whether the plan's loss kind takes sample weights: not "mae" or "huber" (the Python
    step weights them in NumPy: _weights.per_sample_loss and a dot product)."""
    return kind not in ("mae", "huber")


def loss_kind(model, yb, loss_on_logits, last_logits):
    """("xent_ids" | "xent_probs" | "mse" | "mae" | "huber" | "bce_logits", labels as the Python step passes
    them to the kernel) or None. Label rows must be as wide as the output (else the Python
    step runs, and its loss raises)."""
    loss = model.loss
    ls = smoothing(loss)
    if ls is None:
        return None
    if ls:
        return _smoothed_kind(model, yb, loss_on_logits)
    rows = yb.ndim == 2 and yb.shape[1] == model.output_shape[-1]
    if type(loss) in _XENT and loss_on_logits:
        if yb.dtype.kind in "iu" and yb.dtype != np.uint64 and yb.ndim == 1:
            return "xent_ids", _ops._c_aligned(yb, np.int64)
        if yb.dtype.kind in "fb" and rows:
            return "xent_probs", _ops._c_aligned(yb, model.dtype)
        return None
    if not rows or yb.dtype.kind not in "fiub":
        return None
    if type(loss) is _losses.MeanSquaredError and not last_logits:
        return "mse", _ops._c_aligned(yb, model.dtype)
    if type(loss) in _DIFF and not loss_on_logits and yb.dtype == model.dtype and _delta_ok(loss):
        # MeanAbsoluteError's / Huber's pred - y in the model's dtype (another y dtype would
        # promote the difference: the Python step runs it)
        return _DIFF[type(loss)], _ops._c_aligned(yb, model.dtype)
    if type(loss) is _losses.BinaryCrossentropy and loss_on_logits:
        # ops.binary_cross_entropy_with_logits' targets: (m, n) like the logits, any numeric
        # dtype converted to theirs (a (m,) y for one unit is (m, 1) once fit has prepared it)
        return "bce_logits", _ops._c_aligned(yb, model.dtype)
    return None
