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

from ._validate import Integral, Interval, validate

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


# ----------------------------------------------------------------- sanity_check

@dataclass
class CheckResult:
    """One check of :func:`sanity_check`: its name, pass/fail (None when it
    does not apply), a one-line explanation and the numbers behind it."""
    name: str
    passed: bool | None
    detail: str
    values: dict = field(default_factory=dict)


class SanityReport(list):
    """The list of :class:`CheckResult` from :func:`sanity_check`; ``ok`` is
    True when no check failed. Printing it gives a table."""

    @property
    def ok(self) -> bool:
        return all(c.passed is not False for c in self)

    def __str__(self):
        mark = {True: "PASS", False: "FAIL", None: "n/a "}
        return "\n".join(f"[{mark[c.passed]}] {c.name}: {c.detail}" for c in self)


def _copy_without(model, dropout=True, regularization=True):
    from .gradcheck import _copy_model
    clone = _copy_model(model, drop_dropout=dropout)
    if regularization:
        clone.regularizer = None
        for layer in clone.layers:
            for s in layer.specs:
                s.regularizer = None
    clone._reg_items = None
    return clone


def _data_loss(model, x, y):
    logs = model.evaluate(x, y, return_dict=True)
    return float(logs.get("data_loss", logs["loss"])), float(logs["loss"])


def _expected_initial_loss(model):
    name = model.loss.name
    width = model.layers[-1].output_shape[-1]
    if name in ("sparse_categorical_crossentropy", "categorical_crossentropy") and width > 1:
        return math.log(width), f"ln {width} for {width} balanced classes with softmax"
    if name == "binary_crossentropy":
        return math.log(2), "ln 2 for a sigmoid output"
    return None, None


def _is_classifier(model):
    return model.loss.name in ("sparse_categorical_crossentropy", "categorical_crossentropy",
                               "binary_crossentropy")


def _train_accuracy(model, x, y):
    p = model.predict(x)
    if p.shape[-1] == 1:
        pred = (p[:, 0] > 0.5).astype(np.int64)
        true = np.asarray(y).reshape(len(y), -1)[:, 0] > 0.5
        return float(np.mean(pred == true))
    pred = p.argmax(1)
    yy = np.asarray(y)
    true = yy.argmax(1) if yy.ndim == 2 and yy.shape[1] > 1 else yy.reshape(-1)
    return float(np.mean(pred == true))


def sanity_check(model, x, y, n_overfit: int = 20, max_epochs: int = 200,
                 reg_strength: float = 1e-2, loss_tolerance: float = 0.25, seed: int = 0,
                 verbose: bool = False) -> SanityReport:
    """The notes' basic verification before a long run, in one call, on
    copies of a compiled ``model`` (the model itself is not changed):

    1. **initial loss** with regularization off, against its expected value
       (ln C for C balanced classes with a softmax output, ln 2 for a sigmoid
       one); passes within ``loss_tolerance`` (relative).
    2. **regularization raises the loss**: with the model's own
       regularization, or an L2 of ``reg_strength`` if it has none.
    3. **overfit a tiny subset**: ``n_overfit`` examples, dropout and
       regularization off, reach 100% training accuracy (regression: 1% of
       the initial loss) within ``max_epochs`` full-batch epochs.

    Returns a :class:`SanityReport`; ``print`` it for a table.

    >>> import numpy as np, fastnn
    >>> from fastnn.layers import Dense
    >>> from fastnn.sanity import sanity_check
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(200, 10)).astype("float32"); y = rng.integers(0, 4, 200)
    >>> m = fastnn.Sequential([Dense(64, activation="relu", input_dim=10),
    ...                        Dense(4, activation="softmax")])
    >>> m.compile(fastnn.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    >>> report = sanity_check(m, x, y)
    >>> report.ok
    True
    """
    if not getattr(model, "compiled", False):
        raise ValueError("model: compile it first (model.compile(optimizer, loss, ...))")
    xa = np.asarray(x)
    ya = np.asarray(y)
    if xa.ndim < 2 or len(xa) != len(ya):
        raise ValueError(f"x, y: expected (n, features) inputs and n targets, got shapes "
                         f"{xa.shape} and {ya.shape}")
    validate({"n_overfit": n_overfit, "max_epochs": max_epochs}, _CONSTRAINTS, "sanity_check")
    if not model.built:
        model.build(xa.shape[1:])
    report = SanityReport([_check_initial_loss(model, xa, ya, loss_tolerance),
                           _check_regularization(model, xa, ya, reg_strength),
                           _check_overfit(model, xa, ya, n_overfit, max_epochs, seed)])
    if verbose:
        print(report)
    return report


_CONSTRAINTS = {"n_overfit": [Interval(Integral, 1, None, closed="left")],
                "max_epochs": [Interval(Integral, 1, None, closed="left")]}


def _check_initial_loss(model, xa, ya, loss_tolerance):
    """1. the initial loss, regularization off, against its expected value."""
    plain = _copy_without(model, dropout=True, regularization=True)
    loss0, _ = _data_loss(plain, xa, ya)
    expected, why = _expected_initial_loss(model)
    if expected is None:
        return CheckResult("initial loss", None,
                           f"{loss0:.4f} (no expected value for loss {model.loss.name!r})", {"loss": loss0})
    rel = abs(loss0 - expected) / expected
    ok = rel <= loss_tolerance
    hint = "" if ok else (" — check the initialization scale and the output layer"
                          if loss0 > expected else " — suspiciously low: check for label leaks")
    return CheckResult("initial loss", ok, f"{loss0:.4f}, expected {expected:.4f} ({why}), "
                       f"off by {rel:.1%}{hint}", {"loss": loss0, "expected": expected})


def _check_regularization(model, xa, ya, reg_strength):
    """2. regularization (the model's own, else an L2 of ``reg_strength``) raises the loss."""
    from . import regularizers as _regularizers
    reg = _copy_without(model, dropout=True, regularization=False)
    data_loss, total = _data_loss(reg, xa, ya)
    source = "the model's regularization"
    if total == data_loss:
        reg.regularizer = _regularizers.L2(reg_strength)
        reg._reg_items = None
        data_loss, total = _data_loss(reg, xa, ya)
        source = f"L2({reg_strength:g})"
    return CheckResult("regularization raises the loss", total > data_loss,
                       f"{data_loss:.4f} without, {total:.4f} with {source}",
                       {"without": data_loss, "with": total})


def _check_overfit(model, xa, ya, n_overfit, max_epochs, seed):
    """3. a tiny subset, dropout and regularization off, is fitted exactly within ``max_epochs``."""
    rng = np.random.default_rng(seed)
    k = min(n_overfit, len(xa))
    idx = rng.choice(len(xa), k, replace=False)
    xs, ys = xa[idx], ya[idx]
    small = _copy_without(model, dropout=True, regularization=True)
    small.optimizer.build(small._params.size, small.dtype)  # fresh optimizer state
    small.optimizer.iterations = 0
    classify = _is_classifier(model)
    start_loss, _ = _data_loss(small, xs, ys)
    epochs_used, reached, metric = 0, False, float("nan")
    chunk = 10
    while epochs_used < max_epochs:
        n = min(chunk, max_epochs - epochs_used)
        small.fit(xs, ys, batch_size=k, epochs=n, verbose=0, shuffle=False)
        epochs_used += n
        if classify:
            metric = _train_accuracy(small, xs, ys)
            reached = metric == 1.0
        else:
            metric, _ = _data_loss(small, xs, ys)
            reached = metric <= 0.01 * start_loss
        if reached:
            break
    end_loss, _ = _data_loss(small, xs, ys)
    if classify:
        detail = (f"{k} examples: training accuracy {metric:.0%} after {epochs_used} epochs, "
                  f"loss {start_loss:.4f} -> {end_loss:.4f}")
    else:
        detail = (f"{k} examples: loss {start_loss:.4g} -> {end_loss:.4g} after {epochs_used} "
                  f"epochs (target 1% of the start)")
    if not reached:
        detail += " — cannot overfit: check the gradients, raise the learning rate or the capacity"
    return CheckResult("overfit a tiny subset", reached, detail,
                       {"epochs": epochs_used, "start_loss": start_loss, "end_loss": end_loss,
                        "accuracy" if classify else "loss": metric})
