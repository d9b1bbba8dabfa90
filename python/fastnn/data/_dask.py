"""dask.array and dask.dataframe collections, streamed partition by partition.

One partition (a block of rows) is computed at a time, through whatever scheduler is
active (a ``distributed.Client`` / ``LocalCluster`` when one is), its rows shuffled when
shuffling, and re-batched; partitions are visited in a random order when shuffling.
"""
from __future__ import annotations

import math

import numpy as np

from ._base import DataAdapter, check_batch_size, check_numeric, check_shuffle, make_rng, rebatch, \
    shuffle_rows, steps


def is_dask_array(obj):
    return type(obj).__module__.startswith("dask.array") and type(obj).__name__ == "Array"


def is_dask_dataframe(obj):
    return type(obj).__module__.startswith("dask") and type(obj).__name__ in ("DataFrame", "Series") \
        and hasattr(obj, "npartitions")


def _known_chunks(a):
    """``a`` with its chunk sizes known: a copy whose sizes are computed (one pass over the
    data, a chunk at a time) when they are not, e.g. after boolean indexing; ``a`` itself
    is left as it was."""
    if any(math.isnan(c) for c in a.chunks[0]):
        a = a.copy()
        a.compute_chunk_sizes()
    return a


def _check_dask_dtype(a, what):
    dt = a.dtype
    if not (np.issubdtype(dt, np.number) or dt == np.bool_) or np.issubdtype(dt, np.complexfloating):
        raise TypeError(f"{what}: expected numbers (float, int or bool), got a dask array of dtype {dt}")


class DaskArrayAdapter(DataAdapter):
    """Batches of a ``dask.array`` x (with y / sample_weight as dask or NumPy arrays of the
    same length), one chunk of rows of x at a time."""

    def __init__(self, x, y=None, sample_weight=None, batch_size=32, shuffle=True, seed=None):
        _check_dask_dtype(x, "x")
        if x.ndim == 0:
            raise ValueError("x: expected an array with one row per sample, got a scalar")
        x = _known_chunks(x)
        n = int(x.shape[0])
        given = []
        for a, what in ((y, "y"), (sample_weight, "sample_weight")):
            if a is not None:
                if is_dask_array(a):
                    _check_dask_dtype(a, what)
                    a = _known_chunks(a) if a.ndim else a
                else:
                    a = check_numeric(a, what)
                if int(a.shape[0]) != n:
                    raise ValueError(f"x, {what}: x has {n} samples but {what} has {a.shape[0]}: lengths differ")
            given.append(a)
        y, sample_weight = given
        if sample_weight is not None and y is None:
            raise ValueError("sample_weight: given without targets y")
        if sample_weight is not None and len(sample_weight.shape) != 1:
            raise ValueError(f"sample_weight: expected shape ({n},), got {sample_weight.shape}")
        self._arrays = (x, y, sample_weight)
        self.shuffle = check_shuffle(shuffle)
        self.batch_size = min(check_batch_size(batch_size), n)
        self.num_batches = steps(n, self.batch_size)
        self.partial_batch_size = n % self.batch_size or None
        self.has_partial_batch = self.partial_batch_size is not None
        self.offsets = np.concatenate([[0], np.cumsum(x.chunks[0])]).astype(np.int64)
        self._rng = make_rng(seed) if self.shuffle else None

    def _chunks(self, order):
        import dask
        for b in order:
            s, e = int(self.offsets[b]), int(self.offsets[b + 1])
            lazy = [None if a is None else a[s:e] for a in self._arrays]
            todo = [a for a in lazy if a is not None and is_dask_array(a)]
            done = iter(dask.compute(*todo))
            parts = tuple(None if a is None else (np.asarray(next(done)) if is_dask_array(a) else np.asarray(a))
                          for a in lazy)
            yield shuffle_rows(parts, self._rng) if self.shuffle else parts

    def get_epoch_iterator(self):
        nb = len(self.offsets) - 1
        order = self._rng.permutation(nb) if self.shuffle else range(nb)
        return rebatch(self._chunks(order), self.batch_size)


class DaskDataFrameAdapter(DataAdapter):
    """Batches of a ``dask.dataframe`` with columns chosen by name, one partition at a
    time. The number of rows is not known without reading, so ``num_batches`` is None."""

    def __init__(self, df, features=None, label=None, sample_weight=None, batch_size=32, shuffle=True, seed=None):
        from .tabular import resolve_columns
        if type(df).__name__ == "Series":
            df = df.to_frame()
        self.features, self.label, self.weight = resolve_columns(list(df.columns), features, label, sample_weight)
        for c in self.features + [self.label, self.weight]:
            if c is None:
                continue
            dt = df.dtypes[c]
            dt = dt if isinstance(dt, np.dtype) else getattr(dt, "numpy_dtype", None)  # Int64, boolean, ...
            if dt is None or not (np.issubdtype(dt, np.number) or dt == np.bool_):
                what = "label" if c == self.label else "sample_weight" if c == self.weight else "features"
                raise TypeError(f"{what}: column {c!r} has dtype {df.dtypes[c]}; expected numbers (float, int or bool)")
        self.df = df[self.features + [c for c in (self.label, self.weight) if c is not None]]
        self.shuffle = check_shuffle(shuffle)
        self.batch_size = check_batch_size(batch_size)
        self.num_batches = None
        self._rng = make_rng(seed) if self.shuffle else None

    def _chunks(self, order):
        from .tabular import columns_to_arrays
        for i in order:
            part = self.df.partitions[int(i)].compute()
            if len(part) == 0:
                continue
            parts = columns_to_arrays(part, self.features, self.label, self.weight)
            yield shuffle_rows(parts, self._rng) if self.shuffle else parts

    def get_epoch_iterator(self):
        nb = self.df.npartitions
        order = self._rng.permutation(nb) if self.shuffle else range(nb)
        return rebatch(self._chunks(order), self.batch_size)
