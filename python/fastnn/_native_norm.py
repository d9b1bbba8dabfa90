"""The native step's LayerNormalization node (native_step.py): the plan entry of a
LayerNormalization over the last axis of a 2-D input, the kernels and buffers
LayerNormalization.forward/backward use (ops.layernorm_forward / layernorm_backward into the
layer's y, xhat, inv and dx buffers; dgamma and dbeta into the gradient arena, or the
layer's scratch when not learned). Any other LayerNormalization runs the Python step."""
from __future__ import annotations

import numpy as np

from . import layers as _layers


def layernorm_supported(layer):
    """Whether the plan runs this LayerNormalization: 2-D input, normalized over its last axis."""
    return type(layer) is _layers.LayerNormalization and len(layer.input_shape) == 1 and layer._ax == (1,)


def layernorm_entry(layer, m, dtype):
    """("layernorm", y, trainable, dx, gamma|None, beta|None, xhat, inv, dgamma, dbeta, eps),
    or None when the kernel would refuse epsilon in the plan's dtype (the Python step runs)."""
    n, learn = layer.output_shape[-1], bool(layer.trainable)
    with np.errstate(over="ignore"):
        if not (np.isfinite(layer.epsilon) and dtype.type(layer.epsilon) > 0):
            return None
    return ("layernorm", layer._buffer(("y", m), (m, n)), learn, layer._buffer(("dx", m), (m, n)),
            layer.vars["gamma"] if layer.scale else None, layer.vars["beta"] if layer.center else None,
            layer._buffer(("xhat", m), (m, n)), layer._buffer(("inv", m), (m,)),
            layer.grads["gamma"] if learn and layer.scale else layer._buffer("dgamma", (n,)),
            layer.grads["beta"] if learn and layer.center else layer._buffer("dbeta", (n,)), float(layer.epsilon))
