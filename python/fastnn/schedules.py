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

Use it as ``fastnn.optimizers.SGD(learning_rate=s)``. Also reachable as Keras spells it,
``fastnn.optimizers.schedules`` (``from fastnn.optimizers.schedules import CosineDecay``).
Keras 3's ``CosineDecay`` warmup, ``PolynomialDecay`` and PyTorch's ``OneCycleLR`` too.
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
    """Keras 3's cosine decay, with optional linear warmup.

    Without ``warmup_target``: ``lr0 * ((1 - alpha) * (1 + cos(pi * min(step, decay_steps) /
    decay_steps)) / 2 + alpha)``. With ``warmup_target`` (Keras 3): linear from ``lr0`` to
    ``warmup_target`` over ``warmup_steps``, then the cosine decay from ``warmup_target`` over
    ``decay_steps`` (step counted from the end of the warmup), held at the end. ``lr0`` may then be 0.

    >>> s = CosineDecay(0.0, decay_steps=10, warmup_target=0.1, warmup_steps=5)
    >>> [round(s(t), 4) for t in (0, 1, 5, 10, 15, 99)]
    [0.0, 0.02, 0.1, 0.05, 0.0, 0.0]
    """

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, per_epoch=False, warmup_target=None,
                 warmup_steps=0):
        if warmup_target is None:
            self.initial_learning_rate = float(_positive(initial_learning_rate, "initial_learning_rate"))
        else:
            self.initial_learning_rate = float(_nonneg(initial_learning_rate, "initial_learning_rate"))
            warmup_target = float(_positive(warmup_target, "warmup_target"))
        self.decay_steps = _positive(decay_steps, "decay_steps")
        validate({"alpha": alpha}, {"alpha": [Interval(Real, 0, 1, closed="both")]}, "CosineDecay")
        self.alpha, self.per_epoch = float(alpha), bool(per_epoch)
        self.warmup_target, self.warmup_steps = warmup_target, _nonneg(warmup_steps, "warmup_steps")

    def _decay(self, step, lr):
        p = step / self.decay_steps
        return lr * ((1 - self.alpha) * 0.5 * (1 + math.cos(math.pi * p)) + self.alpha)

    def __call__(self, step):
        if self.warmup_target is None:
            return self._decay(min(step, self.decay_steps), self.initial_learning_rate)
        step = min(step, self.decay_steps + self.warmup_steps)
        if step < self.warmup_steps:
            frac = step / self.warmup_steps
            return (self.warmup_target - self.initial_learning_rate) * frac + self.initial_learning_rate
        return self._decay(step - self.warmup_steps, self.warmup_target)

    def get_config(self):
        c = {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
             "alpha": self.alpha, "per_epoch": self.per_epoch}
        if self.warmup_target is not None:  # only when used: older saved files stay identical
            c.update(warmup_target=self.warmup_target, warmup_steps=self.warmup_steps)
        return c


def _nonneg(v, name):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
        raise ValueError(f"{name}: expected a number >= 0, got {v!r}")
    return v


class PolynomialDecay(LearningRateSchedule):
    """Keras 3: ``(lr0 - end) * (1 - step / decay_steps) ** power + end`` with step held at
    ``decay_steps``; ``cycle=True`` stretches decay_steps to the next multiple of it above step
    (1 at step 0) instead of holding.

    >>> s = PolynomialDecay(0.1, 10, end_learning_rate=0.0, power=2.0)
    >>> [round(s(t), 4) for t in (0, 5, 10, 20)]
    [0.1, 0.025, 0.0, 0.0]
    """

    def __init__(self, initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0, cycle=False,
                 per_epoch=False):
        self.initial_learning_rate = float(_positive(initial_learning_rate, "initial_learning_rate"))
        self.decay_steps = _positive(decay_steps, "decay_steps")
        self.end_learning_rate = float(_nonneg(end_learning_rate, "end_learning_rate"))
        self.power = float(_positive(power, "power"))
        self.cycle, self.per_epoch = bool(cycle), bool(per_epoch)

    def __call__(self, step):
        steps = self.decay_steps
        if self.cycle:
            steps = steps * (1.0 if step == 0 else math.ceil(step / steps))
        else:
            step = min(step, steps)
        p = step / steps
        return (self.initial_learning_rate - self.end_learning_rate) * (1 - p) ** self.power + self.end_learning_rate

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "end_learning_rate": self.end_learning_rate, "power": self.power, "cycle": self.cycle,
                "per_epoch": self.per_epoch}


class OneCycleLR(LearningRateSchedule):
    """PyTorch's ``OneCycleLR`` learning rate (Smith & Topin 2019), step = update count from 0.

    Starts at ``max_lr / div_factor``, rises to ``max_lr`` at step ``pct_start * total_steps - 1``,
    then anneals to ``max_lr / div_factor / final_div_factor`` at step ``total_steps - 1``
    (``anneal_strategy`` "cos" or "linear"); ``three_phase=True``: up, back down to the start
    by step ``2 * pct_start * total_steps - 2``, then down to the minimum, as PyTorch.
    Differences from PyTorch: the momentum is not cycled (``cycle_momentum`` has no
    counterpart), and from step ``total_steps - 1`` on the rate stays at its final value
    (PyTorch raises after ``total_steps`` steps), so a longer fit never stops halfway.
    Also available as ``OneCycle``.

    >>> s = OneCycleLR(max_lr=1.0, total_steps=10, pct_start=0.3)
    >>> [round(s(t), 4) for t in (0, 2, 9)]
    [0.04, 1.0, 0.0]
    """

    def __init__(self, max_lr, total_steps, pct_start=0.3, anneal_strategy="cos", div_factor=25.0,
                 final_div_factor=1e4, three_phase=False, per_epoch=False):
        self.max_lr = float(_positive(max_lr, "max_lr"))
        if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
            raise ValueError(f"total_steps: expected a positive int, got {total_steps!r}")
        if isinstance(pct_start, bool) or not isinstance(pct_start, (int, float)) or not 0 <= pct_start <= 1:
            raise ValueError(f"pct_start: expected a number in [0, 1], got {pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy: expected 'cos' or 'linear', got {anneal_strategy!r}")
        self.total_steps, self.pct_start, self.anneal_strategy = total_steps, float(pct_start), anneal_strategy
        self.div_factor = float(_positive(div_factor, "div_factor"))
        self.final_div_factor = float(_positive(final_div_factor, "final_div_factor"))
        self.three_phase, self.per_epoch = bool(three_phase), bool(per_epoch)
        lo = self.max_lr / self.div_factor
        end = lo / self.final_div_factor
        up = self.pct_start * total_steps - 1
        if self.three_phase:
            self._phases = [(up, lo, self.max_lr), (2 * self.pct_start * total_steps - 2, self.max_lr, lo),
                            (total_steps - 1, lo, end)]
        else:
            self._phases = [(up, lo, self.max_lr), (total_steps - 1, self.max_lr, end)]

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def __call__(self, step):
        step = min(step, self.total_steps - 1)
        begin = 0.0
        for i, (stop, a, b) in enumerate(self._phases):
            if step <= stop or i == len(self._phases) - 1:
                span = stop - begin
                return self._anneal(a, b, (step - begin) / span if span else 1.0)
            begin = stop
        raise AssertionError("unreachable")

    def get_config(self):
        return {"max_lr": self.max_lr, "total_steps": self.total_steps, "pct_start": self.pct_start,
                "anneal_strategy": self.anneal_strategy, "div_factor": self.div_factor,
                "final_div_factor": self.final_div_factor, "three_phase": self.three_phase,
                "per_epoch": self.per_epoch}


OneCycle = OneCycleLR


_CLASSES = {c.__name__: c for c in (ExponentialDecay, InverseTimeDecay, PiecewiseConstantDecay, CosineDecay,
                                    PolynomialDecay, OneCycleLR)}


def serialize(s):
    return {"class_name": type(s).__name__, "config": s.get_config()}


def deserialize(d):
    cls = _CLASSES.get(d.get("class_name"))
    if cls is None:
        raise ValueError(f"schedule: unknown class {d.get('class_name')!r}; known: {', '.join(_CLASSES)}")
    return cls(**d["config"])
