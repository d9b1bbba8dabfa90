"""Progress output of fit: verbose=1 a live bar per epoch, verbose=2 one line per epoch."""
from __future__ import annotations

import sys
import time


def _fmt(v, digits):
    if isinstance(v, (list, tuple)):  # a per-class metric (F1Score(average=None)): every value
        return "[" + ", ".join(f"{a:.{digits}f}" for a in v) + "]"
    return f"{v:.{digits}f}"


def format_logs(logs, digits=3):
    return " ".join(f"{k}: {_fmt(v, digits)}" for k, v in logs.items() if not k.startswith("_"))


def epoch_line(epoch, logs):
    """The course notes' line: ``epoch 001 loss: 0.809 accuracy: 0.600 val_loss: 0.861 ...``."""
    return f"epoch {epoch + 1:03d} {format_logs(logs)}"


class ProgressBar:
    """A bar redrawn in place at most every ``interval`` seconds, with ETA and running metrics.
    ``steps`` None (a source of unknown length): a running count of steps instead of a bar
    (``12/Unknown`` as Keras); ``finish`` prints the count reached."""

    def __init__(self, steps, epoch, epochs, stream=None, width=30, interval=0.1):
        self.steps, self.epoch, self.epochs = steps, epoch, epochs
        self.stream = stream or sys.stdout
        self.width, self.interval = width, interval
        self.start = self._last = time.perf_counter()
        self._seen = 0
        self.stream.write(f"Epoch {epoch + 1}/{epochs}\n")

    def due(self, step):
        self._seen = max(self._seen, step)
        if self.steps is not None and step >= self.steps:
            return False
        return time.perf_counter() - self._last >= self.interval

    def update(self, step, logs, force=False):
        now = time.perf_counter()
        self._seen = max(self._seen, step)
        known = self.steps is not None
        if not force and now - self._last < self.interval and (not known or step < self.steps):
            return
        self._last = now
        elapsed = now - self.start
        if not known:
            t = f"{elapsed:.1f}s" if force else f"{elapsed / max(step, 1) * 1000:.0f}ms/step"
            self.stream.write(f"\r{step}/Unknown - {t} - {format_logs(logs, 4)}   ")
            self.stream.flush()
            return
        done = int(self.width * step / self.steps)
        bar = "=" * max(done - 1, 0) + (">" if done < self.width else "=") + "." * (self.width - done)
        if step < self.steps:
            eta = elapsed / max(step, 1) * (self.steps - step)
            t = f"ETA: {eta:.0f}s"
        else:
            t = f"{elapsed:.1f}s"
        n = len(str(self.steps))
        self.stream.write(f"\r{step:{n}d}/{self.steps} [{bar}] - {t} - {format_logs(logs, 4)}   ")
        self.stream.flush()

    def finish(self, logs):
        self.update(self.steps if self.steps is not None else self._seen, logs, force=True)
        self.stream.write("\n")
        self.stream.flush()
