"""The graph: the functional ``Model(inputs, outputs)`` and ``Sequential([...])``.

>>> import numpy as np, fastnn
>>> from fastnn.layers import Dense
>>> model = fastnn.Sequential([Dense(8, activation="relu", input_dim=4), Dense(3, activation="softmax")])
>>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
>>> x = np.random.default_rng(0).random((64, 4), dtype=np.float32); y = (x[:, 0] * 3).astype(int)
>>> h = model.fit(x, y, epochs=2, batch_size=16, verbose=0, seed=0)
>>> sorted(h.history)
['accuracy', 'loss']

A model is a list of :class:`~fastnn.dag.Node` in topological order over numbered values
(the inputs, then one per node); ``fastnn.dag`` traces, runs forward and backward and
describes any graph (several inputs and outputs, merge layers, shared layers), and a chain
takes a fast path. Parameters live in the model's :class:`~fastnn.arena.ParameterArena`;
training is ``fastnn.trainer`` (several inputs or outputs: ``fastnn.multi_io``), which
``fit`` / ``evaluate`` / ``predict`` call; the file format is ``fastnn.modelfile``.
"""
from __future__ import annotations

import numpy as np

from . import dag as _dag
from . import layers as _layers
from . import losses as _losses
from . import metrics as _metrics
from . import modelfile as _modelfile
from . import multi_io as _multi_io
from . import optimizers as _optimizers
from . import regularizers as _regularizers
from . import _bn_stats, _execution, _model_habits, batch_api as _batch_api, mixed_precision as _mixed_precision, trainer as _trainer
from ._layer_stats import layer_statistics
from .arena import ParameterArena
from .trainer import NotCompiledError  # noqa: F401  (public name of fastnn.models)


def _float_dtype(dtype):  # None: the global policy's variable dtype (Keras 3); a policy config (Keras's model config)
    if isinstance(dtype, dict):
        dtype = _layers._mixed.as_policy(dtype).variable_dtype
    dt = np.dtype(_mixed_precision.global_policy().variable_dtype if dtype is None else dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype: expected float32 or float64, got {dt}")
    return dt


Node = _dag.Node


def _tensor_list(ts, what):
    """A list of SymbolicTensors from one tensor, a list / tuple of them, or a dict's values."""
    if isinstance(ts, dict):
        ts = list(ts.values())
    ts = list(ts) if isinstance(ts, (list, tuple)) else [ts]
    if not ts:
        raise ValueError(f"{what}: expected at least one tensor, got none")
    for t in ts:
        if not isinstance(t, _layers.SymbolicTensor):
            raise TypeError(f"{what}: expected the result of Input(...) or of calling a layer, "
                            f"got {type(t).__name__}")
    return ts


class Model:
    """A network of layers: functional ``Model(inputs, outputs)`` over any graph (several
    inputs and outputs, merge layers, shared layers).

    >>> import fastnn
    >>> from fastnn.layers import Input, Dense
    >>> x = Input(784); h = Dense(100, activation="sigmoid")(x); out = Dense(10)(h)
    >>> model = fastnn.Model(x, out)
    >>> model.count_params()
    79510
    """

    _default_name = "model"
    _saved_as = "Model"  # the class name in a saved file (fastnn.io.load_model)

    def __init__(self, inputs=None, outputs=None, name=None, dtype=None):
        self.name = name or self._default_name
        self.dtype = _float_dtype(dtype)
        self.layers = []
        self._input_shape = None
        self._traced = None  # (nodes, output values) traced from the functional inputs/outputs
        self._graph_inputs = []  # the InputLayers of a functional model
        self._nodes, self._outs, self._shapes, self._shared, self._acc = [], [], [], [], {}
        self._chain = self._io = None
        self.built = False
        self.optimizer = self.loss = self.regularizer = None
        self.compiled = False
        self._metric_names, self._weighted_metric_names = [], []
        self.__dict__.update(_execution.options(False, 1, "auto", True))
        self.stop_training = False
        self.history = None
        self.arena = ParameterArena(self.dtype)
        self._reg_items = self._reg_key = None
        if inputs is not None or outputs is not None:
            self._init_functional(inputs, outputs)

    # ------------------------------------------------------------------ graph
    def _init_functional(self, inputs, outputs):
        ins, outs = _tensor_list(inputs, "inputs"), _tensor_list(outputs, "outputs")
        for t in ins:
            if not isinstance(t.layer, _layers.InputLayer):
                raise ValueError(f"inputs: expected tensors returned by Input(...), got the output of "
                                 f"{t.layer.name!r}")
        if len({id(t) for t in ins}) != len(ins):
            raise ValueError("inputs: the same Input is given twice")
        nodes, out_values = _dag.trace(ins, outs)
        if any(v < len(ins) for v in out_values):
            raise ValueError("outputs: an output must be computed by a layer, got an Input")
        self._traced = (nodes, out_values)
        self._graph_inputs = [t.layer for t in ins]
        self.layers = _dag.unique_layers(nodes)
        self._input_shape = ins[0].shape if len(ins) == 1 else None
        self.build()

    def _make_nodes(self):
        """(nodes in topological order, output values): the traced graph, or a chain over
        ``layers`` (a stack built with ``add``). When ``layers`` of a traced graph lost some
        single-input layers (gradcheck's copies without dropout), those are bypassed."""
        if self._traced is not None:
            nodes, outs = self._traced
            traced = _dag.unique_layers(nodes)
            if len(traced) == len(self.layers) and all(a is b for a, b in zip(traced, self.layers)):
                return list(nodes), list(outs)
            ids = {id(l) for l in traced}
            if all(id(l) in ids for l in self.layers):
                return _dag.bypass(nodes, len(self._graph_inputs), outs, self.layers)
            if len(self._graph_inputs) > 1 or not _dag.is_chain(nodes, 1, outs):
                raise ValueError("layers: the layers of a graph model can only lose single-input layers; "
                                 "build a new Model to change its graph")
        return _dag.chain_nodes(self.layers), [len(self.layers)]

    nodes = property(lambda self: list(self._nodes), doc="The nodes, in topological order.")
    _n_in = property(lambda self: max(1, len(self._graph_inputs)))

    @property
    def input_shape(self):
        if len(self._graph_inputs) > 1:
            return [(None,) + tuple(i.shape) for i in self._graph_inputs]
        return None if self._input_shape is None else (None,) + tuple(self._input_shape)

    @property
    def output_shape(self):
        if not self.built:
            return None
        shapes = [(None,) + tuple(self._shapes[v]) for v in self._outs]
        return shapes if len(shapes) > 1 else shapes[0]

    @property
    def input_names(self):
        return [i.name for i in self._graph_inputs] if self._graph_inputs else ["input_layer"]

    @property
    def output_names(self):
        return _multi_io.output_names(self) if self.built else []

    get_layer = _model_habits.get_layer
    trainable = _model_habits.Trainable()  # sets every layer's flag, as Keras

    # ------------------------------------------------------------------ build
    def _in_shapes(self, input_shape):
        if len(self._graph_inputs) > 1:
            shapes = [tuple(i.shape) for i in self._graph_inputs]
            if input_shape is not None and [_layers._shape_tuple(s, "input_shape") for s in input_shape] != shapes:
                raise ValueError(f"input_shape: the model takes {shapes}, got {input_shape}")
            return shapes
        if input_shape is not None:
            input_shape = _layers._shape_tuple(input_shape, "input_shape")
            if self._input_shape is not None and input_shape != self._input_shape:
                raise ValueError(f"input_shape: the model takes {self._input_shape}, got {input_shape}")
        shape = input_shape or self._input_shape
        if shape is None:
            raise ValueError("the model's input shape is unknown: start with Input(shape), give the first "
                             "layer input_dim / input_shape, or call fit / build with data")
        return [tuple(shape)]

    def build(self, input_shape=None):
        """Build every layer for inputs of feature shape ``input_shape`` and place the parameters."""
        if isinstance(input_shape, (tuple, list)) and len(input_shape) > 1 and input_shape[0] is None:
            input_shape = tuple(input_shape)[1:]  # Keras's build((None, d)): with the batch dimension
        in_shapes = self._in_shapes(input_shape)
        if not self.layers:
            raise ValueError("the model has no layers")
        nodes, outs = self._make_nodes()
        shapes = _dag.build_shapes(nodes, in_shapes, self.dtype, outs)
        self._shared = _dag.link_shared(nodes)
        self._nodes, self._outs, self._shapes, self._acc = nodes, outs, shapes, {}
        chain = _dag.is_chain(nodes, len(in_shapes), outs)
        self._chain = [n.layer for n in nodes] if chain else None  # the fast path of forward/backward
        if len(in_shapes) == 1:
            self._input_shape = in_shapes[0]
        self.built = True
        self._io = _multi_io.GraphIO(self) if _multi_io.needed(self) else None
        self._place_parameters()

    def _place_parameters(self):
        """One flat arena for every parameter, one for their gradients; layers get views."""
        remap = self.arena.place(_dag.unique_layers(self._nodes), self.dtype)
        if self.optimizer is not None:
            self.optimizer.build(self.arena.size, self.dtype, remap)
        self._reg_items = None

    def _ensure_placed(self):
        """Build if needed; rebuild the arena if a layer was moved into another model's arena since."""
        if not self.built:
            if (self._input_shape is not None or self._graph_inputs) and self.layers:
                self.build()
            return
        if not self.arena.owns(self.layers, self.dtype):
            self.build()

    # the arena, under the names the toolkit and older code use
    _params, _grads = property(lambda self: self.arena.params), property(lambda self: self.arena.grads)
    _entries = property(lambda self: self.arena.entries)
    _trainable_layout = lambda self: self.arena.layout()  # noqa: E731  (ranges, variables, first)

    # ---------------------------------------------------------------- compute
    def _forward(self, x, training, logits, capture=None):
        """The output for x (a list for several outputs; several inputs come as a list, a
        dict or the trainer's packed rows); the output layers emit logits if asked (a bool,
        or one per output). With ``capture`` (a dict), every layer call's output is copied
        into it under the layer's name."""
        if self._chain is not None and capture is None:  # a chain: no value list to keep
            layers = self._chain
            for layer in layers[:-1]:
                x = layer.forward(x, training)
            return layers[-1].forward(x, training, logits)
        xs = self._io.split_x(x) if self._io is not None else [x]
        n_in, outs = self._n_in, self._outs
        if isinstance(logits, (tuple, list)):
            logit_nodes = {outs[i] - n_in for i, f in enumerate(logits) if f}
        else:
            logit_nodes = {outs[0] - n_in} if logits else ()
        ys = _dag.forward(self._nodes, n_in, outs, xs, training, logit_nodes, capture)
        return ys if len(ys) > 1 else ys[0]

    def _backward(self, d, first=0):
        """Backward from the output gradient ``d`` (a list for several outputs) in reverse
        topological order; on a chain from the last node down to ``first`` (nodes before it
        hold no trainable parameters), on a graph through every node with a learning
        parameter at or above it. Gradients reaching a value from several nodes are summed."""
        if self._chain is not None:
            layers = self._chain
            for k in range(len(layers) - 1, first - 1, -1):
                d = layers[k].backward(d, k > first)
            return
        ds = list(d) if isinstance(d, (list, tuple)) else [d]
        _dag.backward(self._nodes, self._n_in, self._outs, ds, self._shared, self._acc)

    def layer_outputs(self, x, training=False):
        """Every layer call's output for inputs ``x``: ``{layer name: array}`` in order (copies,
        in the model's dtype; a shared layer's later calls as ``name[1]``, ...). Inference
        mode by default (dropout off, BatchNorm on its moving statistics)."""
        if not self.built:
            xa = np.asarray(x)
            if xa.ndim < 2:
                raise ValueError(f"x: expected shape (n, features), got {xa.shape}")
            self.build(xa.shape[1:])
        self._ensure_placed()
        out = {}
        self._forward(self._prepare_x(x), training, False, capture=out)
        return out

    def activation_stats(self, x, training=False):
        """Per-layer activation statistics on x: ``{layer name: {"mean", "std", "saturated",
        "dead", "zero"}}`` (see :func:`fastnn.monitor.activation_stats`)."""
        outs = self.layer_outputs(x, training)
        return {layer.name: layer_statistics(layer, outs[layer.name]) for layer in self.layers}

    # ------------------------------------------------------- training (trainer)
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, regularizer=None, loss_weights=None,
                weighted_metrics=None, run_eagerly=False, steps_per_execution=1, jit_compile="auto",
                auto_scale_loss=True):
        """Choose the optimizer, the loss, the metrics and an optional model-wide regularizer
        (applied to every kernel). A model with several outputs takes one loss for all, a list
        or a dict keyed by output names (``model.output_names``), ``loss_weights`` likewise
        (the total loss is the weighted sum), and metrics as a list for every output, a list
        of lists or a dict; its logs are ``loss``, ``<output>_loss``, ``<output>_<metric>``.
        weighted_metrics: metrics weighted by the sample and class weights (several outputs:
        one entry per output or a dict, see fastnn._multi_weights). Keras's other
        options (steps_per_execution: batch hooks every N batches; run_eagerly, jit_compile,
        auto_scale_loss: kept, no effect): see fastnn._execution."""
        if loss is None:
            raise ValueError(f"loss: expected a loss; known: {', '.join(_losses._BY_NAME)}")
        run = _execution.options(run_eagerly, steps_per_execution, jit_compile, auto_scale_loss)
        opt = _optimizers.get(optimizer)
        loss_obj, metric_names = _multi_io.compile_losses(self, loss, metrics, loss_weights)
        weighted = _multi_io.compile_weighted_metrics(self, weighted_metrics, loss_obj)
        reg = _regularizers.get(regularizer)
        self.optimizer, self.loss, self.regularizer = opt, loss_obj, reg
        self._metric_names, self._weighted_metric_names = metric_names, weighted
        self.__dict__.update(run)
        self.compiled, self._reg_items = True, None
        if self.built:
            self.optimizer.build(self.arena.size, self.dtype)

    @_trainer.serialized
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1,
            seed=None):
        """Train (Keras's fit); returns a History. Arguments: see :func:`fastnn.trainer.fit`."""
        return _trainer.fit(self, x, y, batch_size=batch_size, epochs=epochs, verbose=verbose,
                            callbacks=callbacks, validation_split=validation_split,
                            validation_data=validation_data, shuffle=shuffle, class_weight=class_weight,
                            sample_weight=sample_weight, initial_epoch=initial_epoch,
                            steps_per_epoch=steps_per_epoch, validation_steps=validation_steps,
                            validation_batch_size=validation_batch_size, validation_freq=validation_freq,
                            seed=seed)

    @_trainer.serialized
    def evaluate(self, x=None, y=None, batch_size=None, verbose=0, sample_weight=None, steps=None,
                 callbacks=None, return_dict=False):
        """Loss and metrics on (x, y) or any fastnn.data input: a float without metrics, else
        ``[loss, metric...]``; ``return_dict=True`` gives a dict."""
        return _trainer.evaluate(self, x, y, batch_size=batch_size, verbose=verbose, sample_weight=sample_weight,
                                 steps=steps, callbacks=callbacks, return_dict=return_dict)

    @_trainer.serialized
    def predict(self, x, batch_size=None, verbose=0, steps=None, callbacks=None):
        """Outputs of the model (probabilities for a softmax / sigmoid output), a new array;
        x: arrays or any fastnn.data input (targets in its batches are ignored)."""
        return _trainer.predict(self, x, batch_size, verbose=verbose, steps=steps, callbacks=callbacks)

    def predict_classes(self, x, batch_size=None):  # argmax, or output > 0.5 for one output unit
        p = self.predict(x, batch_size)
        return (p[:, 0] > 0.5).astype(np.int64) if p.shape[-1] == 1 else np.argmax(p, axis=-1)

    predict_proba = predict  # outputs of softmax / sigmoid are probabilities
    __call__, train_on_batch, test_on_batch, predict_on_batch, reset_metrics = _batch_api.METHODS  # Keras 3's batch API

    @_trainer.serialized
    def compute_loss_and_gradients(self, x, y):
        """(loss with the penalty, gradient of it over every trainable parameter as one flat
        array in arena order) on (x, y) as one batch in training mode; updates nothing but
        BatchNormalization's moving statistics. For gradient checking."""
        _trainer.check_compiled(self, "compute_loss_and_gradients")
        x, y = self._prepare_xy(x, y)
        return _trainer.loss_and_gradients(self, x, y)

    recompute_batchnorm_statistics = _trainer.serialized(_bn_stats.recompute_batchnorm_statistics)
    # the trainer's helpers (functions of the model), as methods under their older names
    _check_compiled = _trainer.check_compiled
    _prepare_x = _trainer.prepare_x
    _prepare_y = _trainer.prepare_y
    _prepare_xy = _trainer.prepare_xy
    _loss_mode = _trainer.loss_mode
    _make_metrics = _trainer.make_metrics
    _regularization = _trainer.regularization
    _loss_value = _trainer.loss_value

    # ---------------------------------------------------------------- weights
    @_trainer.between_steps
    def get_weights(self):
        """Copies of every variable, layer by layer (Keras order), never half of a training step."""
        return [w for layer in self.layers for w in layer.get_weights()]

    @_trainer.between_steps
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

    weights = property(_model_habits.weights)  # every layer's, in order (Keras)
    trainable_weights = property(_model_habits.trainable_weights)
    non_trainable_weights = property(_model_habits.non_trainable_weights)

    count_params = _model_habits.count_params  # refused before the build (Keras 3)

    def _param_counts(self):
        trainable = sum(s.size for layer in self.layers for s in layer.specs if s.trainable and layer.trainable)
        return trainable, self.count_params() - trainable

    # ---------------------------------------------------------------- summary
    def summary(self, print_fn=print):
        """Layers, output shapes, parameter counts, and the trainable and non-trainable totals;
        a graph that is not a chain also gets its inputs and a ``Connected to`` column, as Keras."""
        self._ensure_placed()
        if not self.built:
            raise ValueError("summary: the model is not built yet (give an input shape, or fit it first)")
        if self._chain is not None:
            rows = [(f"{l.name} ({type(l).__name__})", str((None,) + tuple(l.output_shape)),
                     f"{l.count_params():,}") for l in self.layers]
            lines = _dag.format_chain_summary(self.name, rows, self._param_counts())
        else:
            ins = [(i.name, i.shape) for i in self._graph_inputs] or [("input_layer", self._input_shape)]
            lines = _dag.format_summary(self.name, _dag.summary_rows(self._nodes, ins, self._shapes),
                                        self._param_counts())
        lines.insert(len(lines) - 1, _dag.policy_line(self.layers, self.dtype))
        for s in lines:
            print_fn(s)

    # ------------------------------------------------------------ persistence
    def get_config(self):
        """Name, dtype, the layers (each once) and, for a functional model, its ``graph``:
        inputs, nodes as ``[layer index, inbound values]``, output values."""
        cfg = {"name": self.name, "dtype": self.dtype.name,
               "input_shape": None if self._input_shape is None else list(self._input_shape),
               "layers": [{"class_name": type(l).__name__, "config": l.get_config()} for l in self.layers]}
        if self._traced is not None and self.built:
            cfg["graph"] = _dag.graph_config(self._nodes, self.layers, self._graph_inputs, self._outs)
        return cfg

    @classmethod
    def from_config(cls, config):
        """A functional model: the configured graph (or, in older files, a chain of the layers)."""
        layers = [_layers.deserialize(d) for d in config["layers"]]
        if config.get("graph") is not None:
            inputs, outputs = _dag.graph_from_config(config["graph"], layers)
            return Model(inputs, outputs, name=config["name"], dtype=config["dtype"])
        x = _layers.Input(tuple(config.get("input_shape")))
        t = x
        for layer in layers:
            t = layer(t)
        return Model(x, t, name=config["name"], dtype=config["dtype"])

    def save(self, filepath):
        """Architecture, weights and optimizer state in one .npz file written atomically by
        ``fastnn.modelfile`` (between two training steps); read back by ``fastnn.load_model``."""
        _modelfile.save_model(self, filepath)

    def save_weights(self, filepath):
        _modelfile.save_model(self, filepath, include_optimizer=False)

    load_weights = _modelfile.load_weights
    to_json = _modelfile.to_json  # the architecture as JSON (fastnn.models.model_from_json)
    export = _modelfile.export_model  # Keras 3's model.export(filepath, format="onnx")


class Sequential(Model):
    """A stack of layers, each feeding the next.

    >>> import fastnn
    >>> from fastnn.layers import Input, Dense
    >>> model = fastnn.Sequential([Input(784), Dense(512, activation="relu"), Dense(10, activation="softmax")])
    >>> model.output_shape
    (None, 10)
    """

    _default_name = "sequential"
    _saved_as = "Sequential"

    def __init__(self, layers=None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        for layer in layers or []:
            self.add(layer, rebuild=False)
        if self._input_shape is not None and self.layers:
            self.build()

    add = _model_habits.add  # Keras 3's add(layer, rebuild=True)

    def _append(self, layer):
        if isinstance(layer, _layers.SymbolicTensor) and isinstance(layer.layer, _layers.InputLayer):
            layer = layer.layer
        if isinstance(layer, _layers.InputLayer):
            if self.layers or self._input_shape is not None:
                raise ValueError("Input: must come first, and only once")
            self._input_shape = layer.shape
            return
        if not isinstance(layer, _layers.Layer):
            raise TypeError(f"layers: expected Layer instances, got {type(layer).__name__}")
        _model_habits.check_new_name(self, layer)
        if not self.layers and self._input_shape is None and layer._declared_input_shape is not None:
            self._input_shape = layer._declared_input_shape
        self.layers.append(layer)
        self.built = False

    pop = _model_habits.pop  # Keras 3's pop(rebuild=True)

    @classmethod
    def from_config(cls, config):
        model = cls(name=config["name"], dtype=config["dtype"])
        shape = config.get("input_shape")
        if shape is not None:
            model.add(_layers.Input(tuple(shape)))
        for layer in (_layers.deserialize(d) for d in config["layers"]):
            model.add(layer, rebuild=False)  # Keras 3's config: its InputLayer first
        if model._input_shape is not None and model.layers:
            model.build()
        if config.get("trainable") is False:  # Keras 3's config
            model.trainable = False
        return model


def clone_model(model):
    """A new model with the same architecture and freshly initialized weights (as Keras)."""
    cfg = model.get_config()
    for d in cfg["layers"]:
        d["config"].pop("name", None)
    return type(model).from_config(cfg)
