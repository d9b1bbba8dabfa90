"""Weight averaging for the optimizers (Keras 3's ``use_ema``).

The optimizer keeps ``average`` as one more slot over the flat arena (saved with the model,
remapped when the layout changes); after each update, over every
trainable range: ``average = m * average + (1 - m) * weights`` with ``m = ema_momentum``,
except at the optimizer's first step (``m = 0``: the average starts at the weights, as
Keras). ``ema_overwrite_frequency = n`` writes the average into the weights every n steps.
``finalize`` writes it into the weights (``fit`` calls it at its end, as Keras's
``finalize_variable_values``); ``swap`` exchanges the two (for evaluation; the optimizer
remembers whether they are exchanged, so ``finalize`` after an odd number of swaps keeps the
average in the model instead of writing the raw weights back).
Entries never trained hold NaN until their first update and are never written back.
"""
from __future__ import annotations

import numpy as np

SLOT = "average"  # the optimizer slot holding it (NaN until an entry's first update)


def check(use_ema, ema_momentum, ema_overwrite_frequency):
    if not isinstance(use_ema, (bool, np.bool_)):
        raise TypeError(f"use_ema: expected True or False, got {use_ema!r}")
    if isinstance(ema_momentum, bool) or not isinstance(ema_momentum, (int, float, np.floating)) \
            or not 0 <= ema_momentum <= 1:
        raise ValueError(f"ema_momentum: expected a number in [0, 1], got {ema_momentum!r}")
    if ema_overwrite_frequency is not None and (
            isinstance(ema_overwrite_frequency, bool) or not isinstance(ema_overwrite_frequency, (int, np.integer))
            or ema_overwrite_frequency < 1):
        raise ValueError(f"ema_overwrite_frequency: expected an int >= 1 or None, got {ema_overwrite_frequency!r}")


def update(opt, params, ranges):
    """One averaging step over the trainable ranges (the optimizer's iterations already counted it)."""
    a = opt.state[SLOT]
    m = 0.0 if opt.iterations == 1 else opt.ema_momentum
    started = getattr(opt, "_average_started", False)  # no NaN left anywhere: skip the scan
    for lo, hi in ranges:
        avg, w = a[lo:hi], params[lo:hi]
        if not started:  # entries updated for the first time start at the weights
            fresh = np.isnan(avg)
            avg[fresh] = w[fresh]
        avg *= avg.dtype.type(m)
        avg += avg.dtype.type(1.0 - m) * w
    opt._average_params, opt._average_ranges = params, list(ranges)
    if not started:
        opt._average_started = not np.isnan(a).any()
    f = opt.ema_overwrite_frequency
    if f and opt.iterations % f == 0:
        for lo, hi in ranges:
            params[lo:hi] = a[lo:hi]


def finalize(opt):
    params = getattr(opt, "_average_params", None)
    if params is None:
        return  # never stepped since the arena was placed: nothing to write
    a = opt.state[SLOT]
    swapped = getattr(opt, "_average_swapped", False)
    for lo, hi in opt._average_ranges:
        if swapped:  # the model already holds the average (SwapEMAWeights): keep it, in both
            a[lo:hi] = params[lo:hi]
        else:
            params[lo:hi] = a[lo:hi]
    opt._average_swapped = False


def swap(opt):
    params = getattr(opt, "_average_params", None)
    if params is None:
        raise ValueError("use_ema: no moving average yet (the optimizer has not taken a step)")
    a = opt.state[SLOT]
    for lo, hi in opt._average_ranges:
        w = params[lo:hi].copy()
        params[lo:hi] = a[lo:hi]
        a[lo:hi] = w
    opt._average_swapped = not getattr(opt, "_average_swapped", False)
