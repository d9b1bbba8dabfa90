"""Training, evaluation and prediction of a model over an epoch iterator, in the spirit of
Keras 3's ``trainers/``: a data adapter feeds an :class:`EpochIterator`, the trainer runs
the steps, callbacks, metrics and progress bar. The functions take the model first and use
only its graph interface (``_forward``, ``_backward``, ``arena``, ``layers``, ``loss``,
``optimizer``, ``regularizer``), never the graph module: ``Model.fit`` / ``evaluate`` /
``predict`` delegate here, so this module sits below ``graph`` in the import order.

Model-level facts (input width, non-finite input, batch size vs BatchNormalization) are
checked here, once, and targets by the loss (``Loss.prepare_targets``), all before any
state changes: a rejected call leaves the model as it was.

Training data flow: batches gathered into reused buffers, each layer's forward into its
own buffers, one fused loss kernel, backward in reverse topological order, regularization
and clipping on the flat gradient buffer, one optimizer call per trainable range.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from . import _atomic, _execution, _resume, _sources
from . import _weights
from . import callbacks as _callbacks
from . import initializers as _initializers
from . import layers as _layers
from . import losses as _losses
from . import metrics as _metrics
from . import multi_io as _multi_io
from . import native_step as _native_step
from . import ops as _ops
from . import progress as _progress
from ._regularized import activity_penalty, reg_list as _reg_list  # noqa: F401 (_eval uses activity_penalty)
from ._batches import EpochIterator, _take_rows  # noqa: F401 (fit's batches; their old home)
from ._output_check import check_loss_output


# One lock per model (fastnn._atomic.model_lock): layers write into buffers they own (one
# set per batch size), so two threads running the same model at once would overwrite each
# other's activations. fit, evaluate, predict and compute_loss_and_gradients of one model
# run one at a time; different models run in parallel (kernels release the GIL). Each
# training step also holds the model's step lock (get_weights / save wait for the step).
def serialized(method):
    @functools.wraps(method)
    def run_alone(self, *args, **kwargs):
        with _atomic.model_lock(self):
            return method(self, *args, **kwargs)
    return run_alone


def between_steps(method):
    """A method of the model that reads or writes its whole state: it waits for the training
    step in progress (in another thread) to end, so it never sees or makes half of one."""
    @functools.wraps(method)
    def consistent(self, *args, **kwargs):
        with _atomic.step_lock(self):
            return method(self, *args, **kwargs)
    return consistent


class NotCompiledError(ValueError, RuntimeError):
    """fit / evaluate called before compile."""


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
    if getattr(model, "_io", None) is not None or isinstance(x, dict):  # several inputs: multi_io
        return _multi_io.prepare_x(model, x, what)
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
        hint = ""
        if math.prod(x.shape[1:]) == math.prod(shape) and x.ndim != len(shape) + 1:
            hint = (f"; the sizes agree: flatten the inputs (x.reshape(len(x), -1))" if len(shape) == 1 else
                    f"; the sizes agree: reshape the inputs to (n, {', '.join(map(str, shape))})") + \
                " or start the model with layers.Flatten() / Reshape"
        raise ValueError(f"{what}: expected shape (n, {', '.join(map(str, shape))}), got "
                         f"{x.shape}: wrong input width for this model{hint}")
    if x.shape[0] == 0:
        raise ValueError(f"{what}: expected at least one sample, got shape {x.shape}")
    with np.errstate(over="ignore"):  # a value too large for the dtype is named below
        given, x = x, np.ascontiguousarray(x, dtype=model.dtype)
    if not _ops.all_finite(x):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])
        if np.isfinite(given[bad]):  # finite as given: too large for the model's dtype
            raise ValueError(f"{what}: {given[bad].item()!r} at index {bad} is beyond the range of "
                             f"{np.dtype(model.dtype)}, which the model computes in")
        raise ValueError(f"{what}: contains NaN or infinity (first at index {bad})")
    return x


def prepare_y(model, y, n, what="y"):
    if model._io is not None or isinstance(y, dict):
        return _multi_io.prepare_y(model, y, n, what)
    return model.loss.prepare_targets(y, n, model.output_shape[1:], model.dtype, what)


def prepare_xy(model, x, y):
    """(x, y) checked, building the model from x's shape if it is not built yet."""
    if model._io is not None or (model.built and (isinstance(x, dict) or isinstance(y, dict))):
        return _multi_io.prepare_xy(model, x, y)
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
    if model._io is not None:
        return _multi_io.loss_mode(model)
    last, loss = model.layers[-1], model.loss
    act = getattr(last, "activation", None)
    fused = (not loss.from_logits and loss.fuses_with is not None and act is not None
             and isinstance(last, (_layers.Dense, _layers.Activation)) and act.name == loss.fuses_with)
    return fused or loss.from_logits, fused


def make_metrics(model):
    """The compiled metrics, each with a fresh state (a metric object given to compile is
    copied: ``fastnn.metrics.own``), so every fit, validation, evaluate and *_on_batch call
    starts from zero as Keras 3's."""
    if model._io is not None:
        return _multi_io.make_metrics(model)
    width = model.layers[-1].output_shape[-1]
    ms = [_metrics.own(m, model.loss.name, width) for m in model._metric_names]
    return _metrics.with_weighted(ms, model._weighted_metric_names, model.loss.name, width)


def metric_updater(model, metrics, loss_on_logits, last_logits):
    """update(y, out) feeding one batch to every metric. With the loss on logits, the
    metrics that need probabilities get the output layer's activation of them
    (computed once per batch); the others get the logits."""
    if model._io is not None:
        return _multi_io.metric_updater(model, metrics, loss_on_logits, last_logits)
    probs_needed = last_logits and any(getattr(m, "needs_probabilities", False) for m in metrics)
    out_act = model.layers[-1].activation if last_logits else None

    def update(yb, out, sw=None):  # sw: the batch's sample weights, for the weighted metrics
        p = out_act(out) if probs_needed else None
        for m in metrics:
            w = sw if getattr(m, "_weighted", False) else None
            if p is not None and getattr(m, "needs_probabilities", False):
                m.update(yb, p, False, w)
            else:
                m.update(yb, out, loss_on_logits, w)
    return update


def regularization(model, grads=True, activity=True):
    """The total penalty; with grads, its gradient added to the gradient arena; ``activity``:
    with the last forward's ActivityRegularization penalties (their backward added the gradient)."""
    pen = activity_penalty(model) if activity else 0.0
    for layer, vname, r in _reg_list(model):
        if vname is None:
            continue
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
def train_step(model, xb, yb, loss_on_logits, last_logits, sample_weight=None):
    """One step: forward, fused loss (weighted by ``sample_weight`` when given), backward,
    penalty, optimizer. (loss, penalty, output); as one native call when supported."""
    ranges, variables, first = model.arena.layout()  # a trainable change is seen here
    # the step's rate, asked once; a refused one raises before the forward: nothing changes
    lr = model.optimizer.checked_learning_rate() if ranges else None
    native = _native_step.try_step(model, xb, yb, loss_on_logits, last_logits, sample_weight, lr)
    if native is not None:
        return native
    out = model._forward(xb, True, last_logits)
    loss, d = _weights.weighted_value_and_grad(model.loss, out, yb, sample_weight, loss_on_logits)
    model._backward(d, first)
    penalty = regularization(model) if model._reg_items != [] else 0.0
    if ranges:
        model.optimizer.apply(model.arena.params, model.arena.grads, ranges, variables, lr)
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
def _callback_list(model, callbacks, params):
    cbs = list(callbacks or [])
    for cb in cbs:
        if not isinstance(cb, _callbacks.Callback):
            raise TypeError(f"callbacks: expected Callback instances, got {type(cb).__name__}")
    history = _callbacks.History()
    cbs = cbs + [history]  # last, as in Keras: it records what the others added
    for cb in cbs:
        cb.set_params(params)
        cb.set_model(model)
    return cbs, history


def fit(model, x, y, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
        validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
        steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1, seed=None):
    """Model.fit: train; returns a History (``.history``: ``loss``, each metric, ``val_*`` per epoch).

    x: arrays, or any input of ``fastnn.data`` (a generator or iterable of ``(x, y[, w])``
    batches, a ``fastnn.data.Dataset``, a memmap, a DataFrame / Arrow table with ``y`` a
    column name, a dask collection, ``from_parquet(...)``); validation_data likewise, or
    ``(x_val, y_val[, w_val])``.
    batch_size: None means 32 (as Keras); ``"full"`` (or ``len(x)``) is full-batch
    gradient descent, 1 online learning; the last partial batch is used.
    sample_weight: one weight per sample; class_weight: ``{class: weight}``; both scale
    each sample's loss (Keras's sum-over-batch-size reduction). Several outputs: one array
    for all or one per output (list or dict), no class_weight (fastnn._multi_weights).
    validation_split: the last fraction of x, y (before shuffling) is held out.
    validation_freq: validate every k epochs (an int) or after the listed epochs (1-based).
    steps_per_epoch: batches per epoch, continuing through the source across epochs (not
    with BackupAndRestore: the epochs' batches then depend on the ones before).
    seed: seeds the shuffling (default: fastnn's global generator); epoch e's order depends
    on (seed, e) only, so initial_epoch=k (or a BackupAndRestore) resumes exactly.
    With a regularizer, ``loss`` includes the penalty and ``data_loss`` is without it.
    """
    check_compiled(model, "fit")
    verbose = _sources.check_fit_args(model, epochs, verbose, validation_split, validation_data, validation_freq)
    _sources.check_batch_size(batch_size)
    if steps_per_epoch is not None and _resume.backups(list(callbacks or [])):
        raise ValueError("steps_per_epoch: not with BackupAndRestore (each epoch's batches depend on the "
                         "epochs before it, so a resume cannot be exact); drop one of them")
    rng = np.random.default_rng(seed) if seed is not None else _initializers.global_rng()
    kw = dict(batch_size=batch_size, validation_split=validation_split, validation_data=validation_data,
              shuffle=shuffle, class_weight=class_weight, sample_weight=sample_weight,
              steps_per_epoch=steps_per_epoch, validation_steps=validation_steps,
              validation_batch_size=validation_batch_size)
    batches, val = _sources.training_data(model, x, y, kw, rng)
    opt = build_optimizer(model)
    cbs, history = _callback_list(model, callbacks, {"epochs": epochs, "steps": batches.steps,
                                                     "batch_size": batches.batch_size, "verbose": verbose})
    model.history = history
    model.stop_training = False
    run = _EpochRunner(model, batches, cbs, verbose, epochs)
    run.backups, state = _resume.bind(cbs, run)  # BackupAndRestore (fastnn/backup.py: the protocol)
    for cb in cbs:
        cb.on_train_begin({})  # Keras 3 passes a logs dict to every hook
    logs = {}
    initial_epoch, run.skip = _resume.restore(run.backups, state, initial_epoch)
    with run.guard:  # each step atomic for Ctrl-C and for other threads (fastnn._atomic)
        for epoch in range(initial_epoch, epochs):
            opt.epoch = epoch
            if not run.skip:  # a resumed epoch already under way has begun
                for cb in cbs:
                    cb.on_epoch_begin(epoch, {})
            logs = run(epoch)
            if val is not None and _sources.validates(epoch, validation_freq):
                logs.update({"val_" + k: v for k, v in _eval.evaluate_source(model, val, cbs).items()})
            run.finish(logs)
            for cb in cbs:
                cb.on_epoch_end(epoch, logs)
            for b in run.backups:
                b.epoch_end(epoch)
            if verbose == 2:
                print(_progress.epoch_line(epoch, logs), flush=True)
            if model.stop_training or getattr(batches, "exhausted", False):
                break
    opt.finalize_variable_values()  # use_ema: the averaged weights, as Keras at the end of fit
    for cb in cbs:
        cb.on_train_end(logs)  # the last epoch's logs, as Keras 3
    return history


def build_optimizer(model):
    """The optimizer, its slots (re)built when they do not fit the arena's size and dtype."""
    opt, size = model.optimizer, model.arena.size
    if any(a.size != size or a.dtype != model.dtype for a in opt.state.values()) \
            or set(opt.state) != set(opt.slots):
        opt.build(size, model.dtype)
    return opt


class _EpochRunner:
    """One training epoch over the batches: steps, metrics, batch callbacks, progress bar."""

    def __init__(self, model, batches, cbs, verbose, epochs):
        self.model, self.batches, self.verbose, self.epochs = model, batches, verbose, epochs
        self.hooks = _execution.BatchHooks(cbs, "train", getattr(model, "steps_per_execution", 1))
        self.modes = loss_mode(model)
        self.metrics = make_metrics(model)
        self.weighted = any(getattr(m, "_weighted", False) for m in self.metrics)  # weighted_metrics
        self.update_metrics = metric_updater(model, self.metrics, *self.modes)
        regularization(model, grads=False)
        self.regularized = bool(model._reg_items)
        self.bar = None
        self.guard = _atomic.StepGuard(model)
        self.backups, self.skip = [], 0  # skip: batches of the next epoch done before a resume
        self.total = self.data = 0.0  # the epoch's running sums (a backup's trainer state)
        self.seen = 0

    def _start(self, epoch):
        """(batches to skip) at the start of an epoch: sums and metrics reset unless it resumes."""
        skip, self.skip = self.skip, 0
        if not skip:  # a resumed epoch keeps the sums and metric states it was saved with
            for m in self.metrics:
                m.reset()
            self.total = self.data = 0.0
            self.seen = 0
        if hasattr(self.batches, "epoch_index"):
            self.batches.epoch_index = epoch  # the order of the rows is a function of the epoch
        return skip

    def __call__(self, epoch):
        model, metrics, hooks = self.model, self.metrics, self.hooks
        skip = self._start(epoch)
        bar = self.bar = _progress.ProgressBar(self.batches.steps, epoch, self.epochs) if self.verbose == 1 else None
        native = not (skip or self.backups or (hooks and hooks.n == 1)) and self._native_epoch(bar)
        for step, (xb, yb, sw) in enumerate(() if native else self.batches.epoch()):
            if step < skip:
                continue
            hooks.begin(step, xb.shape[0])
            loss = self._step(xb, yb, sw)
            hooks.end(step, loss, xb.shape[0])
            for b in self.backups:
                b.batch_end(epoch, step)
            if bar is not None and bar.due(step + 1):
                bar.update(step + 1, _logs(self.total, self.data, self.seen, metrics, self.regularized))
            if model.stop_training:
                break
        hooks.close()  # the epoch's last execution, when shorter than steps_per_execution
        self.batches.on_epoch_end()
        if self.seen == 0:
            raise ValueError("x: the epoch held no batch")
        return _logs(self.total, self.data, self.seen, metrics, self.regularized)

    def _account(self, loss, penalty, mb):
        self.seen += mb
        self.total += (loss + penalty) * mb
        self.data += loss * mb

    def _step(self, xb, yb, sw=None):
        """One batch through train_step inside the step guard, counted and fed to the
        metrics; its loss with the penalty."""
        self.guard.begin()
        try:
            loss, penalty, out = train_step(self.model, xb, yb, *self.modes, sw)
        finally:
            self.guard.end()  # a Ctrl-C during the step is raised here, after it
        self._account(loss, penalty, xb.shape[0])
        if self.metrics:
            self.update_metrics(yb, out, sw)
        return loss + penalty

    def _native_epoch(self, bar):
        """The epoch of an EpochIterator (no batch callbacks or backups) through
        ``native_step.epoch_steps``, its full batches a few core calls, the last partial
        batch by train_step; False (nothing done) when the native step cannot run it."""
        model, batches, guard, metrics = self.model, self.batches, self.guard, self.metrics
        run = _native_step.epoch_steps(model, batches, self.modes, bool(metrics)) \
            if type(batches) is EpochIterator else None
        if run is None:
            return False
        m, full, done, hooks = batches.batch_size, batches.num_samples // batches.batch_size, 0, self.hooks
        calls = run(batches.order(), guard, hooks.n if hooks else 0)  # hooks: between executions
        while done < full:
            hooks.begin(done, m)  # opens an execution (a call never crosses into the next one)
            done, losses, penalties, outs = next(calls)
            for i, (loss, penalty) in enumerate(zip(losses, penalties)):
                self._account(loss, penalty, m)
                if metrics:  # the batch's labels (and weights) as the iterator gives them, the step's output
                    s = done - len(losses) + i
                    self.update_metrics(batches.labels(s), outs[i], batches.weights(s) if self.weighted else None)
                hooks.end(done - len(losses) + i, loss + penalty, m)
            if bar is not None and bar.due(done):
                bar.update(done, _logs(self.total, self.data, self.seen, metrics, self.regularized))
            if model.stop_training:
                hooks.close()
                return True
        if full < batches.steps:  # the last, partial batch
            xb, yb = batches.batch(full)
            hooks.begin(full, xb.shape[0])
            hooks.end(full, self._step(xb, yb, batches.weights(full)), xb.shape[0])
        hooks.close()
        return True

    def finish(self, logs):
        if self.bar is not None:
            self.bar.finish(logs)


# evaluate and predict live in fastnn._eval (imported last: it uses the helpers above)
from . import _eval  # noqa: E402
from ._eval import build_from, evaluate, evaluate_arrays, evaluate_source, predict  # noqa: E402,F401
check_batch_size = _sources.check_batch_size
