"""A bad input is named before a bad output.

Every op with ``out=`` checks its inputs (and what it requires of them, such as
the rows of a batch) before its outputs, so a call where both are wrong names
the input. batchnorm did not: its bindings checked the outputs before the batch
size, so a batch too small for training passed with a wrong ``out`` was reported
as an ``out`` error (found by Hypothesis in test_fuzz_ops; that test's rule says
the batch size is checked before out).
"""
from __future__ import annotations

import numpy as np
import pytest

from fastnn import ops

F32 = np.float32


def ones(*shape, dtype=F32):
    return np.ones(shape, dtype)


def bad_out(kind, shape):
    """An out= that must be refused: read-only, a list, the other float dtype, a wrong shape."""
    if kind == "readonly":
        o = np.zeros(shape, F32)
        o.flags.writeable = False
        return o
    if kind == "list":
        return np.zeros(shape, F32).tolist()
    if kind == "float64":
        return np.zeros(shape, np.float64)
    return np.zeros(tuple(shape) + (2,), F32)


X_INT = np.ones((4, 3), np.int64)
BN = (ones(3), ones(3), np.zeros(3, F32), ones(3))  # gamma, beta, running_mean, running_var
BN_BWD = (ones(3), np.zeros(3, F32), ones(3))  # gamma, batch_mean, batch_invstd

# op -> (call(out), the argument at fault, the shape of a right out)
CASES = {
    "activation": (lambda out: ops.activation("relu", X_INT, out=out), "x", (4, 3)),
    "activation_grad": (lambda out: ops.activation_grad("relu", X_INT, x=ones(4, 3), out=out), "dy", (4, 3)),
    "softmax": (lambda out: ops.softmax(X_INT, out=out), "x", (4, 3)),
    "log_softmax": (lambda out: ops.log_softmax(X_INT, out=out), "x", (4, 3)),
    "matmul": (lambda out: ops.matmul(X_INT, ones(3, 2), out=out), "a", (4, 2)),
    "matmul_act_grad": (lambda out: ops.matmul_act_grad(X_INT, ones(3, 2), activation="relu", x=ones(4, 2), out=out),
                        "a", (4, 2)),
    "matmul_bf16": (lambda out: ops.matmul_bf16(ones(4, 3, dtype=np.float64), ones(3, 2), out=out), "a", (4, 2)),
    "bfloat16_round": (lambda out: ops.bfloat16_round(ones(4, 3, dtype=np.float64), out=out), "x", (4, 3)),
    "column_sum": (lambda out: ops.column_sum(X_INT, out=out), "x", (3,)),
    "dropout": (lambda out: ops.dropout(X_INT, 0.5, seed=1, out=out), "x", (4, 3)),
    "binary_cross_entropy_with_logits": (
        lambda out: ops.binary_cross_entropy_with_logits(X_INT, ones(4, 3), out=out), "logits", (4, 3)),
    "mean_squared_error": (lambda out: ops.mean_squared_error(X_INT, ones(4, 3), out=out), "pred", (4, 3)),
    "softmax_cross_entropy": (lambda out: ops.softmax_cross_entropy(X_INT, np.zeros(4, np.int64), out=out),
                              "logits", (4, 3)),
    "batchnorm_forward x dtype": (lambda out: ops.batchnorm_forward(X_INT, *BN, out=out), "x", (4, 3)),
    "batchnorm_forward one row in training": (lambda out: ops.batchnorm_forward(ones(1, 3), *BN, out=out),
                                              "x: training-mode batch norm needs a batch of at least 2 rows", (1, 3)),
    "batchnorm_forward no row in training": (lambda out: ops.batchnorm_forward(ones(0, 3), *BN, out=out),
                                             "x: training-mode batch norm needs a batch of at least 2 rows", (0, 3)),
    "batchnorm_backward dy shape": (lambda out: ops.batchnorm_backward(ones(5, 3), ones(4, 3), *BN_BWD, out=out),
                                    "dy", (4, 3)),
    "batchnorm_backward no row": (lambda out: ops.batchnorm_backward(ones(0, 3), ones(0, 3), *BN_BWD, out=out),
                                  "x: expected at least 1 row", (0, 3)),
}


@pytest.mark.parametrize("out_kind", ["readonly", "list", "float64", "shape"])
@pytest.mark.parametrize("op", sorted(CASES))
def test_a_bad_input_is_named_before_a_bad_out(op, out_kind):
    call, fault, shape = CASES[op]
    with pytest.raises((TypeError, ValueError)) as e:
        call(bad_out(out_kind, shape))
    assert str(e.value).startswith(fault), f"{op}: expected the error to name {fault!r}, got {e.value!r}"


def test_batchnorm_forward_batch_too_small_with_a_bad_out_changes_nothing():
    rm, rv = np.zeros(3, F32), ones(3)
    with pytest.raises(ValueError, match="^x: training-mode batch norm needs a batch of at least 2 rows"):
        ops.batchnorm_forward(ones(1, 3), ones(3), ones(3), rm, rv, out=bad_out("readonly", (1, 3)))
    assert np.array_equal(rm, np.zeros(3)) and np.array_equal(rv, np.ones(3))
