"""A layer's dtype policy (Keras 3's ``dtype=``) and Dense's bfloat16 products.

Under ``mixed_bfloat16`` a Dense layer runs its three GEMMs in bfloat16
(operands rounded to bfloat16, float32 accumulation): the forward ``x @ W``
through :func:`fastnn.ops.matmul_bf16` with the fused bias+activation epilogue,
the backward ``dW = x.T @ dz`` and ``dx = dz @ W.T`` in one core call
(:func:`dense_backward`). The bias gradient (the column sums of dz, float32),
the activation's gradient, BatchNormalization, the
softmax/loss and the optimizer stay float32; the weights (the arena) and the
optimizer state are float32 master copies. The other layers compute in float32.

The model's dtype decides the variables' dtype: ``float32`` and ``float64``
policies on a layer only name it; ``mixed_bfloat16`` needs a float32 model and
is refused, with a ``ValueError``, in a float64 one.
"""
from __future__ import annotations

import numpy as np

from .. import _core
from .. import mixed_precision as _mp
from .. import ops as _ops


def as_policy(dtype, argname="dtype"):
    """A :class:`~fastnn.mixed_precision.DTypePolicy` from ``dtype``: None (the global
    policy now), a policy name, a Policy, a config dict (``{"name": ...}`` or Keras's
    ``{"class_name": "DTypePolicy", "config": {"name": ...}}``) or a NumPy float dtype."""
    if dtype is None:
        return _mp.global_policy()
    if isinstance(dtype, dict):
        cfg = dtype.get("config", dtype)
        if not isinstance(cfg, dict) or not isinstance(cfg.get("name"), str):
            raise ValueError(f"{argname}: expected a policy config {{'name': ...}}, got {dtype!r}")
        dtype = cfg["name"]
    elif not isinstance(dtype, (str, _mp.DTypePolicy)):
        try:
            dtype = np.dtype(dtype).name
        except TypeError:
            raise _mp.PolicyTypeError(f"{argname}: expected a policy name (str) or a Policy, "
                                      f"got {type(dtype).__name__}") from None
    try:
        return _mp.DTypePolicy(dtype)
    except (TypeError, ValueError) as e:
        raise type(e)(str(e).replace("name:", f"{argname}:", 1).replace("policy:", f"{argname}:", 1)) from None


def layer_policy(dtype, dtype_policy):
    """A layer's policy from its ``dtype=`` (Keras 3) or ``dtype_policy=`` (the same, by
    the attribute's name); both given must agree."""
    if dtype_policy is None:
        return as_policy(dtype)
    policy = as_policy(dtype_policy, "dtype_policy")
    if dtype is not None and as_policy(dtype) != policy:
        raise ValueError(f"dtype, dtype_policy: give one, or the same policy twice, got {as_policy(dtype).name!r} "
                         f"and {policy.name!r}")
    return policy


def check_policy(layer, policy, dtype):
    """Raises if ``policy`` cannot run in a model of ``dtype`` (mixed needs float32)."""
    if policy.is_mixed and np.dtype(dtype) != np.float32:
        raise ValueError(f"layer {layer.name!r}: dtype policy {policy.name!r} needs a float32 model "
                         f"(float32 master weights), got a {np.dtype(dtype).name} model; "
                         f"use the 'float64' policy or a float32 model")


def serialize(policy):
    return {"class_name": "DTypePolicy", "config": policy.get_config()}


def matmul_for(layer):
    """The GEMM of ``layer``'s policy: ``ops.matmul_bf16`` under mixed_bfloat16, else ``ops.matmul``."""
    return _ops.matmul_bf16 if layer._dtype_policy.is_mixed else _ops.matmul


def kernel_alpha(act):
    """The alpha the kernels take for this activation (its own, else the registry default)."""
    return act.alpha if act.alpha is not None else _ops._DEFAULT_ALPHA.get(act.kernel, 0.0)


def _c_array(a, dtype, write=False):
    """``a`` itself when it is a C-contiguous, aligned (with write, writeable) array of
    ``dtype``, else a copy."""
    if a.__class__ is np.ndarray and a.dtype == dtype and a.flags.c_contiguous and a.flags.aligned \
            and (a.flags.writeable or not write):
        return a
    return np.array(a, dtype=dtype, order="C")


def dense_backward(layer, dy, need_dx):
    """A mixed Dense layer's backward as one core call (``_core.dense_bf16_backward``, the
    kernel the native step calls too): dz = dy * act'(y) in place (from y's bfloat16 bits
    when it is stored so), dW = bf16(x).T @ bf16(dz) with the bias gradient, the column
    sums of dz in float32 (rows in order: column_sum's sums), taken while dz is packed,
    and dx = bf16(dz) @ bf16(W).T. An activation the GEMM epilogue did not fuse (softmax,
    one needing its input) runs its float32 backward first, in Python."""
    act = layer._act
    kernel, alpha = "identity", 0.0
    if not act.is_linear:
        if act.kernel is not None and not act.needs_input and layer._z is None:
            kernel, alpha = act.kernel, float(kernel_alpha(act))
        else:  # y is float32 here: only fused activations store bfloat16 outputs
            dy = act.backward(dy, x=layer._z, y=layer._y, out=dy)
    dy = _c_array(dy, np.float32, write=True)
    x = layer._x
    x = _c_array(x, np.uint16 if getattr(x, "dtype", None) == np.uint16 else np.float32)
    trainable = layer.trainable
    dW = layer.grads["kernel"] if trainable else None
    db = layer.grads["bias"] if trainable and layer.use_bias else None
    dx = layer._buffer(("dx", dy.shape[0]), x.shape) if need_dx else None
    _core.dense_bf16_backward(x, layer._y, layer.vars["kernel"], dy, kernel, alpha, dW, db, dx)
    return dx


# -- bfloat16 storage of activations between mixed Dense layers ------------------
#
# A mixed Dense layer whose output is read only by mixed Dense layers (the only
# readers of that value in the graph: not a model output, not a shared layer)
# stores its output in bfloat16 (uint16 bit patterns) while training: the
# forward GEMM's epilogue rounds it (nearest even) after bias and activation,
# each reader takes it as its bf16 A operand (x @ W, and x.T @ dz for dW), and
# the layer's activation gradient reads the rounded y. It is safe because every
# reader rounds its input to bfloat16 anyway: the forward numbers are the ones
# of float32 storage, bit for bit. The gradient of relu / leaky_relu depends on
# y's sign only, so it is exact too (but for float32-subnormal y, stored as
# zero: docs/BF16.md); sigmoid, tanh, ... take their derivative from the
# rounded y (relative error up to 2**-8 in y). Only activations fused
# into the GEMM's epilogue (that need no saved input) qualify.

def plan_bf16_outputs(nodes, n_in, outs):
    """Sets each layer's ``_bf16_readers`` from the graph: the layers reading its output
    when they all read bfloat16 (``reads_bf16``), else ``()``. Called when the graph is built."""
    readers = [[] for _ in nodes]
    for node in nodes:
        for v in node.inbound:
            if v >= n_in:
                readers[v - n_in].append(node)
    uses = {}
    for node in nodes:
        uses[id(node.layer)] = uses.get(id(node.layer), 0) + 1
    outs = set(outs)
    for k, node in enumerate(nodes):
        layer, rs = node.layer, readers[k]
        ok = (getattr(layer, "writes_bf16", False) and uses[id(layer)] == 1 and n_in + k not in outs and rs
              and all(getattr(r.layer, "reads_bf16", False) and not r.merge for r in rs))
        layer._bf16_readers = tuple(r.layer for r in rs) if ok else ()


def stores_bf16(layer, act, training, logits):
    """True when this forward call of ``layer`` writes its output as bfloat16 bits: in
    training, mixed, a fused activation, and every reader (still) mixed."""
    readers = layer._bf16_readers
    return (bool(readers) and training and not logits and layer._dtype_policy.is_mixed
            and act.kernel is not None and not act.needs_input
            and all(r._dtype_policy.is_mixed for r in readers))


def as_float(y):
    """A copy of a layer's output for the user: bfloat16 bits widened to float32."""
    return _ops.bfloat16_unpack(y) if getattr(y, "dtype", None) == np.uint16 else np.array(y)
