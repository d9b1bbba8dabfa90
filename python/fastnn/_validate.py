"""Declared hyperparameter constraints, checked once per constructor (issue 11).

In the manner of scikit-learn's ``_parameter_constraints``: a class declares
``{name: [constraint, ...]}`` and its constructor calls
``validate(params, constraints, owner)`` before it changes any state. A value is
accepted when any of its constraints accepts it. A constraint is

- ``Interval(Integral | Real, left, right, closed=...)``: a number in a range
  (``None`` for an open end). ``bool`` is never a number; a ``Real`` must be finite;
- ``Options(type, {...})``: one of a set of values of that type;
- ``None``: the value ``None``;
- a class: any instance of it (a schedule, a RandomState, ...).

The error is an :class:`InvalidParameterError`, both a ``ValueError`` and a
``TypeError`` (as scikit-learn's), so callers catching either keep working. The
message names the argument, what was expected and what was received::

    momentum: expected a number in [0, 1), got 1.5 (in SGD)

>>> from numbers import Real
>>> validate({"rate": 0.5}, {"rate": [Interval(Real, 0, 1, closed="left")]}, "Dropout")
>>> validate({"rate": True}, {"rate": [Interval(Real, 0, 1, closed="left")]}, "Dropout")
Traceback (most recent call last):
...
fastnn._validate.InvalidParameterError: rate: expected a number in [0, 1), got True (in Dropout)

The structural facts of arrays (dtype, layout, shape, overlap) are not declared
here: the bindings check them once. Model-level facts (label range, input width)
belong to the trainer and the loss's ``prepare_targets``.
"""
from __future__ import annotations

import math
from numbers import Integral, Real

__all__ = ["InvalidParameterError", "Interval", "Options", "validate", "Integral", "Real"]


class InvalidParameterError(ValueError, TypeError):
    """A hyperparameter outside its declared constraints."""


class Interval:
    """Numbers of ``type`` (``Integral`` or ``Real``) between ``left`` and ``right``.

    ``closed`` is ``"left"``, ``"right"``, ``"both"`` or ``"neither"``; a ``None`` end is
    unbounded. ``Interval(Real, ...)`` accepts ints too (every Integral is Real)."""

    def __init__(self, type, left, right, *, closed):
        if type not in (Integral, Real):
            raise TypeError(f"type: expected Integral or Real, got {type!r}")
        if closed not in ("left", "right", "both", "neither"):
            raise ValueError(f"closed: expected 'left', 'right', 'both' or 'neither', got {closed!r}")
        if left is not None and right is not None and left > right:
            raise ValueError(f"left: expected <= right, got {left!r} > {right!r}")
        self.type, self.left, self.right, self.closed = type, left, right, closed

    def accepts(self, value):
        if isinstance(value, bool) or not isinstance(value, self.type):
            return False
        if self.type is Real and not math.isfinite(value):
            return False
        if self.left is not None:
            if value < self.left or (value == self.left and self.closed not in ("left", "both")):
                return False
        if self.right is not None:
            if value > self.right or (value == self.right and self.closed not in ("right", "both")):
                return False
        return True

    def describe(self):
        what = "an int" if self.type is Integral else "a number"
        lo_closed = self.closed in ("left", "both")
        hi_closed = self.closed in ("right", "both")
        if self.left is None and self.right is None:
            return what
        if self.right is None:
            return f"{what} {'>=' if lo_closed else '>'} {self.left}"
        if self.left is None:
            return f"{what} {'<=' if hi_closed else '<'} {self.right}"
        return f"{what} in {'[' if lo_closed else '('}{self.left}, {self.right}{']' if hi_closed else ')'}"

    def __repr__(self):
        return f"Interval({self.type.__name__}, {self.left!r}, {self.right!r}, closed={self.closed!r})"


class Options:
    """One of ``options``, each an instance of ``type`` (``Options(str, {"min", "max"})``)."""

    def __init__(self, type, options):
        # the declared order when given as a sequence, sorted when given as a set
        ordered = options if isinstance(options, (list, tuple)) else sorted(options, key=repr)
        self.type, self.options = type, tuple(ordered)

    def accepts(self, value):
        return isinstance(value, self.type) and not isinstance(value, bool) and value in self.options

    def describe(self):
        return "one of " + ", ".join(repr(o) for o in self.options)

    def __repr__(self):
        return f"Options({self.type.__name__}, {set(self.options)!r})"


def _accepts(constraint, value):
    if constraint is None:
        return value is None
    if isinstance(constraint, type):
        return isinstance(value, constraint)
    return constraint.accepts(value)


def _describe(constraint):
    if constraint is None:
        return "None"
    if isinstance(constraint, type):
        return f"a {constraint.__name__}"
    return constraint.describe()


def validate(params, constraints, owner):
    """Check each ``params[name]`` that ``constraints`` declares; raise
    :class:`InvalidParameterError` for the first that none of its constraints accepts."""
    for name, allowed in constraints.items():
        if name not in params:
            continue
        value = params[name]
        if not any(_accepts(c, value) for c in allowed):
            expected = " or ".join(_describe(c) for c in allowed)
            raise InvalidParameterError(f"{name}: expected {expected}, got {value!r} (in {owner})")
