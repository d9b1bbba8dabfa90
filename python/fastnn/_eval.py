"""Evaluation and prediction over a batch source (``fastnn._sources``): the test and predict
halves of the trainer, moved out of ``fastnn.trainer`` (which re-exports them). They use the
trainer's loss, metric and checking helpers and run one batch at a time in inference mode.
"""
from __future__ import annotations

import numpy as np

from . import _execution, _sources, _weights
from . import callbacks as _callbacks
from . import multi_io as _multi_io
from . import progress as _progress
from . import trainer as _t
from .trainer import loss_mode, make_metrics, metric_updater, prepare_x, regularization


def evaluate_source(model, source, cbs=()):
    """Logs (loss with the penalty, data_loss when regularized, metrics) over a source's
    batches (sample weights applied in the loss); calls the test hooks of ``cbs``."""
    loss_on_logits, last_logits = loss_mode(model)
    metrics = make_metrics(model)
    update_metrics = metric_updater(model, metrics, loss_on_logits, last_logits)
    hooks = _execution.BatchHooks(cbs, "test", getattr(model, "steps_per_execution", 1))
    for cb in cbs:
        cb.on_test_begin({})
    n, data, activity = 0, 0.0, 0.0
    for step, (xb, yb, sw) in enumerate(source.epoch()):
        hooks.begin(step, xb.shape[0])
        out = model._forward(xb, False, last_logits)
        loss, _ = _weights.weighted_value_and_grad(model.loss, out, yb, sw, loss_on_logits)
        data += loss * xb.shape[0]
        activity += _t.activity_penalty(model) * xb.shape[0]  # ActivityRegularization, per batch as Keras
        n += xb.shape[0]
        update_metrics(yb, out, sw)
        hooks.end(step, loss, xb.shape[0])
    hooks.close()
    source.on_epoch_end()
    if n == 0:
        raise ValueError("x: the data held no batch to evaluate")
    penalty = regularization(model, grads=False, activity=False)  # the weights'; activity's per batch
    logs = {"loss": data / n + penalty + activity / n}
    if model._reg_items:
        logs["data_loss"] = data / n
    for m in metrics:
        logs[m.name] = m.result()
    for cb in cbs:
        cb.on_test_end(logs)
    return logs


def evaluate_arrays(model, x, y, batch_size):
    """evaluate_source over checked arrays."""
    return evaluate_source(model, _t.EpochIterator(x, y, _sources.fit_batch_size(batch_size, x.shape[0], 1024)))


def _eval_callbacks(model, callbacks):
    cbs = list(callbacks or [])
    for cb in cbs:
        if not isinstance(cb, _callbacks.Callback):
            raise TypeError(f"callbacks: expected Callback instances, got {type(cb).__name__}")
        cb.set_model(model)
    return cbs


def evaluate(model, x, y=None, batch_size=None, verbose=0, sample_weight=None, steps=None, callbacks=None,
             return_dict=False):
    """Model.evaluate (see there)."""
    _t.check_compiled(model, "evaluate")
    _sources.check_batch_size(batch_size, 1024)
    verbose = _sources.check_verbose(verbose)
    cbs = _eval_callbacks(model, callbacks)
    if not _sources.is_streamed(x, model) and y is None:
        raise ValueError("y: expected targets, got None")
    src = _sources.eval_source(model, x, y, sample_weight, batch_size, _sources.check_steps(steps, "steps"))
    logs = evaluate_source(model, src, cbs)
    if verbose:
        print(_progress.format_logs(logs, 4))
    if return_dict:
        return logs
    vals = [logs["loss"]] + [logs[m] for m in _multi_io.result_names(model)]
    return vals[0] if len(vals) == 1 else vals


def build_from(model, x, what="x"):
    """Build an unbuilt model from the feature shape of array-like ``x`` (checked first)."""
    xa = np.asarray(x)
    if xa.ndim < 2:
        raise ValueError(f"{what}: expected shape (n, features), got {xa.shape}")
    prepare_x(model, xa, what)
    model.build(xa.shape[1:])


def predict(model, x, batch_size=None, verbose=0, steps=None, callbacks=None):
    """Model.predict (see there)."""
    _sources.check_batch_size(batch_size, 1024)
    if getattr(model, "_io", None) is not None:
        return _multi_io.predict(model, x, batch_size)
    _sources.check_verbose(verbose)
    cbs = _eval_callbacks(model, callbacks)
    src = _sources.eval_source(model, x, None, None, batch_size, _sources.check_steps(steps, "steps"), "predict")
    hooks = _execution.BatchHooks(cbs, "predict", getattr(model, "steps_per_execution", 1))
    for cb in cbs:
        cb.on_predict_begin({})
    n = getattr(src, "num_samples", None) if not isinstance(src, _sources.Streamed) else None
    out = np.empty((n,) + tuple(model.layers[-1].output_shape), dtype=model.dtype) if n else None
    parts, s = [], 0
    for step, (xb, _, _) in enumerate(src.epoch()):
        hooks.begin(step, xb.shape[0])
        yb = model._forward(xb, False, False)
        if out is not None:
            out[s:s + xb.shape[0]] = yb
        else:
            parts.append(np.array(yb))
        s += xb.shape[0]
        hooks.end(step, outputs=yb)
    hooks.close()
    src.on_epoch_end()
    if out is None:
        if not parts:
            raise ValueError("x: the data held no batch to predict")
        out = np.concatenate(parts)
    for cb in cbs:
        cb.on_predict_end({})
    return out
