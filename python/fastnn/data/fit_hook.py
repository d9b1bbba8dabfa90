"""The trainer's entry into fastnn.data: what ``fit``/``evaluate``/``predict`` call to
accept every input kind with the checks they apply to arrays today.

    source = data.fit_hook.for_model(model, x, y, sample_weight, batch_size=bs,
                                     shuffle=shuffle, seed=rng, features=None)
    source.ensure_built()                       # an unbuilt model: built from the first batch
    steps = source.num_batches                  # None: unknown, the progress bar counts
    for epoch in ...:
        for step, (xb, yb, sw) in enumerate(source.epoch()):
            ... one training step on (xb, yb) weighted by sw (None: unweighted) ...
        source.on_epoch_end()

or, as a drop-in for the trainer's ``EpochIterator`` (``steps``, ``batch_size``,
``num_samples``, and ``for step, xb, yb in source`` running one epoch).

In-memory arrays are checked whole once (the model's own ``_prepare_xy``) and then
gathered exactly as ``fit`` gathers them today (same permutation, reused buffers), so
training on arrays stays bitwise identical. Every other source is checked batch by
batch with the same model checks, the error naming the batch; an unbuilt model is built
from the first batch's shape before any step.
"""
from __future__ import annotations

import itertools

import numpy as np

from . import adapt, is_array_like
from ._base import DataAdapter, make_rng
from .arrays import ArrayAdapter


def _is_plain_array(x):
    return not isinstance(x, np.memmap) and is_array_like(x)


def _check_weights(sw, n, where, dtype):
    if sw is None:
        return None
    sw = np.asarray(sw)
    if not (np.issubdtype(sw.dtype, np.number) or sw.dtype == np.bool_) or sw.dtype.kind == "c":
        raise TypeError(f"sample_weight{where}: expected numbers, got an array of dtype {sw.dtype}")
    if sw.shape == (n, 1):  # one column, as Keras takes it
        sw = sw[:, 0]
    if sw.shape != (n,):
        raise ValueError(f"sample_weight{where}: expected shape ({n},) or ({n}, 1), got {sw.shape}")
    sw = np.ascontiguousarray(sw, dtype=dtype)
    if not np.isfinite(sw).all() or (sw < 0).any():
        raise ValueError(f"sample_weight{where}: expected finite weights >= 0")
    return sw


class ModelSource:
    """Batches for one model: ``epoch()`` yields ``(x, y, sample_weight)`` checked and cast
    to the model's dtype (y None for predict; sample_weight None when not given)."""

    def __init__(self, model, adapter, checked):
        self.model, self.adapter, self._checked = model, adapter, checked
        self.num_batches = self.steps = adapter.num_batches
        self.batch_size = adapter.batch_size
        self.num_samples = getattr(adapter, "n", None) or getattr(adapter, "num_rows", None)
        self._epoch = 0
        self._pending = None

    def __iter__(self):
        """One epoch as ``(step, x, y)`` (the trainer's ``EpochIterator`` protocol), then
        ``on_epoch_end``; batches that carry sample weights are refused here, since this
        protocol has no place for them (use ``epoch()``)."""
        for step, (xb, yb, sw) in enumerate(self.epoch()):
            if sw is not None:
                raise ValueError("sample_weight: this training loop takes no sample weights; "
                                 "iterate source.epoch() to get them")
            yield step, xb, yb
        self.on_epoch_end()

    @property
    def key(self):
        """The adapter's shuffle key (``ArrayAdapter``; AttributeError for others)."""
        return self.adapter.key

    @key.setter
    def key(self, value):
        if self._pending is not None and self.adapter.shuffle:  # drawn in the old order
            self._pending = None
        self.adapter.key = value

    @property
    def epoch_index(self):
        """The epoch the next ``epoch()`` draws (passed through to an ``ArrayAdapter``, whose
        order is a function of (key, epoch_index); AttributeError for other adapters)."""
        return self.adapter.epoch_index - (1 if self._pending is not None else 0)

    @epoch_index.setter
    def epoch_index(self, value):
        if self._pending is not None:
            if value == self.adapter.epoch_index - 1:
                return  # the epoch ensure_built started is that one
            self._pending = None  # the model is built now; that batch is drawn again in its epoch
        self.adapter.epoch_index = value

    def epoch(self):
        if self._pending is not None:  # the epoch ensure_built started
            it, first = self._pending
            self._pending = None
            return itertools.chain([first], it)
        self._epoch += 1
        return self._batches(self.adapter.get_epoch_iterator(), self._epoch)

    def ensure_built(self):
        """Build an unbuilt model from the first batch's shape now (before the optimizer
        is sized), keeping that batch for the first epoch."""
        if not self.model.built and self._pending is None:
            it = self.epoch()
            try:
                first = next(it)
            except StopIteration:
                raise ValueError("x: the data holds no batch") from None
            self._pending = (it, first)
        return self.model

    def _batches(self, it, epoch):
        m = self.model
        for i, batch in enumerate(it):
            xb = batch[0]
            yb = batch[1] if len(batch) > 1 else None
            sw = batch[2] if len(batch) > 2 else None
            if self._checked:
                yield xb, yb, sw
                continue
            where = f" (batch {i} of epoch {epoch})"
            if not m.built:
                m._prepare_x(xb, "x" + where)  # validate before building from its shape
                m.build(np.shape(xb)[1:])
            m._ensure_placed()
            xb = m._prepare_x(xb, "x" + where)
            if yb is not None:
                yb = m._prepare_y(yb, xb.shape[0], "y" + where)
            yield xb, yb, _check_weights(sw, xb.shape[0], where, m.dtype)

    def on_epoch_end(self):
        self.adapter.on_epoch_end()


def for_model(model, x, y=None, sample_weight=None, *, batch_size=32, shuffle=True, seed=None, features=None):
    """The ``ModelSource`` of ``x`` for ``model`` (see the module doc). seed: fit's
    generator (a ``numpy.random.Generator``), an int, or None for fastnn's global one."""
    if _is_plain_array(x) and not isinstance(y, str):
        x, y = model._prepare_xy(x, y) if y is not None else (model._prepare_x(x), None)
        n = x.shape[0]
        sample_weight = _check_weights(sample_weight, n, "", model.dtype)
        bs = n if batch_size is None else batch_size
        adapter = ArrayAdapter(x, y, sample_weight, batch_size=bs, shuffle=shuffle,
                               seed=make_rng(seed) if shuffle else None, reuse_buffers=True)
        return ModelSource(model, adapter, checked=True)
    adapter = x if isinstance(x, DataAdapter) else adapt(x, y, sample_weight, batch_size=batch_size,
                                                         shuffle=shuffle, seed=seed, features=features)
    return ModelSource(model, adapter, checked=False)
