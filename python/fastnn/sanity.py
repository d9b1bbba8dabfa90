"""Checks to run before a long training run, and the bias/variance verdict after one.

* :func:`sanity_check` — the notes' basic verification in one call: the
  initial loss matches its expected value, regularization raises the loss,
  and the model can overfit a tiny subset.
* :func:`diagnose` — the basic recipe: compare training error with the base
  (Bayes / human) error and dev error with training error, say whether the
  model suffers high bias, high variance, both or neither, and what to try next.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["diagnose", "Diagnosis", "sanity_check", "SanityReport", "CheckResult"]

_BIAS_STEPS = ("bigger network (more units or layers)", "train longer",
               "better optimizer (Adam, tuned learning rate)", "revisit the architecture")
_VARIANCE_STEPS = ("more training data", "regularization (L2, dropout)",
                   "data augmentation", "early stopping", "revisit the architecture")


@dataclass
class Diagnosis:
    """Result of :func:`diagnose`: the verdict (``"high bias"``, ``"high
    variance"``, ``"high bias and high variance"`` or ``"fine"``), the two
    gaps, and the next steps of the basic recipe."""
    verdict: str
    avoidable_bias: float
    variance: float
    next_steps: list = field(default_factory=list)

    @property
    def high_bias(self) -> bool:
        return "bias" in self.verdict

    @property
    def high_variance(self) -> bool:
        return "variance" in self.verdict

    def __str__(self):
        lines = [f"{self.verdict}: avoidable bias {self.avoidable_bias:.2%} "
                 f"(train - base), variance {self.variance:.2%} (dev - train)"]
        lines += [f"  next: {s}" for s in self.next_steps]
        return "\n".join(lines)


def _check_error(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a number, got {type(v).__name__}")
    v = float(v)
    if not math.isfinite(v) or not 0.0 <= v <= 1.0:
        raise ValueError(f"{name}: expected an error rate in [0, 1] (a fraction, "
                         f"not a percentage), got {v}")
    return v


def diagnose(train_error: float, dev_error: float, base_error: float = 0.0,
             tolerance: float = 0.02) -> Diagnosis:
    """The bias/variance verdict of the course notes' basic recipe.

    Avoidable bias is ``train_error - base_error`` (base: the best achievable,
    e.g. human-level, error); variance is ``dev_error - train_error``. A gap
    above ``tolerance`` (absolute, default 2 points) is "high". High bias
    comes first in the recipe: fix it (bigger network, train longer) before
    the variance (more data, regularization). Errors are fractions in [0, 1].

    >>> from fastnn.sanity import diagnose
    >>> diagnose(0.01, 0.11).verdict
    'high variance'
    >>> diagnose(0.15, 0.16).verdict
    'high bias'
    >>> diagnose(0.15, 0.30).verdict
    'high bias and high variance'
    >>> diagnose(0.005, 0.01).verdict
    'fine'
    >>> diagnose(0.15, 0.16, base_error=0.14).verdict   # the task is hard for humans too
    'fine'
    """
    train_error = _check_error("train_error", train_error)
    dev_error = _check_error("dev_error", dev_error)
    base_error = _check_error("base_error", base_error)
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or \
            not 0 <= tolerance < 1:
        raise ValueError(f"tolerance: expected a number in [0, 1), got {tolerance!r}")
    bias = train_error - base_error
    variance = dev_error - train_error
    high_bias = bias > tolerance
    high_var = variance > tolerance
    if high_bias and high_var:
        verdict = "high bias and high variance"
        steps = ["first reduce the bias: " + s for s in _BIAS_STEPS[:2]] + \
                ["then the variance: " + s for s in _VARIANCE_STEPS[:2]]
    elif high_bias:
        verdict, steps = "high bias", list(_BIAS_STEPS)
    elif high_var:
        verdict, steps = "high variance", list(_VARIANCE_STEPS)
    else:
        verdict, steps = "fine", ["done: evaluate once on the test set"]
    if variance < -tolerance:
        steps.append("dev error is well below training error: check that dev and "
                     "training data come from the same distribution, and for leaks")
    return Diagnosis(verdict, bias, variance, steps)
