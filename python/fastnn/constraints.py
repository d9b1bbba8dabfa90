"""Weight constraints, Keras names and semantics: projections applied to a variable after
each optimizer update (``Dense(kernel_constraint=MaxNorm(3))``, as the cs231n notes suggest
with dropout).

``MaxNorm(max_value=2, axis=0)``: every slice along ``axis`` (for a Dense kernel of shape
(inputs, units) and axis=0, the incoming weight vector of each unit) whose L2 norm exceeds
``max_value`` is rescaled to norm ``max_value``: ``w * clip(n, 0, max) / (eps + n)``.
``UnitNorm(axis=0)``: ``w / (eps + n)``. ``MinMaxNorm(min_value=0, max_value=1, rate=1,
axis=0)``: ``w * (rate * clip(n, min, max) + (1 - rate) * n) / (eps + n)``. ``NonNeg()``:
negative entries set to 0. ``eps`` is Keras's 1e-7. Computed by ``ops.norm_constraint`` and
``ops.non_neg`` (the native training step calls the same kernels): each norm accumulated in
float64, within 2e-6 (float32) / 1e-14 (float64) relative of NumPy's formulas
(``fastnn._reference_constraints``). A constraint is applied in place, to the parameters of trainable
layers only, after the update of each step (not to the initial weights, as in Keras).

>>> import numpy as np, fastnn
>>> w = np.array([[3.0, 0.1], [4.0, 0.0]])
>>> fastnn.constraints.MaxNorm(2)(w).round(3)
array([[1.2, 0.1],
       [1.6, 0. ]])
"""
from __future__ import annotations

import numpy as np

from . import ops as _ops
from ._registry import resolve


def _check_axis(axis):
    if isinstance(axis, (list, tuple)):
        if not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axis):
            raise TypeError(f"axis: expected an int or a tuple of ints, got {axis!r}")
        return tuple(int(a) for a in axis)
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"axis: expected an int or a tuple of ints, got {axis!r}")
    return int(axis)


class Constraint:
    """``c(w)`` returns the projected copy; ``c.apply_(w)`` projects ``w`` in place."""

    def __call__(self, w):
        w = np.array(w, dtype=np.result_type(np.asarray(w).dtype, np.float32))
        self.apply_(w)
        return w

    def apply_(self, w):
        raise NotImplementedError

    def get_config(self):
        return {}


def _positive(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or not np.isfinite(v) or v <= 0:
        raise ValueError(f"{name}: expected a positive finite number, got {v!r}")
    return float(v)


class MaxNorm(Constraint):
    """Slices along ``axis`` rescaled to L2 norm at most ``max_value`` (Keras default 2)."""

    def __init__(self, max_value=2, axis=0):
        self.max_value, self.axis = _positive("max_value", max_value), _check_axis(axis)

    def apply_(self, w):
        _ops.norm_constraint(w, "max_norm", self.axis, max_value=self.max_value)

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class MinMaxNorm(Constraint):
    """Slices along ``axis`` rescaled towards an L2 norm in [``min_value``, ``max_value``]:
    ``w * (rate * clip(n, min_value, max_value) + (1 - rate) * n) / (eps + n)`` (Keras's
    defaults 0, 1, ``rate=1``: exactly into the interval; a smaller rate moves part way)."""

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.max_value = _positive("max_value", max_value)
        if isinstance(min_value, bool) or not isinstance(min_value, (int, float, np.number)) \
                or not 0 <= min_value <= self.max_value:
            raise ValueError(f"min_value: expected a number in [0, max_value={self.max_value}], got {min_value!r}")
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.number)) or not 0 <= rate <= 1:
            raise ValueError(f"rate: expected a number in [0, 1], got {rate!r}")
        self.min_value, self.rate, self.axis = float(min_value), float(rate), _check_axis(axis)

    def apply_(self, w):
        _ops.norm_constraint(w, "min_max_norm", self.axis, min_value=self.min_value, max_value=self.max_value,
                             rate=self.rate)

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate, "axis": self.axis}


class UnitNorm(Constraint):
    """Slices along ``axis`` rescaled to unit L2 norm."""

    def __init__(self, axis=0):
        self.axis = _check_axis(axis)

    def apply_(self, w):
        _ops.norm_constraint(w, "unit_norm", self.axis)

    def get_config(self):
        return {"axis": self.axis}


class NonNeg(Constraint):
    """Negative entries set to zero."""

    def apply_(self, w):
        _ops.non_neg(w)


_BY_NAME = {"max_norm": MaxNorm, "min_max_norm": MinMaxNorm, "unit_norm": UnitNorm, "non_neg": NonNeg}
_CLASSES = {c.__name__: c for c in (MaxNorm, MinMaxNorm, UnitNorm, NonNeg)}


def _from_config(cls, config):
    if "axis" in config and isinstance(config["axis"], list):
        config["axis"] = tuple(config["axis"])
    return cls(**config)


def get(identifier):
    """A Constraint from None, a name, a class, an instance or a serialized dict."""
    if identifier is None:
        return None
    return resolve(identifier, kind="constraint", base=Constraint, by_name=_BY_NAME, classes=_CLASSES,
                   expected="a Constraint", from_config=_from_config)


def serialize(constraint):
    if constraint is None:
        return None
    return {"class_name": type(constraint).__name__, "config": constraint.get_config()}
