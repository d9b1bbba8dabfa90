"""Keras's ``keras.utils`` helpers users reach for: ``to_categorical``, ``set_random_seed``.

>>> from fastnn.utils import to_categorical
>>> to_categorical([0, 2, 1], 3).tolist()
[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
"""
from __future__ import annotations

import random

import numpy as np

from . import initializers as _initializers


def to_categorical(x, num_classes=None):
    """One-hot rows (float32) of integer class ids ``x`` (any shape: a trailing axis is
    added, a trailing axis of size 1 replaced, as Keras does). num_classes: default
    ``max(x) + 1``."""
    a = np.asarray(x)
    if a.size and not (np.issubdtype(a.dtype, np.integer) or np.all(a == np.floor(a))):
        raise ValueError("x: expected integer class ids")
    a = a.astype(np.int64)
    if a.ndim > 1 and a.shape[-1] == 1:
        a = a[..., 0]
    if num_classes is None:
        num_classes = int(a.max()) + 1 if a.size else 0
    elif isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes: expected a positive int, got {num_classes!r}")
    if a.size and (a.min() < 0 or a.max() >= num_classes):
        raise ValueError(f"x: class ids must be in [0, {num_classes}), got values from {a.min()} to {a.max()}")
    out = np.zeros(a.shape + (int(num_classes),), dtype=np.float32)
    np.put_along_axis(out, a[..., None], 1.0, axis=-1)
    return out


def set_random_seed(seed):
    """Seed everything fastnn draws from (initializers, fit's shuffling, dropout seeds
    derived from them) and Python's and NumPy's global generators, as Keras does."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected an int >= 0, got {seed!r}")
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    _initializers.set_random_seed(int(seed))


__all__ = ["to_categorical", "set_random_seed"]
