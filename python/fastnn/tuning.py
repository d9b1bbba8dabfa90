"""Hyperparameter search the way the course notes teach it: random (not grid)
search, on a log scale for scale parameters, coarse to fine, plus the
learning-rate range test.

::

    space = {"lr": loguniform(1e-4, 1), "units": intlog(32, 512),
             "activation": choice(["relu", "tanh"]), "dropout": uniform(0, 0.5),
             "momentum": log1m(0.9, 0.999)}          # beta = 1 - 10**u
    trials = random_search(build_fn, space, 20, x, y, (x_dev, y_dev), epochs=3, seed=0)
    finer = refine(space, trials, top_k=5)          # narrower ranges around the best
    trials2 = random_search(build_fn, finer, 20, x, y, (x_dev, y_dev), epochs=10, seed=1)

``build_fn(params)`` gets one sampled dict and returns a compiled model (any
object whose ``fit(x, y, epochs=, batch_size=, validation_data=, verbose=)``
returns a History or a dict of per-epoch lists). Trials run one after the
other, or on any ``concurrent.futures.Executor``: :func:`process_executor`
(a local ``spawn`` process pool), or a Dask cluster's
``dask.distributed.Client(...).get_executor()``. The parameters of every
trial are drawn up front from ``seed``, so the same seed gives the same
trials whichever executor runs them.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from ._validate import Integral, Interval, validate
from ._trials import process_executor, run_all as _run_all
from .lr_range import LRRangeResult, lr_range_test

__all__ = [
    "loguniform", "uniform", "choice", "intlog", "log1m", "Trial", "sample", "random_search",
    "refine", "format_trials", "process_executor", "lr_range_test", "LRRangeResult",
]


# ----------------------------------------------------------------- search space

class Distribution:
    """Base of the search-space distributions; ``sample(rng)`` draws one value."""

    def sample(self, rng: np.random.Generator):
        raise NotImplementedError


def _check_bounds(name, low, high, positive=False):
    for arg, v in (("low", low), ("high", high)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise TypeError(f"{name}: {arg} must be a number, got {type(v).__name__}")
        if not math.isfinite(v):
            raise ValueError(f"{name}: {arg} must be finite, got {v}")
        if positive and v <= 0:
            raise ValueError(f"{name}: {arg} must be > 0 for a log scale, got {v}")
    if not low < high:
        raise ValueError(f"{name}: expected low < high, got low={low}, high={high}")


class _Range(Distribution):
    log = False
    integer = False

    def __init__(self, low, high):
        _check_bounds(type(self).__name__, low, high, positive=self.log)
        self.low = low
        self.high = high

    def to_scale(self, v):
        """Map a value to the axis the distribution is uniform on."""
        return math.log(v) if self.log else float(v)

    def from_scale(self, s):
        v = math.exp(s) if self.log else s
        return int(round(v)) if self.integer else float(v)

    def sample(self, rng):
        s = rng.uniform(self.to_scale(self.low), self.to_scale(self.high))
        v = self.from_scale(s)
        if self.integer:
            v = min(max(v, self.low), self.high)
        return v

    def with_bounds(self, low, high):
        return type(self)(low, high)

    def __eq__(self, other):
        return type(self) is type(other) and (self.low, self.high) == (other.low, other.high)

    def __repr__(self):
        return f"{type(self).__name__}({self.low!r}, {self.high!r})"


class loguniform(_Range):
    """Uniform on a log scale between ``low`` and ``high`` (both > 0): for
    learning rates and regularization strengths, whose effect is
    multiplicative.

    >>> import numpy as np
    >>> from fastnn.tuning import loguniform
    >>> v = loguniform(1e-4, 1).sample(np.random.default_rng(0))
    >>> 1e-4 <= v <= 1
    True
    """
    log = True


class uniform(_Range):
    """Uniform between ``low`` and ``high`` (e.g. a dropout rate).

    >>> import numpy as np
    >>> from fastnn.tuning import uniform
    >>> 0.1 <= uniform(0.1, 0.5).sample(np.random.default_rng(0)) <= 0.5
    True
    """


class intlog(_Range):
    """An integer drawn log-uniformly in ``[low, high]`` (e.g. hidden units, batch size).

    >>> import numpy as np
    >>> from fastnn.tuning import intlog
    >>> v = intlog(16, 1024).sample(np.random.default_rng(0))
    >>> isinstance(v, int) and 16 <= v <= 1024
    True
    """
    log = True
    integer = True

    def __init__(self, low, high):
        for arg, v in (("low", low), ("high", high)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"intlog: {arg} must be an int, got {type(v).__name__}")
        super().__init__(int(low), int(high))


class log1m(_Range):
    """A number in ``[low, high]`` near 1, drawn as ``1 - 10**u`` with ``u`` uniform:
    uniform on ``log(1 - beta)``, the notes' way to search a momentum or averaging
    ``beta`` in [0.9, 0.999]. Uniform on beta itself would spend 90% of the trials
    in [0.9, 0.99], though beta = 0.999 averages over ~1000 steps and 0.99 over ~100:
    what matters is 1 / (1 - beta). ``refine`` narrows it on the same scale.

    >>> import numpy as np
    >>> from fastnn.tuning import log1m
    >>> b = log1m(0.9, 0.999).sample(np.random.default_rng(0))
    >>> 0.9 <= b <= 0.999
    True
    """
    log = False

    def __init__(self, low, high):
        _check_bounds("log1m", low, high)
        if not 0 <= low < high < 1:
            raise ValueError(f"log1m: expected 0 <= low < high < 1, got low={low}, high={high}")
        super().__init__(float(low), float(high))

    def to_scale(self, v):
        return -math.log(1.0 - v)

    def from_scale(self, s):
        return float(1.0 - math.exp(-s))

    def sample(self, rng):
        return min(max(super().sample(rng), self.low), self.high)

    def with_bounds(self, low, high):
        return type(self)(max(low, self.low), min(high, self.high))


class choice(Distribution):
    """One of a list of options, each equally likely (e.g. an activation name).

    >>> import numpy as np
    >>> from fastnn.tuning import choice
    >>> choice(["relu", "tanh"]).sample(np.random.default_rng(0)) in ("relu", "tanh")
    True
    """

    def __init__(self, options):
        if isinstance(options, (str, bytes)) or not hasattr(options, "__iter__"):
            raise TypeError(f"choice: options must be a list, got {type(options).__name__}")
        options = list(options)
        if not options:
            raise ValueError("choice: options must not be empty")
        self.options = options

    def sample(self, rng):
        return self.options[int(rng.integers(len(self.options)))]

    def __eq__(self, other):
        return type(other) is choice and self.options == other.options

    def __repr__(self):
        return f"choice({self.options!r})"


def _check_space(space):
    if not isinstance(space, dict) or not space:
        raise TypeError(f"space: expected a non-empty dict of name -> distribution, "
                        f"got {type(space).__name__}")
    for k in space:
        if not isinstance(k, str):
            raise TypeError(f"space: keys must be str, got {k!r}")


def sample(space: dict, rng) -> dict:
    """Draw one parameter dict from ``space`` (constants are passed through).

    >>> from fastnn.tuning import sample, loguniform
    >>> p = sample({"lr": loguniform(1e-3, 1e-1), "epochs": 3}, 0)
    >>> sorted(p), p["epochs"]
    (['epochs', 'lr'], 3)
    """
    _check_space(space)
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    return {k: (d.sample(rng) if isinstance(d, Distribution) else d) for k, d in space.items()}


# ----------------------------------------------------------------- random search

@dataclass
class Trial:
    """One evaluated configuration: its parameters, the monitored score, the
    full per-epoch history, its seed and index, and the error if it failed."""
    index: int
    params: dict
    score: float = float("nan")
    history: dict = field(default_factory=dict)
    seed: int = 0
    seconds: float = 0.0
    error: str | None = None
    monitor: str | None = None
    mode: str = "max"


def _pick_monitor(monitor, hist):
    if monitor is not None:
        if monitor not in hist:
            raise ValueError(f"monitor: {monitor!r} is not in the history "
                             f"(keys: {sorted(hist)})")
        return monitor
    for m in ("val_accuracy", "val_loss", "accuracy", "loss"):
        if m in hist:
            return m
    raise ValueError(f"monitor: cannot choose one from history keys {sorted(hist)}")


def _mode_for(monitor, mode):
    if mode is not None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode: expected 'min' or 'max', got {mode!r}")
        return mode
    return "min" if ("loss" in monitor or "error" in monitor) else "max"


def random_search(build_fn, space: dict, n_trials: int, x, y, validation_data=None,
                  epochs: int = 5, batch_size: int = 128, *, executor=None, seed: int = 0,
                  monitor: str | None = None, mode: str | None = None,
                  fit_kwargs: dict | None = None, verbose: int = 0) -> list:
    """Random search: ``n_trials`` configurations drawn from ``space``, each
    trained and scored; returns the :class:`Trial` list sorted best first.

    ``build_fn(params)`` (or ``build_fn(params, seed=...)`` if it takes a
    ``seed``) returns a compiled model; ``params`` keys ``epochs`` and
    ``batch_size``, when present, override the arguments of the same name.
    The score is the last epoch's value of ``monitor`` (default
    ``val_accuracy``, else ``val_loss``, ``accuracy``, ``loss``); ``mode``
    is ``"max"``/``"min"`` (default: min for names with "loss"/"error").
    A trial that raises or ends in NaN is kept, last, with its error.
    ``executor`` is None (sequential), any ``concurrent.futures.Executor``
    (see :func:`process_executor`, or Dask's ``Client.get_executor()``;
    ``build_fn`` must then be picklable, i.e. defined at module level).

    >>> from fastnn.tuning import random_search, loguniform
    >>> trials = random_search(build_fn, {"lr": loguniform(1e-4, 1)}, 10,
    ...                        x, y, (x_dev, y_dev), epochs=2, seed=0)   # doctest: +SKIP
    >>> print(format_trials(trials[:3]))                                  # doctest: +SKIP
    """
    if not callable(build_fn):
        raise TypeError(f"build_fn: expected a callable, got {type(build_fn).__name__}")
    _check_space(space)
    validate(dict(n_trials=n_trials, epochs=epochs, batch_size=batch_size, seed=seed),
             _SEARCH_CONSTRAINTS, "random_search")
    if executor is not None and not hasattr(executor, "submit"):
        raise TypeError(f"executor: expected a concurrent.futures.Executor, "
                        f"got {type(executor).__name__}")
    if mode is not None:
        _mode_for("", mode)

    rng = np.random.default_rng(seed)
    plans = [(i, sample(space, rng), int(rng.integers(2**31 - 1))) for i in range(n_trials)]
    args = (x, y, validation_data, epochs, batch_size, fit_kwargs, monitor)
    results = _run_all(build_fn, plans, args, executor, verbose)
    return _rank(plans, results, monitor, mode)


_SEARCH_CONSTRAINTS = {
    "n_trials": [Interval(Integral, 1, None, closed="left")], "epochs": [Interval(Integral, 1, None, closed="left")],
    "batch_size": [Interval(Integral, 1, None, closed="left")], "seed": [Interval(Integral, None, None, closed="both")],
}


def _rank(plans, results, monitor, mode):
    """The trials scored by the last value of ``monitor`` (chosen from the first history if None),
    best first; failed or non-finite ones last."""
    trials = []
    chosen = monitor
    for i, params, s in plans:
        r = results[i]
        t = Trial(index=i, params=params, seed=s)
        if isinstance(r, Exception):
            t.error = f"{type(r).__name__}: {r}"
        else:
            t.history, t.seconds = r
            if chosen is None:
                chosen = _pick_monitor(None, t.history)
            else:
                _pick_monitor(chosen, t.history)
            vals = t.history[chosen]
            t.score = float(vals[-1]) if vals else float("nan")
            if not math.isfinite(t.score):
                t.error = t.error or f"{chosen} is {t.score}"
        trials.append(t)
    direction = _mode_for(chosen or "", mode)
    sign = -1.0 if direction == "max" else 1.0

    def key(t):
        bad = t.error is not None or not math.isfinite(t.score)
        return (bad, sign * t.score if not bad else 0.0, t.index)

    trials.sort(key=key)
    for t in trials:
        t.monitor, t.mode = chosen, direction
    return trials


def _fmt_value(v):
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def _fmt_params(p):
    return " ".join(f"{k}={_fmt_value(v)}" for k, v in p.items())


def format_trials(trials, limit: int | None = None) -> str:
    """A plain-text table of trials (rank, score, parameters), best first.

    >>> from fastnn.tuning import Trial, format_trials
    >>> print(format_trials([Trial(0, {"lr": 0.01}, score=0.9)]))
    rank  score    lr
       1  0.9      0.01
    """
    trials = list(trials)[:limit]
    if not trials:
        return "(no trials)"
    keys = list(dict.fromkeys(k for t in trials for k in t.params))
    rows = [["rank", "score"] + keys]
    for r, t in enumerate(trials, 1):
        score = "failed" if t.error else f"{t.score:.4g}"
        rows.append([str(r), score] + [_fmt_value(t.params.get(k, "")) for k in keys])
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [row[0].rjust(max(widths[0], 4))] + [c.ljust(max(w, 7)) for c, w in
                                                     zip(row[1:], widths[1:])]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


# ----------------------------------------------------------------- coarse to fine

def refine(space: dict, trials, top_k: int = 5, margin: float = 0.1,
           edge: float = 0.05) -> dict:
    """Narrow ``space`` around the ``top_k`` best trials: the next, finer stage
    of a coarse-to-fine search.

    Each numeric range becomes the span of the top trials' values, widened by
    ``margin`` of that span on each side (measured on the distribution's own
    scale, so log ranges narrow in log space) and clipped to the old range;
    a ``choice`` keeps only the options the top trials used; constants stay.
    If the best trial's value lies within ``edge`` (a fraction of the old
    width) of an end of its range, a ``UserWarning`` says so: the optimum may
    lie outside, and the range should be moved rather than narrowed.

    >>> from fastnn.tuning import refine, loguniform, Trial
    >>> space = {"lr": loguniform(1e-5, 1)}
    >>> trials = [Trial(0, {"lr": 1e-3}, 0.9), Trial(1, {"lr": 3e-3}, 0.8)]
    >>> refine(space, trials, top_k=2)  # doctest: +ELLIPSIS
    {'lr': loguniform(0.000895..., 0.00334...)}
    """
    _check_space(space)
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise ValueError(f"top_k: expected an int >= 1, got {top_k!r}")
    if not 0 <= margin:
        raise ValueError(f"margin: expected >= 0, got {margin}")
    good = [t for t in trials if t.error is None and math.isfinite(t.score)]
    if not good:
        raise ValueError("trials: no successful trial to refine around")
    top = good[:top_k]
    best = top[0]
    out = {}
    for name, dist in space.items():
        if not isinstance(dist, Distribution):
            out[name] = dist
            continue
        vals = [t.params[name] for t in top if name in t.params]
        if not vals:
            out[name] = dist
            continue
        if isinstance(dist, choice):
            used = [o for o in dist.options if o in vals]
            out[name] = choice(used)
            continue
        lo_s, hi_s = dist.to_scale(dist.low), dist.to_scale(dist.high)
        width = hi_s - lo_s
        b = dist.to_scale(best.params[name])
        if b - lo_s <= edge * width or hi_s - b <= edge * width:
            side = "lower" if b - lo_s <= edge * width else "upper"
            warnings.warn(
                f"refine: the best {name}={_fmt_value(best.params[name])} sits at the "
                f"{side} edge of {dist!r}; the optimum may lie outside, widen the range "
                f"on that side", UserWarning, stacklevel=2)
        s = [dist.to_scale(v) for v in vals]
        span = max(s) - min(s)
        pad = margin * span if span > 0 else margin * width
        new_lo = max(lo_s, min(s) - pad)
        new_hi = min(hi_s, max(s) + pad)
        if dist.integer:
            unscale = math.exp if dist.log else float
            low = max(dist.low, math.floor(unscale(new_lo)))
            high = min(dist.high, math.ceil(unscale(new_hi)))
            if low >= high:
                low, high = max(dist.low, low - 1), min(dist.high, high + 1)
        else:
            low, high = dist.from_scale(new_lo), dist.from_scale(new_hi)
        out[name] = dist.with_bounds(low, high)
    return out
