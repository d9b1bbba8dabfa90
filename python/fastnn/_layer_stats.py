"""Statistics of one layer's outputs (mean, std, saturated and dead fractions): what
``Model.activation_stats`` and ``fastnn.monitor`` report. NumPy only, below the graph."""
from __future__ import annotations

import numpy as np

# |y| (tanh, softsign) or distance from 0/1 (sigmoid) counted as saturated
_SATURATING = {"tanh": ("abs", 0.97), "sigmoid": ("unit", 0.03), "hard_sigmoid": ("unit", 0.03),
               "softsign": ("abs", 0.97)}
_RELU_LIKE = ("relu",)


def _activation_name(layer):
    act = getattr(layer, "activation", None)
    name = getattr(act, "name", None)
    return name if isinstance(name, str) else None


def saturation_fraction(y, activation: str | None) -> float:
    """Fraction of the outputs ``y`` of a saturating activation sitting on a
    flat part: ``|y| > 0.97`` for tanh, ``y < 0.03`` or ``y > 0.97`` for
    sigmoid; NaN for activations that do not saturate.

    >>> import numpy as np
    >>> from fastnn.monitor import saturation_fraction
    >>> saturation_fraction(np.tanh(np.array([0.1, 5.0, -5.0, 0.2])), "tanh")
    0.5
    """
    rule = _SATURATING.get(activation or "")
    if rule is None:
        return float("nan")
    y = np.asarray(y)
    kind, t = rule
    if kind == "abs":
        return float(np.mean(np.abs(y) > t))
    return float(np.mean((y < t) | (y > 1 - t)))


def layer_statistics(layer, y):
    """{"mean", "std", "saturated", "dead", "zero"} of ``layer``'s outputs ``y``."""
    act = _activation_name(layer)
    y2 = y.reshape(y.shape[0], -1)
    s = {"mean": float(y2.mean()), "std": float(y2.std()),
         "saturated": saturation_fraction(y2, act)}
    if act in _RELU_LIKE:
        # a dead unit outputs 0 for every example; zero_fraction counts elements
        s["dead"] = float(np.mean(np.all(y2 <= 0, axis=0)))
        s["zero"] = float(np.mean(y2 <= 0))
    else:
        s["dead"] = float("nan")
        s["zero"] = float("nan")
    return s
