"""The input batches of any data a preprocessing layer adapts to, found by duck typing
(``fastnn.data`` sits above the layers in the import order): an array or memory map (in
slices), a DataFrame (its values), a fastnn.data adapter (``get_epoch_iterator``, e.g.
``from_parquet``), a ``Dataset`` (``__len__`` and ``__getitem__``), or an iterable of
batches; of a batch ``(x, y[, w])`` only x is used."""
from __future__ import annotations

import numpy as np


def _x(batch):
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def stream_batches(data, batch_size):
    if data is None:
        raise ValueError("data: expected an array or batches, got None")
    if hasattr(data, "get_epoch_iterator"):  # a fastnn.data adapter
        for batch in data.get_epoch_iterator():
            yield _x(batch)
        data.on_epoch_end()
        return
    if hasattr(data, "__array__") and not isinstance(data, (list, tuple)) or \
            (isinstance(data, (list, tuple)) and data and not isinstance(data[0], tuple)):
        a = np.asarray(data)
        if a.ndim < 2:
            raise ValueError(f"data: expected shape (n, features...), got {a.shape}")
        for s in range(0, a.shape[0], batch_size):
            yield a[s:s + batch_size]
        return
    if hasattr(data, "__getitem__") and hasattr(data, "__len__") and not isinstance(data, (list, tuple)):
        for i in range(len(data)):  # a Dataset: batch i
            yield _x(data[i])
        return
    if not hasattr(data, "__iter__") or isinstance(data, (str, bytes, dict)):
        raise TypeError(f"data: expected an array, a Dataset, an adapter or an iterable of batches, "
                        f"got {type(data).__name__}")
    for batch in data:
        yield _x(batch)
