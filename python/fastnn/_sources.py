"""Where fit / evaluate / predict get their batches: in-memory arrays through the trainer's
``EpochIterator`` (fit's permutation, bitwise as before), every other input kind of
``fastnn.data`` (generators, ``Dataset``, memmaps, DataFrames / Arrow, dask, Parquet)
through ``fastnn.data.fit_hook``. A source offers ``steps`` (None: unknown),
``batch_size``, ``epoch()`` yielding ``(x, y, sample_weight)`` and ``on_epoch_end()``.
"""
from __future__ import annotations

import warnings

import numpy as np

from . import _multi_weights, _weights
from ._batches import EpochIterator


def is_streamed(x, model=None):
    """True for every input that is not an in-memory array (memmaps stream too). A list or
    dict of arrays for a model with several inputs (or outputs) is in memory."""
    from .data import is_array_like
    if isinstance(x, dict) or (model is not None and getattr(model, "_io", None) is not None
                               and isinstance(x, (list, tuple))):
        return False  # arrays keyed by input name, or one array per input
    return isinstance(x, np.memmap) or not is_array_like(x) or _is_tabular(x)


def _is_tabular(x):
    from .data import tabular
    return tabular.is_pandas(x) or tabular.is_arrow(x)


def in_memory(x, y, sample_weight):
    """(x, y, sample_weight) with a pandas DataFrame / Series or Arrow table x (y and
    sample_weight as column names, Series or arrays) and Series y / sample_weight turned
    into NumPy arrays: in memory, they are checked whole before training, as arrays are."""
    from .data.tabular import frame_to_arrays
    return frame_to_arrays(x, y, sample_weight)


def check_batch_size(batch_size, default=32):
    """The one check of ``batch_size`` shared by fit, evaluate and predict (``default``: what
    None means there): a positive int, None or ``"full"``; returned as given (an int cast)."""
    if batch_size is None or (isinstance(batch_size, str) and batch_size == "full"):
        return batch_size
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive int, None ({default}) or 'full', got {batch_size!r}")
    return int(batch_size)


def fit_batch_size(batch_size, n=None, default=32):
    """Keras's batch_size: None means 32 (``default``); ``"full"`` means every sample in one batch."""
    batch_size = check_batch_size(batch_size, default)
    if batch_size is None:
        return default if n is None else min(default, n)
    if batch_size == "full":
        if n is None:
            raise ValueError("batch_size: 'full' needs in-memory arrays (the number of samples is unknown)")
        return n
    return batch_size if n is None else min(batch_size, n)


def check_steps(v, what):
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{what}: expected a positive int or None, got {v!r}")
    return int(v)


def _inputs_only(adapter):
    """The adapter's batches reduced to their inputs (predict ignores targets, as Keras)."""
    from .data import DataAdapter

    class InputsOnly(DataAdapter):
        num_batches, batch_size = adapter.num_batches, adapter.batch_size

        def get_epoch_iterator(self):
            return ((b[0],) for b in adapter.get_epoch_iterator())

        def on_epoch_end(self):
            adapter.on_epoch_end()
    return InputsOnly()


class Streamed:
    """A ``fit_hook.ModelSource`` with class weights applied per batch (``inputs_only``:
    batches reduced to x, for predict)."""

    def __init__(self, model, x, y, sample_weight, class_weight, batch_size, shuffle, seed, inputs_only=False):
        from .data import adapt, fit_hook
        bs = fit_batch_size(batch_size)
        if inputs_only:
            x = _inputs_only(adapt(x, y, sample_weight, batch_size=bs, shuffle=shuffle, seed=seed))
            y = sample_weight = None
        self.src = fit_hook.for_model(model, x, y, sample_weight, batch_size=bs, shuffle=shuffle, seed=seed)
        self.src.ensure_built()
        self.model, self._needs_y = model, not inputs_only
        self.steps = self.src.steps
        self.batch_size = self.src.batch_size
        self.num_samples = self.src.num_samples
        self._cw = class_weight

    # the epoch order's key and epoch number, where the adapter has them (fit sets
    # epoch_index each epoch; a backup saves the key): hasattr is False otherwise
    key = property(lambda self: self.src.key, lambda self, v: setattr(self.src, "key", v))
    epoch_index = property(lambda self: self.src.epoch_index, lambda self, v: setattr(self.src, "epoch_index", v))

    def epoch(self):
        table = None
        for i, (xb, yb, sw) in enumerate(self.src.epoch()):
            if yb is None and self._needs_y:
                raise ValueError(f"y: expected targets in every batch, got batch {i} with inputs only "
                                 f"(give (x, y) or (x, y, sample_weight) batches)")
            if self._cw is not None and yb is not None:
                if table is None:
                    table = _weights.check_class_weight(self._cw, self.model.output_shape[-1])
                sw = _weights.combine(sw, table, yb, self.model.dtype)
            yield xb, yb, sw

    def on_epoch_end(self):
        self.src.on_epoch_end()


class StepsPerEpoch:
    """Exactly ``steps`` batches per epoch drawn from a source, continuing where the last
    epoch stopped (Keras's ``steps_per_epoch``): a finished pass over the source starts the
    next one; a source that gives nothing more ends training with a warning."""

    def __init__(self, source, steps, restart=False):
        self.source, self.steps = source, steps
        self.batch_size, self.num_samples = source.batch_size, None
        self._it = None
        self.exhausted = False
        # validation / evaluate over arrays (Keras resets its iterator there): each epoch from the first batch
        self.restart = restart and isinstance(source, EpochIterator)

    def _next(self):
        from .data.dataset import ExhaustedError
        if self._it is not None:
            b = next(self._it, None)
            if b is not None:
                return b
            self.source.on_epoch_end()
        self._it = iter(self.source.epoch())
        try:
            return next(self._it, None)
        except ExhaustedError:
            return None

    def epoch(self):
        if self.restart:
            self._it = None
        for _ in range(self.steps):
            b = self._next()
            if b is None:
                self.exhausted = True
                warnings.warn(f"steps_per_epoch: the input ran out of data after fewer than {self.steps} "
                              f"steps in this epoch; training stops here", RuntimeWarning, stacklevel=4)
                return
            yield b

    def on_epoch_end(self):
        pass


# ------------------------------------------------------------------ fit setup
def check_fit_args(model, epochs, verbose, validation_split, validation_data, validation_freq):
    model.optimizer.check_hyperparameters()  # attributes set after construction: checked before any change
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"epochs: expected an int >= 0, got {epochs!r}")
    verbose = check_verbose(verbose)
    if not isinstance(validation_split, (int, float, np.integer, np.floating)):
        raise TypeError(f"validation_split: expected a fraction in [0, 1), got {validation_split!r}")
    if not 0 <= validation_split < 1:
        raise ValueError(f"validation_split: expected a fraction in [0, 1), got {validation_split!r}")
    if validation_split and validation_data is not None:
        raise ValueError("validation_split, validation_data: give one, not both")
    if isinstance(validation_freq, (int, np.integer)) and not isinstance(validation_freq, bool):
        if validation_freq < 1:
            raise ValueError(f"validation_freq: expected an int >= 1 or a list of epochs, got {validation_freq!r}")
    elif not isinstance(validation_freq, (list, tuple, set, range)):
        raise ValueError(f"validation_freq: expected an int >= 1 or a list of epochs, got {validation_freq!r}")
    return verbose


def check_verbose(verbose):
    """Keras's verbose: "auto" (= 1), 0 (silent), 1 (progress bar), 2 (one line per epoch)."""
    if verbose == "auto":
        return 1
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        raise ValueError(f"verbose: expected 'auto', 0, 1 or 2, got {verbose!r}")
    return int(verbose)


def validates(epoch, freq):
    if isinstance(freq, (int, np.integer)):
        return (epoch + 1) % freq == 0
    return epoch + 1 in freq


def _array_training(model, x, y, sample_weight, class_weight, batch_size, shuffle, rng, validation_split):
    """(batches, validation source) for in-memory arrays: checked whole, fit's permutation."""
    from . import trainer
    x, y = trainer.prepare_xy(model, x, y)
    raw = sw = _check_sw(sample_weight, x.shape[0], model.dtype, model)
    _multi_weights.refuse_class_weight(model, class_weight)
    table = _weights.check_class_weight(class_weight, model.output_shape[-1])
    sw = _weights.combine(sw, table, y, model.dtype)  # class weights train; validation is unweighted by them
    val = None
    if validation_split:
        nv = int(x.shape[0] * validation_split)
        if nv < 1 or nv >= x.shape[0]:
            raise ValueError(f"validation_split: {validation_split} of {x.shape[0]} samples leaves no "
                             f"validation or no training samples")
        wv = None if raw is None else raw[-nv:]
        val = trainer.EpochIterator(x[-nv:], y[-nv:], min(nv, 1024), sample_weight=wv)
        x, y, sw = x[:-nv], y[:-nv], None if sw is None else sw[:-nv]
    bs = _batch_size(model, fit_batch_size(batch_size, x.shape[0]), x.shape[0])
    return trainer.EpochIterator(x, y, bs, shuffle, rng, sample_weight=sw), val


def _batch_size(model, bs, n):
    from . import layers
    if any(isinstance(l, layers.BatchNormalization) and l.trainable for l in model.layers):
        if bs == 1 or n % bs == 1:
            raise ValueError(f"batch_size: with BatchNormalization in training every batch needs at least "
                             f"2 samples; batch_size={bs} on {n} samples leaves a batch of 1")
    return bs


def _known_size_batches(model, adapter):
    """A source of known size (memmap, dask array, Parquet) checked as arrays are: a last
    batch of 1 under BatchNormalization is refused before the first step, not at the end
    of the epoch."""
    from .data import DaskArrayAdapter, MemmapAdapter, ParquetAdapter
    if isinstance(adapter, (MemmapAdapter, DaskArrayAdapter, ParquetAdapter)) and adapter.num_batches:
        bs = adapter.batch_size
        _batch_size(model, bs, (adapter.num_batches - 1) * bs + (adapter.partial_batch_size or bs))


def training_data(model, x, y, kw, rng):
    """(batches, validation source) for any input kind."""
    x, y, kw["sample_weight"] = in_memory(x, y, kw["sample_weight"])
    _multi_weights.refuse_class_weight(model, kw["class_weight"])
    if is_streamed(x, model):
        if kw["validation_split"]:
            raise ValueError("validation_split: only for in-memory arrays; give validation_data")
        if isinstance(kw["batch_size"], str):
            fit_batch_size(kw["batch_size"])
        batches = Streamed(model, x, y, kw["sample_weight"], kw["class_weight"], kw["batch_size"],
                           kw["shuffle"], rng)
        _known_size_batches(model, batches.src.adapter)
        _weights.check_class_weight(kw["class_weight"], model.output_shape[-1])
        val = None
    else:
        batches, val = _array_training(model, x, y, kw["sample_weight"], kw["class_weight"], kw["batch_size"],
                                       kw["shuffle"], rng, kw["validation_split"])
    steps = check_steps(kw["steps_per_epoch"], "steps_per_epoch")
    if steps is not None:
        batches = StepsPerEpoch(batches, steps)
    vsteps = check_steps(kw["validation_steps"], "validation_steps")
    vbs = kw["validation_batch_size"]
    if vsteps is not None and vbs is None:  # Keras: validation_batch_size or batch_size (None: 32)
        vbs = 32 if kw["batch_size"] is None else kw["batch_size"]
    if kw["validation_data"] is not None:
        val = validation_source(model, kw["validation_data"], vbs, vsteps)
    elif val is not None and vsteps is not None:  # validation_split's rows, validation_steps batches
        val = StepsPerEpoch(EpochIterator(val.x, val.y, fit_batch_size(vbs, val.num_samples),
                                          sample_weight=val.sample_weight), vsteps, restart=True)
    return batches, val



# ------------------------------------------------------------------- validation
def _is_xy_tuple(v):
    """validation_data given as (x_val, y_val) or (x_val, y_val, sample_weight): arrays,
    a DataFrame with a label column name, a memmap with its targets."""
    if not isinstance(v, (tuple, list)) or len(v) not in (2, 3) or isinstance(v[0], tuple):
        return False
    if isinstance(v, list) and len(v) == 3:
        return False  # a list of three batches
    return all(a is None or isinstance(a, (np.ndarray, list, str)) or hasattr(a, "__array__") or _is_tabular(a)
               for a in v)


def validation_source(model, validation_data, batch_size, steps):
    """A source for ``validation_data``: (x, y[, w]) or any fastnn.data input of batches."""
    if validation_data is None:
        return None
    if _is_xy_tuple(validation_data):
        xv, yv, wv = (tuple(validation_data) + (None,))[:3]
        return eval_source(model, xv, yv, wv, batch_size, steps, "validation_data")
    return eval_source(model, validation_data, None, None, batch_size, steps, "validation_data")


def eval_source(model, x, y, sample_weight, batch_size, steps, what="x"):
    """A source for evaluate / predict / validation (never shuffled)."""
    from . import trainer
    x, y, sample_weight = in_memory(x, y, sample_weight)
    if not is_streamed(x, model):
        if what == "x" and y is not None:
            x, y = trainer.prepare_xy(model, x, y)
        else:
            xname, yname = ("x", "y") if what in ("x", "predict") else (what + "[0]", what + "[1]")
            if not model.built:
                trainer.build_from(model, x, xname)
            model._ensure_placed()
            x = trainer.prepare_x(model, x, xname)
            y = None if y is None else trainer.prepare_y(model, y, x.shape[0], yname)
        sw = _check_sw(sample_weight, x.shape[0], model.dtype, model)
        bs = fit_batch_size(batch_size, x.shape[0], 1024)
        src = trainer.EpochIterator(x, y, bs, sample_weight=sw)
    else:
        src = Streamed(model, x, y, sample_weight, None, fit_batch_size(batch_size, None, 1024), False, None,
                       inputs_only=what == "predict")
    return StepsPerEpoch(src, steps, restart=True) if steps is not None else src


def _check_sw(sw, n, dtype, model=None):
    """One weight per row; for a model with several outputs also one array per output
    (``fastnn._multi_weights``: a (n, outputs) array)."""
    from .data.fit_hook import _check_weights
    return _multi_weights.check_sample_weight(model, sw, n, dtype, _check_weights)
