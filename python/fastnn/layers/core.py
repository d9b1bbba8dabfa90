"""Core layers: the ``Layer`` base, ``VarSpec``, ``SymbolicTensor``, ``Input``, ``Flatten``,
``Dense`` and ``Activation``.

A layer declares its variables in ``build`` (shape, initializer, regularizer,
trainable parameter or non-trainable state); the model's parameter arena
(``fastnn.arena``) places every parameter in one flat buffer and hands the layer
NumPy views (``layer.vars``, ``layer.grads``). ``forward`` and ``backward`` write
into buffers the layer owns, allocated once per batch size, and call the kernels
in ``fastnn.ops``.
"""
from __future__ import annotations

import itertools
import re
from collections import defaultdict

import numpy as np

from .. import activations as _activations
from .. import constraints as _constraints
from .. import initializers as _initializers
from .. import ops as _ops
from .. import regularizers as _regularizers
from . import _eager, _keras_config, _mixed
from .._validate import Integral, Interval, validate

POSITIVE_INT = Interval(Integral, 1, None, closed="left")  # units, pieces

_name_counters = defaultdict(itertools.count)


def _snake(name):  # Keras 3's default layer names (keras.src.utils.naming.to_snake_case): PReLU -> p_re_lu
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", re.sub(r"\W+", "", name))
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _config_value(v):
    """An attribute as get_config saves it: an initializer, regularizer, constraint or
    activation as its config, a tuple as a list (JSON has no tuples)."""
    if isinstance(v, _initializers.Initializer):
        return _initializers.serialize(v)
    if isinstance(v, _regularizers.Regularizer):
        return _regularizers.serialize(v)
    if isinstance(v, _constraints.Constraint):
        return _constraints.serialize(v)
    if isinstance(v, _activations.ActivationFunction):  # its name when that is all it is (Keras writes names)
        c = v.get_config()
        try:
            plain = _activations.get(c["name"]) == v
        except (ValueError, TypeError, KeyError):
            plain = False
        return c["name"] if plain else c
    return list(v) if isinstance(v, tuple) else v


def _weight_args(initializer, regularizer=None, constraint=None):
    """A weight's (initializer, regularizer, constraint) from a constructor's arguments:
    names, configs or objects, as Keras layers take them."""
    return _initializers.get(initializer), _regularizers.get(regularizer), _constraints.get(constraint)


def _shape_tuple(shape, argname="shape"):
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (int(shape),)
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"{argname}: expected an int or a tuple of ints, got {type(shape).__name__}") from None
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"{argname}: expected positive sizes, got {shape}")
    return shape


class VarSpec:
    """A variable a layer declares: a trainable parameter or a non-trainable state."""

    __slots__ = ("name", "shape", "initializer", "regularizer", "trainable", "constraint")

    def __init__(self, name, shape, initializer, regularizer=None, trainable=True, constraint=None):
        self.name, self.shape = name, tuple(shape)
        self.initializer, self.regularizer, self.trainable = initializer, regularizer, trainable
        self.constraint = constraint  # projected after each optimizer update (fastnn.constraints)

    @property
    def size(self):
        return int(np.prod(self.shape))


class SymbolicTensor:
    """The output of a layer in a functional model: a shape (without the batch) and its history.

    ``inbound`` is the tensor the layer was called on (None for an ``Input``); ``parents``
    gives the inbound tensors as a tuple, the form the graph walks (a merge layer called on
    several tensors will pass a tuple as ``inbound``)."""

    def __init__(self, shape, layer, inbound=None):
        self.shape, self.layer, self.inbound = tuple(shape), layer, inbound

    @property
    def parents(self):
        if self.inbound is None:
            return ()
        return tuple(self.inbound) if isinstance(self.inbound, (tuple, list)) else (self.inbound,)

    def __repr__(self):
        return f"<SymbolicTensor shape=(None, {', '.join(map(str, self.shape))}) from {self.layer.name}>"


class Layer:
    """Base class. Subclasses set ``output_shape`` and declare variables in ``build``,
    and implement ``forward(x, training, logits=False)`` and ``backward(dy, need_dx)``."""

    def __init__(self, name=None, trainable=True, input_shape=None, input_dim=None, dtype=None, dtype_policy=None):
        base = _snake(type(self).__name__)
        if name is None:
            k = next(_name_counters[base])
            name = base if k == 0 else f"{base}_{k}"
        if not isinstance(name, str):
            raise TypeError(f"name: expected a str, got {type(name).__name__}")
        self.name = name
        self._trainable = bool(trainable)
        if input_dim is not None:
            input_shape = (input_dim,)
        self._declared_input_shape = None if input_shape is None else _shape_tuple(input_shape, "input_shape")
        self._dtype_policy = _mixed.layer_policy(dtype, dtype_policy)  # default: the global policy, now
        self.built = False
        self.input_shape = None
        self.output_shape = None
        self._dtype = None  # the model's dtype once built (self.dtype)
        self.specs = []
        self.vars = {}
        self.grads = {}
        self._arena = None
        self._bufs = {}

    # -- trainable ----------------------------------------------------------
    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        # the model's arena compares the trainable flags of its layers at every step:
        # a change is seen at the next step, with no global counter
        self._trainable = bool(value)

    # -- dtype policy (fastnn.mixed_precision; the model's dtype holds the variables) --
    @property
    def dtype(self):
        """The variables' dtype (Keras's ``layer.dtype``), a NumPy dtype equal to its name: the
        model's once built, before that the dtype policy's variable dtype."""
        return self._dtype if self._dtype is not None else np.dtype(self._dtype_policy.variable_dtype)

    @dtype.setter
    def dtype(self, value):
        self._dtype = None if value is None else np.dtype(value)

    @property
    def dtype_policy(self):
        return self._dtype_policy

    @dtype_policy.setter
    def dtype_policy(self, value):
        policy = _mixed.as_policy(value, "dtype_policy")
        if self._dtype is not None:
            _mixed.check_policy(self, policy, self._dtype)
        self._dtype_policy = policy

    @property
    def variable_dtype(self):
        """The dtype of the variables: the model's once built, else the policy's."""
        return self.dtype.name

    @property
    def compute_dtype(self):
        """'bfloat16' under mixed_bfloat16, else the variables' dtype."""
        return "bfloat16" if self._dtype_policy.is_mixed else self.variable_dtype

    # -- building -----------------------------------------------------------
    def add_weight(self, name, shape, initializer="zeros", regularizer=None, trainable=True, constraint=None):
        self.specs.append(VarSpec(name, shape, _initializers.get(initializer),
                                  _regularizers.get(regularizer), trainable, _constraints.get(constraint)))

    def build(self, input_shape, dtype):
        """Declare variables for inputs of feature shape ``input_shape``."""
        input_shape = tuple(input_shape)
        _mixed.check_policy(self, self._dtype_policy, dtype)
        if self.built:
            if input_shape != self.input_shape:
                raise ValueError(f"layer {self.name!r}: built for inputs of shape {self.input_shape}, "
                                 f"cannot take {input_shape}")
            if np.dtype(dtype) == self.dtype:
                return
            if self.vars:  # holds values: they are converted when the model places them
                self.dtype = np.dtype(dtype)
                self._bufs = {}
                self._on_dtype()
                return
        self.dtype = np.dtype(dtype)
        self.input_shape = input_shape
        self.specs = []
        self._build(input_shape)
        self.built = True

    def _build(self, input_shape):
        self.output_shape = input_shape

    def _on_dtype(self):
        pass

    def __call__(self, inputs, training=None, mask=None):
        """On the output of ``Input(...)`` or of another layer: a SymbolicTensor (building a
        functional model). On an array: the layer's output as a new array (``fastnn.layers._eager``;
        ``training=True`` for training behaviour, as Keras)."""
        if not isinstance(inputs, SymbolicTensor):
            return _eager.call(self, inputs, training, mask)
        if training is not None or mask is not None:
            raise ValueError(f"layer {self.name!r}: training= and mask= apply to calls on arrays; a graph "
                             f"takes its mode from fit / predict (got training={training!r}, mask={mask!r})")
        return SymbolicTensor(self.compute_output_shape(inputs.shape), self, inputs)

    def compute_output_shape(self, input_shape):
        self.build(input_shape, self._dtype or "float32")
        return self.output_shape

    # -- variables ----------------------------------------------------------
    # the live arrays (fastnn.layers._eager.VariableView: Keras's assign, numpy(), ...)
    @property
    def weights(self):
        return [_eager.variable(self, s.name) for s in self.specs]

    @property
    def trainable_weights(self):
        return [_eager.variable(self, s.name) for s in self.specs if s.trainable and self.trainable]

    @property
    def non_trainable_weights(self):  # state, and every variable of a frozen layer (Keras)
        return [_eager.variable(self, s.name) for s in self.specs if not (s.trainable and self.trainable)]

    def count_params(self):
        if not self.built:  # Keras 3: refused (0 would be a wrong count)
            raise ValueError(f"layer {self.name!r}: count_params needs the layer built (call it on data, or "
                             f"build the model holding it)")
        return sum(s.size for s in self.specs)

    def get_weights(self):
        return [np.array(self.vars[s.name]) for s in self.specs]

    def set_weights(self, weights):
        weights = list(weights)
        if len(weights) != len(self.specs):
            raise ValueError(f"layer {self.name!r}: expected {len(self.specs)} arrays, got {len(weights)}")
        for s, w in zip(self.specs, weights):
            if np.shape(w) != s.shape:
                raise ValueError(f"layer {self.name!r}: {s.name} expected shape {s.shape}, got {np.shape(w)}")
        for s, w in zip(self.specs, weights):
            self.vars[s.name][...] = w

    # -- buffers, owned by the layer, one set per batch size ----------------
    def _buffer(self, key, shape, dtype=None):
        """The layer's buffer `key` of `shape` and `dtype` (default: the layer's), kept between calls."""
        dtype = self.dtype if dtype is None else dtype
        b = self._bufs.get(key)
        if b is None or b.shape != shape or b.dtype != dtype:
            if len(self._bufs) > 32:  # many batch sizes seen (predict on varied inputs): start over
                self._bufs = {}
            b = self._bufs[key] = np.empty(shape, dtype=dtype)
        return b

    def release_buffers(self):
        self._bufs = {}

    # -- compute ------------------------------------------------------------
    def forward(self, x, training=False, logits=False):
        return x

    def backward(self, dy, need_dx=True):
        return dy

    # -- config -------------------------------------------------------------
    # The constructor arguments get_config saves, each read from the attribute of the same
    # name (as a Keras layer lists its arguments in get_config); _optional_config_keys are
    # saved only when one of them is set.
    _config_keys = ()
    _optional_config_keys = ()

    def get_config(self):
        c = {"name": self.name, "trainable": self.trainable, "dtype": _mixed.serialize(self._dtype_policy)}
        keys = self._config_keys
        if any(getattr(self, k) is not None for k in self._optional_config_keys):
            keys += self._optional_config_keys
        c.update((k, _config_value(getattr(self, k))) for k in keys)
        c.update(_keras_config.written(type(self)))  # Keras's keys of what fastnn computes
        return c

    @classmethod
    def from_config(cls, config):
        """A new layer from ``get_config()``'s dict (Keras's ``cls.from_config``); nested
        configs of activations, initializers, regularizers and constraints are rebuilt. Keras's
        keys for what fastnn does not compute (``lora_rank``, ``quantization_config``, ...) are
        taken at the value fastnn computes, else refused naming the key (``_keras_config``)."""
        cfg = _keras_config.accept(cls, dict(config))
        if isinstance(cfg.get("activation"), dict):
            cfg["activation"] = _activations.get(cfg["activation"])
        for k, v in list(cfg.items()):
            if k.endswith("_initializer") and isinstance(v, dict):
                cfg[k] = _initializers.get(v)
            elif k.endswith("_regularizer"):
                cfg[k] = _regularizers.get(v)
            elif k.endswith("_constraint"):
                cfg[k] = _constraints.get(v)
        return cls(**cfg)

    def _extra_state(self):
        return {}

    def _set_extra_state(self, state):
        pass

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"


class InputLayer(Layer):
    """The input of a model (made by ``Input(shape)``). Keras 3's arguments: ``batch_shape``
    (its batch entry None, or given with ``shape``'s), ``dtype`` a float name or None (the model's
    dtype is used), ``sparse`` / ``ragged`` / ``optional`` False, no ``input_tensor``; a fixed
    ``batch_size`` is refused (fastnn models take any batch size)."""

    def __init__(self, shape=None, batch_size=None, dtype=None, sparse=None, ragged=None, batch_shape=None,
                 input_tensor=None, optional=False, name=None):
        shape, self._input_dtype = _keras_config.input_args(shape, batch_size, dtype, sparse, ragged, batch_shape,
                                                            input_tensor, optional)
        super().__init__(name=name)
        self.shape = _shape_tuple(shape)

    def get_config(self):  # Keras 3's keys
        return {"batch_shape": [None, *self.shape], "dtype": self._input_dtype or "float32", "sparse": False,
                "ragged": False, "name": self.name, "optional": False}


def Input(shape=None, batch_size=None, dtype=None, sparse=None, batch_shape=None, name=None, tensor=None,
          optional=False):
    """A symbolic input of feature shape ``shape`` (an int or a tuple, batch excluded); Keras 3's
    other arguments as ``InputLayer`` takes them.

    >>> Input(784).shape
    (784,)
    """
    layer = InputLayer(shape, batch_size=batch_size, dtype=dtype, sparse=sparse, batch_shape=batch_shape,
                       input_tensor=tensor, optional=optional, name=name)
    return SymbolicTensor(layer.shape, layer)


class Flatten(Layer):
    """(batch, d1, d2, ...) -> (batch, d1*d2*...), a view, no copy.

    >>> Flatten().compute_output_shape((28, 28))
    (784,)
    """

    def _build(self, input_shape):
        self.output_shape = (int(np.prod(input_shape)),)

    def forward(self, x, training=False, logits=False):
        return x.reshape(x.shape[0], -1)

    def backward(self, dy, need_dx=True):
        return dy.reshape((dy.shape[0],) + self.input_shape) if need_dx else None


def _require_2d(layer, input_shape):
    if len(input_shape) != 1:
        raise ValueError(f"layer {layer.name!r}: expected inputs of shape (batch, features), got "
                         f"(batch, {', '.join(map(str, input_shape))}); put a Flatten() before it")


def affine_backward(layer, dz, need_dx):
    """The backward pass of ``z = x @ kernel + bias`` given dz: kernel and bias gradients
    (when the layer is trainable) and dx (when ``need_dx``), into the layer's buffers."""
    if layer.trainable and layer.use_bias:  # dW and db in one call: db summed while dz is packed
        _ops.matmul_bias_grad(layer._x, dz, trans_a=True, out=(layer.grads["kernel"], layer.grads["bias"]))
    elif layer.trainable:
        _ops.matmul(layer._x, dz, trans_a=True, out=layer.grads["kernel"])
    if not need_dx:
        return None
    dx = layer._buffer(("dx", dz.shape[0]), layer._x.shape)
    _ops.matmul(dz, layer.vars["kernel"], trans_b=True, out=dx)
    return dx


class Dense(Layer):
    """y = activation(x @ kernel + bias), one fused matmul+bias+activation kernel call.

    >>> import numpy as np, fastnn
    >>> m = fastnn.Sequential([fastnn.layers.Dense(3, activation="relu", input_dim=4)])
    >>> m.predict(np.ones((2, 4), dtype=np.float32)).shape
    (2, 3)
    """

    _config_keys = ("units", "activation", "use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer",
                    "bias_regularizer", "kernel_constraint", "bias_constraint")

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, input_dim=None, **kwargs):
        super().__init__(input_dim=input_dim, **kwargs)
        validate({"units": units}, {"units": [POSITIVE_INT]}, "Dense")
        self.units = int(units)
        self.activation = _activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer, self.kernel_regularizer, self.kernel_constraint = _weight_args(
            kernel_initializer, kernel_regularizer, kernel_constraint)
        self.bias_initializer, self.bias_regularizer, self.bias_constraint = _weight_args(
            bias_initializer, bias_regularizer, bias_constraint)
        self._linear = _activations.get("linear")

    kernel, bias = _eager.LayerVariable("kernel"), _eager.LayerVariable("bias", "use_bias")  # live views
    reads_bf16 = writes_bf16 = True  # under mixed_bfloat16: see _mixed.plan_bf16_outputs
    _bf16_readers = ()

    def _build(self, input_shape):
        _require_2d(self, input_shape)
        self.add_weight("kernel", (input_shape[0], self.units), self.kernel_initializer,
                        self.kernel_regularizer, constraint=self.kernel_constraint)
        if self.use_bias:
            self.add_weight("bias", (self.units,), self.bias_initializer, self.bias_regularizer,
                            constraint=self.bias_constraint)
        self.output_shape = (self.units,)

    def forward(self, x, training=False, logits=False):
        m = x.shape[0]
        act = self._linear if logits else self.activation
        if self._bf16_readers and _mixed.stores_bf16(self, act, training, logits):
            y = self._buffer(("y16", m), (m, self.units), np.uint16)  # read only by mixed Dense layers
        else:
            y = self._buffer(("y", m), (m, self.units))
        bias = self.vars["bias"] if self.use_bias else None
        W = self.vars["kernel"]
        matmul = _mixed.matmul_for(self)
        if act.kernel is not None and not act.needs_input:
            matmul(x, W, bias=bias, out=y,
                   activation=None if act.is_linear else act.kernel, activation_alpha=act.alpha)
            z = None
        else:  # softmax (row-wise) or an activation whose gradient needs its input
            z = self._buffer(("z", m), (m, self.units))
            matmul(x, W, bias=bias, out=z)
            act(z, out=y)
        self._x, self._z, self._y, self._act = x, z, y, act
        return y

    def backward(self, dy, need_dx=True):
        if self._dtype_policy.is_mixed:  # act' (from bf16-stored y too), dW + db, dx: one core call
            return _mixed.dense_backward(self, dy, need_dx)
        act = self._act
        dz = dy if act.is_linear else act.backward(dy, x=self._z, y=self._y, out=dy)
        return affine_backward(self, dz, need_dx)


class Activation(Layer):
    """Applies an activation: ``Activation("relu")``, ``Activation(fastnn.activations.ELU(0.5))``."""

    _config_keys = ("activation",)

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = _activations.get(activation)
        self._linear = _activations.get("linear")

    def forward(self, x, training=False, logits=False):
        act = self._linear if logits else self.activation
        self._act, self._x = act, x
        if act.is_linear:
            self._y = x
            return x
        y = self._buffer(("y", x.shape[0]), x.shape)
        if act.name == "softmax" and x.ndim != 2:
            raise ValueError(f"layer {self.name!r}: softmax needs (batch, features) inputs, got {x.shape}")
        act(x, out=y)
        self._y = y
        return y

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        if self._act.is_linear:
            return dy
        return self._act.backward(dy, x=self._x, y=self._y, out=dy)
