"""Weight constraints, Keras names and semantics: projections applied to a variable after
each optimizer update (``Dense(kernel_constraint=MaxNorm(3))``, as the cs231n notes suggest
with dropout).

``MaxNorm(max_value=2, axis=0)``: every slice along ``axis`` (for a Dense kernel of shape
(inputs, units) and axis=0, the incoming weight vector of each unit) whose L2 norm exceeds
``max_value`` is rescaled to norm ``max_value``: ``w * clip(n, 0, max) / (eps + n)``.
``UnitNorm(axis=0)``: ``w / (eps + n)``. ``NonNeg()``: negative entries set to 0.
``eps`` is Keras's 1e-7. A constraint is applied in place, to the parameters of trainable
layers only, after the update of each step (not to the initial weights, as in Keras).

>>> import numpy as np, fastnn
>>> w = np.array([[3.0, 0.1], [4.0, 0.0]])
>>> fastnn.constraints.MaxNorm(2)(w).round(3)
array([[1.2, 0.1],
       [1.6, 0. ]])
"""
from __future__ import annotations

import numpy as np

from ._registry import resolve

_EPS = 1e-7  # Keras's backend epsilon


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

    def _norms(self, w):
        axis = self.axis
        if (isinstance(axis, int) and not -w.ndim <= axis < w.ndim) or \
                (isinstance(axis, tuple) and any(not -w.ndim <= a < w.ndim for a in axis)):
            raise ValueError(f"axis: {axis} is out of range for a variable of shape {w.shape}")
        return np.sqrt(np.sum(np.square(w), axis=axis, keepdims=True))

    def get_config(self):
        return {}


class MaxNorm(Constraint):
    """Slices along ``axis`` rescaled to L2 norm at most ``max_value`` (Keras default 2)."""

    def __init__(self, max_value=2, axis=0):
        if isinstance(max_value, bool) or not isinstance(max_value, (int, float, np.number)) \
                or not np.isfinite(max_value) or max_value <= 0:
            raise ValueError(f"max_value: expected a positive finite number, got {max_value!r}")
        self.max_value, self.axis = float(max_value), _check_axis(axis)

    def apply_(self, w):
        n = self._norms(w)
        t = w.dtype.type
        w *= (np.clip(n, 0, t(self.max_value)) / (t(_EPS) + n)).astype(w.dtype, copy=False)

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class UnitNorm(Constraint):
    """Slices along ``axis`` rescaled to unit L2 norm."""

    def __init__(self, axis=0):
        self.axis = _check_axis(axis)

    def apply_(self, w):
        n = self._norms(w)
        w /= (w.dtype.type(_EPS) + n).astype(w.dtype, copy=False)

    def get_config(self):
        return {"axis": self.axis}


class NonNeg(Constraint):
    """Negative entries set to zero."""

    def apply_(self, w):
        np.maximum(w, 0, out=w)


_BY_NAME = {"max_norm": MaxNorm, "unit_norm": UnitNorm, "non_neg": NonNeg}
_CLASSES = {c.__name__: c for c in (MaxNorm, UnitNorm, NonNeg)}


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
