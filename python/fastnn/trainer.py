"""Training, evaluation and prediction of a model over an epoch iterator, in the spirit of
Keras 3's ``trainers/`` (a data adapter feeds an :class:`EpochIterator`, the trainer runs
the steps, the callbacks, the metrics and the progress bar).

The functions here take the model as their first argument and use only its graph
interface (``_forward``, ``_backward``, ``arena``, ``layers``, ``loss``, ``optimizer``,
``regularizer``); they never import the graph module. ``Model.fit`` / ``evaluate`` /
``predict`` are thin methods delegating here, so this module sits below ``graph`` in the
import order (as Keras's ``Trainer`` sits below its ``Model``).

Model-level facts (input width, non-finite input, batch size vs BatchNormalization) are
checked here, once, and targets by the loss (``Loss.prepare_targets``), all before any
state changes: a rejected call leaves the model as it was.

Training data flow: batches gathered into reused buffers, each layer's forward writes
into its own buffers, one fused loss kernel, backward in reverse topological order,
regularization and clipping on the flat gradient buffer, one optimizer kernel call per
contiguous range of trainable parameters.
"""
from __future__ import annotations

import functools
import math
import threading
import weakref

import numpy as np

from . import callbacks as _callbacks
from . import initializers as _initializers
from . import layers as _layers
from . import losses as _losses
from . import metrics as _metrics
from . import progress as _progress
from ._output_check import check_loss_output


# One lock per model: layers write into buffers they own (one set per batch size), so two
# threads running the same model at once would overwrite each other's activations. fit,
# evaluate, predict and compute_loss_and_gradients of one model run one at a time; different
# models run in parallel (kernels release the GIL). Kept outside the model so that copying
# a model (copy.deepcopy) gives the copy its own lock.
_MODEL_LOCKS: "weakref.WeakKeyDictionary[object, threading.RLock]" = weakref.WeakKeyDictionary()
_MODEL_LOCKS_GUARD = threading.Lock()


def serialized(method):
    @functools.wraps(method)
    def run_alone(self, *args, **kwargs):
        with _MODEL_LOCKS_GUARD:
            lock = _MODEL_LOCKS.get(self)
            if lock is None:
                lock = _MODEL_LOCKS[self] = threading.RLock()
        with lock:
            return method(self, *args, **kwargs)
    return run_alone


class NotCompiledError(ValueError, RuntimeError):
    """fit / evaluate called before compile."""


class EpochIterator:
    """Batches of in-memory arrays, epoch after epoch: ``for step, xb, yb in it`` runs one
    epoch. With ``shuffle`` the rows are gathered in a fresh order (drawn from ``rng``) into
    buffers allocated once per batch size; without, the batches are views. The last
    partial batch is kept. Other data adapters (generators, datasets) can stand in for it
    by offering ``steps``, ``batch_size``, ``num_samples`` and the same iteration.

    >>> import numpy as np
    >>> it = EpochIterator(np.arange(10.0)[:, None], np.arange(10), batch_size=4)
    >>> it.steps, [yb.tolist() for _, _, yb in it]
    (3, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]])
    """

    def __init__(self, x, y=None, batch_size=None, shuffle=False, rng=None):
        self.x, self.y = x, y
        n = self.num_samples = x.shape[0]
        self.batch_size = n if batch_size is None else min(int(batch_size), n)
        self.steps = math.ceil(n / self.batch_size)
        self.shuffle = bool(shuffle)
        self._perm = np.arange(n)
        if self.shuffle:
            self._rng = rng if rng is not None else _initializers.global_rng()
            sizes = {self.batch_size, n - (self.steps - 1) * self.batch_size}
            self._xbufs = {m: np.empty((m,) + x.shape[1:], dtype=x.dtype) for m in sizes}
            self._ybufs = None if y is None else {m: np.empty((m,) + y.shape[1:], dtype=y.dtype) for m in sizes}

    def __iter__(self):
        x, y, bs, n = self.x, self.y, self.batch_size, self.num_samples
        if self.shuffle:
            self._rng.shuffle(self._perm)
        for step in range(self.steps):
            s = step * bs
            e = min(s + bs, n)
            if self.shuffle:
                idx = self._perm[s:e]
                xb = np.take(x, idx, axis=0, out=self._xbufs[e - s], mode="clip")
                yb = None if y is None else np.take(y, idx, axis=0, out=self._ybufs[e - s], mode="clip")
            else:
                xb, yb = x[s:e], None if y is None else y[s:e]
            yield step, xb, yb


# ---------------------------------------------------------------------- checking
def check_compiled(model, what):
    if not model.compiled:
        raise NotCompiledError(f"{what}: compile the model first (model.compile(optimizer, loss, metrics))")


def checked_loss(model, loss):
    """The Loss for ``loss`` (a name, class, instance or dict), refused with a ValueError when
    it cannot be right after the model's output layer (``fastnn._output_check``)."""
    loss = _losses.get(loss)
    check_loss_output(model, loss)
    return loss


def prepare_x(model, x, what="x"):
    """x as a C-contiguous array of the model's dtype, checked: shape, width, finiteness."""
    if x is None:
        raise ValueError(f"{what}: expected an array of inputs, got None")
    x = np.asarray(x)
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_):
        raise TypeError(f"{what}: expected numbers, got an array of dtype {x.dtype}")
    shape = model._input_shape
    if x.ndim < 2:
        want = "(n, " + ", ".join(map(str, shape)) + ")" if shape else "(n, features)"
        raise ValueError(f"{what}: expected shape {want} with one row per sample, got {x.shape}")
    if shape is not None and tuple(x.shape[1:]) != tuple(shape):
        raise ValueError(f"{what}: expected shape (n, {', '.join(map(str, shape))}), got "
                         f"{x.shape}: wrong input width for this model")
    if x.shape[0] == 0:
        raise ValueError(f"{what}: expected at least one sample, got shape {x.shape}")
    x = np.ascontiguousarray(x, dtype=model.dtype)
    if not np.isfinite(x).all():
        bad = np.argwhere(~np.isfinite(x))[0]
        raise ValueError(f"{what}: contains NaN or infinity (first at index {tuple(int(i) for i in bad)})")
    return x


def prepare_y(model, y, n, what="y"):
    return model.loss.prepare_targets(y, n, model.output_shape[1:], model.dtype, what)


def prepare_xy(model, x, y):
    """(x, y) checked, building the model from x's shape if it is not built yet."""
    x = np.asarray(x) if x is not None else None
    if x is not None and y is not None and np.ndim(y) > 0 and x.ndim > 0 and len(x) != len(y):
        raise ValueError(f"x, y: x has {len(x)} samples but y has {len(y)}: lengths differ")
    if not model.built and x is not None and x.ndim >= 2:
        prepare_x(model, x)  # validate before building from its shape
        model.build(x.shape[1:])
    model._ensure_placed()
    check_loss_output(model, model.loss)  # again: the output width is known once built
    x = prepare_x(model, x)
    return x, prepare_y(model, y, x.shape[0])


# ------------------------------------------------------------- loss and metrics
def loss_mode(model):
    """(pass logits to the loss, last layer emits logits instead of its activation)."""
    last, loss = model.layers[-1], model.loss
    act = getattr(last, "activation", None)
    fused = (not loss.from_logits and loss.fuses_with is not None and act is not None
             and isinstance(last, (_layers.Dense, _layers.Activation)) and act.name == loss.fuses_with)
    return fused or loss.from_logits, fused


def make_metrics(model):
    width = model.layers[-1].output_shape[-1]
    return [_metrics.get(m, model.loss.name, width) for m in model._metric_names]


def metric_updater(model, metrics, loss_on_logits, last_logits):
    """update(y, out) feeding one batch to every metric. With the loss on logits, the
    metrics that need probabilities get the output layer's activation of them
    (computed once per batch); the others get the logits."""
    probs_needed = last_logits and any(getattr(m, "needs_probabilities", False) for m in metrics)
    out_act = model.layers[-1].activation if last_logits else None

    def update(yb, out):
        p = out_act(out) if probs_needed else None
        for m in metrics:
            if p is not None and getattr(m, "needs_probabilities", False):
                m.update(yb, p, False)
            else:
                m.update(yb, out, loss_on_logits)
    return update


def regularization(model, grads=True):
    """The total penalty; with grads, its gradient added to the gradient arena. The list of
    regularized variables is cached on the model (``_reg_items``; None invalidates it) and
    rebuilt when the arena's layout or the model-wide regularizer changes."""
    key = (model.arena.version, id(model.regularizer))
    if model._reg_items is None or model._reg_key != key:
        items, biggest = [], 0
        for layer, s, _ in model.arena.entries:
            for r in (s.regularizer, model.regularizer if s.name == "kernel" else None):
                if r:
                    items.append((layer, s.name, r))
                    biggest = max(biggest, s.size)
        model._reg_items, model._reg_key = items, key
        model._reg_scratch = np.empty(biggest, dtype=model.dtype)
    pen = 0.0
    for layer, vname, r in model._reg_items:
        w = layer.vars[vname]
        pen += r(w)
        if grads and layer.trainable:
            r.add_gradient(w, layer.grads[vname], model._reg_scratch[:w.size].reshape(w.shape))
    return pen


def _logs(total, data, count, metrics, regularized):
    logs = {"loss": total / count}
    if regularized:
        logs["data_loss"] = data / count
    for m in metrics:
        logs[m.name] = m.result()
    return logs


# ------------------------------------------------------------------------ steps
def train_step(model, xb, yb, loss_on_logits, last_logits):
    """One step: forward, fused loss, backward, penalty, optimizer. (loss, penalty, output)."""
    ranges, variables, first = model.arena.layout()  # a trainable change is seen here
    out = model._forward(xb, True, last_logits)
    loss, d = model.loss.value_and_grad(out, yb, loss_on_logits)
    model._backward(d, first)
    penalty = regularization(model) if model._reg_items != [] else 0.0
    if ranges:
        model.optimizer.apply(model.arena.params, model.arena.grads, ranges, variables)
        apply_constraints(model)
    return loss, penalty, out


def apply_constraints(model):
    """Each trainable variable with a constraint projected in place (after the update)."""
    for layer, s, _ in model.arena.entries:
        if s.constraint is not None and layer.trainable:
            s.constraint.apply_(layer.vars[s.name])


def loss_and_gradients(model, x, y):
    """(loss with the penalty, flat gradient copy) on one batch in training mode."""
    loss_on_logits, last_logits = loss_mode(model)
    _, _, first = model.arena.layout()
    model.arena.grads.fill(0)
    out = model._forward(x, True, last_logits)
    loss, d = model.loss.value_and_grad(out, y, loss_on_logits)
    model._backward(d, first)
    return loss + regularization(model), model.arena.grads.copy()


def loss_value(model, x, y):
    """The same loss as loss_and_gradients, without gradients."""
    loss_on_logits, last_logits = loss_mode(model)
    out = model._forward(x, True, last_logits)
    return model.loss.value_and_grad(out, y, loss_on_logits)[0] + regularization(model, grads=False)


# ------------------------------------------------------------------------- fit
def _check_fit_args(epochs, verbose, validation_split, validation_data):
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"epochs: expected an int >= 0, got {epochs!r}")
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose: expected 0, 1 or 2, got {verbose!r}")
    if not 0 <= validation_split < 1:
        raise ValueError(f"validation_split: expected a fraction in [0, 1), got {validation_split!r}")
    if validation_split and validation_data is not None:
        raise ValueError("validation_split, validation_data: give one, not both")


def _split_validation(model, x, y, validation_split, validation_data):
    """(x, y, x_val, y_val): the held-out tail of x, y or the checked validation_data."""
    xv = yv = None
    if validation_split:
        nv = int(x.shape[0] * validation_split)
        if nv < 1 or nv >= x.shape[0]:
            raise ValueError(f"validation_split: {validation_split} of {x.shape[0]} samples leaves no "
                             f"validation or no training samples")
        x, xv, y, yv = x[:-nv], x[-nv:], y[:-nv], y[-nv:]
    elif validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ValueError("validation_data: expected a tuple (x_val, y_val)")
        xv = prepare_x(model, validation_data[0], "validation_data[0]")
        yv = prepare_y(model, validation_data[1], xv.shape[0], "validation_data[1]")
    return x, y, xv, yv


def _batch_size(model, batch_size, n):
    if batch_size is None:
        bs = n
    elif isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive int or None (full batch), got {batch_size!r}")
    else:
        bs = min(int(batch_size), n)
    if any(isinstance(l, _layers.BatchNormalization) and l.trainable for l in model.layers):
        if bs == 1 or n % bs == 1:
            raise ValueError(f"batch_size: with BatchNormalization in training every batch needs at least "
                             f"2 samples; batch_size={bs} on {n} samples leaves a batch of 1")
    return bs


def _callback_list(model, callbacks, params):
    cbs = list(callbacks or [])
    for cb in cbs:
        if not isinstance(cb, _callbacks.Callback):
            raise TypeError(f"callbacks: expected Callback instances, got {type(cb).__name__}")
    history = _callbacks.History()
    history.params = params
    cbs = cbs + [history]  # last, as in Keras: it records what the others added
    for cb in cbs:
        cb.set_model(model)
    return cbs, history


def fit(model, x, y, batch_size=32, epochs=1, verbose=1, callbacks=None, validation_split=0.0,
        validation_data=None, shuffle=True, initial_epoch=0, seed=None):
    """Model.fit (see there)."""
    check_compiled(model, "fit")
    _check_fit_args(epochs, verbose, validation_split, validation_data)
    x, y = prepare_xy(model, x, y)
    opt, size = model.optimizer, model.arena.size
    if any(a.size != size or a.dtype != model.dtype for a in opt.state.values()) \
            or set(opt.state) != set(opt.slots):
        opt.build(size, model.dtype)
    x, y, xv, yv = _split_validation(model, x, y, validation_split, validation_data)
    bs = _batch_size(model, batch_size, x.shape[0])
    rng = np.random.default_rng(seed) if seed is not None else _initializers.global_rng()
    batches = EpochIterator(x, y, bs, shuffle, rng)
    cbs, history = _callback_list(model, callbacks, {"epochs": epochs, "steps": batches.steps,
                                                     "batch_size": bs, "verbose": verbose})
    model.history = history
    model.stop_training = False
    run = _EpochRunner(model, batches, cbs, verbose, epochs)
    for cb in cbs:
        cb.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        opt.epoch = epoch
        for cb in cbs:
            cb.on_epoch_begin(epoch)
        logs = run(epoch)
        if xv is not None:
            logs.update({"val_" + k: v for k, v in evaluate_arrays(model, xv, yv, None).items()})
        run.finish(logs)
        for cb in cbs:
            cb.on_epoch_end(epoch, logs)
        if verbose == 2:
            print(_progress.epoch_line(epoch, logs), flush=True)
        if model.stop_training:
            break
    opt.finalize_variable_values()  # use_ema: the averaged weights, as Keras at the end of fit
    for cb in cbs:
        cb.on_train_end()
    return history


class _EpochRunner:
    """One training epoch over the iterator: steps, metrics, batch callbacks, progress bar."""

    def __init__(self, model, batches, cbs, verbose, epochs):
        self.model, self.batches, self.verbose, self.epochs = model, batches, verbose, epochs
        self.batch_cbs = [cb for cb in cbs if _callbacks._is_overridden(cb, "on_train_batch_end")]
        self.modes = loss_mode(model)
        self.metrics = make_metrics(model)
        self.update_metrics = metric_updater(model, self.metrics, *self.modes)
        regularization(model, grads=False)
        self.regularized = bool(model._reg_items)
        self.bar = None

    def __call__(self, epoch):
        model, metrics, batch_cbs = self.model, self.metrics, self.batch_cbs
        loss_on_logits, last_logits = self.modes
        for m in metrics:
            m.reset()
        total = data = 0.0
        seen = 0
        bar = self.bar = _progress.ProgressBar(self.batches.steps, epoch, self.epochs) if self.verbose == 1 else None
        for step, xb, yb in self.batches:
            loss, penalty, out = train_step(model, xb, yb, loss_on_logits, last_logits)
            mb = xb.shape[0]
            seen += mb
            total += (loss + penalty) * mb
            data += loss * mb
            if metrics:
                self.update_metrics(yb, out)
            if batch_cbs:
                blogs = {"loss": loss + penalty}
                for cb in batch_cbs:
                    cb.on_train_batch_end(step, blogs)
            if bar is not None and bar.due(step + 1):
                bar.update(step + 1, _logs(total, data, seen, metrics, self.regularized))
            if model.stop_training:
                break
        return _logs(total, data, seen, metrics, self.regularized)

    def finish(self, logs):
        if self.bar is not None:
            self.bar.finish(logs)


# -------------------------------------------------------------- evaluate, predict
def evaluate_arrays(model, x, y, batch_size):
    """Logs (loss with the penalty, data_loss when regularized, metrics) on checked arrays."""
    loss_on_logits, last_logits = loss_mode(model)
    metrics = make_metrics(model)
    update_metrics = metric_updater(model, metrics, loss_on_logits, last_logits)
    n = x.shape[0]
    data = 0.0
    for _, xb, yb in EpochIterator(x, y, min(n, batch_size or 1024)):
        out = model._forward(xb, False, last_logits)
        loss, _ = model.loss.value_and_grad(out, yb, loss_on_logits)
        data += loss * xb.shape[0]
        update_metrics(yb, out)
    penalty = regularization(model, grads=False)
    logs = {"loss": data / n + penalty}
    if model._reg_items:
        logs["data_loss"] = data / n
    for m in metrics:
        logs[m.name] = m.result()
    return logs


def evaluate(model, x, y, batch_size=None, verbose=0, return_dict=False):
    """Model.evaluate (see there)."""
    check_compiled(model, "evaluate")
    x, y = prepare_xy(model, x, y)
    logs = evaluate_arrays(model, x, y, batch_size)
    if verbose:
        print(_progress.format_logs(logs, 4))
    if return_dict:
        return logs
    vals = [logs["loss"]] + [logs[m] for m in model._metric_names]
    return vals[0] if len(vals) == 1 else vals


def predict(model, x, batch_size=None):
    """Model.predict (see there)."""
    if not model.built:
        xa = np.asarray(x)
        if xa.ndim < 2:
            raise ValueError(f"x: expected shape (n, features), got {xa.shape}")
        model.build(xa.shape[1:])
    model._ensure_placed()
    x = prepare_x(model, x)
    n = x.shape[0]
    out = np.empty((n,) + tuple(model.layers[-1].output_shape), dtype=model.dtype)
    bs = min(n, batch_size or 1024)
    for step, xb, _ in EpochIterator(x, None, bs):
        out[step * bs:step * bs + xb.shape[0]] = model._forward(xb, False, False)
    return out
