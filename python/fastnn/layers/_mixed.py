"""A layer's dtype policy (Keras 3's ``dtype=``) and Dense's bfloat16 products.

Under ``mixed_bfloat16`` a Dense layer runs its three GEMMs through
:func:`fastnn.ops.matmul_bf16` (operands rounded to bfloat16, float32
accumulation): the forward ``x @ W`` with the fused bias+activation epilogue,
and in the backward ``dW = x.T @ dz`` and ``dx = dz @ W.T``. The bias gradient
(``column_sum(dz)``), the activation's gradient, BatchNormalization, the
softmax/loss and the optimizer stay float32; the weights (the arena) and the
optimizer state are float32 master copies. The other layers compute in float32.

The model's dtype decides the variables' dtype: ``float32`` and ``float64``
policies on a layer only name it; ``mixed_bfloat16`` needs a float32 model and
is refused, with a ``ValueError``, in a float64 one.
"""
from __future__ import annotations

import numpy as np

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
            raise TypeError(f"{argname}: expected a policy name (str) or a Policy, "
                            f"got {type(dtype).__name__}") from None
    try:
        return _mp.DTypePolicy(dtype)
    except (TypeError, ValueError) as e:
        raise type(e)(str(e).replace("name:", f"{argname}:", 1)) from None


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


def affine_backward_bf16(layer, dz, need_dx):
    """``affine_backward`` under mixed_bfloat16: dW and dx through the bf16 GEMM
    (float32 results into the float32 arena and buffers), the bias gradient in float32."""
    if layer.trainable:
        _ops.matmul_bf16(layer._x, dz, trans_a=True, out=layer.grads["kernel"])
        if layer.use_bias:
            _ops.column_sum(dz, out=layer.grads["bias"])
    if not need_dx:
        return None
    dx = layer._buffer(("dx", dz.shape[0]), layer._x.shape)
    _ops.matmul_bf16(dz, layer.vars["kernel"], trans_b=True, out=dx)
    return dx
