"""Checked Python wrappers over the compiled core: the ops contract.

Every function takes NumPy arrays of one float dtype (float32 or float64),
returns new arrays unless ``out=`` is given, and raises ``TypeError`` (wrong
type or dtype) or ``ValueError`` (wrong shape, value or layout) naming the
argument, what was expected and what came. Non-contiguous inputs are copied; a
non-contiguous, read-only or wrongly typed ``out=`` is an error. Each kernel
releases the GIL. ``fastnn.reference`` holds a NumPy twin of every function.
:func:`take_rows` (the row gather) is the one op that takes any fixed-size dtype.

bfloat16 (mixed precision): :func:`matmul_bf16` and :func:`bfloat16_round`
take and return float32 arrays (NumPy has no bfloat16); the operands are
rounded to bfloat16 inside the kernel, once, and products accumulate in
float32. Any other dtype is a ``TypeError``. bfloat16 *storage* is uint16 bit
patterns (``ops.bf16``: :func:`bfloat16_pack`, :func:`bfloat16_unpack`), which
``matmul_bf16`` takes for its operands and its ``out``.

The functions live in submodules by family (``_common``: argument checks and the
activation registry; ``eltwise``, ``gemm``, ``norm``, ``loss``, ``optim``, ``reduce``,
``gather``, ``constrain``);
this package re-exports every name, so ``fastnn.ops.X`` is the one place to call.
"""
from __future__ import annotations

from .. import _core  # noqa: F401  (ops._core, as before the split)
from ._common import (_FLOAT_DTYPES, _describe, _float_array, _c_aligned, _out_array, _outs, _coerced,
                      _arrays, _new_or, _state_array, _real, REGISTRY, ACTIVATIONS, _DEFAULT_ALPHA,
                      _activation_name, _activation_alpha)
from .eltwise import activation, activation_grad, softmax, log_softmax
from .gemm import (_plain_matrix, matmul, _matmul_checked, _grad_product, matmul_act_grad, matmul_bias_grad,
                   matmul_bf16, bfloat16_round)
from .bf16 import bfloat16_pack, bfloat16_unpack
from .norm import batchnorm_forward, batchnorm_backward, dropout
from .layernorm import layernorm_forward, layernorm_backward
from .loss import (_logits_matrix, _grad_out, softmax_cross_entropy, _elementwise_pair,
                   binary_cross_entropy_with_logits, mean_squared_error)
from .optim import _param_and_grad, _weight_decay, sgd_update, rmsprop_update, adagrad_update, adam_update
from .reduce import clip_by_global_norm, clip_by_value, column_sum, all_finite, sum_squares, abs_sum
from .gather import take_rows
from .constrain import constraint_view, norm_constraint, non_neg

__all__ = [
    "REGISTRY", "ACTIVATIONS", "activation", "activation_grad", "softmax", "log_softmax", "matmul",
    "matmul_act_grad", "matmul_bias_grad", "matmul_bf16", "bfloat16_round", "bfloat16_pack", "bfloat16_unpack", "batchnorm_forward",
    "batchnorm_backward", "dropout", "softmax_cross_entropy", "binary_cross_entropy_with_logits",
    "mean_squared_error", "sgd_update", "rmsprop_update", "adagrad_update", "adam_update",
    "clip_by_global_norm", "clip_by_value", "column_sum", "all_finite", "sum_squares", "abs_sum", "take_rows",
    "constraint_view", "norm_constraint", "non_neg", "layernorm_forward", "layernorm_backward",
]
