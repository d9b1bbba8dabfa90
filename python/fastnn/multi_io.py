"""Several inputs and outputs: per-output losses, ``loss_weights`` and metrics as Keras 3
names them, and ``fit`` / ``evaluate`` / ``predict`` taking lists or dicts keyed by the
input and output names.

>>> import numpy as np, fastnn
>>> from fastnn.layers import Input, Dense, Concatenate
>>> a, b = Input(3, name="a"), Input(2, name="b")
>>> h = Dense(4, activation="relu")(Concatenate()([a, b]))
>>> cls, reg = Dense(2, activation="softmax", name="cls")(h), Dense(1, name="reg")(h)
>>> m = fastnn.Model([a, b], [cls, reg])
>>> m.compile("sgd", loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"},
...           loss_weights={"cls": 1.0, "reg": 0.5}, metrics={"cls": ["accuracy"]})
>>> rng = np.random.default_rng(0)
>>> x = {"a": rng.normal(size=(8, 3)), "b": rng.normal(size=(8, 2))}
>>> sorted(m.evaluate(x, [rng.integers(0, 2, 8), rng.normal(size=(8, 1))], return_dict=True))
['cls_accuracy', 'cls_loss', 'loss', 'reg_loss']

How the trainer sees such a model (it sits beside the trainer, which calls it for a model
whose ``_io`` is set): the inputs are checked one by one and packed side by side into one
array of rows, and the targets (each checked by its output's loss) into one float64 array,
so that shuffling, batching and validation splits work on rows as for one array; the graph
splits a batch back into its inputs (``GraphIO.split_x``), the loss into its targets
(``MultiOutputLoss.unpack``), into buffers reused per batch size. The total loss is
``sum(weight_i * loss_i)`` (plus the penalty); ``<output>_loss`` logs the unweighted
``loss_i``, as Keras does.
"""
from __future__ import annotations

import math

import numpy as np

from . import layers as _layers
from . import losses as _losses
from . import metrics as _metrics
from . import _multi_weights


def output_names(model):
    """The output layers' names (a repeated name gets ``_1``, ``_2``, ...)."""
    names = []
    for v in model._outs:
        base = model._nodes[v - model._n_in].layer.name
        name, k = base, 0
        while name in names:
            k += 1
            name = f"{base}_{k}"
        names.append(name)
    return names


def needed(model):
    """True when the trainer's one-input, one-output path does not describe the model."""
    if model._n_in > 1 or len(model._outs) > 1:
        return True
    layer = model._nodes[model._outs[0] - model._n_in].layer
    return layer is not model.layers[-1] or sum(n.layer is layer for n in model._nodes) > 1


class GraphIO:
    """Names, shapes and the packing of a model's inputs and outputs (rebuilt with the model)."""

    def __init__(self, model):
        n_in = self.n_in = model._n_in
        self.in_names = model.input_names
        self.in_shapes = [tuple(model._shapes[i]) for i in range(n_in)]
        self.out_names = output_names(model)
        self.out_shapes = [tuple(model._shapes[v]) for v in model._outs]
        self.out_layers = [model._nodes[v - n_in].layer for v in model._outs]
        used = [v for n in model._nodes for v in n.inbound] + list(model._outs)
        self.fusable = [used.count(v) == 1 for v in model._outs]  # its logits feed nothing else
        widths = [math.prod(s) for s in self.in_shapes]
        self.in_cols = [(sum(widths[:i]), sum(widths[:i + 1])) for i in range(n_in)]
        self._bufs = {}

    def split_x(self, x):
        """The input arrays of a batch: a list or dict as given, or the packed rows split."""
        if isinstance(x, dict):
            return [x[n] for n in self.in_names]
        if isinstance(x, (list, tuple)):
            return list(x)
        if self.n_in == 1:
            return [x]
        m = x.shape[0]
        if len(self._bufs) > 64:
            self._bufs = {}
        out = []
        for i, (a, b) in enumerate(self.in_cols):
            buf = self._bufs.get((i, m))
            if buf is None or buf.dtype != x.dtype:
                buf = self._bufs[(i, m)] = np.empty((m,) + self.in_shapes[i], dtype=x.dtype)
            np.copyto(buf.reshape(m, b - a), x[:, a:b])
            out.append(buf)
        return out


# ------------------------------------------------------------------ the loss
class _OutputLoss(_metrics.Metric):
    """``<output>_loss``: the running mean of one output's unweighted loss."""

    def __init__(self, name, source, index):
        self.name, self._source, self._out = name, source, index
        super().__init__()

    def update(self, y_true, y_pred, logits=False, sample_weight=None):  # the loss is weighted already
        m = y_pred.shape[0]
        self._total += self._source.last[self._out] * m
        self._count += m


class MultiOutputLoss:
    """The losses of a model with several outputs: ``value_and_grad(outputs, y, logits)`` is
    ``(sum(weight_i * loss_i), [weight_i * dloss_i])``; the unweighted ``loss_i`` of the
    last call are in ``last``."""

    name = "multi_output"
    from_logits = False
    fuses_with = None

    def __init__(self, losses, weights, names):
        self.losses, self.weights, self.names = list(losses), [float(w) for w in weights], list(names)
        self.last = [0.0] * len(self.losses)
        self._layout, self._bufs, self._wbufs = None, {}, {}

    def pack(self, ys):
        """The checked targets of every output side by side in one float64 array of rows."""
        self._layout = [(y.dtype, y.shape[1:]) for y in ys]
        n = ys[0].shape[0]
        return np.concatenate([y.reshape(n, -1).astype(np.float64) for y in ys], axis=1)

    def unpack(self, y):
        if isinstance(y, (list, tuple)):
            return list(y)
        m, out, a = y.shape[0], [], 0
        if len(self._bufs) > 64:
            self._bufs = {}
        for i, (dtype, shape) in enumerate(self._layout):
            w = math.prod(shape)
            buf = self._bufs.get((i, m))
            if buf is None:
                buf = self._bufs[(i, m)] = np.empty((m,) + shape, dtype=dtype)
            np.copyto(buf.reshape(m, w), y[:, a:a + w], casting="unsafe")
            out.append(buf)
            a += w
        return out

    def value_and_grad(self, outs, y, logits=False, **kwargs):
        return _multi_weights.weighted_loss(self, outs, y, None, logits, **kwargs)

    def weighted_value_and_grad(self, outs, y, sample_weight, logits=False):
        """value_and_grad with each output's loss weighted by ``sample_weight`` (one array for
        all outputs, or a column per output): see ``fastnn._multi_weights``."""
        return _multi_weights.weighted_loss(self, outs, y, sample_weight, logits)

    def get_config(self):
        return {"losses": {n: _losses.serialize(l) for n, l in zip(self.names, self.losses)},
                "loss_weights": dict(zip(self.names, self.weights))}


def loss_from_config(cfg):
    """(loss, loss_weights) for ``compile`` from a saved loss config (one loss or several)."""
    if isinstance(cfg, dict) and cfg.get("class_name") == "MultiOutputLoss":
        c = cfg["config"]
        return {k: _losses.get(v) for k, v in c["losses"].items()}, dict(c["loss_weights"])
    return _losses.get(cfg), None


def _per_output(value, names, what, is_one):
    """One value per output from a single value (for all), a list or a dict keyed by names."""
    if isinstance(value, dict) and not is_one(value):
        unknown = [k for k in value if k not in names]
        if unknown:
            raise ValueError(f"{what}: unknown output names {unknown}; the outputs are {names}")
        return [value.get(n) for n in names]
    if isinstance(value, (list, tuple)) and not is_one(value):
        if len(value) != len(names):
            raise ValueError(f"{what}: expected one entry per output ({len(names)}: {names}), got {len(value)}")
        return list(value)
    return [value] * len(names)


def _weights(loss_weights, names):
    ws = _per_output(1.0 if loss_weights is None else loss_weights, names, "loss_weights", lambda v: False)
    out = []
    for n, w in zip(names, ws):
        w = 1.0 if w is None else w
        if isinstance(w, bool) or not isinstance(w, (int, float, np.integer, np.floating)) \
                or not math.isfinite(w) or w < 0:
            raise ValueError(f"loss_weights: expected a finite number >= 0 for output {n!r}, got {w!r}")
        out.append(float(w))
    return out


class _OutputView:
    """What the loss-vs-output check reads of a model, for its output ``i``."""

    def __init__(self, model, i):
        self._nodes, self._n_in, self._outs, self.layers = model._nodes, model._n_in, [model._outs[i]], model.layers


def _checked_loss(model, loss, i):
    """The Loss for output ``i``, refused when it cannot be right after that output's layer."""
    from ._output_check import check_loss_output
    loss = _losses.get(loss)
    check_loss_output(_OutputView(model, i) if model.built else model, loss)
    return loss


def compile_losses(model, loss, metrics, loss_weights):
    """(loss object, metric names) for ``Model.compile``: one Loss and a list of names for a
    model with one output, a :class:`MultiOutputLoss` and ``{output: [names]}`` otherwise."""
    names = output_names(model) if model.built else ["output"]
    widths = [model._shapes[v][-1] for v in model._outs] if model.built else [2]
    if len(names) == 1:
        (loss,) = _per_output(loss, names, "loss", lambda v: isinstance(v, dict) and "class_name" in v)
        weights = _weights(loss_weights, names)
        if weights != [1.0]:
            raise ValueError(f"loss_weights: a model with one output takes weight 1, got {loss_weights!r}")
        if isinstance(metrics, dict):
            (metrics,) = _per_output(metrics, names, "metrics", lambda v: False)
        loss_obj = _checked_loss(model, loss, 0)
        metric_names = [metrics] if isinstance(metrics, str) else list(metrics or [])
        for m in metric_names:
            _metrics.get(m, loss_obj.name, widths[0])  # validates the name
        return loss_obj, metric_names
    losses = _per_output(loss, names, "loss", lambda v: isinstance(v, dict) and "class_name" in v)
    for n, l in zip(names, losses):
        if l is None:
            raise ValueError(f"loss: output {n!r} has no loss; give one loss per output")
    losses = [_checked_loss(model, l, i) for i, l in enumerate(losses)]
    weights = _weights(loss_weights, names)
    if metrics is None or isinstance(metrics, str):
        metrics = [] if metrics is None else [metrics]
    if isinstance(metrics, (list, tuple)) and all(isinstance(m, (str, _metrics.Metric)) for m in metrics):
        metrics = [list(metrics)] * len(names)  # a flat list: every output (Keras 2's habit)
    per = _per_output(metrics, names, "metrics", lambda v: False)
    spec = {}
    for n, l, w, ms in zip(names, losses, widths, per):
        ms = [] if ms is None else [ms] if isinstance(ms, str) else list(ms)
        for m in ms:
            _metrics.get(m, l.name, w)
        spec[n] = ms
    return MultiOutputLoss(losses, weights, names), spec


def compile_weighted_metrics(model, weighted_metrics, loss_obj):
    """The names (or Metric objects) of ``compile(weighted_metrics=...)``, checked: metrics
    weighted by the sample (and class) weights; ``{output: [metrics]}`` for a model with
    several outputs (``fastnn._multi_weights``)."""
    if weighted_metrics is None:
        return []
    names = output_names(model) if model.built else ["output"]
    if len(names) > 1 or isinstance(loss_obj, MultiOutputLoss):
        widths = [model._shapes[v][-1] for v in model._outs]
        return _multi_weights.compile_weighted(weighted_metrics, names, loss_obj.losses, widths)
    if isinstance(weighted_metrics, dict):
        (weighted_metrics,) = _per_output(weighted_metrics, names, "weighted_metrics", lambda v: False)
    if isinstance(weighted_metrics, str):
        weighted_metrics = [weighted_metrics]
    if not isinstance(weighted_metrics, (list, tuple)):
        raise ValueError(f"weighted_metrics: expected a list of metrics, got {weighted_metrics!r}")
    width = model._shapes[model._outs[0]][-1] if model.built else 2
    for m in weighted_metrics:
        _metrics.get(m, loss_obj.name, width)  # validates the name
    return list(weighted_metrics)


# ------------------------------------------------------------ trainer hooks
def _as_list(value, names, what, kind):
    """The per-name arrays of ``value``: a dict keyed by ``names``, a list (several names),
    or one array (one name)."""
    if isinstance(value, dict):
        return _multi_weights.by_name(value, names, what, kind)
    if len(names) == 1:
        if isinstance(value, (list, tuple)) and len(value) == 1 and isinstance(value[0], np.ndarray):
            return [value[0]]
        return [value]
    if not isinstance(value, (list, tuple)) or len(value) != len(names):
        got = f"{len(value)} arrays" if isinstance(value, (list, tuple)) else type(value).__name__
        raise ValueError(f"{what}: the model has {len(names)} {kind} {names}: expected a list of "
                         f"{len(names)} arrays or a dict keyed by these names, got {got}")
    return list(value)


class _Shape:
    """What trainer.prepare_x reads of a model, for one input."""

    _io = None

    def __init__(self, shape, dtype):
        self._input_shape, self.dtype = shape, dtype


def prepare_x(model, x, what="x"):
    """Every input checked (shape, width, finiteness) and packed side by side into rows."""
    from . import trainer as _trainer
    io = model._io
    names = io.in_names if io is not None else model.input_names
    shapes = io.in_shapes if io is not None else [model._input_shape]
    xs = _as_list(x, names, what, "inputs")
    label = (lambda n: f"{what}[{n!r}]") if len(names) > 1 or isinstance(x, dict) else (lambda n: what)
    checked = [_trainer.prepare_x(_Shape(s, model.dtype), a, label(n)) for n, s, a in zip(names, shapes, xs)]
    n = checked[0].shape[0]
    for name, c in zip(names[1:], checked[1:]):
        if c.shape[0] != n:
            raise ValueError(f"{what}: inputs of different lengths: {names[0]!r} has {n} samples, "
                             f"{name!r} has {c.shape[0]}")
    if len(checked) == 1:
        return checked[0]
    return np.ascontiguousarray(np.concatenate([c.reshape(n, -1) for c in checked], axis=1))


def loss_list(model):
    return model.loss.losses if isinstance(model.loss, MultiOutputLoss) else [model.loss]


def prepare_y(model, y, n, what="y"):
    """Every output's targets checked by its loss, packed side by side (several outputs)."""
    io, losses = model._io, loss_list(model)
    names = io.out_names if io is not None else model.output_names
    shapes = io.out_shapes if io is not None else [model.output_shape[1:]]
    ys = _as_list(y, names, what, "outputs")
    label = (lambda n: f"{what}[{n!r}]") if len(names) > 1 or isinstance(y, dict) else (lambda n: what)
    prepared = [l.prepare_targets(a, n, s, model.dtype, label(nm))
                for l, a, s, nm in zip(losses, ys, shapes, names)]
    return prepared[0] if len(prepared) == 1 else model.loss.pack(prepared)


def prepare_xy(model, x, y):
    x = prepare_x(model, x)
    return x, prepare_y(model, y, x.shape[0])


def loss_mode(model):
    """Per output: (loss on logits, output layer emits logits); one pair for one output."""
    io, modes = model._io, []
    for loss, layer, fusable in zip(loss_list(model), io.out_layers, io.fusable):
        act = getattr(layer, "activation", None)
        fused = (fusable and not loss.from_logits and loss.fuses_with is not None and act is not None
                 and isinstance(layer, (_layers.Dense, _layers.Activation)) and act.name == loss.fuses_with)
        modes.append((fused or loss.from_logits, fused))
    if len(modes) == 1:
        return modes[0]
    return tuple(m[0] for m in modes), tuple(m[1] for m in modes)


def make_metrics(model):
    """Metric objects, each tagged with its output (``_out``); ``<output>_loss`` trackers and
    ``<output>_<metric>`` names for several outputs."""
    io, losses = model._io, loss_list(model)
    if len(losses) == 1:
        ms = [_metrics.own(m, losses[0].name, io.out_shapes[0][-1]) for m in model._metric_names]
        ms = _metrics.with_weighted(ms, model._weighted_metric_names, losses[0].name, io.out_shapes[0][-1])
        for m in ms:
            m._out = 0
        return ms
    out = [_OutputLoss(f"{n}_loss", model.loss, i) for i, n in enumerate(io.out_names)]
    for i, (n, loss) in enumerate(zip(io.out_names, losses)):
        for spec in model._metric_names.get(n, []):
            m = _metrics.own(spec, loss.name, io.out_shapes[i][-1])
            m.name, m._out = f"{n}_{m.name}", i
            out.append(m)
    return out + _multi_weights.weighted_metric_objects(model, io, losses, [m.name for m in out])


def result_names(model):
    """The log names ``evaluate`` returns after ``loss``, in order."""
    if not isinstance(model.loss, MultiOutputLoss) and not model._weighted_metric_names:
        return [m if isinstance(m, str) else m.name for m in model._metric_names]  # names or objects
    from .trainer import make_metrics as compiled  # one output or several
    return [m.name for m in compiled(model)]


def metric_updater(model, metrics, loss_on_logits, last_logits):
    """update(y, outputs) feeding one batch to every metric (probabilities, where a metric
    needs them, from the output layer's activation of its logits)."""
    multi = isinstance(model.loss, MultiOutputLoss)
    k = len(model._io.out_layers)
    lol = loss_on_logits if multi else (loss_on_logits,)
    ll = last_logits if multi else (last_logits,)
    acts = [layer.activation if ll[i] else None for i, layer in enumerate(model._io.out_layers)]

    def update(yb, out, sw=None):  # sw: sample weights (a column per output), for the weighted metrics
        ys = model.loss.unpack(yb) if multi else [yb]
        outs = out if multi else [out]
        probs = [None] * k
        for m in metrics:
            i = m._out
            w = _multi_weights.column(sw, i) if getattr(m, "_weighted", False) else None
            if getattr(m, "needs_probabilities", False) and lol[i]:
                if acts[i] is None:
                    m.update(ys[i], outs[i], False, w)
                    continue
                if probs[i] is None:
                    probs[i] = acts[i](outs[i])
                m.update(ys[i], probs[i], False, w)
            else:
                m.update(ys[i], outs[i], lol[i], w)
    return update


def predict(model, x, batch_size=None):
    """The outputs for x: one array, or a list for several outputs (as Keras)."""
    from . import trainer as _trainer
    x = prepare_x(model, x)
    n = x.shape[0]
    shapes = model._io.out_shapes
    outs = [np.empty((n,) + s, dtype=model.dtype) for s in shapes]
    bs = _trainer._sources.fit_batch_size(batch_size, n, 1024)
    for step, xb, _ in _trainer.EpochIterator(x, None, bs):
        ys = model._forward(xb, False, False)
        for o, y in zip(outs, ys if len(shapes) > 1 else [ys]):
            o[step * bs:step * bs + xb.shape[0]] = y
    return outs if len(shapes) > 1 else outs[0]
