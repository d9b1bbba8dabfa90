"""The graph: the functional ``Model(inputs, outputs)`` and ``Sequential([...])``.

>>> import numpy as np, fastnn
>>> from fastnn.layers import Dense
>>> model = fastnn.Sequential([Dense(8, activation="relu", input_dim=4), Dense(3, activation="softmax")])
>>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
>>> x = np.random.default_rng(0).random((64, 4), dtype=np.float32); y = (x[:, 0] * 3).astype(int)
>>> h = model.fit(x, y, epochs=2, batch_size=16, verbose=0, seed=0)
>>> sorted(h.history)
['accuracy', 'loss']

A model is a list of :class:`Node` in topological order: each node applies one layer
to values named by index (the model's input is value 0, node ``k``'s output value
``k + 1``). Forward runs the nodes in order, backward in reverse, sending each
gradient to the node's inbound values. Today every layer takes one input, so the
graphs are chains; merge layers (several inbound values) and several inputs or
outputs extend the same lists. Parameters live in the model's
:class:`~fastnn.arena.ParameterArena`; training is ``fastnn.trainer``, which
``fit`` / ``evaluate`` / ``predict`` call; the file format is ``fastnn.modelfile``.
"""
from __future__ import annotations

import numpy as np

from . import layers as _layers
from . import losses as _losses
from . import metrics as _metrics
from . import modelfile as _modelfile
from . import optimizers as _optimizers
from . import regularizers as _regularizers
from . import _bn_stats, trainer as _trainer
from ._layer_stats import layer_statistics
from .arena import ParameterArena
from .trainer import NotCompiledError  # noqa: F401  (public name of fastnn.models)


def _float_dtype(dtype):
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype: expected float32 or float64, got {dt}")
    return dt


class Node:
    """One layer call: ``layer`` applied to the values ``inbound`` (a tuple of value indices)."""

    __slots__ = ("layer", "inbound")

    def __init__(self, layer, inbound):
        self.layer, self.inbound = layer, tuple(inbound)

    def __repr__(self):  # noqa: D105
        return f"<Node {self.layer.name} <- {self.inbound}>"


def _chain(layers):
    """Nodes of a chain: layer k takes value k (the input, then layer k-1's output)."""
    return [Node(layer, (k,)) for k, layer in enumerate(layers)]


def _trace(inputs, outputs):
    """The nodes computing ``outputs`` from ``inputs`` (SymbolicTensors), in topological order."""
    order, seen = [], set()

    def visit(t):  # tensors are made from earlier tensors: no cycle is possible
        if id(t) in seen or t is inputs:
            return
        if not t.parents:
            raise ValueError("outputs: not computed from these inputs")
        for p in t.parents:
            visit(p)
        seen.add(id(t))
        order.append(t)
    visit(outputs)
    value = {id(inputs): 0}
    nodes = []
    for k, t in enumerate(order):
        nodes.append(Node(t.layer, tuple(value[id(p)] for p in t.parents)))
        value[id(t)] = k + 1
    return nodes


class Model:
    """A network of layers: functional ``Model(inputs, outputs)`` (single input and output).

    >>> import fastnn
    >>> from fastnn.layers import Input, Dense
    >>> x = Input(784); h = Dense(100, activation="sigmoid")(x); out = Dense(10)(h)
    >>> model = fastnn.Model(x, out)
    >>> model.count_params()
    79510
    """

    _default_name = "model"
    _saved_as = "Model"  # the class name in a saved file (fastnn.io.load_model)

    def __init__(self, inputs=None, outputs=None, name=None, dtype="float32"):
        self.name = name or self._default_name
        self.dtype = _float_dtype(dtype)
        self.layers = []
        self._input_shape = None
        self._traced = None  # nodes traced from the functional inputs/outputs
        self._nodes = []
        self._chain = None
        self.built = False
        self.optimizer = self.loss = self.regularizer = None
        self.compiled = False
        self._metric_names = []
        self.stop_training = False
        self.history = None
        self.arena = ParameterArena(self.dtype)
        self._reg_items = self._reg_key = None
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
        nodes = _trace(inputs, outputs)
        self._traced = nodes
        self.layers = [n.layer for n in nodes]
        self._input_shape = inputs.shape
        self.build()

    def _make_nodes(self):
        """The nodes in topological order: the traced graph, or a chain over ``layers`` (a
        stack built with ``add``, or a traced chain whose ``layers`` list was edited, as gradcheck's
        copies without dropout do)."""
        t = self._traced
        if t is not None and len(t) == len(self.layers) and all(n.layer is l for n, l in zip(t, self.layers)):
            return list(t)
        return _chain(self.layers)

    nodes = property(lambda self: list(self._nodes), doc="The nodes, in topological order.")

    @property
    def input_shape(self):
        return None if self._input_shape is None else (None,) + tuple(self._input_shape)

    @property
    def output_shape(self):
        return (None,) + tuple(self._nodes[-1].layer.output_shape) if self.built else None

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
        if isinstance(input_shape, (tuple, list)) and len(input_shape) > 1 and input_shape[0] is None:
            input_shape = tuple(input_shape)[1:]  # Keras's build((None, d)): with the batch dimension
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
        nodes = self._make_nodes()
        shapes = [tuple(shape)]
        for node in nodes:
            (s,) = [shapes[i] for i in node.inbound]
            node.layer.build(s, self.dtype)
            shapes.append(node.layer.output_shape)
        self._nodes = nodes
        chain = all(n.inbound == (k,) for k, n in enumerate(nodes))
        self._chain = [n.layer for n in nodes] if chain else None  # the fast path of forward/backward
        self._input_shape = tuple(shape)
        self.built = True
        self._place_parameters()

    def _place_parameters(self):
        """One flat arena for every parameter, one for their gradients; layers get views."""
        remap = self.arena.place([n.layer for n in self._nodes], self.dtype)
        if self.optimizer is not None:
            self.optimizer.build(self.arena.size, self.dtype, remap)
        self._reg_items = None

    def _ensure_placed(self):
        """Build if needed; rebuild the arena if a layer was moved into another model's arena since."""
        if not self.built:
            if self._input_shape is not None and self.layers:
                self.build()
            return
        if not self.arena.owns(self.layers, self.dtype):
            self.build()

    # the arena, under the names the toolkit and older code use
    _params = property(lambda self: self.arena.params)
    _grads = property(lambda self: self.arena.grads)
    _entries = property(lambda self: self.arena.entries)
    _trainable_layout = lambda self: self.arena.layout()  # noqa: E731  (ranges, variables, first)

    # ---------------------------------------------------------------- compute
    def _forward(self, x, training, logits, capture=None):
        """The output for x; the output layer emits logits if asked. With ``capture`` (a
        dict), every layer's output is copied into it under the layer's name."""
        if self._chain is not None and capture is None:  # a chain: no value list to keep
            layers = self._chain
            for layer in layers[:-1]:
                x = layer.forward(x, training)
            return layers[-1].forward(x, training, logits)
        nodes = self._nodes
        vals = [x]
        last = len(nodes) - 1
        for k, node in enumerate(nodes):
            a = vals[node.inbound[0]]
            y = node.layer.forward(a, training, logits) if k == last else node.layer.forward(a, training)
            if capture is not None:
                capture[node.layer.name] = np.array(y)
            vals.append(y)
        return vals[-1]

    def _backward(self, d, first=0):
        """Backward from the output gradient ``d`` through the nodes from the last down to
        ``first`` (nodes before it hold no trainable parameters); gradients reaching a
        value from several nodes are summed."""
        if self._chain is not None:
            layers = self._chain
            for k in range(len(layers) - 1, first - 1, -1):
                d = layers[k].backward(d, k > first)
            return
        nodes = self._nodes
        dvals = [None] * (len(nodes) + 1)
        dvals[-1] = d
        for k in range(len(nodes) - 1, first - 1, -1):
            dy = dvals[k + 1]
            if dy is None:
                continue
            dx = nodes[k].layer.backward(dy, k > first)
            if dx is not None:
                src = nodes[k].inbound[0]
                if dvals[src] is None:
                    dvals[src] = dx
                else:
                    dvals[src] = dvals[src] + dx

    def layer_outputs(self, x, training=False):
        """Every layer's output for inputs ``x``: ``{layer name: array}`` in order (copies,
        in the model's dtype). Inference mode by default (dropout off, BatchNorm on its
        moving statistics)."""
        xa = np.asarray(x)
        if not self.built:
            if xa.ndim < 2:
                raise ValueError(f"x: expected shape (n, features), got {xa.shape}")
            self.build(xa.shape[1:])
        self._ensure_placed()
        out = {}
        self._forward(self._prepare_x(xa), training, False, capture=out)
        return out

    def activation_stats(self, x, training=False):
        """Per-layer activation statistics on x: ``{layer name: {"mean", "std", "saturated",
        "dead", "zero"}}`` (see :func:`fastnn.monitor.activation_stats`)."""
        outs = self.layer_outputs(x, training)
        return {layer.name: layer_statistics(layer, outs[layer.name]) for layer in self.layers}

    # ------------------------------------------------------- training (trainer)
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, regularizer=None):
        """Choose the optimizer, the loss, the metrics and an optional model-wide regularizer
        (applied to every kernel)."""
        if loss is None:
            raise ValueError(f"loss: expected a loss; known: {', '.join(_losses._BY_NAME)}")
        opt = _optimizers.get(optimizer)
        loss_obj = _trainer.checked_loss(self, loss)  # a probability loss needs a probability output
        metric_names = list(metrics or [])
        for m in metric_names:
            _metrics.get(m, loss_obj.name, 2)  # validates the name
        reg = _regularizers.get(regularizer)
        self.optimizer, self.loss, self.regularizer = opt, loss_obj, reg
        self._metric_names = metric_names
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
    __call__ = predict

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
        """A functional model (a chain of the configured layers)."""
        layers = [_layers.deserialize(d) for d in config["layers"]]
        x = _layers.Input(tuple(config.get("input_shape")))
        t = x
        for layer in layers:
            t = layer(t)
        return Model(x, t, name=config["name"], dtype=config["dtype"])

    def save(self, filepath):
        """Architecture (JSON), weights and optimizer state in one .npz file, written atomically.
        The writer, ``fastnn.modelfile``, sits below the graph; reading a file back into a new
        model is ``fastnn.io.load_model`` / ``fastnn.models.load_model``."""
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

    @classmethod
    def from_config(cls, config):
        model = cls(name=config["name"], dtype=config["dtype"])
        shape = config.get("input_shape")
        if shape is not None:
            model.add(_layers.Input(tuple(shape)))
        for layer in (_layers.deserialize(d) for d in config["layers"]):
            model.add(layer)
        if shape is not None:
            model.build()
        return model


def clone_model(model):
    """A new model with the same architecture and freshly initialized weights (as Keras)."""
    cfg = model.get_config()
    for d in cfg["layers"]:
        d["config"].pop("name", None)
    return type(model).from_config(cfg)
