"""NumPy twins of ``ops.norm_constraint`` and ``ops.non_neg`` (the formulas of
``fastnn.constraints``, as NumPy computes them: the norms summed in the variable's dtype).
The kernels accumulate each norm in float64: they agree within 2e-6 (float32) / 1e-14
(float64) relative (tests/test_native_step_clip.py)."""
from __future__ import annotations

import numpy as np

EPS = 1e-7  # Keras's backend epsilon


def norms(w, axis):
    return np.sqrt(np.sum(np.square(w), axis=axis, keepdims=True))


def norm_constraint(w, rule, axis=0, *, min_value=0.0, max_value=1.0, rate=1.0):
    """The projected copy of w (float32 or float64)."""
    t, n = w.dtype.type, norms(w, axis)
    if rule == "unit_norm":
        return w / (t(EPS) + n)
    if rule == "max_norm":
        desired = np.clip(n, 0, t(max_value))
    else:
        desired = t(rate) * np.clip(n, t(min_value), t(max_value)) + t(1.0 - rate) * n
    return w * (desired / (t(EPS) + n)).astype(w.dtype, copy=False)


def non_neg(w):
    return np.maximum(w, 0)
