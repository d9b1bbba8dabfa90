"""``Dataset`` (Keras's ``PyDataset`` protocol) and plain iterables of batches.

A ``Dataset`` knows its length and returns batch ``i`` from ``__getitem__``; with
``workers > 1`` the next ``max_queue_size`` batches are fetched ahead in a thread pool
(the kernels release the GIL, so fetching overlaps training), in order.
"""
from __future__ import annotations

import collections
import concurrent.futures

import numpy as np

from ._base import DataAdapter, check_shuffle, make_rng, pack, unpack


class ExhaustedError(ValueError):
    """An epoch found a one-shot iterable (a generator) already exhausted."""


class Dataset:
    """Base class for a dataset that returns whole batches (Keras ``PyDataset``).

    Subclasses implement ``__len__`` (number of batches) and ``__getitem__(i)`` returning
    ``x``, ``(x, y)`` or ``(x, y, sample_weight)``; ``on_epoch_end`` is called after each
    epoch. workers: threads fetching batches ahead (1 = in the training thread);
    max_queue_size: batches fetched ahead at most; use_multiprocessing: must be False
    (threads only).

    >>> import numpy as np
    >>> class Squares(Dataset):
    ...     def __len__(self): return 3
    ...     def __getitem__(self, i):
    ...         x = np.arange(4.0)[:, None] + 4 * i
    ...         return x, x[:, 0] ** 2
    >>> [b[1].tolist() for b in DatasetAdapter(Squares(), shuffle=False).get_epoch_iterator()][0]
    [0.0, 1.0, 4.0, 9.0]
    """

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        for v, what in ((workers, "workers"), (max_queue_size, "max_queue_size")):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{what}: expected a positive int, got {v!r}")
        if use_multiprocessing:
            raise ValueError("use_multiprocessing: fastnn fetches batches in threads only; expected False")
        self._workers = int(workers)
        self._use_multiprocessing = False
        self._max_queue_size = int(max_queue_size)

    @property
    def workers(self):
        return getattr(self, "_workers", 1)

    @property
    def use_multiprocessing(self):
        return False

    @property
    def max_queue_size(self):
        return getattr(self, "_max_queue_size", 10)

    def __len__(self):
        raise NotImplementedError

    def __getitem__(self, index):
        raise NotImplementedError

    @property
    def num_batches(self):
        return len(self)

    def on_epoch_end(self):
        """Called after every epoch (shuffle your own storage here if you like)."""


class DatasetAdapter(DataAdapter):
    """Epochs over a ``Dataset``: batches ``0..len-1``, in a random order when shuffling."""

    def __init__(self, dataset, shuffle=False, seed=None):
        if not (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
            raise TypeError(f"x: expected a Dataset (with __len__ and __getitem__), got {type(dataset).__name__}")
        self.dataset = dataset
        self.shuffle = check_shuffle(shuffle)
        self._rng = make_rng(seed) if self.shuffle else None
        n = len(dataset)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"x: len(dataset) must be a positive int, got {n!r}")
        self.num_batches = int(n)

    def get_epoch_iterator(self):
        order = self._rng.permutation(self.num_batches) if self.shuffle else np.arange(self.num_batches)
        workers = int(getattr(self.dataset, "workers", 1) or 1)
        if workers > 1:
            return self._prefetched(order, workers, int(getattr(self.dataset, "max_queue_size", 10) or 10))
        return self._sequential(order)

    def _get(self, i):
        return pack(*unpack(self.dataset[int(i)], f" (dataset[{int(i)}])"))

    def _sequential(self, order):
        for i in order:
            yield self._get(i)

    def _prefetched(self, order, workers, depth):
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fastnn-data")
        pending = collections.deque()
        it = iter(order)
        try:
            for i in it:
                pending.append(pool.submit(self._get, i))
                if len(pending) >= depth:
                    break
            while pending:
                batch = pending.popleft().result()
                nxt = next(it, None)
                if nxt is not None:
                    pending.append(pool.submit(self._get, nxt))
                yield batch
        finally:
            for f in pending:
                f.cancel()
            pool.shutdown(wait=True)

    def on_epoch_end(self):
        self.dataset.on_epoch_end()


class IterableAdapter(DataAdapter):
    """Batches from an iterable or a generator, as given, checked one by one.

    A re-iterable (a list, an object whose ``__iter__`` starts over) gives every epoch
    from its start; a one-shot iterator (a generator) is drawn on across epochs, and an
    epoch that finds it exhausted is an error. ``len(iterable)``, when defined, gives
    the number of steps; otherwise it is None (unknown).
    """

    def __init__(self, iterable, batch_size=None):
        if isinstance(iterable, (str, bytes, dict)) or not hasattr(iterable, "__iter__"):
            raise TypeError(f"x: expected arrays, a Dataset or an iterable of batches, got {type(iterable).__name__}")
        self._source = iterable
        self._one_shot = iter(iterable) is iterable
        try:
            self.num_batches = None if self._one_shot else int(len(iterable))
        except TypeError:
            self.num_batches = None
        self.batch_size = batch_size
        self._epoch = 0

    def get_epoch_iterator(self):
        self._epoch += 1
        return self._epoch_batches(iter(self._source), self._epoch)

    def _epoch_batches(self, it, epoch):
        count = 0
        for batch in it:
            yield pack(*unpack(batch, f" (batch {count} of epoch {epoch})"))
            count += 1
        if count == 0:
            what = "the generator is exhausted" if self._one_shot else "the iterable is empty"
            raise ExhaustedError(f"x: {what} (epoch {epoch} got no batch); for several epochs pass a re-iterable "
                             f"(a list, a fastnn.data.Dataset) instead of a one-shot generator")
        if self.num_batches is None and not self._one_shot:
            self.num_batches = count

