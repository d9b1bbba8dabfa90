"""In-memory arrays and NumPy memory maps.

``ArrayAdapter`` draws exactly the batches ``Model.fit`` draws: epoch ``e`` visits the
rows in the order ``fastnn._shuffle.permute(perm, key, e)``, a function of the key (one
draw from the seeded generator) and the epoch only, batch ``i`` = rows
``perm[i*bs:(i+1)*bs]``; ``epoch_index`` counts the epochs drawn (set it to start elsewhere).

``MemmapAdapter`` never loads a memory map whole: it reads contiguous blocks of rows
(in a random block order when shuffling), shuffles the rows inside each block, and
re-batches them, so it holds one block and one batch at a time.
"""
from __future__ import annotations

import mmap

import numpy as np

from .. import _shuffle
from ._base import (DataAdapter, check_arrays, check_batch_size, check_shuffle, make_rng, pack, rebatch,
                    shuffle_rows, steps)


def _batch_size(batch_size, n):
    if batch_size is None:
        return n
    return min(check_batch_size(batch_size), n)


def _set_arrays(adapter, x, y, sample_weight, batch_size, shuffle):
    """Checks the arrays and sets the batching attributes both adapters share; returns x."""
    x, y, sample_weight = check_arrays(x, y, sample_weight)
    if x.shape[0] == 0:
        raise ValueError(f"x: expected at least one sample, got shape {x.shape}")
    adapter.shuffle = check_shuffle(shuffle)
    adapter._arrays = (x, y, sample_weight)
    adapter.n = x.shape[0]
    adapter.batch_size = _batch_size(batch_size, adapter.n)
    adapter.num_batches = steps(adapter.n, adapter.batch_size)
    adapter.partial_batch_size = adapter.n % adapter.batch_size or None
    adapter.has_partial_batch = adapter.partial_batch_size is not None
    return x


class ArrayAdapter(DataAdapter):
    """Batches of in-memory arrays, shuffled as ``Model.fit`` shuffles them.

    >>> import numpy as np
    >>> a = ArrayAdapter(np.arange(10.0)[:, None], np.arange(10), batch_size=4, shuffle=False)
    >>> [b[1].tolist() for b in a.get_epoch_iterator()]
    [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]

    reuse_buffers: gather shuffled batches into two reused buffers (no allocation per
    step, as fit does); a batch is then valid only until the next one is drawn.
    """

    def __init__(self, x, y=None, sample_weight=None, batch_size=32, shuffle=True, seed=None,
                 reuse_buffers=False):
        x = _set_arrays(self, x, y, sample_weight, batch_size, shuffle)
        self.key = _shuffle.key(make_rng(seed)) if self.shuffle else None
        self.epoch_index = 0
        self._perm = np.arange(self.n)
        self._reuse = bool(reuse_buffers)
        self._buffers = {}

    def _gather(self, idx):
        m = idx.shape[0]
        out = []
        for k, a in enumerate(self._arrays):
            if a is None:
                out.append(None)
            elif self._reuse:
                buf = self._buffers.get((k, m))
                if buf is None:
                    buf = self._buffers[(k, m)] = np.empty((m,) + a.shape[1:], dtype=a.dtype)
                out.append(np.take(a, idx, axis=0, out=buf, mode="clip"))
            else:
                out.append(np.take(a, idx, axis=0))
        return pack(*out)

    def get_epoch_iterator(self):
        if self.shuffle:
            _shuffle.permute(self._perm, self.key, self.epoch_index)  # as fit orders its epochs
        self.epoch_index += 1
        return self._epoch(self._perm.copy() if self.shuffle else None)

    def _epoch(self, perm):
        bs = self.batch_size
        for s in range(0, self.n, bs):
            if perm is None:
                yield pack(*(None if a is None else a[s:s + bs] for a in self._arrays))
            else:
                yield self._gather(perm[s:s + bs])


def _release(a, s, e):
    """Drop rows [s, e) of a read-only or shared memory map from this process's resident
    set once copied (madvise DONTNEED: the pages stay in the page cache), so that reading
    a map block by block does not grow the RSS to the file's size. Best effort."""
    mm = getattr(a, "_mmap", None)
    if mm is None or getattr(a, "mode", None) not in ("r", "r+") or not a.flags.c_contiguous \
            or not hasattr(mm, "madvise"):
        return
    try:
        base = np.frombuffer(mm, dtype=np.uint8).ctypes.data
        start = a[s:e].ctypes.data - base
        stop = start + a[s:e].nbytes
        page = mmap.PAGESIZE
        lo = start - start % page
        if stop > lo:
            mm.madvise(mmap.MADV_DONTNEED, lo, min(len(mm), stop) - lo)
    except (ValueError, OSError, AttributeError):
        pass


class MemmapAdapter(DataAdapter):
    """Batches of a ``numpy.memmap`` (or any array too big to gather at random) read block
    by block: block order random and rows shuffled inside each block when shuffling, in
    file order otherwise (then the batches equal ``ArrayAdapter(..., shuffle=False)``'s).

    block_rows: rows read at once (default: about 16 MB of x, at least one batch).
    """

    def __init__(self, x, y=None, sample_weight=None, batch_size=32, shuffle=True, seed=None, block_rows=None):
        self._maps = tuple(a for a in (x, y, sample_weight) if isinstance(a, np.memmap))
        x = _set_arrays(self, x, y, sample_weight, batch_size, shuffle)
        if block_rows is None:
            row_bytes = max(1, x.itemsize * int(np.prod(x.shape[1:], dtype=np.int64)))
            block_rows = max(self.batch_size, (16 << 20) // row_bytes)
        self.block_rows = check_batch_size(block_rows, "block_rows")
        self._rng = make_rng(seed) if self.shuffle else None

    def _chunks(self, order):
        br = self.block_rows
        for b in order:
            s = int(b) * br
            parts = tuple(None if a is None else np.array(a[s:s + br]) for a in self._arrays)
            for a in self._maps:
                _release(a, s, s + br)
            yield shuffle_rows(parts, self._rng) if self.shuffle else parts

    def get_epoch_iterator(self):
        nblocks = -(-self.n // self.block_rows)
        order = self._rng.permutation(nblocks) if self.shuffle else range(nblocks)
        return rebatch(self._chunks(order), self.batch_size)
