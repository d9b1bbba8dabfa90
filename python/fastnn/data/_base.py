"""What every data adapter shares: the adapter contract, batch checks, the seeded
generator fit uses, and the re-batcher that turns chunks of any size into batches.

An adapter's epoch iterator yields ``(x, y)`` or ``(x, y, sample_weight)`` tuples
(``(x,)`` when there are no targets) of NumPy arrays, batch-first.
"""
from __future__ import annotations

import math

import numpy as np


class DataAdapter:
    """Base class (Keras 3 ``DataAdapter``): ``get_epoch_iterator()`` yields the batches of
    one epoch; ``num_batches`` is the number of steps, or None when the length is unknown."""

    num_batches = None
    batch_size = None
    has_partial_batch = None
    partial_batch_size = None

    def get_epoch_iterator(self):
        raise NotImplementedError

    def on_epoch_end(self):
        """Called by the trainer after every epoch."""

    def __iter__(self):
        return iter(self.get_epoch_iterator())

    def __len__(self):
        if self.num_batches is None:
            raise TypeError(f"{type(self).__name__}: the number of batches is unknown")
        return self.num_batches


def make_rng(seed):
    """fit's generator: ``default_rng(seed)``, fastnn's global generator for None, or a
    ``numpy.random.Generator`` used as given."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        from .. import initializers
        return initializers.global_rng()
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected an int >= 0, a numpy Generator or None, got {seed!r}")
    return np.random.default_rng(int(seed))


def check_batch_size(batch_size, what="batch_size"):
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"{what}: expected a positive int, got {batch_size!r}")
    return int(batch_size)


def check_shuffle(shuffle):
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"shuffle: expected True or False, got {shuffle!r}")
    return bool(shuffle)


def check_numeric(a, what):
    """``a`` as an array of numbers (float, int or bool), else a TypeError naming ``what``."""
    try:
        a = np.asarray(a)
    except ValueError as e:  # ragged nested lists
        raise ValueError(f"{what}: expected an array of numbers, got {type(a).__name__} that NumPy cannot "
                         f"make one array of ({e})") from None
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_) or np.issubdtype(a.dtype, np.complexfloating):
        raise TypeError(f"{what}: expected numbers (float, int or bool), got an array of dtype {a.dtype}")
    if a.ndim == 0:
        raise ValueError(f"{what}: expected an array with one row per sample, got a scalar")
    return a


def check_arrays(x, y, sample_weight, where=""):
    """Check one (x, y, sample_weight) group: numeric, same number of rows; returns them as arrays."""
    x = check_numeric(x, f"x{where}")
    n = x.shape[0]
    if y is not None:
        y = check_numeric(y, f"y{where}")
        if y.shape[0] != n:
            raise ValueError(f"x, y{where}: x has {n} samples but y has {y.shape[0]}: lengths differ")
    if sample_weight is not None:
        if y is None:
            raise ValueError(f"sample_weight{where}: given without targets y")
        sample_weight = check_numeric(sample_weight, f"sample_weight{where}")
        if sample_weight.ndim != 1 or sample_weight.shape[0] != n:
            raise ValueError(f"sample_weight{where}: expected shape ({n},), one weight per sample, "
                             f"got {sample_weight.shape}")
    return x, y, sample_weight


def unpack(batch, where):
    """A user's batch (Keras ``unpack_x_y_sample_weight``): an array, or a tuple/list of
    1 to 3 arrays; returns checked (x, y, sample_weight)."""
    if isinstance(batch, (tuple, list)):
        if not 1 <= len(batch) <= 3:
            raise ValueError(f"batch{where}: expected (x,), (x, y) or (x, y, sample_weight), "
                             f"got a {type(batch).__name__} of {len(batch)} items")
        items = tuple(batch) + (None,) * (3 - len(batch))
    elif isinstance(batch, dict):
        raise TypeError(f"batch{where}: expected arrays or a tuple of arrays, got a dict")
    else:
        items = (batch, None, None)
    return check_arrays(*items, where=where)


def pack(x, y, sample_weight):
    if y is None:
        return (x,)
    if sample_weight is None:
        return (x, y)
    return (x, y, sample_weight)


def steps(n, batch_size):
    return math.ceil(n / batch_size) if n is not None else None


def rebatch(chunks, batch_size):
    """Batches of exactly ``batch_size`` rows (the last one partial) from an iterator of
    (x, y, sample_weight) chunks of any size; holds at most one chunk plus one batch."""
    carry = None
    for chunk in chunks:
        parts = [a for a in chunk]
        if carry is not None:
            parts = [None if a is None else np.concatenate([c, a]) for c, a in zip(carry, parts)]
            carry = None
        n = parts[0].shape[0]
        s = 0
        while n - s >= batch_size:
            yield pack(*(None if a is None else a[s:s + batch_size] for a in parts))
            s += batch_size
        if s < n:
            carry = [None if a is None else a[s:].copy() for a in parts]
    if carry is not None:
        yield pack(*carry)


def shuffle_rows(parts, rng):
    """The rows of one chunk (x, y, sample_weight) in a random order."""
    p = rng.permutation(parts[0].shape[0])
    return tuple(None if a is None else a[p] for a in parts)
