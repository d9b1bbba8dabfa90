"""Data adapters: batches from arrays, memory maps, ``Dataset`` objects, iterables,
DataFrames / Arrow tables, dask collections and Parquet files, all with one contract
(Keras 3's ``trainers/data_adapters``).

``adapt(x, y, sample_weight, batch_size=..., shuffle=..., seed=...)`` picks the adapter;
``adapter.get_epoch_iterator()`` yields the batches of one epoch as ``(x, y)`` or
``(x, y, sample_weight)`` tuples of NumPy arrays (``(x,)`` without targets);
``adapter.num_batches`` is the number of steps, None when unknown;
``adapter.on_epoch_end()`` is called after every epoch.

>>> import numpy as np
>>> from fastnn import data
>>> a = data.adapt(np.zeros((10, 3)), np.arange(10), batch_size=4, seed=0)
>>> a.num_batches, [b[0].shape[0] for b in a.get_epoch_iterator()]
(3, [4, 4, 2])
"""
from __future__ import annotations

import numpy as np

from ._base import DataAdapter
from ._dask import DaskArrayAdapter, DaskDataFrameAdapter, is_dask_array, is_dask_dataframe
from .arrays import ArrayAdapter, MemmapAdapter
from .dataset import Dataset, DatasetAdapter, IterableAdapter
from .parquet import ParquetAdapter, from_parquet
from .tabular import columns_to_arrays, frame_to_arrays, is_arrow, is_pandas, series_to_array

__all__ = ["DataAdapter", "ArrayAdapter", "MemmapAdapter", "Dataset", "DatasetAdapter", "IterableAdapter",
           "DaskArrayAdapter", "DaskDataFrameAdapter", "ParquetAdapter", "from_parquet", "adapt"]


def is_array_like(x):
    """An array, or a list / tuple of rows (not of batch tuples): what ``np.asarray`` takes
    as data. A list whose items are tuples is a list of batches. dask collections are not:
    they stream chunk by chunk, never materialized whole."""
    if is_dask_array(x) or is_dask_dataframe(x):
        return False
    if isinstance(x, np.ndarray) or (hasattr(x, "__array__") and not isinstance(x, DataAdapter)):
        return True
    return isinstance(x, (list, tuple)) and len(x) > 0 and not isinstance(x[0], tuple)


def _is_pydataset(x):
    """Another library's ``PyDataset`` / ``Sequence`` (``__len__``, ``__getitem__``,
    ``on_epoch_end``): batches by index, not an iterable drawn without its epoch hook."""
    return not isinstance(x, (list, tuple, dict, str, bytes, np.ndarray)) and \
        all(hasattr(x, a) for a in ("__len__", "__getitem__", "on_epoch_end"))


def _no_targets(kind, y, sample_weight):
    for v, what in ((y, "y"), (sample_weight, "sample_weight")):
        if v is not None:
            raise ValueError(f"{what}: not allowed when x is {kind} (its batches carry the targets); got "
                             f"{type(v).__name__}")


def _tabular(x, y, sample_weight, features, batch_size, shuffle, seed, reuse_buffers):
    xa, ya, wa = frame_to_arrays(x, y, sample_weight, features)
    return ArrayAdapter(xa, ya, wa, batch_size=batch_size, shuffle=shuffle, seed=seed,
                        reuse_buffers=reuse_buffers)


def adapt(x, y=None, sample_weight=None, *, batch_size=32, shuffle=True, seed=None, features=None,
          reuse_buffers=False):
    """The adapter for ``x`` (what ``fit``/``evaluate``/``predict`` would call).

    x: a NumPy array (or array-like) with y / sample_weight arrays; a ``numpy.memmap``; a
    pandas DataFrame or pyarrow Table / RecordBatch (``features``: the input columns;
    y / sample_weight: arrays, Series, or column names); a dask array or dask DataFrame;
    a ``Dataset``; an iterable or generator of batches; or an adapter (returned as is).
    batch_size: rows per batch (None: the whole array; ignored for a ``Dataset`` and
    iterables, whose batches come made). shuffle: shuffle every epoch (a ``Dataset``'s
    batch order; an iterable's order is kept). seed: an int, a numpy Generator, or None
    for fastnn's global generator: for arrays the same permutation as ``Model.fit``.
    """
    if isinstance(x, DataAdapter):
        _no_targets("a data adapter", y, sample_weight)
        return x
    if isinstance(x, Dataset):
        _no_targets("a Dataset", y, sample_weight)
        return DatasetAdapter(x, shuffle=shuffle, seed=seed)
    if _is_pydataset(x):  # Keras's PyDataset: its on_epoch_end runs; shuffle is ignored, as in Keras
        _no_targets("a PyDataset", y, sample_weight)
        return DatasetAdapter(x, shuffle=False)
    if is_pandas(x) or is_arrow(x):
        return _tabular(x, y, sample_weight, features, batch_size, shuffle, seed, reuse_buffers)
    if features is not None and not is_dask_dataframe(x):
        raise ValueError(f"features: only for DataFrames and Arrow tables, got x of type {type(x).__name__}")
    if is_dask_dataframe(x):
        for v, what in ((y, "y"), (sample_weight, "sample_weight")):
            if v is not None and not isinstance(v, str):
                raise TypeError(f"{what}: with a dask DataFrame x, expected a column name, got {type(v).__name__}")
        return DaskDataFrameAdapter(x, features, y, sample_weight, batch_size=batch_size or 32,
                                    shuffle=shuffle, seed=seed)
    if is_dask_array(x):
        return DaskArrayAdapter(x, y, sample_weight, batch_size=batch_size or int(x.shape[0]),
                                shuffle=shuffle, seed=seed)
    if isinstance(x, np.memmap):
        return MemmapAdapter(x, y, sample_weight, batch_size=batch_size, shuffle=shuffle, seed=seed)
    if is_array_like(x):
        return ArrayAdapter(x, y, sample_weight, batch_size=batch_size, shuffle=shuffle, seed=seed,
                            reuse_buffers=reuse_buffers)
    if x is None:
        raise ValueError("x: expected inputs, got None")
    _no_targets("an iterable of batches", y, sample_weight)
    return IterableAdapter(x, batch_size=batch_size)
