"""``TensorBoard`` callback (Keras name and layout) writing event files with the
``tensorboard`` package's own writer; TensorFlow is not needed.

>>> from fastnn.tensorboard import TensorBoard
>>> tb = TensorBoard("logs/run1", histogram_freq=1, update_freq=50)       # doctest: +SKIP
>>> model.fit(x, y, epochs=5, validation_split=0.1, callbacks=[tb])       # doctest: +SKIP

Then ``tensorboard --logdir logs``. As in Keras, ``<log_dir>/train`` holds
``epoch_<metric>`` per epoch, ``epoch_learning_rate``, ``batch_<metric>`` every
``update_freq`` steps and the weight histograms (``<layer>/<variable>``);
``<log_dir>/validation`` holds the ``val_`` metrics as ``epoch_<metric>``. With
``monitor=`` a ``fastnn.monitor.TrainingMonitor`` given to the same fit, its per-step
series (update/weight ratios, gradient norms, activation statistics, dead-unit
fractions) are written too, under their own names, at their global steps.
"""
from __future__ import annotations

import os
import time

import numpy as np

from .callbacks import Callback


def _writer(path):
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    os.makedirs(path, exist_ok=True)
    return EventFileWriter(path)


def _event(step, summary):
    from tensorboard.compat.proto.event_pb2 import Event
    return Event(wall_time=time.time(), step=int(step), summary=summary)


def _scalars(writer, step, values):
    """One scalar per value; a metric with one value per class (``F1Score()``'s default) as
    one scalar per class, tagged ``<name>/<class>``."""
    from tensorboard.compat.proto.summary_pb2 import Summary
    vals = []
    for k, v in values.items():
        a = np.asarray(v, dtype=np.float64)
        if a.ndim == 0:
            vals.append(Summary.Value(tag=k, simple_value=float(a)))
        else:
            vals.extend(Summary.Value(tag=f"{k}/{i}", simple_value=float(e)) for i, e in enumerate(a.ravel()))
    if vals:
        writer.add_event(_event(step, Summary(value=vals)))


def _histogram(values, bins=30):
    from tensorboard.compat.proto.summary_pb2 import HistogramProto
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return HistogramProto()
    counts, edges = np.histogram(v, bins=bins)
    return HistogramProto(min=float(v.min()), max=float(v.max()), num=float(v.size), sum=float(v.sum()),
                          sum_squares=float(np.dot(v, v)), bucket_limit=[float(e) for e in edges[1:]],
                          bucket=[float(c) for c in counts])


class TensorBoard(Callback):
    """Write scalars and histograms of a fit for TensorBoard (Keras ``TensorBoard``).

    log_dir: the run's folder. histogram_freq: every how many epochs to write the
    weight histograms (0: never). update_freq: ``"epoch"`` (scalars once per epoch),
    ``"batch"`` or an int N (also ``batch_loss`` every N steps). write_steps_per_second:
    also ``epoch_steps_per_second``. monitor: a ``TrainingMonitor`` whose series to
    write (it must be in the same ``callbacks`` list). write_graph and profile_batch are
    accepted for Keras compatibility; fastnn writes no graph and no profile.
    """

    def __init__(self, log_dir="logs", histogram_freq=0, write_graph=True, write_images=False,
                 write_steps_per_second=False, update_freq="epoch", profile_batch=0, monitor=None):
        super().__init__()
        if not isinstance(log_dir, (str, os.PathLike)):
            raise TypeError(f"log_dir: expected a folder path, got {type(log_dir).__name__}")
        if isinstance(histogram_freq, bool) or not isinstance(histogram_freq, (int, np.integer)) \
                or histogram_freq < 0:
            raise ValueError(f"histogram_freq: expected an int >= 0, got {histogram_freq!r}")
        if update_freq == "batch":
            update_freq = 1
        if update_freq != "epoch" and (isinstance(update_freq, bool) or
                                       not isinstance(update_freq, (int, np.integer)) or update_freq < 1):
            raise ValueError(f"update_freq: expected 'epoch', 'batch' or an int >= 1, got {update_freq!r}")
        if write_images:
            raise ValueError("write_images: fastnn has no image summaries; expected False")
        if monitor is not None and not hasattr(monitor, "steps"):
            raise TypeError(f"monitor: expected a fastnn.monitor.TrainingMonitor, got {type(monitor).__name__}")
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = int(histogram_freq)
        self.update_freq = update_freq
        self.write_graph, self.profile_batch = write_graph, profile_batch
        self.write_steps_per_second = bool(write_steps_per_second)
        self.monitor = monitor
        self._train = self._val = None
        self._step = 0

    def on_train_begin(self, logs=None):
        self._close()
        self._train = _writer(os.path.join(self.log_dir, "train"))
        self._val = _writer(os.path.join(self.log_dir, "validation"))
        self._monitor_done = 0
        # the global step, as Keras (the optimizer's iterations): a second fit, or a resumed
        # one, continues the batch_ series instead of writing over its steps
        self._step = int(getattr(getattr(self.model, "optimizer", None), "iterations", 0) or 0)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = (time.perf_counter(), self._step)

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if self.update_freq != "epoch" and self._step % self.update_freq == 0 and self._train is not None:
            _scalars(self._train, self._step, {f"batch_{k}": v for k, v in (logs or {}).items()})

    def on_epoch_end(self, epoch, logs=None):
        if self._train is None:
            return
        logs = dict(logs or {})
        train = {f"epoch_{k}": v for k, v in logs.items() if not k.startswith("val_")}
        val = {f"epoch_{k[4:]}": v for k, v in logs.items() if k.startswith("val_")}
        opt = getattr(self.model, "optimizer", None)
        if opt is not None and hasattr(opt, "current_learning_rate"):
            train["epoch_learning_rate"] = opt.current_learning_rate()
        if self.write_steps_per_second:
            t0, s0 = self._epoch_start
            train["epoch_steps_per_second"] = (self._step - s0) / max(time.perf_counter() - t0, 1e-9)
        _scalars(self._train, epoch, train)
        _scalars(self._val, epoch, val)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._write_histograms(epoch)
        if self.monitor is not None:
            self._write_monitor()
        self._train.flush()
        self._val.flush()

    def _write_histograms(self, epoch):
        from tensorboard.compat.proto.summary_pb2 import Summary
        vals = []
        for layer in self.model.layers:
            for name, w in (getattr(layer, "vars", None) or {}).items():
                vals.append(Summary.Value(tag=f"{layer.name}/{name}", histo=_histogram(w)))
        if vals:
            self._train.add_event(_event(epoch, Summary(value=vals)))

    def _write_monitor(self):
        series = self.monitor.steps
        steps = series.get("step", [])
        for i in range(self._monitor_done, len(steps)):
            _scalars(self._train, steps[i], {k: v[i] for k, v in series.items()
                                             if k not in ("step", "loss") and i < len(v)})
        self._monitor_done = len(steps)

    def on_train_end(self, logs=None):
        self._close()

    def _close(self):
        for w in (self._train, self._val):
            if w is not None:
                w.close()
        self._train = self._val = None
