"""Keras 3's one-batch methods of a model: ``model(x, training=...)``, ``train_on_batch``,
``test_on_batch`` and ``predict_on_batch`` (methods of :class:`fastnn.Model`).

``train_on_batch`` is one step of ``fit`` on that batch: the same checks and weights
(``fastnn._sources``: shapes, targets, sample and class weights, BatchNormalization's
batch of at least 2), then the trainer's ``train_step`` (the native step where it applies),
so ``train_on_batch(x, y)`` leaves the model bitwise as ``fit(x, y, batch_size=len(x),
epochs=1, shuffle=False)`` does. Everything is checked before any state changes: a
rejected call leaves the model as it was. As in Keras 3 the metrics are reset at each call
(the result is the batch's own), and the return is the loss (a float), ``[loss,
*metrics]``, or with ``return_dict=True`` a dict of the logs.

>>> import numpy as np, fastnn
>>> from fastnn.layers import Dense
>>> m = fastnn.Sequential([Dense(2, input_dim=3)]); m.compile("sgd", "mse", metrics=["mae"])
>>> x, y = np.ones((4, 3), dtype=np.float32), np.zeros((4, 2), dtype=np.float32)
>>> sorted(m.train_on_batch(x, y, return_dict=True))
['loss', 'mae']
>>> m(x, training=True).shape
(4, 2)
"""
from __future__ import annotations

from . import _atomic, _sources
from . import layers as _layers
from . import multi_io as _multi_io
from . import trainer as _trainer
from .layers import _eager, _mixed


def _results(model, logs, return_dict):
    """Keras's return of the *_on_batch methods: the dict, or the loss, or [loss, *metrics]."""
    if return_dict:
        return logs
    vals = [logs["loss"]] + [logs[m] for m in _multi_io.result_names(model)]
    return vals[0] if len(vals) == 1 else vals


def _one_batch(model, x, what):
    """Refuses inputs that are not in-memory arrays (a generator, a Dataset): one batch."""
    if _sources.is_streamed(x, model):
        raise TypeError(f"{what}: expected one batch of arrays, got {type(x).__name__}; "
                        f"fit / evaluate / predict take batch sources")


def _symbolic(inputs):
    items = inputs.values() if isinstance(inputs, dict) else inputs if isinstance(inputs, (list, tuple)) else [inputs]
    return any(isinstance(t, _layers.SymbolicTensor) for t in items)


def _train_call(model, inputs):
    """One forward pass in training mode over all of ``inputs``; new arrays."""
    if not model.built:
        _trainer.build_from(model, inputs)
    model._ensure_placed()
    x = model._prepare_x(inputs)
    if x.shape[0] < 2 and any(isinstance(l, _layers.BatchNormalization) and l.trainable for l in model.layers):
        raise ValueError(f"x: BatchNormalization in training needs at least 2 samples, got {x.shape[0]}")
    with _atomic.step_lock(model):
        out = model._forward(x, True, False)
    return [_mixed.as_float(o) for o in out] if isinstance(out, list) else _mixed.as_float(out)


@_trainer.serialized
def call(self, inputs, training=None, mask=None):
    """The model's output for ``inputs`` as a new NumPy array (a list for several outputs).
    ``training=True``: training behaviour in one pass over all the rows (Dropout drops with
    each layer's seed sequence, BatchNormalization normalizes with the batch's statistics
    and updates its moving ones, as Keras 3); nothing is learned. False or None:
    inference, as ``predict``."""
    training = _eager.check_training(training, mask)
    if _symbolic(inputs):
        raise TypeError("inputs: a fastnn model is called on arrays; to reuse its layers in a new "
                        "graph call the layers on the tensors")
    _one_batch(self, inputs, "inputs")
    if not training:
        return _trainer.predict(self, inputs)
    return _train_call(self, inputs)


@_trainer.serialized
def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
    """One training step on (x, y) as one batch (Keras 3); see the module docstring."""
    _trainer.check_compiled(self, "train_on_batch")
    self.optimizer.check_hyperparameters()
    _one_batch(self, x, "x")
    if y is None:
        raise ValueError("y: expected targets, got None")
    batches, _ = _sources._array_training(self, x, y, sample_weight, class_weight, "full", False, None, 0.0)
    _trainer.build_optimizer(self)
    modes = _trainer.loss_mode(self)
    metrics = _trainer.make_metrics(self)
    update = _trainer.metric_updater(self, metrics, *modes)
    _trainer.regularization(self, grads=False)  # as fit: the list of regularized variables
    (xb, yb, sw), = batches.epoch()
    with _atomic.step_lock(self):
        loss, penalty, out = _trainer.train_step(self, xb, yb, *modes, sw)
    update(yb, out, sw)
    return _results(self, _trainer._logs(loss + penalty, loss, 1, metrics, bool(self._reg_items)),
                    return_dict)


@_trainer.serialized
def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
    """Loss and metrics on (x, y) as one batch in inference mode (Keras 3): the loss, [loss,
    *metrics], or a dict with ``return_dict=True``."""
    _trainer.check_compiled(self, "test_on_batch")
    _one_batch(self, x, "x")
    if y is None:
        raise ValueError("y: expected targets, got None")
    src = _sources.eval_source(self, x, y, sample_weight, "full", None)
    return _results(self, _trainer.evaluate_source(self, src), return_dict)


@_trainer.serialized
def predict_on_batch(self, x):
    """The outputs for x as one batch, inference mode (Keras 3): a new array."""
    _one_batch(self, x, "x")
    return _trainer.predict(self, x, batch_size="full")


def reset_metrics(self):
    """Keras 3's ``model.reset_metrics()``: the metric objects given to ``compile`` start from
    zero (fastnn resets them at every fit epoch, validation, evaluate and *_on_batch call too)."""
    specs = [self._metric_names, self._weighted_metric_names]
    for group in specs:
        for spec in (group.values() if isinstance(group, dict) else [group]):
            for m in (spec if isinstance(spec, (list, tuple)) else [spec]):
                if hasattr(m, "reset"):
                    m.reset()


# the methods of fastnn.Model, in the order graph.py binds them
METHODS = (call, train_on_batch, test_on_batch, predict_on_batch, reset_metrics)
