"""Keras 3's ``compile`` options about how steps run, not what is learned, and the batch hooks
they shape.

- ``steps_per_execution=N``: fit, evaluate and predict call the batch hooks of callbacks
  (``on_{train,test,predict}_batch_begin/end``) once every N batches, as Keras does: begin
  with the index of the execution's first batch, end with that index + N - 1 and the
  execution's logs (``loss``: the mean over its batches, weighted by their sizes; predict's
  ``outputs``: its batches' outputs, one array). The last execution of an epoch may be
  shorter; its end index is still first + N - 1, as Keras 3 reports it. Training itself does not change: fastnn already runs the full batches of an
  in-memory epoch several per core call when no callback needs each batch.
- ``run_eagerly``, ``jit_compile``, ``auto_scale_loss``: accepted and kept on the model as
  Keras keeps them; fastnn has one way to run (its native kernels), no graph compilation
  and, under mixed_bfloat16, no loss scaling to do (bfloat16 has float32's range), so they
  change nothing.
- ``weighted_metrics`` (multi_io.compile_weighted_metrics): metrics whose means weigh each
  row by its sample (and class) weight, named as the metric (``weighted_<name>`` when an
  unweighted metric has that name, as Keras); a model with one output.
"""
from __future__ import annotations

import numbers

import numpy as np

from . import callbacks as _callbacks


def options(run_eagerly, steps_per_execution, jit_compile, auto_scale_loss):
    """The checked options as a dict of model attributes (raises before anything is set)."""
    for name, v in (("run_eagerly", run_eagerly), ("auto_scale_loss", auto_scale_loss)):
        if not isinstance(v, (bool, np.bool_)):
            raise ValueError(f"{name}: expected True or False, got {v!r}")
    if not (isinstance(jit_compile, (bool, np.bool_)) or jit_compile == "auto"):
        raise ValueError(f"jit_compile: expected True, False or 'auto', got {jit_compile!r}")
    n = steps_per_execution
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"steps_per_execution: expected an int >= 1, got {n!r}")
    # Keras: "auto" compiles where it can (fastnn never does), and never with run_eagerly
    jit = False if (jit_compile == "auto" or run_eagerly) else bool(jit_compile)
    return {"steps_per_execution": int(n), "run_eagerly": bool(run_eagerly), "jit_compile": jit,
            "auto_scale_loss": bool(auto_scale_loss)}


class BatchHooks:
    """The batch hooks of one loop (kind "train", "test" or "predict") over ``cbs``, called once
    per execution of ``n`` batches (``compile(steps_per_execution=n)``; 1: every batch, with
    the batch's own logs). Executions are aligned on the epoch's batch indices: [0, n), [n, 2n)..."""

    def __init__(self, cbs, kind, n=1):
        self.begin_name, self.end_name = f"on_{kind}_batch_begin", f"on_{kind}_batch_end"
        self.begins = _callbacks.with_hook(cbs, self.begin_name)
        self.ends = _callbacks.with_hook(cbs, self.end_name)
        self.n = int(n)
        self._first = None   # the open execution's first batch index
        self._ran = False    # whether a batch of it has run (end called)
        self._losses = []                # its (loss, size), train and test
        self._outputs = []               # its outputs, predict

    def __bool__(self):
        return bool(self.begins or self.ends)

    def begin(self, step, size):
        """Before the batch at ``step``: the begin hooks when it opens an execution."""
        if self._first is None:
            self._first = step
            for cb in self.begins:
                getattr(cb, self.begin_name)(step, {"size": size})

    def end(self, step, loss=None, size=0, outputs=None):
        """After the batch at ``step`` (its loss and size, or predict's outputs): the end hooks
        when it closes an execution (its last batch index is a multiple of n, less one)."""
        self._ran = True
        if self.ends:
            if outputs is not None:
                self._outputs.append(outputs if self.n == 1 else np.array(outputs))
            else:
                self._losses.append((loss, size))
        if (step + 1) % self.n == 0:
            self.close()

    def close(self):
        """Ends the open execution (an epoch's last, shorter one), if any."""
        if self._first is None or not self._ran:
            self._first, self._ran = None, False
            return
        if self._outputs:
            logs = {"outputs": self._outputs[0] if len(self._outputs) == 1 else np.concatenate(self._outputs)}
        elif len(self._losses) == 1:
            logs = {"loss": self._losses[0][0]}
        elif self._losses:
            total = sum(s for _, s in self._losses)
            logs = {"loss": sum(v * s for v, s in self._losses) / total}
        else:
            logs = {}
        last = self._first + self.n - 1  # Keras 3: also for an epoch's last, shorter execution
        self._first, self._ran = None, False
        self._losses, self._outputs = [], []
        for cb in self.ends:
            getattr(cb, self.end_name)(last, logs)
