"""The learning-rate range test (``fastnn.tuning.lr_range_test``): the notes' "too
small, the loss does not move; too large, it goes to NaN" search, automated.

Below :mod:`fastnn.tuning`, which re-exports :func:`lr_range_test` and
:class:`LRRangeResult`; nothing here imports the search.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._validate import Integral, Interval, Real, validate

__all__ = ["LRRangeResult", "lr_range_test"]


def history_dict(h):
    """The per-epoch lists of a fit's History (or of a dict already)."""
    if isinstance(h, dict):
        return h
    d = getattr(h, "history", None)
    if isinstance(d, dict):
        return d
    raise TypeError(f"build_fn: the model's fit() returned {type(h).__name__}; "
                    "expected a History or a dict of per-epoch lists")



@dataclass
class LRRangeResult:
    """Result of :func:`lr_range_test`: the learning rates tried, the raw and
    smoothed losses, the rate where the smoothed loss falls fastest
    (``steepest_lr``), where it is lowest (``min_loss_lr``), where it
    exploded (``diverged_lr``, None if it never did), and ``suggested_lr``
    (the steepest point, the usual pick)."""
    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    steepest_lr: float
    min_loss_lr: float
    diverged_lr: float | None
    suggested_lr: float

    def plot(self, path=None):
        """Loss against learning rate (log axis) with the marks; saves a PNG
        when ``path`` is given (needs matplotlib). Returns the figure."""
        from . import plots
        return plots.lr_range_plot(self, path)


def lr_range_test(build_fn, x, y, lr_min: float = 1e-6, lr_max: float = 10.0,
                  steps: int = 200, batch_size: int = 64, *, seed: int = 0,
                  smoothing: float = 0.9, diverge_factor: float = 4.0) -> LRRangeResult:
    """Sweep the learning rate from ``lr_min`` to ``lr_max`` on a log scale,
    one mini-batch step each, and report where the loss falls fastest and
    where it explodes: the notes' "too small, the loss does not move; too
    large, it goes to NaN" search, automated.

    ``build_fn()`` returns a freshly compiled model (its optimizer's learning
    rate is overwritten at every step). The sweep stops early once the
    smoothed loss exceeds ``diverge_factor`` times its minimum, or is NaN.

    >>> from fastnn.tuning import lr_range_test
    >>> r = lr_range_test(build_fn, x_train, y_train)   # doctest: +SKIP
    >>> r.suggested_lr, r.diverged_lr                  # doctest: +SKIP
    """
    if not callable(build_fn):
        raise TypeError(f"build_fn: expected a callable, got {type(build_fn).__name__}")
    validate(dict(lr_min=lr_min, lr_max=lr_max, steps=steps, batch_size=batch_size, smoothing=smoothing,
                  diverge_factor=diverge_factor), _CONSTRAINTS, "lr_range_test")
    if not lr_min < lr_max:
        raise ValueError(f"lr_max: expected a number > lr_min = {lr_min}, got {lr_max}")
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim < 2 or len(x) != len(y) or len(x) == 0:
        raise ValueError(f"x, y: expected (n, features) inputs and n targets, got shapes "
                         f"{x.shape} and {y.shape}")
    from . import initializers
    initializers.set_random_seed(seed)
    model = build_fn()
    if not getattr(model, "compiled", False):
        raise ValueError("build_fn: must return a compiled model")
    lrs = np.geomspace(lr_min, lr_max, steps)
    losses, smoothed, diverged = _sweep(model, x, y, lrs, min(batch_size, len(x)),
                                        np.random.default_rng(seed), smoothing, diverge_factor)
    return _suggest(lrs[:len(losses)], np.asarray(losses), np.asarray(smoothed), diverged, lr_min)


_CONSTRAINTS = {
    "lr_min": [Interval(Real, 0, None, closed="neither")], "lr_max": [Interval(Real, 0, None, closed="neither")],
    "steps": [Interval(Integral, 10, None, closed="left")],  # fewer gives no usable curve
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "smoothing": [Interval(Real, 0, 1, closed="left")],
    "diverge_factor": [Interval(Real, 1, None, closed="neither")],
}


def _sweep(model, x, y, lrs, bs, rng, smoothing, diverge_factor):
    """One mini-batch step per learning rate; stops at a non-finite loss or once the
    smoothed loss exceeds ``diverge_factor`` times its minimum."""
    losses, smoothed = [], []
    avg, best, diverged = 0.0, math.inf, None
    order = rng.permutation(len(x))
    pos = 0
    for i, lr in enumerate(lrs):
        if pos + bs > len(x):
            order = rng.permutation(len(x))
            pos = 0
        idx = order[pos:pos + bs]
        pos += bs
        model.optimizer.learning_rate = float(lr)
        with np.errstate(all="ignore"):
            h = model.fit(x[idx], y[idx], batch_size=bs, epochs=1, verbose=0, shuffle=False)
        loss = float(history_dict(h)["loss"][-1])
        losses.append(loss)
        if not math.isfinite(loss):
            smoothed.append(float("nan"))
            diverged = float(lr)
            break
        avg = smoothing * avg + (1 - smoothing) * loss
        sm = avg / (1 - smoothing ** (i + 1))  # bias-corrected moving average
        smoothed.append(sm)
        best = min(best, sm)
        if i > 5 and sm > diverge_factor * best:
            diverged = float(lr)
            break
    return losses, smoothed, diverged


def _suggest(lrs, losses, smoothed, diverged, lr_min):
    n = len(losses)
    usable = np.flatnonzero(np.isfinite(smoothed))
    if usable.size < 3:
        raise ValueError(f"lr_min: the loss diverged almost at once ({n} steps); "
                         f"start the sweep lower than {lr_min:g}")
    i_min = int(usable[np.argmin(smoothed[usable])])
    # steepest descent: most negative slope of the smoothed loss against log(lr),
    # looked for up to the minimum (after it the loss is on its way up)
    skip = min(max(1, n // 20), i_min)
    seg = np.arange(skip, i_min + 1)
    if seg.size >= 2:
        slope = np.gradient(smoothed[seg], np.log(lrs[seg]))
        i_steep = int(seg[np.argmin(slope)])
    else:
        i_steep = i_min
    return LRRangeResult(lrs=lrs, losses=losses, smoothed=smoothed,
                         steepest_lr=float(lrs[i_steep]), min_loss_lr=float(lrs[i_min]),
                         diverged_lr=diverged, suggested_lr=float(lrs[i_steep]))
