"""The native step's ActivityRegularization node (native_step.py): a layer of
layers/regularization_more.py over a 2-D activity, the identity with a penalty. The plan
computes ActivityRegularization.forward's penalty with its kernels (ops.abs_sum,
ops.sum_squares: float64, a fixed order) on the layer below's output buffer and adds
ActivityRegularization.backward's gradient to dy in place (NumPy's rounding, no fused
multiply-add: csrc/fastnn/step/activity.cpp); the step's penalty is trainer.regularization's:
the activity penalties summed in the model's order, then the weight penalties. After each
call the layers' ``activity_loss`` (``losses``) are the last step's, as after the Python step.
A first layer, a mixed_bfloat16 model, factors that are not floats, or a layer whose forward or
backward was replaced run the Python step."""
from __future__ import annotations

from . import layers as _layers

_AR = _layers.ActivityRegularization
_METHODS = (_AR.forward, _AR.backward)


def is_activity(layer):
    return type(layer) is _AR


def supported(layer):
    """Whether the plan runs this ActivityRegularization: a 2-D activity, float factors, the
    class's own forward and backward."""
    return (type(layer) is _AR and len(layer.input_shape) == 1 and type(layer.l1) is float
            and type(layer.l2) is float and (type(layer).forward, type(layer).backward) == _METHODS
            and "forward" not in vars(layer) and "backward" not in vars(layer))


def model_ok(model, chain, items):
    """Whether the activity nodes of trainer.regularization (items: _reg_list's, variable None)
    are the chain's ActivityRegularization layers, each called once, in the chain's order (the
    order the plan sums their penalties in), in a model without mixed_bfloat16 layers."""
    nodes = [n for n, v, _ in items if v is None]
    layers = [l for l in chain if type(l) is _AR]
    if not layers:
        return not nodes
    if any(getattr(getattr(l, "_dtype_policy", None), "is_mixed", False) for l in chain):
        return False
    return [n.layer for n in nodes] == layers and all(getattr(n, "call", None) is None for n in nodes)


def entry(layer, below_y):
    """("activity", the layer below's output buffer, l1, l2), or None for a first layer."""
    if below_y is None:
        return None
    return "activity", below_y, layer.l1, layer.l2


def key(model):
    """What the plan copied from the ActivityRegularization layers: their factors."""
    return tuple((id(l), type(l.l1), l.l1, type(l.l2), l.l2) for l in model.layers if type(l) is _AR)


def after(model, native):
    """Each ActivityRegularization layer's activity_loss: the last step's (the plan's)."""
    losses = native.activity_losses
    if losses:
        for layer, a in zip((l for l in model._chain if type(l) is _AR), losses):
            layer.activity_loss = a
