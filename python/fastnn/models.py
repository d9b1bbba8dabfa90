"""Models: ``Sequential([...])`` and the functional ``Model(inputs, outputs)``.

>>> import numpy as np, fastnn
>>> from fastnn.layers import Dense
>>> model = fastnn.Sequential([Dense(8, activation="relu", input_dim=4), Dense(3, activation="softmax")])
>>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
>>> x = np.random.default_rng(0).random((64, 4), dtype=np.float32); y = (x[:, 0] * 3).astype(int)
>>> h = model.fit(x, y, epochs=2, batch_size=16, verbose=0, seed=0)
>>> sorted(h.history)
['accuracy', 'loss']

Training data flow (ARCHITECTURE.md): batches gathered into reused buffers,
each layer's forward writes into its own buffers, one fused loss kernel, backward
in reverse, regularization and clipping on the flat gradient buffer, one
optimizer kernel call per contiguous range of trainable parameters.
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
from . import optimizers as _optimizers
from . import progress as _progress
from . import regularizers as _regularizers


class NotCompiledError(ValueError, RuntimeError):
    """fit / evaluate called before compile."""


def _float_dtype(dtype):
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype: expected float32 or float64, got {dt}")
    return dt


# One lock per model: layers write into buffers they own (one set per batch size), so two
# threads running the same model at once would overwrite each other's activations. fit,
# evaluate, predict and compute_loss_and_gradients of one model run one at a time; different
# models run in parallel (kernels release the GIL). Kept outside the model so that copying
# a model (copy.deepcopy) gives the copy its own lock.
_MODEL_LOCKS: "weakref.WeakKeyDictionary[Model, threading.RLock]" = weakref.WeakKeyDictionary()
_MODEL_LOCKS_GUARD = threading.Lock()


def _serialized(method):
    @functools.wraps(method)
    def run_alone(self, *args, **kwargs):
        with _MODEL_LOCKS_GUARD:
            lock = _MODEL_LOCKS.get(self)
            if lock is None:
                lock = _MODEL_LOCKS[self] = threading.RLock()
        with lock:
            return method(self, *args, **kwargs)
    return run_alone


class Model:
    """A network of layers: functional ``Model(inputs, outputs)`` (a chain of single-input layers).

    >>> import fastnn
    >>> from fastnn.layers import Input, Dense
    >>> x = Input(784); h = Dense(100, activation="sigmoid")(x); out = Dense(10)(h)
    >>> model = fastnn.Model(x, out)
    >>> model.count_params()
    79510
    """

    def __init__(self, inputs=None, outputs=None, name=None, dtype="float32"):
        self.name = name or ("sequential" if isinstance(self, Sequential) else "model")
        self.dtype = _float_dtype(dtype)
        self.layers = []
        self._input_shape = None
        self.built = False
        self.optimizer = self.loss = self.regularizer = None
        self.compiled = False
        self._metric_names = []
        self.stop_training = False
        self.history = None
        self._params = self._grads = None
        self._entries = []
        self._offsets = {}
        self._ranges_version = -1
        if inputs is not None or outputs is not None:
            self._init_functional(inputs, outputs)

    # ------------------------------------------------------------------ graph
    def _init_functional(self, inputs, outputs):
        def one(t, what):
            if isinstance(t, (list, tuple)):
                if len(t) != 1:
                    raise ValueError(f"{what}: only single-input, single-output models are supported, "
                                     f"got {len(t)} tensors")
                t = t[0]
            if not isinstance(t, _layers.SymbolicTensor):
                raise TypeError(f"{what}: expected the result of Input(...) or of calling a layer, "
                                f"got {type(t).__name__}")
            return t
        inputs, outputs = one(inputs, "inputs"), one(outputs, "outputs")
        if not isinstance(inputs.layer, _layers.InputLayer):
            raise ValueError("inputs: expected the tensor returned by Input(...)")
        chain, t = [], outputs
        while t.inbound is not None:
            chain.append(t.layer)
            t = t.inbound
        if t is not inputs:
            raise ValueError("outputs: not computed from these inputs")
        self.layers = chain[::-1]
        self._input_shape = inputs.shape
        self.build()

    @property
    def input_shape(self):
        return None if self._input_shape is None else (None,) + tuple(self._input_shape)

    @property
    def output_shape(self):
        return (None,) + tuple(self.layers[-1].output_shape) if self.built else None

    def get_layer(self, name=None, index=None):
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"name: no layer {name!r}; layers: {', '.join(l.name for l in self.layers)}")

    # ------------------------------------------------------------------ build
    def build(self, input_shape=None):
        """Build every layer for inputs of feature shape ``input_shape`` and place the parameters."""
        if input_shape is not None:
            input_shape = _layers._shape_tuple(input_shape, "input_shape")
            if self._input_shape is not None and input_shape != self._input_shape:
                raise ValueError(f"input_shape: the model takes {self._input_shape}, got {input_shape}")
        shape = input_shape or self._input_shape
        if shape is None:
            raise ValueError("the model's input shape is unknown: start with Input(shape), give the first "
                             "layer input_dim / input_shape, or call fit / build with data")
        if not self.layers:
            raise ValueError("the model has no layers")
        s = shape
        for layer in self.layers:
            layer.build(s, self.dtype)
            s = layer.output_shape
        self._input_shape = tuple(shape)
        self.built = True
        self._place_parameters()

    def _place_parameters(self):
        """One flat arena for every parameter, one for their gradients; layers get views."""
        old_params, old_offsets = self._params, self._offsets
        entries, off = [], 0
        for layer in self.layers:
            for s in layer.specs:
                if s.trainable:
                    entries.append((layer, s, off))
                    off += s.size
        params = np.empty(off, dtype=self.dtype)
        grads = np.zeros(off, dtype=self.dtype)
        remap, offsets = [], {}
        for layer, s, o in entries:
            view = params[o:o + s.size].reshape(s.shape)
            old = layer.vars.get(s.name)
            if old is not None and old.shape == s.shape:
                view[...] = old
                key = (id(layer), s.name)
                if old_params is not None and layer._arena is old_params and key in old_offsets:
                    a = old_offsets[key]
                    remap.append((slice(a, a + s.size), slice(o, o + s.size)))
            else:
                view[...] = s.initializer(s.shape, self.dtype)
            layer.vars[s.name] = view
            layer.grads[s.name] = grads[o:o + s.size].reshape(s.shape)
            offsets[(id(layer), s.name)] = o
        for layer in self.layers:
            for s in layer.specs:
                if not s.trainable:
                    old = layer.vars.get(s.name)
                    if old is None or old.shape != s.shape:
                        layer.vars[s.name] = s.initializer(s.shape, self.dtype)
                    elif old.dtype != self.dtype:
                        layer.vars[s.name] = old.astype(self.dtype)
            layer._arena = params
        self._params, self._grads, self._entries, self._offsets = params, grads, entries, offsets
        self._ranges_version = -1
        if self.optimizer is not None:
            self.optimizer.build(off, self.dtype, remap)
        self._reg_items = None

    def _ensure_placed(self):
        """Build if needed; rebuild the arena if a layer was moved into another model's arena since."""
        if not self.built:
            if self._input_shape is not None and self.layers:
                self.build()
            return
        for layer in self.layers:
            if layer._arena is not self._params or layer.dtype != self.dtype:
                self.build()
                return

    def _trainable_layout(self):
        """(ranges, variables, first trainable layer index), cached until a trainable flag changes."""
        key = tuple(layer.trainable for layer in self.layers)
        if self._ranges_version != key:
            ranges, variables = [], []
            for layer, s, o in self._entries:
                if layer.trainable:
                    variables.append((o, o + s.size))
                    if ranges and ranges[-1][1] == o:
                        ranges[-1] = (ranges[-1][0], o + s.size)
                    else:
                        ranges.append((o, o + s.size))
            first = len(self.layers)
            for i, layer in enumerate(self.layers):
                if layer.trainable and any(s.trainable for s in layer.specs):
                    first = i
                    break
            self._layout = (ranges, variables, first)
            self._ranges_version = key
            self._reg_items = None
        return self._layout

    # ---------------------------------------------------------------- compile
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, regularizer=None):
        """Choose the optimizer, the loss, the metrics and an optional model-wide regularizer
        (applied to every kernel)."""
        if loss is None:
            raise ValueError(f"loss: expected a loss; known: {', '.join(_losses._BY_NAME)}")
        opt = _optimizers.get(optimizer)
        loss_obj = _losses.get(loss)
        metric_names = list(metrics or [])
        for m in metric_names:
            _metrics.get(m, loss_obj.name, 2)  # validates the name
        reg = _regularizers.get(regularizer)
        self.optimizer, self.loss, self.regularizer = opt, loss_obj, reg
        self._metric_names = metric_names
        self.compiled = True
        self._reg_items = None
        if self.built:
            self.optimizer.build(self._params.size, self.dtype)

    def _check_compiled(self, what):
        if not self.compiled:
            raise NotCompiledError(f"{what}: compile the model first (model.compile(optimizer, loss, metrics))")

    def _loss_mode(self):
        """(pass logits to the loss, last layer emits logits instead of its activation)."""
        last = self.layers[-1]
        act = getattr(last, "activation", None)
        fused = (not self.loss.from_logits and self.loss.fuses_with is not None and act is not None
                 and isinstance(last, (_layers.Dense, _layers.Activation)) and act.name == self.loss.fuses_with)
        return fused or self.loss.from_logits, fused

    def _make_metrics(self):
        width = self.layers[-1].output_shape[-1]
        return [_metrics.get(m, self.loss.name, width) for m in self._metric_names]

    # --------------------------------------------------------------- checking
    def _prepare_x(self, x, what="x"):
        if x is None:
            raise ValueError(f"{what}: expected an array of inputs, got None")
        x = np.asarray(x)
        if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)
                or x.dtype == np.bool_):
            raise TypeError(f"{what}: expected numbers, got an array of dtype {x.dtype}")
        if x.ndim < 2:
            want = "(n, " + ", ".join(map(str, self._input_shape)) + ")" if self._input_shape else "(n, features)"
            raise ValueError(f"{what}: expected shape {want} with one row per sample, got {x.shape}")
        if self._input_shape is not None and tuple(x.shape[1:]) != tuple(self._input_shape):
            raise ValueError(f"{what}: expected shape (n, {', '.join(map(str, self._input_shape))}), got "
                             f"{x.shape}: wrong input width for this model")
        if x.shape[0] == 0:
            raise ValueError(f"{what}: expected at least one sample, got shape {x.shape}")
        x = np.ascontiguousarray(x, dtype=self.dtype)
        if not np.isfinite(x).all():
            bad = np.argwhere(~np.isfinite(x))[0]
            raise ValueError(f"{what}: contains NaN or infinity (first at index {tuple(int(i) for i in bad)})")
        return x

    def _prepare_y(self, y, n, what="y"):
        if y is None:
            raise ValueError(f"{what}: expected targets, got None")
        y = np.asarray(y)
        if y.shape[0:1] != (n,):
            raise ValueError(f"{what}: expected {n} targets (one per row of x), got {y.shape[0] if y.ndim else 0} "
                             f"(shape {y.shape}): x and y lengths differ")
        if not (np.issubdtype(y.dtype, np.number) or y.dtype == np.bool_):
            raise TypeError(f"{what}: expected numbers, got an array of dtype {y.dtype}")
        if np.issubdtype(y.dtype, np.floating) and not np.isfinite(y).all():
            raise ValueError(f"{what}: contains NaN or infinity")
        width = self.layers[-1].output_shape[-1]
        name = self.loss.name
        if name == "sparse_categorical_crossentropy":
            if y.ndim == 2 and y.shape[1] == 1:
                y = y[:, 0]
            if y.ndim != 1:
                raise ValueError(f"{what}: sparse_categorical_crossentropy expects integer class ids of shape "
                                 f"({n},), got {y.shape}; for one-hot rows use categorical_crossentropy")
            if not np.issubdtype(y.dtype, np.integer):
                if np.any(y != np.floor(y)):
                    raise ValueError(f"{what}: class ids must be whole numbers")
            lo, hi = y.min(), y.max()
            if lo < 0 or hi >= width:
                raise ValueError(f"{what}: labels out of range for the output layer: expected class ids in "
                                 f"[0, {width}), got values from {lo} to {hi}")
            return np.ascontiguousarray(y, dtype=np.int64)
        if y.ndim == 1 and width == 1:
            y = y[:, None]
        if y.ndim == 1 and name == "categorical_crossentropy":
            raise ValueError(f"{what}: categorical_crossentropy expects one-hot rows of shape ({n}, {width}), "
                             f"got {y.shape}; for integer class ids use sparse_categorical_crossentropy")
        if y.shape[1:] != (width,):
            raise ValueError(f"{what}: expected targets of shape ({n}, {width}) for an output layer of "
                             f"{width} units, got {y.shape}")
        y = np.ascontiguousarray(y, dtype=self.dtype)
        if name in ("binary_crossentropy", "categorical_crossentropy") and (y.min() < 0 or y.max() > 1):
            raise ValueError(f"{what}: labels out of range: {name} expects targets in [0, 1], "
                             f"got values from {y.min()} to {y.max()}")
        return y

    def _prepare_xy(self, x, y):
        x = np.asarray(x) if x is not None else None
        if x is not None and y is not None and np.ndim(y) > 0 and x.ndim > 0 and len(x) != len(y):
            raise ValueError(f"x, y: x has {len(x)} samples but y has {len(y)}: lengths differ")
        if not self.built and x is not None and x.ndim >= 2:
            self._prepare_x(x)  # validate before building from its shape
            self.build(x.shape[1:])
        self._ensure_placed()
        x = self._prepare_x(x)
        y = self._prepare_y(y, x.shape[0])
        return x, y

    # ---------------------------------------------------------------- compute
    def _forward(self, x, training, logits):
        layers = self.layers
        a = x
        for layer in layers[:-1]:
            a = layer.forward(a, training)
        return layers[-1].forward(a, training, logits)

    def _regularization(self, grads=True):
        """The total penalty; with grads, its gradient added to the gradient arena."""
        if self._reg_items is None:
            items, biggest = [], 0
            for layer, s, o in self._entries:
                regs = [r for r in (s.regularizer, self.regularizer if s.name == "kernel" else None) if r]
                for r in regs:
                    items.append((layer, s.name, r))
                    biggest = max(biggest, s.size)
            self._reg_items = items
            self._reg_scratch = np.empty(biggest, dtype=self.dtype)
        pen = 0.0
        for layer, vname, r in self._reg_items:
            w = layer.vars[vname]
            pen += r(w)
            if grads and layer.trainable:
                r.add_gradient(w, layer.grads[vname], self._reg_scratch[:w.size].reshape(w.shape))
        return pen

    def _train_step(self, xb, yb, loss_on_logits, last_logits, layout):
        ranges, variables, first = layout
        layers = self.layers
        out = self._forward(xb, True, last_logits)
        loss, d = self.loss.value_and_grad(out, yb, loss_on_logits)
        for i in range(len(layers) - 1, first - 1, -1):
            d = layers[i].backward(d, i > first)
        penalty = self._regularization() if self._reg_items != [] else 0.0
        if ranges:
            self.optimizer.apply(self._params, self._grads, ranges, variables)
        return loss, penalty, out

    @_serialized
    def compute_loss_and_gradients(self, x, y):
        """(loss with the penalty, gradient of it over every trainable parameter as one flat
        array in arena order) on (x, y) as one batch in training mode; updates nothing but
        BatchNormalization's moving statistics. For gradient checking."""
        self._check_compiled("compute_loss_and_gradients")
        x, y = self._prepare_xy(x, y)
        loss_on_logits, last_logits = self._loss_mode()
        ranges, variables, first = self._trainable_layout()
        self._grads.fill(0)
        out = self._forward(x, True, last_logits)
        loss, d = self.loss.value_and_grad(out, y, loss_on_logits)
        for i in range(len(self.layers) - 1, first - 1, -1):
            d = self.layers[i].backward(d, i > first)
        penalty = self._regularization()
        return loss + penalty, self._grads.copy()

    def _loss_value(self, x, y):
        """The same loss as compute_loss_and_gradients, without gradients."""
        loss_on_logits, last_logits = self._loss_mode()
        out = self._forward(x, True, last_logits)
        return self.loss.value_and_grad(out, y, loss_on_logits)[0] + self._regularization(grads=False)

    # -------------------------------------------------------------------- fit
    @_serialized
    def fit(self, x=None, y=None, batch_size=32, epochs=1, verbose=1, callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, initial_epoch=0, seed=None):
        """Train; returns a History whose ``.history`` holds ``loss``, each metric and ``val_*`` per epoch.

        batch_size: 1 (online), k (mini-batch) or None (full batch); the last partial batch is used.
        validation_split: the last fraction of x, y (before shuffling) is held out.
        seed: seeds the shuffling (default: fastnn's global generator).
        With a regularizer, ``loss`` includes the penalty and ``data_loss`` is without it.
        """
        self._check_compiled("fit")
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"epochs: expected an int >= 0, got {epochs!r}")
        if verbose not in (0, 1, 2):
            raise ValueError(f"verbose: expected 0, 1 or 2, got {verbose!r}")
        if not 0 <= validation_split < 1:
            raise ValueError(f"validation_split: expected a fraction in [0, 1), got {validation_split!r}")
        if validation_split and validation_data is not None:
            raise ValueError("validation_split, validation_data: give one, not both")
        x, y = self._prepare_xy(x, y)
        if any(a.size != self._params.size or a.dtype != self.dtype for a in self.optimizer.state.values()) \
                or set(self.optimizer.state) != set(self.optimizer.slots):
            self.optimizer.build(self._params.size, self.dtype)
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
            xv = self._prepare_x(validation_data[0], "validation_data[0]")
            yv = self._prepare_y(validation_data[1], xv.shape[0], "validation_data[1]")
        n = x.shape[0]
        if batch_size is None:
            bs = n
        elif isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size: expected a positive int or None (full batch), got {batch_size!r}")
        else:
            bs = min(int(batch_size), n)
        if any(isinstance(l, _layers.BatchNormalization) and l.trainable for l in self.layers):
            if bs == 1 or n % bs == 1:
                raise ValueError(f"batch_size: with BatchNormalization in training every batch needs at least "
                                 f"2 samples; batch_size={bs} on {n} samples leaves a batch of 1")
        cbs = list(callbacks or [])
        for cb in cbs:
            if not isinstance(cb, _callbacks.Callback):
                raise TypeError(f"callbacks: expected Callback instances, got {type(cb).__name__}")
        rng = np.random.default_rng(seed) if seed is not None else _initializers.global_rng()

        history = _callbacks.History()
        history.params = {"epochs": epochs, "steps": math.ceil(n / bs), "batch_size": bs, "verbose": verbose}
        cbs = cbs + [history]  # last, as in Keras: it records what the others added
        for cb in cbs:
            cb.set_model(self)
        batch_cbs = [cb for cb in cbs if _callbacks._is_overridden(cb, "on_train_batch_end")]
        self.history = history
        loss_on_logits, last_logits = self._loss_mode()
        metrics = self._make_metrics()
        update_metrics = self._metric_updater(metrics, loss_on_logits, last_logits)
        steps = math.ceil(n / bs)
        sizes = {bs, n - (steps - 1) * bs}
        xbufs = {m: np.empty((m,) + x.shape[1:], dtype=x.dtype) for m in sizes}
        ybufs = {m: np.empty((m,) + y.shape[1:], dtype=y.dtype) for m in sizes}
        perm = np.arange(n)
        self._regularization(grads=False)
        regularized = bool(self._reg_items)

        self.stop_training = False
        for cb in cbs:
            cb.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            self.optimizer.epoch = epoch
            for cb in cbs:
                cb.on_epoch_begin(epoch)
            if shuffle:
                rng.shuffle(perm)
            for m in metrics:
                m.reset()
            total = data = 0.0
            bar = _progress.ProgressBar(steps, epoch, epochs) if verbose == 1 else None
            layout = self._trainable_layout()
            for step in range(steps):
                s = step * bs
                e = min(s + bs, n)
                mb = e - s
                if shuffle:
                    idx = perm[s:e]
                    xb = np.take(x, idx, axis=0, out=xbufs[mb], mode="clip")
                    yb = np.take(y, idx, axis=0, out=ybufs[mb], mode="clip")
                else:
                    xb, yb = x[s:e], y[s:e]
                loss, penalty, out = self._train_step(xb, yb, loss_on_logits, last_logits, layout)
                total += (loss + penalty) * mb
                data += loss * mb
                if metrics:
                    update_metrics(yb, out)
                if batch_cbs:
                    blogs = {"loss": loss + penalty}
                    for cb in batch_cbs:
                        cb.on_train_batch_end(step, blogs)
                if bar is not None and bar.due(step + 1):
                    bar.update(step + 1, self._logs(total, data, e, metrics, regularized))
                if self.stop_training:
                    break
            logs = self._logs(total, data, e, metrics, regularized)
            if xv is not None:
                vals = self._evaluate_arrays(xv, yv, None)
                logs.update({"val_" + k: v for k, v in vals.items()})
            if bar is not None:
                bar.finish(logs)
            for cb in cbs:
                cb.on_epoch_end(epoch, logs)
            if verbose == 2:
                print(_progress.epoch_line(epoch, logs), flush=True)
            if self.stop_training:
                break
        for cb in cbs:
            cb.on_train_end()
        return history

    @staticmethod
    def _logs(total, data, count, metrics, regularized):
        logs = {"loss": total / count}
        if regularized:
            logs["data_loss"] = data / count
        for m in metrics:
            logs[m.name] = m.result()
        return logs

    def _metric_updater(self, metrics, loss_on_logits, last_logits):
        """update(y, out) feeding one batch to every metric. With the loss on logits, the
        metrics that need probabilities get the output layer's activation of them
        (computed once per batch); the others get the logits."""
        probs_needed = loss_on_logits and any(getattr(m, "needs_probabilities", False) for m in metrics)
        out_act = self.layers[-1].activation if last_logits else None

        def update(yb, out):
            p = out_act(out) if probs_needed else None
            for m in metrics:
                if p is not None and getattr(m, "needs_probabilities", False):
                    m.update(yb, p, False)
                else:
                    m.update(yb, out, loss_on_logits)
        return update

    # --------------------------------------------------------------- evaluate
    def _evaluate_arrays(self, x, y, batch_size):
        loss_on_logits, last_logits = self._loss_mode()
        metrics = self._make_metrics()
        update_metrics = self._metric_updater(metrics, loss_on_logits, last_logits)
        n = x.shape[0]
        bs = min(n, batch_size or 1024)
        data = 0.0
        for s in range(0, n, bs):
            xb, yb = x[s:s + bs], y[s:s + bs]
            out = self._forward(xb, False, last_logits)
            loss, _ = self.loss.value_and_grad(out, yb, loss_on_logits)
            data += loss * xb.shape[0]
            update_metrics(yb, out)
        penalty = self._regularization(grads=False)
        logs = {"loss": data / n + penalty}
        if self._reg_items:
            logs["data_loss"] = data / n
        for m in metrics:
            logs[m.name] = m.result()
        return logs

    @_serialized
    def evaluate(self, x=None, y=None, batch_size=None, verbose=0, return_dict=False):
        """Loss (with the penalty) and metrics on (x, y): a float when there are no metrics,
        else ``[loss, metric...]``; ``return_dict=True`` gives a dict."""
        self._check_compiled("evaluate")
        x, y = self._prepare_xy(x, y)
        logs = self._evaluate_arrays(x, y, batch_size)
        if verbose:
            print(_progress.format_logs(logs, 4))
        if return_dict:
            return logs
        vals = [logs["loss"]] + [logs[m] for m in self._metric_names]
        return vals[0] if len(vals) == 1 else vals

    # ---------------------------------------------------------------- predict
    @_serialized
    def predict(self, x, batch_size=None, verbose=0):
        """Outputs of the model (probabilities for a softmax / sigmoid output), a new array."""
        if not self.built:
            xa = np.asarray(x)
            if xa.ndim < 2:
                raise ValueError(f"x: expected shape (n, features), got {xa.shape}")
            self.build(xa.shape[1:])
        self._ensure_placed()
        x = self._prepare_x(x)
        n = x.shape[0]
        bs = min(n, batch_size or 1024)
        out = np.empty((n,) + tuple(self.layers[-1].output_shape), dtype=self.dtype)
        for s in range(0, n, bs):
            out[s:s + bs] = self._forward(x[s:s + bs], False, False)
        return out

    def predict_classes(self, x, batch_size=None):
        """Class ids: argmax of the outputs, or ``output > 0.5`` for a single output unit."""
        p = self.predict(x, batch_size)
        if p.shape[-1] == 1:
            return (p[:, 0] > 0.5).astype(np.int64)
        return np.argmax(p, axis=-1)

    def predict_proba(self, x, batch_size=None):
        """Same as predict (outputs of a softmax / sigmoid layer are probabilities)."""
        return self.predict(x, batch_size)

    def __call__(self, x):
        return self.predict(x)

    # ---------------------------------------------------------------- weights
    def get_weights(self):
        """Copies of every variable, layer by layer (Keras order)."""
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights):
        """Sets every variable from a list as returned by get_weights (all shapes checked first)."""
        weights = list(weights)
        specs = [(layer, s) for layer in self.layers for s in layer.specs]
        if len(weights) != len(specs):
            raise ValueError(f"weights: expected {len(specs)} arrays, got {len(weights)}")
        for (layer, s), w in zip(specs, weights):
            if np.shape(w) != s.shape:
                raise ValueError(f"weights: {layer.name}/{s.name} expected shape {s.shape}, got {np.shape(w)}")
        self._ensure_placed()
        for (layer, s), w in zip(specs, weights):
            layer.vars[s.name][...] = w

    @property
    def weights(self):
        return [w for layer in self.layers for w in layer.weights]

    @property
    def trainable_weights(self):
        return [w for layer in self.layers for w in layer.trainable_weights]

    @property
    def non_trainable_weights(self):
        tw = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in tw]

    def count_params(self):
        return sum(layer.count_params() for layer in self.layers)

    def _param_counts(self):
        trainable = sum(s.size for layer in self.layers for s in layer.specs if s.trainable and layer.trainable)
        return trainable, self.count_params() - trainable

    # ---------------------------------------------------------------- summary
    def summary(self, print_fn=print):
        """Layers, output shapes, parameter counts, and the trainable and non-trainable totals."""
        self._ensure_placed()
        if not self.built:
            raise ValueError("summary: the model is not built yet (give an input shape, or fit it first)")
        rows = [(f"{l.name} ({type(l).__name__})", str((None,) + tuple(l.output_shape)),
                 f"{l.count_params():,}") for l in self.layers]
        w0 = max(28, *(len(r[0]) + 2 for r in rows))
        w1 = max(20, *(len(r[1]) + 2 for r in rows))
        w2 = max(10, *(len(r[2]) for r in rows))
        line = "=" * (w0 + w1 + w2)
        out = [f'Model: "{self.name}"', "_" * (w0 + w1 + w2),
               "Layer (type)".ljust(w0) + "Output Shape".ljust(w1) + "Param #".rjust(w2), line]
        for r in rows:
            out.append(r[0].ljust(w0) + r[1].ljust(w1) + r[2].rjust(w2))
        t, nt = self._param_counts()
        out += [line, f"Total params: {t + nt:,}", f"Trainable params: {t:,}", f"Non-trainable params: {nt:,}",
                "_" * (w0 + w1 + w2)]
        for s in out:
            print_fn(s)

    # ------------------------------------------------------------ persistence
    def get_config(self):
        return {"name": self.name, "dtype": self.dtype.name,
                "input_shape": None if self._input_shape is None else list(self._input_shape),
                "layers": [{"class_name": type(l).__name__, "config": l.get_config()} for l in self.layers]}

    @classmethod
    def from_config(cls, config):
        layers = [_layers.deserialize(d) for d in config["layers"]]
        shape = config.get("input_shape")
        if cls is Sequential:
            model = Sequential(name=config["name"], dtype=config["dtype"])
            if shape is not None:
                model.add(_layers.Input(tuple(shape)))
            for layer in layers:
                model.add(layer)
            if shape is not None:
                model.build()
            return model
        x = _layers.Input(tuple(shape))
        t = x
        for layer in layers:
            t = layer(t)
        return Model(x, t, name=config["name"], dtype=config["dtype"])

    def save(self, filepath):
        """Architecture (JSON), weights and optimizer state in one .npz file, written atomically."""
        from . import io
        io.save_model(self, filepath)

    def save_weights(self, filepath):
        from . import io
        io.save_model(self, filepath, include_optimizer=False)

    def load_weights(self, filepath):
        from . import io
        io.load_weights(self, filepath)

    def activation_stats(self, x):
        """Per-layer activation statistics on x (mean, std, saturated and dead
        fractions): see :func:`fastnn.monitor.activation_stats`."""
        from .monitor import activation_stats
        return activation_stats(self, x)


class Sequential(Model):
    """A stack of layers, each feeding the next.

    >>> import fastnn
    >>> from fastnn.layers import Input, Dense
    >>> model = fastnn.Sequential([Input(784), Dense(512, activation="relu"), Dense(10, activation="softmax")])
    >>> model.output_shape
    (None, 10)
    """

    def __init__(self, layers=None, name=None, dtype="float32"):
        super().__init__(name=name, dtype=dtype)
        for layer in layers or []:
            self.add(layer)
        if self._input_shape is not None and self.layers:
            self.build()

    def add(self, layer):
        if isinstance(layer, _layers.SymbolicTensor) and isinstance(layer.layer, _layers.InputLayer):
            layer = layer.layer
        if isinstance(layer, _layers.InputLayer):
            if self.layers or self._input_shape is not None:
                raise ValueError("Input: must come first, and only once")
            self._input_shape = layer.shape
            return
        if not isinstance(layer, _layers.Layer):
            raise TypeError(f"layers: expected Layer instances, got {type(layer).__name__}")
        if not self.layers and self._input_shape is None and layer._declared_input_shape is not None:
            self._input_shape = layer._declared_input_shape
        self.layers.append(layer)
        self.built = False

    def pop(self):
        layer = self.layers.pop()
        self.built = False
        return layer


def clone_model(model):
    """A new model with the same architecture and freshly initialized weights (as Keras)."""
    cfg = model.get_config()
    for d in cfg["layers"]:
        d["config"].pop("name", None)
    return type(model).from_config(cfg) if isinstance(model, Sequential) else Model.from_config(cfg)
