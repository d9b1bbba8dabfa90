"""Callbacks: hooks into fit. Keras names and defaults.

>>> import fastnn
>>> es = fastnn.callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
>>> es.patience
3
"""
from __future__ import annotations

import csv
import math
import os
import warnings

import numpy as np

from . import metrics as _metrics
from ._validate import Integral, Interval, Options, Real, validate

_COUNT = Interval(Integral, 0, None, closed="left")
_CONSTRAINTS = {
    "mode": [Options(str, {"auto", "min", "max"})], "min_delta": [Interval(Real, None, None, closed="both")],
    "patience": [_COUNT], "start_from_epoch": [_COUNT], "cooldown": [_COUNT],
    "factor": [Interval(Real, 0, 1, closed="neither")], "min_lr": [Interval(Real, 0, None, closed="left")],
}


class Callback:
    """Base class; ``self.model`` is set by fit. Override the hooks you need."""

    def __init__(self):
        self.model, self.params = None, {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        """fit's ``{"epochs", "steps", "batch_size", "verbose"}`` (Keras 3's ``self.params``)."""
        self.params = params

    def _no_op(self, *args, logs=None):
        """A hook's default: nothing (a subclass overrides the hooks it needs)."""

    # Keras's hooks: on_{train,test,predict}_{begin,end}(logs=None), on_epoch_{begin,end}(epoch,
    # logs=None), on_{test,predict}_batch_{begin,end}(batch, logs=None) and on_batch_{begin,end},
    # which the training batch hooks call (Keras's aliases).
    on_train_begin = on_train_end = on_epoch_begin = on_epoch_end = on_batch_begin = on_batch_end = _no_op
    on_test_begin = on_test_end = on_test_batch_begin = on_test_batch_end = _no_op
    on_predict_begin = on_predict_end = on_predict_batch_begin = on_predict_batch_end = _no_op

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs=logs)

    # state, for fastnn.backup.BackupAndRestore ---------------------------------
    def get_state(self):
        """What this callback must carry over a crash to behave as if training had not stopped:
        a tree of dicts (str keys), lists, numbers, strings, None and NumPy arrays; None when
        it has no state (the default). Override with ``set_state`` in callbacks that count or
        remember across epochs."""
        return None

    def set_state(self, state):
        """Take back what ``get_state`` returned (called after ``on_train_begin`` on resume)."""


class History(Callback):
    """``history.history[key]`` is the list of per-epoch values; ``history.epoch`` the epoch indices."""

    def __init__(self):
        super().__init__()
        self.history, self.epoch, self.params = {}, [], {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)

    def get_state(self):
        return {"history": self.history, "epoch": self.epoch}

    def set_state(self, state):
        self.history = {k: list(v) for k, v in state["history"].items()}
        self.epoch = list(state["epoch"])


# metrics that grow as the model gets better (Keras 3's metrics with _direction "up")
_UP_NAMES = ("precision", "recall", "auc", "f1_score", "fbeta_score")


def _monitor_op(monitor, mode, model=None):
    """"min" or "max"; "auto" reads the direction from the name (accuracy, AUC, precision, recall,
    F-scores grow) or, given the model, from its compiled metric object of that name (Keras 3)."""
    if mode != "auto":
        return mode
    name = monitor.removeprefix("val_")
    if "acc" in monitor or name.endswith(_UP_NAMES):  # also an output's: cls_precision
        return "max"
    up = (_metrics.BinaryAccuracy, _metrics.CategoricalAccuracy, _metrics.SparseCategoricalAccuracy,
          _metrics.Precision, _metrics.AUC, _metrics.FBetaScore, _metrics.TopKCategoricalAccuracy)
    specs = [m for group in ("_metric_names", "_weighted_metric_names")
             for m in (getattr(model, group, None) or []) if isinstance(m, up)]
    if any(m.name == name for m in specs):
        return "max"
    return "min"


class _Monitoring(Callback):
    def __init__(self, monitor, mode, min_delta):
        super().__init__()
        validate({"mode": mode, "min_delta": min_delta}, _CONSTRAINTS, type(self).__name__)
        self.monitor, self._auto = monitor, mode == "auto"
        self.mode = _monitor_op(monitor, mode)
        self.min_delta = abs(float(min_delta))

    def set_model(self, model):
        super().set_model(model)
        if self._auto:  # a metric object's own name (Precision(name="p")) is known once compiled
            self.mode = _monitor_op(self.monitor, "auto", model)

    def _improved(self, current, best):
        if not math.isfinite(current):  # a NaN/inf loss is never an improvement (nor a best to keep)
            return False
        if best is None:
            return True
        if self.mode == "min":
            return current < best - self.min_delta
        return current > best + self.min_delta

    def _get(self, logs):
        v = (logs or {}).get(self.monitor)
        if v is None:
            warnings.warn(f"{type(self).__name__}: metric {self.monitor!r} is not in the logs; "
                          f"available: {', '.join(logs or {})}", RuntimeWarning, stacklevel=3)
        return v


class EarlyStopping(_Monitoring):
    """Stops when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    ``restore_best_weights=True`` puts back the weights of the best epoch when training ends,
    stopped early or not (Keras 3).
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        validate({"patience": patience, "start_from_epoch": start_from_epoch}, _CONSTRAINTS, "EarlyStopping")
        super().__init__(monitor, mode, min_delta)
        self.patience, self.verbose, self.baseline = int(patience), verbose, baseline
        self.restore_best_weights, self.start_from_epoch = bool(restore_best_weights), int(start_from_epoch)

    def on_train_begin(self, logs=None):
        self.wait, self.stopped_epoch, self.best, self.best_epoch = 0, 0, None, 0
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        current = self._get(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights, self.best_epoch = self.model.get_weights(), epoch
        self.wait += 1
        if self._improved(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._improved(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        # Keras 3: the best epoch's weights come back at the end of training, also when it ran
        # every epoch without stopping early
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)

    def get_state(self):
        return {"wait": self.wait, "stopped_epoch": self.stopped_epoch, "best": self.best,
                "best_epoch": self.best_epoch, "best_weights": self.best_weights}

    def set_state(self, state):
        self.wait, self.stopped_epoch = state["wait"], state["stopped_epoch"]
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        w = state["best_weights"]
        self.best_weights = None if w is None else [np.array(a) for a in w]


class ReduceLROnPlateau(_Monitoring):
    """Multiplies the learning rate by ``factor`` when ``monitor`` stalls for ``patience`` epochs."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0):
        validate({"factor": factor, "patience": patience, "cooldown": cooldown, "min_lr": min_lr},
                 _CONSTRAINTS, "ReduceLROnPlateau")
        super().__init__(monitor, mode, min_delta)
        self.factor, self.patience, self.verbose = float(factor), int(patience), verbose
        self.cooldown, self.min_lr = int(cooldown), float(min_lr)

    def on_train_begin(self, logs=None):
        self.wait, self.cooldown_counter, self.best = 0, 0, None

    def on_epoch_end(self, epoch, logs=None):
        opt = self.model.optimizer
        if not isinstance(opt.learning_rate, float):
            raise ValueError("ReduceLROnPlateau: the optimizer's learning_rate is a schedule; "
                             "use a constant learning rate with this callback")
        logs = logs if logs is not None else {}
        logs["learning_rate"] = opt.learning_rate
        current = self._get(logs)
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(current, self.best):
            self.best, self.wait = current, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = opt.learning_rate
                if old > self.min_lr:
                    opt.learning_rate = max(old * self.factor, self.min_lr)
                    if self.verbose:
                        print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to "
                              f"{opt.learning_rate:.6g}.")
                    self.cooldown_counter, self.wait = self.cooldown, 0

    def get_state(self):
        return {"wait": self.wait, "cooldown_counter": self.cooldown_counter, "best": self.best}

    def set_state(self, state):
        self.wait, self.cooldown_counter, self.best = state["wait"], state["cooldown_counter"], state["best"]


class LearningRateScheduler(Callback):
    """At each epoch's start sets ``lr = schedule(epoch, lr)`` (or ``schedule(epoch)``)."""

    def __init__(self, schedule, verbose=0):
        super().__init__()
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        opt = self.model.optimizer
        if not isinstance(opt.learning_rate, float):  # Keras 3 refuses to set it too (TypeError)
            raise TypeError(f"LearningRateScheduler: the optimizer's learning_rate is a schedule "
                            f"({type(opt.learning_rate).__name__}), not settable; give the optimizer a "
                            f"constant learning_rate to use this callback")
        try:
            lr = self.schedule(epoch, opt.learning_rate)
        except TypeError:
            lr = self.schedule(epoch)
        opt.learning_rate = float(lr)
        if self.verbose:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr:.6g}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self.model.optimizer.learning_rate


class _AnyLog(dict):
    def __missing__(self, key):
        return 0.0


class ModelCheckpoint(_Monitoring):
    """Saves the model (or only its weights) after each epoch, or only when ``monitor`` improves
    with ``save_best_only``. ``filepath`` may hold ``{epoch:02d}`` and log keys; its folder
    is created when missing (as Keras does)."""

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto"):
        super().__init__(monitor, mode, 0)
        from .modelfile import check_filename
        self.filepath, self.verbose = check_filename(filepath), verbose  # .keras / .h5 refused now, not at epoch 1
        try:  # a bad format spec refused now, not after the first epoch's training
            self.filepath.format_map(_AnyLog(epoch=1))
        except (ValueError, IndexError, AttributeError) as e:
            raise ValueError(f"filepath: {self.filepath!r} is not a valid format string ({e}); "
                             f"it may hold {{epoch:02d}} and log keys such as {{val_loss:.2f}}") from None
        self.save_best_only, self.save_weights_only = bool(save_best_only), bool(save_weights_only)
        self.best = None

    def _path(self, epoch, logs):
        try:
            path = self.filepath.format(epoch=epoch + 1, **logs)
        except KeyError as e:
            raise KeyError(f"filepath: {self.filepath!r} names the log key {e.args[0]!r}, but epoch {epoch + 1}'s "
                           f"logs hold {sorted(logs)}") from None
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        return path

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        path = self._path(epoch, logs)
        if self.save_best_only:
            current = self._get(logs)
            if current is None or not self._improved(current, self.best):
                return
            if self.verbose:
                print(f"Epoch {epoch + 1}: {self.monitor} improved from {self.best} to {current:.5f}, "
                      f"saving model to {path}")
            self.best = current
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)

    def get_state(self):
        return {"best": self.best}

    def set_state(self, state):
        self.best = state["best"]


class TerminateOnNaN(Callback):
    """Stops training as soon as a batch loss is NaN or infinite."""

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: invalid loss, terminating training")
            self.model.stop_training = True


class DivergenceStop(Callback):
    """Stops when the epoch loss exceeds ``factor`` x the loss at the start of training,
    or ``factor`` x the first epoch's loss, or is not finite: the course notes' sign of a
    learning rate that is too large.

    The loss at the start is ``initial`` if given (e.g. ``model.evaluate(x, y)`` before
    ``fit``), else the loss of the first training batch, which is computed before the
    first update. Comparing with the first epoch alone has a blind spot: a rate so large
    that the loss explodes within the first epoch (4.8e4 after one epoch, from 2.3) makes
    that huge value the yardstick, and the run goes on.
    """

    def __init__(self, factor=3.0, monitor="loss", verbose=0, initial=None):
        super().__init__()
        if not factor > 0:
            raise ValueError(f"factor: expected a positive number, got {factor!r}")
        if initial is not None and (isinstance(initial, bool) or not isinstance(initial, (int, float, np.floating))
                                    or not math.isfinite(initial)):
            raise ValueError(f"initial: expected a finite number or None, got {initial!r}")
        self.factor, self.monitor, self.verbose = float(factor), monitor, verbose
        self.initial_given = None if initial is None else float(initial)

    def on_train_begin(self, logs=None):
        self.first, self.stopped_epoch = None, None
        self.initial = self.initial_given

    def on_train_batch_end(self, batch, logs=None):
        if self.initial is None and self.monitor == "loss":
            v = (logs or {}).get("loss")
            if v is not None and math.isfinite(v):
                self.initial = float(v)

    def on_epoch_end(self, epoch, logs=None):
        v = (logs or {}).get(self.monitor)
        if v is None:
            return
        if self.first is None:
            self.first = v
        refs = [(r, what) for r, what in ((self.initial, "the initial loss"), (self.first, "first epoch's"))
                if r is not None]
        over = [(r, what) for r, what in refs if v > self.factor * r]
        if not math.isfinite(v) or over:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.verbose:
                r, what = over[0] if over else refs[0]
                print(f"Epoch {epoch + 1}: {self.monitor} {v:.4g} > {self.factor} x {what} "
                      f"{r:.4g}: diverging, stopping (lower the learning rate)")

    def get_state(self):
        return {"first": self.first, "stopped_epoch": self.stopped_epoch}

    def set_state(self, state):
        self.first, self.stopped_epoch = state["first"], state["stopped_epoch"]


class CSVLogger(Callback):
    """Writes one row per epoch: ``epoch`` and every log value, to ``filename``."""

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename, self.sep, self.append = os.fspath(filename), separator, bool(append)
        self.keys = None

    def on_train_begin(self, logs=None):
        exists = self.append and os.path.exists(self.filename) and os.path.getsize(self.filename) > 0
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self._writer, self.keys, self._header_done = None, None, exists

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            if not any(k.startswith("val_") for k in self.keys):  # validation_freq > 1: later epochs have them
                self.keys += ["val_" + k for k in self.keys]  # (Keras 3's columns)
            self._writer = csv.writer(self._file, delimiter=self.sep)
            if not self._header_done:
                self._writer.writerow(["epoch"] + self.keys)
        self._writer.writerow([epoch] + [logs.get(k, "NA") for k in self.keys])
        self._file.flush()

    def on_train_end(self, logs=None):
        self._file.close()


_ALIASES = {"on_train_batch_begin": "on_batch_begin", "on_train_batch_end": "on_batch_end"}


def _is_overridden(cb, hook):
    """True when ``cb`` does something in ``hook`` (itself or, for the training batch
    hooks, through the ``on_batch_*`` alias)."""
    def overrides(name):  # a method of its class, or a function set on it (LambdaCallback, as Keras)
        return name in vars(cb) or getattr(type(cb), name, None) is not getattr(Callback, name)
    alias = _ALIASES.get(hook)
    return overrides(hook) or (alias is not None and overrides(alias))


def with_hook(cbs, hook):
    """The callbacks of ``cbs`` that override ``hook`` (the trainer calls only these)."""
    return [cb for cb in cbs if _is_overridden(cb, hook)]


__all__ = ["Callback", "History", "EarlyStopping", "ReduceLROnPlateau", "LearningRateScheduler",
           "ModelCheckpoint", "TerminateOnNaN", "DivergenceStop", "CSVLogger", "TensorBoard",
           "BackupAndRestore", "LambdaCallback"]


def __getattr__(name):
    """``fastnn.callbacks.TensorBoard`` and ``.BackupAndRestore`` (Keras's places), loaded on
    first use: they live in ``fastnn.tensorboard`` and ``fastnn.backup``, which import this module."""
    if name == "TensorBoard":
        from .tensorboard import TensorBoard
        return TensorBoard
    if name == "BackupAndRestore":
        from .backup import BackupAndRestore
        return BackupAndRestore
    raise AttributeError(f"module 'fastnn.callbacks' has no attribute {name!r}")
_ = np  # numpy used by subclasses users write


from ._swap_ema import SwapEMAWeights  # noqa: E402,F401  (Keras 3's callback for use_ema)
from ._lambda_callback import LambdaCallback  # noqa: E402,F401  (Keras 3's)
