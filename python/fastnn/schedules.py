"""Learning-rate schedules: ``lr = schedule(step)``.

By default ``step`` is the optimizer's update count, as in Keras; with
``per_epoch=True`` it is the epoch index the trainer passes (0-based).
``InverseTimeDecay(per_epoch=True)`` is the course notes'
``lr = lr0 / (1 + decay_rate * epoch_num)`` with epochs counted from 1, so the
first epoch already runs at ``lr0 / (1 + decay_rate)``; the notes' table
(lr0 = 0.2, decay 1: epochs 1-4 at 0.1, 0.067, 0.05, 0.04):

>>> s = InverseTimeDecay(0.2, decay_steps=1, decay_rate=1.0, per_epoch=True)
>>> [round(s(e), 3) for e in range(4)]  # the trainer's epoch indices 0..3
[0.1, 0.067, 0.05, 0.04]

Use it as ``fastnn.optimizers.SGD(learning_rate=s)``.
"""
from __future__ import annotations

import math

from ._validate import Interval, Real, validate

_POSITIVE = Interval(Real, 0, None, closed="neither")


class LearningRateSchedule:
    """Base: ``__call__(step) -> float``; ``per_epoch`` chooses what ``step`` counts."""

    per_epoch = False

    def __call__(self, step):
        raise NotImplementedError

    def get_config(self):
        raise NotImplementedError


def _positive(v, name):
    validate({name: v}, {name: [_POSITIVE]}, "schedule")
    return v


class ExponentialDecay(LearningRateSchedule):
    """lr0 * decay_rate ** (step / decay_steps); ``staircase`` floors the exponent."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, per_epoch=False):
        self.initial_learning_rate = float(_positive(initial_learning_rate, "initial_learning_rate"))
        self.decay_steps = _positive(decay_steps, "decay_steps")
        self.decay_rate = float(_positive(decay_rate, "decay_rate"))
        self.staircase, self.per_epoch = bool(staircase), bool(per_epoch)

    def __call__(self, step):
        p = step / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate * self.decay_rate ** p

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "per_epoch": self.per_epoch}


class InverseTimeDecay(LearningRateSchedule):
    """lr0 / (1 + decay_rate * step / decay_steps); ``staircase`` floors step / decay_steps.

    Per step (default) ``step`` is Keras's update count, from 0, so the first update runs
    at lr0. With ``per_epoch=True`` it is the notes' ``epoch_num``, counted from 1: the
    trainer's 0-based epoch index ``e`` gives ``lr0 / (1 + decay_rate * (e + 1) / decay_steps)``.
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, per_epoch=False):
        self.initial_learning_rate = float(_positive(initial_learning_rate, "initial_learning_rate"))
        self.decay_steps = _positive(decay_steps, "decay_steps")
        validate({"decay_rate": decay_rate}, {"decay_rate": [Interval(Real, 0, None, closed="left")]},
                 "InverseTimeDecay")
        self.decay_rate = float(decay_rate)
        self.staircase, self.per_epoch = bool(staircase), bool(per_epoch)

    def __call__(self, step):
        if self.per_epoch:
            step = step + 1  # the notes count epochs from 1
        p = step / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate / (1.0 + self.decay_rate * p)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "per_epoch": self.per_epoch}


class PiecewiseConstantDecay(LearningRateSchedule):
    """values[0] while step <= boundaries[0], values[1] while step <= boundaries[1], ..., values[-1] after.

    >>> s = PiecewiseConstantDecay([10, 20], [0.1, 0.01, 0.001])
    >>> s(10), s(11), s(21)
    (0.1, 0.01, 0.001)
    """

    def __init__(self, boundaries, values, per_epoch=False):
        boundaries, values = list(boundaries), [float(v) for v in values]
        if len(values) != len(boundaries) + 1:
            raise ValueError(f"values: expected len(boundaries) + 1 = {len(boundaries) + 1} values, "
                             f"got {len(values)}")
        if any(b2 <= b1 for b1, b2 in zip(boundaries, boundaries[1:])):
            raise ValueError(f"boundaries: expected increasing numbers, got {boundaries}")
        self.boundaries, self.values, self.per_epoch = boundaries, values, bool(per_epoch)

    def __call__(self, step):
        for b, v in zip(self.boundaries, self.values):
            if step <= b:
                return v
        return self.values[-1]

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values, "per_epoch": self.per_epoch}


class CosineDecay(LearningRateSchedule):
    """lr0 * ((1 - alpha) * (1 + cos(pi * min(step, decay_steps) / decay_steps)) / 2 + alpha)."""

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, per_epoch=False):
        self.initial_learning_rate = float(_positive(initial_learning_rate, "initial_learning_rate"))
        self.decay_steps = _positive(decay_steps, "decay_steps")
        validate({"alpha": alpha}, {"alpha": [Interval(Real, 0, 1, closed="both")]}, "CosineDecay")
        self.alpha, self.per_epoch = float(alpha), bool(per_epoch)

    def __call__(self, step):
        p = min(step, self.decay_steps) / self.decay_steps
        return self.initial_learning_rate * ((1 - self.alpha) * 0.5 * (1 + math.cos(math.pi * p)) + self.alpha)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "alpha": self.alpha, "per_epoch": self.per_epoch}


_CLASSES = {c.__name__: c for c in (ExponentialDecay, InverseTimeDecay, PiecewiseConstantDecay, CosineDecay)}


def serialize(s):
    return {"class_name": type(s).__name__, "config": s.get_config()}


def deserialize(d):
    cls = _CLASSES.get(d.get("class_name"))
    if cls is None:
        raise ValueError(f"schedule: unknown class {d.get('class_name')!r}; known: {', '.join(_CLASSES)}")
    return cls(**d["config"])
