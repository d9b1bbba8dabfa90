"""``BackupAndRestore``: a training run killed at any moment resumes where its last backup was.

Keras's name and arguments. One bundle file, ``<backup_dir>/backup.npz``, replaced
atomically (an unnamed temporary file, fsync, rename, fsync of the folder: never
torn, and a writer killed mid-write leaves nothing), holds

- everything ``model.save`` holds: config, weights, BatchNormalization's moving
  statistics (they are model variables), the Dropout call counters (layer state),
  the optimizer's slots, ``iterations`` and ``epoch``;
- ``__backup__``: JSON with the position (``epoch``, ``step``), the optimizer's
  learning rate when it is a number (ReduceLROnPlateau changes it), every layer's
  ``seed``, the batch counter of ``save_freq``, each callback's ``get_state()``
  and the trainer's own state; NumPy arrays anywhere in those trees are stored
  as entries ``backup/<n>`` beside it.

A bundle that cannot be read (torn, truncated, bit-flipped: zip CRC, bad JSON,
wrong format) is ignored with a ``RuntimeWarning`` and training starts afresh;
a readable bundle that does not fit the model or the callbacks raises
``ValueError``. Either way nothing is changed unless everything was read and
checked first.

Protocol (what ``fit`` calls, in this order; the callback refuses to run under
a fit that does not bind it). fit's side is ``fastnn._resume``, which finds the
callback by its ``_fit_protocol`` attribute (the trainer never imports this module):

1. ``backup.bind(callbacks, trainer_state, check_trainer)`` after ``set_model``,
   before any ``on_train_begin``. ``callbacks``: fit's full list (History
   included; the BackupAndRestore itself is skipped). ``trainer_state()``:
   called at every backup, returns the trainer's own tree: the shuffle key
   (epoch ``e``'s order is a function of the key and ``e``, ``fastnn._shuffle``,
   so that is all the shuffling state there is), what the fit runs on (samples,
   batch size, steps, metric names) and, for ``save_freq=N`` backups mid-epoch,
   the epoch's running loss sums and metric states. ``check_trainer(tree)``
   raises ValueError when a saved tree does not fit this fit; it runs before
   anything is restored.
2. every ``on_train_begin``, then ``resumed = backup.restore()``: ``None`` (no
   backup: start at ``initial_epoch``) or a dict ``{"epoch", "step", "trainer"}``
   with the model, optimizer and every callback's state already restored.
   fit then sets its shuffle key and accumulators from ``resumed["trainer"]``
   and starts at epoch ``resumed["epoch"]``, skipping its first
   ``resumed["step"]`` batches. When ``step > 0`` that epoch is already under
   way: fit neither calls ``on_epoch_begin`` for it again nor resets its metrics.
3. after every batch's ``on_train_batch_end`` calls (all callbacks):
   ``backup.batch_end(epoch, step)``, ``step`` counting from 0; it saves every
   ``save_freq`` batches when that is an int.
4. after every epoch's ``on_epoch_end`` calls (all callbacks, History last):
   ``backup.epoch_end(epoch)``; it saves when ``save_freq == "epoch"``, with the
   position ``(epoch + 1, 0)``.
5. ``on_train_end`` (as for every callback): with ``delete_checkpoint`` the
   bundle is deleted, so a finished run is not "resumed" by the next one.

>>> import tempfile
>>> from fastnn.backup import BackupAndRestore
>>> cb = BackupAndRestore(tempfile.mkdtemp(), save_freq=100)
>>> cb.save_freq
100
"""
from __future__ import annotations

import json
import os
import warnings

import numpy as np

from . import _archive, _atomic, _safe_files
from . import modelfile as _io
from .callbacks import Callback

FORMAT = "fastnn-backup"
VERSION = 1
FILENAME = "backup.npz"


def _check_meta_types(meta, path):
    """The structure of a bundle's ``__backup__`` entries ``_check`` and ``_apply`` read."""
    cbs, seeds, lr = meta.get("callbacks"), meta.get("seeds"), meta.get("learning_rate")
    if not isinstance(cbs, list) or not all(isinstance(c, list) and len(c) == 2 and isinstance(c[0], str)
                                            for c in cbs):
        raise ValueError(f"{path}: callbacks is not a list of [name, state] pairs")
    if not isinstance(seeds, list) or any(v is not None and (isinstance(v, bool) or not isinstance(v, int))
                                          for v in seeds):
        raise ValueError(f"{path}: seeds is {seeds!r}, expected a list of ints or None, one per layer")
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0
                           or lr == float("inf")):
        raise ValueError(f"{path}: learning_rate is {lr!r}, expected a number > 0 or None")


def _flatten(tree, arrays, where="state"):
    """``tree`` as JSON-able data, its arrays moved into ``arrays`` as ``backup/<n>``."""
    if isinstance(tree, np.ndarray):
        if tree.dtype.kind not in "fiub":
            raise TypeError(f"{where}: arrays must hold numbers, got dtype {tree.dtype}")
        key = f"backup/{len(arrays)}"
        arrays[key] = np.array(tree)
        return {"__array__": key}
    if isinstance(tree, np.generic):
        return tree.item()
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    if isinstance(tree, dict):
        if not all(isinstance(k, str) for k in tree):
            raise TypeError(f"{where}: dict keys must be str, got {[type(k).__name__ for k in tree]}")
        if "__array__" in tree:
            raise TypeError(f"{where}: the key '__array__' is reserved")
        return {k: _flatten(v, arrays, f"{where}[{k!r}]") for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_flatten(v, arrays, f"{where}[{i}]") for i, v in enumerate(tree)]
    raise TypeError(f"{where}: expected dicts, lists, numbers, strings, None or arrays, got {type(tree).__name__}")


def _unflatten(tree, arrays):
    if isinstance(tree, dict):
        if set(tree) == {"__array__"}:
            return arrays[tree["__array__"]]
        return {k: _unflatten(v, arrays) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_unflatten(v, arrays) for v in tree]
    return tree


def _array_keys(tree, out):
    if isinstance(tree, dict):
        if set(tree) == {"__array__"}:
            out.append(tree["__array__"])
        else:
            for v in tree.values():
                _array_keys(v, out)
    elif isinstance(tree, list):
        for v in tree:
            _array_keys(v, out)
    return out


class BackupAndRestore(Callback):
    """Backs up the whole training state to ``backup_dir`` and resumes from it when the same
    script runs again after a crash (Keras's ``BackupAndRestore``; see the module docstring
    for what is saved and for the protocol ``fit`` follows).

    save_freq: ``"epoch"`` (at the end of every epoch) or an int N (every N batches).
    delete_checkpoint: delete the backup when training ends normally.
    """

    _fit_protocol = "backup"  # how the trainer recognises it (it never imports this module)

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True):
        super().__init__()
        if not isinstance(backup_dir, (str, bytes, os.PathLike)) or not os.fspath(backup_dir):
            raise ValueError(f"backup_dir: expected a folder path, got {backup_dir!r}")
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, (int, np.integer))
                                     or save_freq < 1):
            raise ValueError(f"save_freq: expected 'epoch' or an int >= 1 (batches), got {save_freq!r}")
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq if save_freq == "epoch" else int(save_freq)
        self.delete_checkpoint = bool(delete_checkpoint)
        self._callbacks = self._trainer_state = self._check_trainer = None
        self._batches_seen = 0

    @property
    def path(self):
        return os.path.join(self.backup_dir, FILENAME)

    # ------------------------------------------------------------------ protocol
    def bind(self, callbacks, trainer_state, check_trainer=None):
        """Step 1: fit's callbacks (their state is backed up), its trainer-state function and,
        optionally, ``check_trainer(tree)`` raising ValueError when a saved trainer state does
        not fit this fit (called before anything is restored)."""
        self._callbacks = [cb for cb in callbacks if cb is not self]
        self._trainer_state = trainer_state
        self._check_trainer = check_trainer
        self._batches_seen = 0

    def on_train_begin(self, logs=None):
        if self._trainer_state is None:
            raise RuntimeError("BackupAndRestore: this fit does not support it (bind() was not called); "
                               "nothing would be backed up")

    def batch_end(self, epoch, step):
        """Step 3: after the batch ``step`` (from 0) of ``epoch``; saves every save_freq batches."""
        self._batches_seen += 1
        if self.save_freq != "epoch" and self._batches_seen % self.save_freq == 0:
            self.save(epoch, step + 1)

    def epoch_end(self, epoch):
        """Step 4: after every callback's on_epoch_end of ``epoch``."""
        if self.save_freq == "epoch":
            self.save(epoch + 1, 0)

    def on_train_end(self, logs=None):
        """Step 5: a finished run leaves no backup behind (with delete_checkpoint)."""
        if self.delete_checkpoint:
            self._clean()
            try:
                os.unlink(self.path)
                os.rmdir(self.backup_dir)  # only when empty: a folder the user shares keeps its files
            except OSError:
                pass

    def _clean(self):
        """Remove the bundle temporaries of dead writers on this host, whatever their age: a
        bundle gets its temporary name only once complete, just before the rename, so such a
        file is a writer killed in those microseconds (see fastnn._safe_files)."""
        if os.path.isdir(self.backup_dir):
            _safe_files.clean_stale_temporaries(self.backup_dir, now=float("inf"))

    # ---------------------------------------------------------------------- save
    def save(self, epoch, step):
        """Write the bundle for position (``epoch``, ``step`` batches done in it), atomically,
        between two training steps (another thread's set_weights cannot tear it)."""
        with _atomic.step_lock(self.model):
            self._save(epoch, step)

    def _save(self, epoch, step):
        model = self.model
        arrays = _io._arrays(model, include_optimizer=True)
        lr = model.optimizer.learning_rate if model.compiled else None
        meta = {"format": FORMAT, "version": VERSION, "epoch": int(epoch), "step": int(step),
                "batches_seen": self._batches_seen,
                "learning_rate": lr if isinstance(lr, float) else None,
                "seeds": [getattr(layer, "seed", None) for layer in model.layers],
                "callbacks": [[type(cb).__name__, _flatten(cb.get_state(), arrays, f"{type(cb).__name__} state")]
                              for cb in self._callbacks],
                "trainer": _flatten(self._trainer_state(), arrays, "trainer state")}
        arrays["__backup__"] = np.array(json.dumps(meta))
        os.makedirs(self.backup_dir, exist_ok=True)
        _safe_files.atomic_write(self.path, lambda f: np.savez(f, **arrays), unnamed=True)

    # ------------------------------------------------------------------- restore
    def restore(self):
        """Step 2: None when there is no usable backup; else restores the model, the optimizer
        and the callbacks and returns ``{"epoch", "step", "trainer"}``."""
        self._clean()
        if not os.path.exists(self.path):
            return None
        try:
            meta, data = self._read()
        except ValueError as e:  # torn, truncated, corrupted: never loaded
            warnings.warn(f"BackupAndRestore: ignoring the backup {self.path}, which cannot be read "
                          f"({e}); training starts from the beginning", RuntimeWarning, stacklevel=2)
            return None
        self._check(meta, data)
        trainer = _unflatten(meta["trainer"], data)
        if self._check_trainer is not None:
            try:
                self._check_trainer(trainer)
            except ValueError as e:
                raise ValueError(f"{self.path}: {e}") from None
        self._apply(meta, data)
        return {"epoch": meta["epoch"], "step": meta["step"], "trainer": trainer}

    def _read(self):
        """(meta, every array) of the bundle, each entry read in full and CRC-checked, without
        comparing anything to the model yet; ValueError when it cannot be read."""
        with _archive.Archive(self.path) as ar:
            budget = _archive.Budget(None, self.path)
            _io._read_config(ar, budget)
            if "__backup__" not in ar or ar.entry("__backup__").dtype.kind != "U":
                raise ValueError(f"{self.path}: no __backup__ text entry")
            try:
                meta = json.loads(str(ar.read("__backup__", budget)))
            except (ValueError, RecursionError) as e:
                raise ValueError(f"{self.path}: __backup__ is not valid JSON ({e})") from None
            if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") != VERSION:
                raise ValueError(f"{self.path}: not a version {VERSION} {FORMAT} bundle")
            keys = [k for k in ar.members if k not in ("__config__", "__backup__")]
            for k in keys:
                if ar.entry(k).dtype.kind not in "fiub":
                    raise ValueError(f"{self.path}: entry {k} has dtype {ar.entry(k).dtype}, expected numbers")
            data = _io._read_entries(ar, keys, budget)
        missing = [k for k in _array_keys([meta.get("callbacks"), meta.get("trainer")], []) if k not in data]
        if missing:
            raise ValueError(f"{self.path}: entries {missing} are missing")
        return meta, data

    def _check(self, meta, data):
        """A readable bundle that does not fit this model or these callbacks: ValueError."""
        model, path = self.model, self.path
        model._ensure_placed()
        opt = model.optimizer
        for slot in opt.slots:
            a = data.get(f"optimizer/{slot}")
            if a is None or a.shape != (model._params.size,) or a.dtype.kind != "f":
                raise ValueError(f"{path}: optimizer state {slot} is missing or does not fit this model "
                                 f"({None if a is None else a.shape}, expected ({model._params.size},))")
        for k in ("iterations", "epoch"):
            a = data.get(f"optimizer/{k}")
            if a is None or a.shape != () or a.dtype.kind not in "iu" or int(a) < 0:
                raise ValueError(f"{path}: optimizer/{k} is missing or not an integer >= 0")
        for k in ("epoch", "step", "batches_seen"):
            v = meta.get(k)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{path}: {k} is {v!r}, expected an int >= 0")
        _check_meta_types(meta, path)
        saved = [name for name, _ in meta["callbacks"]]
        have = [type(cb).__name__ for cb in self._callbacks]
        if saved != have:
            raise ValueError(f"{path}: the backup was made with the callbacks {saved}, this fit has {have}; "
                             f"an exact resume needs the same callbacks")
        if len(meta["seeds"]) != len(model.layers):
            raise ValueError(f"{path}: the backup has {len(meta['seeds'])} layers, the model {len(model.layers)}")

    def _apply(self, meta, data):
        self._apply_callbacks(meta, data)  # first: a state a callback refuses changes nothing
        model = self.model
        _io._set_layer_arrays(model, data, self.path)  # checks every layer first, then writes
        for layer, seed in zip(model.layers, meta["seeds"]):
            if seed is not None and hasattr(layer, "seed"):
                layer.seed = seed
        opt = model.optimizer
        for slot in opt.slots:
            opt.state[slot][...] = data[f"optimizer/{slot}"]
        opt.iterations = int(data["optimizer/iterations"])
        opt.epoch = int(data["optimizer/epoch"])
        if meta["learning_rate"] is not None:
            opt.learning_rate = meta["learning_rate"]
        self._batches_seen = int(meta["batches_seen"])

    def _apply_callbacks(self, meta, data):
        """Every callback's saved state, or none of them: a state that a callback's set_state
        refuses (a damaged or crafted bundle) puts the states before back and is a ValueError."""
        before = [cb.get_state() for cb in self._callbacks]
        name = None
        try:
            for cb, (name, state) in zip(self._callbacks, meta["callbacks"]):
                if state is not None:
                    cb.set_state(_unflatten(state, data))
        except Exception as e:  # KeyError, TypeError, ... from a set_state given a state it never wrote
            for cb, old in zip(self._callbacks, before):
                if old is not None:
                    cb.set_state(old)
            raise ValueError(f"{self.path}: a callback's saved state cannot be restored "
                             f"({name}: {type(e).__name__}: {e})") from None
