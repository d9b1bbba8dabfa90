"""Fit's batches of in-memory arrays: ``EpochIterator`` (the epoch's permutation, rows
gathered into buffers allocated once per batch size) and the row gather it uses."""
from __future__ import annotations

import math

import numpy as np

from . import _shuffle
from . import initializers as _initializers
from . import ops as _ops


def _take_rows(a, idx, out):
    """Rows ``idx`` of ``a`` into ``out`` (the indices are a permutation's, always in range):
    the core's gather (``ops.take_rows``: rows prefetched, 2-3x faster than NumPy's
    ``take(out=)``) for a C-contiguous array, NumPy's for any other layout (so a strided
    array is never copied whole). The same bytes either way."""
    if a.flags.c_contiguous and a.flags.aligned and not a.dtype.hasobject:
        return _ops.take_rows(a, idx, out=out)
    return np.take(a, idx, axis=0, out=out, mode="clip")


class EpochIterator:
    """Batches of in-memory arrays, epoch after epoch: ``for step, xb, yb in it`` runs one
    epoch. With ``shuffle`` the rows are gathered into buffers allocated once per batch size,
    in epoch ``epoch_index``'s order, a function of (``key``, ``epoch_index``) only
    (``fastnn._shuffle``; the key is one draw from ``rng`` at construction; ``epoch_index``
    counts the epochs iterated, fit sets it); without, the batches are views. The last
    partial batch is kept. Other data adapters (generators, datasets) can stand in for it
    by offering ``steps``, ``batch_size``, ``num_samples`` and the same iteration.

    >>> import numpy as np
    >>> it = EpochIterator(np.arange(10.0)[:, None], np.arange(10), batch_size=4)
    >>> it.steps, [yb.tolist() for _, _, yb in it]
    (3, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]])
    """

    def __init__(self, x, y=None, batch_size=None, shuffle=False, rng=None, sample_weight=None):
        self.x, self.y, self.sample_weight = x, y, sample_weight
        n = self.num_samples = x.shape[0]
        self.batch_size = n if batch_size is None else min(int(batch_size), n)
        self.steps = math.ceil(n / self.batch_size)
        self.shuffle = bool(shuffle)
        self._perm = np.arange(n)
        self.key, self.epoch_index = None, 0
        self._xbufs = self._ybufs = self._wbufs = None
        if self.shuffle:
            self.key = _shuffle.key(rng if rng is not None else _initializers.global_rng())
            sizes = {self.batch_size, n - (self.steps - 1) * self.batch_size}
            self._xbufs = {m: np.empty((m,) + x.shape[1:], dtype=x.dtype) for m in sizes}
            self._ybufs = None if y is None else {m: np.empty((m,) + y.shape[1:], dtype=y.dtype) for m in sizes}
            w = sample_weight
            self._wbufs = None if w is None else {m: np.empty((m,) + w.shape[1:], dtype=w.dtype) for m in sizes}

    def epoch(self):
        """One epoch as ``(x, y, sample_weight)`` batches (sample_weight None when not given)."""
        for step, xb, yb in self:
            yield xb, yb, self.weights(step)

    def on_epoch_end(self):
        pass

    def order(self):
        """Starts an epoch: the order of its rows (``epoch_index``'s permutation, or
        ``arange(n)`` without shuffle), then ``epoch_index`` counts it."""
        if self.shuffle:
            _shuffle.permute(self._perm, self.key, self.epoch_index)
        self.epoch_index += 1
        return self._perm

    def batch(self, step):
        """(x, y) of batch ``step`` of the epoch ``order`` started (y None without labels)."""
        return self._rows(self.x, self._xbufs, step), self.labels(step)

    def labels(self, step):
        """y of batch ``step`` (in the iterator's buffer when shuffled, else a view), or None."""
        return None if self.y is None else self._rows(self.y, self._ybufs, step)

    def weights(self, step):
        """The sample weights of batch ``step`` (as ``labels``), or None without."""
        return None if self.sample_weight is None else self._rows(self.sample_weight, self._wbufs, step)

    def _rows(self, a, bufs, step):
        """The rows of batch ``step`` of ``a`` (x, y or the sample weights): gathered in the
        epoch's order into ``bufs[batch size]`` when shuffled, else a view."""
        s = step * self.batch_size
        e = min(s + self.batch_size, self.num_samples)
        return _take_rows(a, self._perm[s:e], bufs[e - s]) if self.shuffle else a[s:e]

    def __iter__(self):
        self.order()
        for step in range(self.steps):
            yield (step,) + self.batch(step)
