"""Layers: Dense, Activation, BatchNormalization, Dropout, PReLU, Maxout, Flatten, Input.

A layer declares its variables in ``build`` (shape, initializer, regularizer,
trainable parameter or non-trainable state); the model places every parameter
in one flat arena and hands the layer NumPy views (``layer.vars``,
``layer.grads``). ``forward`` and ``backward`` write into buffers the layer owns,
allocated once per batch size, and call the kernels in ``fastnn.ops``.

Shapes: activations are (batch, features) row-major; ``Flatten`` turns
(batch, d1, d2, ...) into (batch, d1*d2*...).

>>> import fastnn
>>> x = fastnn.layers.Input(784)
>>> h = fastnn.layers.Dense(100, activation="sigmoid")(x)
>>> out = fastnn.layers.Dense(10, activation="softmax")(h)
>>> out.shape
(10,)
"""
from __future__ import annotations

import itertools
from collections import defaultdict

import numpy as np

from . import activations as _activations
from . import initializers as _initializers
from . import regularizers as _regularizers
from ._kernels import op

_name_counters = defaultdict(itertools.count)
_trainable_version = itertools.count(1)
TRAINABLE_VERSION = [0]  # bumped whenever any layer's trainable flag changes


def _snake(name):
    out = []
    for i, c in enumerate(name):
        if c.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(c.lower())
    return "".join(out)


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

    __slots__ = ("name", "shape", "initializer", "regularizer", "trainable")

    def __init__(self, name, shape, initializer, regularizer=None, trainable=True):
        self.name, self.shape = name, tuple(shape)
        self.initializer, self.regularizer, self.trainable = initializer, regularizer, trainable

    @property
    def size(self):
        return int(np.prod(self.shape))


class SymbolicTensor:
    """The output of a layer in a functional model: a shape (without the batch) and its history."""

    def __init__(self, shape, layer, inbound=None):
        self.shape, self.layer, self.inbound = tuple(shape), layer, inbound

    def __repr__(self):
        return f"<SymbolicTensor shape=(None, {', '.join(map(str, self.shape))}) from {self.layer.name}>"


class Layer:
    """Base class. Subclasses set ``output_shape`` and declare variables in ``build``,
    and implement ``forward(x, training, logits=False)`` and ``backward(dy, need_dx)``."""

    def __init__(self, name=None, trainable=True, input_shape=None, input_dim=None, dtype=None):
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
        self.built = False
        self.input_shape = None
        self.output_shape = None
        self.dtype = None
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
        value = bool(value)
        if value != self._trainable:
            self._trainable = value
            TRAINABLE_VERSION[0] = next(_trainable_version)

    # -- building -----------------------------------------------------------
    def add_weight(self, name, shape, initializer="zeros", regularizer=None, trainable=True):
        self.specs.append(VarSpec(name, shape, _initializers.get(initializer),
                                  _regularizers.get(regularizer), trainable))

    def build(self, input_shape, dtype):
        """Declare variables for inputs of feature shape ``input_shape``."""
        input_shape = tuple(input_shape)
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

    def __call__(self, tensor):
        if not isinstance(tensor, SymbolicTensor):
            raise TypeError(f"layer {self.name!r}: call it on the output of Input(...) or of another layer, "
                            f"got {type(tensor).__name__}")
        out_shape = self.compute_output_shape(tensor.shape)
        return SymbolicTensor(out_shape, self, tensor)

    def compute_output_shape(self, input_shape):
        self.build(input_shape, self.dtype or "float32")
        return self.output_shape

    # -- variables ----------------------------------------------------------
    @property
    def weights(self):
        return [self.vars[s.name] for s in self.specs]

    @property
    def trainable_weights(self):
        return [self.vars[s.name] for s in self.specs if s.trainable and self.trainable]

    def count_params(self):
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
    def _buffer(self, key, shape):
        b = self._bufs.get(key)
        if b is None or b.shape != shape or b.dtype != self.dtype:
            if len(self._bufs) > 32:  # many batch sizes seen (predict on varied inputs): start over
                self._bufs = {}
            b = self._bufs[key] = np.empty(shape, dtype=self.dtype)
        return b

    def release_buffers(self):
        self._bufs = {}

    # -- compute ------------------------------------------------------------
    def forward(self, x, training=False, logits=False):
        return x

    def backward(self, dy, need_dx=True):
        return dy

    # -- config -------------------------------------------------------------
    def get_config(self):
        return {"name": self.name, "trainable": self.trainable}

    def _extra_state(self):
        return {}

    def _set_extra_state(self, state):
        pass

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"


class InputLayer(Layer):
    """The input of a model (made by ``Input(shape)``)."""

    def __init__(self, shape, name=None):
        super().__init__(name=name)
        self.shape = _shape_tuple(shape)

    def get_config(self):
        return {"name": self.name, "shape": list(self.shape)}


def Input(shape, name=None):
    """A symbolic input of feature shape ``shape`` (an int or a tuple, batch excluded).

    >>> Input(784).shape
    (784,)
    """
    layer = InputLayer(shape, name=name)
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


class Dense(Layer):
    """y = activation(x @ kernel + bias), one fused matmul+bias+activation kernel call.

    >>> import numpy as np, fastnn
    >>> m = fastnn.Sequential([fastnn.layers.Dense(3, activation="relu", input_dim=4)])
    >>> m.predict(np.ones((2, 4), dtype=np.float32)).shape
    (2, 3)
    """

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 input_dim=None, **kwargs):
        super().__init__(input_dim=input_dim, **kwargs)
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 1:
            raise ValueError(f"units: expected a positive int, got {units!r}")
        self.units = int(units)
        self.activation = _activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = _initializers.get(kernel_initializer)
        self.bias_initializer = _initializers.get(bias_initializer)
        self.kernel_regularizer = _regularizers.get(kernel_regularizer)
        self.bias_regularizer = _regularizers.get(bias_regularizer)
        self._linear = _activations.get("linear")

    def _build(self, input_shape):
        _require_2d(self, input_shape)
        self.add_weight("kernel", (input_shape[0], self.units), self.kernel_initializer,
                        self.kernel_regularizer)
        if self.use_bias:
            self.add_weight("bias", (self.units,), self.bias_initializer, self.bias_regularizer)
        self.output_shape = (self.units,)

    def forward(self, x, training=False, logits=False):
        m = x.shape[0]
        act = self._linear if logits else self.activation
        y = self._buffer(("y", m), (m, self.units))
        bias = self.vars["bias"] if self.use_bias else None
        W = self.vars["kernel"]
        if act.kernel is not None and not act.needs_input:
            op("matmul")(x, W, bias=bias, out=y,
                         activation=None if act.is_linear else act.kernel, activation_alpha=act.alpha)
            z = None
        else:  # softmax (row-wise) or an activation whose gradient needs its input
            z = self._buffer(("z", m), (m, self.units))
            op("matmul")(x, W, bias=bias, out=z)
            act(z, out=y)
        self._x, self._z, self._y, self._act = x, z, y, act
        return y

    def backward(self, dy, need_dx=True):
        act = self._act
        dz = dy if act.is_linear else act.backward(dy, x=self._z, y=self._y, out=dy)
        if self.trainable:
            op("matmul")(self._x, dz, trans_a=True, out=self.grads["kernel"])
            if self.use_bias:
                op("column_sum")(dz, out=self.grads["bias"])
        if not need_dx:
            return None
        dx = self._buffer(("dx", dz.shape[0]), self._x.shape)
        op("matmul")(dz, self.vars["kernel"], trans_b=True, out=dx)
        return dx

    def get_config(self):
        c = super().get_config()
        c.update(units=self.units, activation=self.activation.get_config(), use_bias=self.use_bias,
                 kernel_initializer=_initializers.serialize(self.kernel_initializer),
                 bias_initializer=_initializers.serialize(self.bias_initializer),
                 kernel_regularizer=_regularizers.serialize(self.kernel_regularizer),
                 bias_regularizer=_regularizers.serialize(self.bias_regularizer))
        return c


class Activation(Layer):
    """Applies an activation: ``Activation("relu")``, ``Activation(fastnn.activations.ELU(0.5))``."""

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

    def get_config(self):
        c = super().get_config()
        c.update(activation=self.activation.get_config())
        return c


class Dropout(Layer):
    """Inverted dropout: in training each unit is zeroed with probability ``rate`` and the
    kept ones scaled by 1/(1-rate); at inference the identity. A fresh mask every step,
    reproducible from ``seed``.

    >>> Dropout(0.5, seed=1).rate
    0.5
    """

    _MIX = 0x9E3779B97F4A7C15

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating)) or not 0 <= rate < 1:
            raise ValueError(f"rate: expected a number in [0, 1), got {rate!r}")
        self.rate = float(rate)
        if seed is None:
            seed = int(_initializers.global_rng().integers(0, 2**63))
        self.seed = int(seed)
        self._calls = 0

    def forward(self, x, training=False, logits=False):
        self._active = training and self.rate > 0
        if not self._active:
            return x
        y = self._buffer(("y", x.shape[0]), x.shape)
        s = (self.seed + self._calls * self._MIX) & 0xFFFFFFFFFFFFFFFF
        self._calls += 1
        mask = self._buffer(("mask", x.shape[0]), x.shape)
        _, self._mask = op("dropout")(x, self.rate, seed=s, out=(y, mask))
        return y

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        if self._active:
            np.multiply(dy, self._mask, out=dy)
        return dy

    def get_config(self):
        c = super().get_config()
        c.update(rate=self.rate, seed=self.seed)
        return c

    def _extra_state(self):
        return {"calls": np.array(self._calls, dtype=np.int64)}

    def _set_extra_state(self, state):
        self._calls = int(state["calls"])


class BatchNormalization(Layer):
    """Normalizes each feature over the batch, then scales by gamma and shifts by beta.

    Training: batch statistics, and the moving ones updated with
    ``moving = momentum * moving + (1 - momentum) * batch`` (moving variance unbiased).
    Inference, or ``trainable = False`` (as in Keras): the moving statistics.
    gamma and beta are trainable; the moving statistics are not.

    >>> BatchNormalization().momentum
    0.99
    """

    def __init__(self, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones", **kwargs):
        super().__init__(**kwargs)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum: expected a number in [0, 1), got {momentum!r}")
        if not epsilon > 0:
            raise ValueError(f"epsilon: expected a positive number, got {epsilon!r}")
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = _initializers.get(beta_initializer)
        self.gamma_initializer = _initializers.get(gamma_initializer)
        self.moving_mean_initializer = _initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = _initializers.get(moving_variance_initializer)

    def _build(self, input_shape):
        _require_2d(self, input_shape)
        n = input_shape[0]
        if self.scale:
            self.add_weight("gamma", (n,), self.gamma_initializer)
        if self.center:
            self.add_weight("beta", (n,), self.beta_initializer)
        self.add_weight("moving_mean", (n,), self.moving_mean_initializer, trainable=False)
        self.add_weight("moving_variance", (n,), self.moving_variance_initializer, trainable=False)
        self.output_shape = input_shape
        self._on_dtype()

    def _on_dtype(self):
        n = self.input_shape[0]
        self._ones = np.ones(n, dtype=self.dtype)
        self._zeros = np.zeros(n, dtype=self.dtype)

    def _gamma_beta(self):
        return (self.vars["gamma"] if self.scale else self._ones,
                self.vars["beta"] if self.center else self._zeros)

    def forward(self, x, training=False, logits=False):
        gamma, beta = self._gamma_beta()
        self._training = training and self.trainable
        if self._training and x.shape[0] < 2:
            raise ValueError(f"layer {self.name!r}: batch normalization in training needs batches of at "
                             f"least 2 rows, got {x.shape[0]}")
        n = x.shape[1]
        y, self._mean, self._invstd = op("batchnorm_forward")(
            x, gamma, beta, self.vars["moving_mean"], self.vars["moving_variance"],
            momentum=self.momentum, eps=self.epsilon, training=self._training,
            out=(self._buffer(("y", x.shape[0]), x.shape), self._buffer("mean", (n,)),
                 self._buffer("invstd", (n,))))
        self._x = x
        return y

    def backward(self, dy, need_dx=True):
        gamma, _ = self._gamma_beta()
        if not self._training:  # inference mode: y = x * gamma * invstd + shift
            if not need_dx:
                return None
            np.multiply(dy, gamma * self._invstd, out=dy)
            return dy
        n = dy.shape[1]
        # dgamma and dbeta land straight in the gradient arena (scratch when not learned)
        dx, _, _ = op("batchnorm_backward")(
            dy, self._x, gamma, self._mean, self._invstd,
            out=(self._buffer(("dx", dy.shape[0]), dy.shape),
                 self.grads["gamma"] if self.scale else self._buffer("dgamma", (n,)),
                 self.grads["beta"] if self.center else self._buffer("dbeta", (n,))))
        return dx if need_dx else None

    def get_config(self):
        c = super().get_config()
        c.update(momentum=self.momentum, epsilon=self.epsilon, center=self.center, scale=self.scale,
                 beta_initializer=_initializers.serialize(self.beta_initializer),
                 gamma_initializer=_initializers.serialize(self.gamma_initializer),
                 moving_mean_initializer=_initializers.serialize(self.moving_mean_initializer),
                 moving_variance_initializer=_initializers.serialize(self.moving_variance_initializer))
        return c


class PReLU(Layer):
    """Parametric ReLU: y = x for x > 0, alpha * x otherwise, with a learned alpha per unit.

    >>> PReLU().alpha_initializer.get_config()
    {}
    """

    def __init__(self, alpha_initializer="zeros", alpha_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = _initializers.get(alpha_initializer)
        self.alpha_regularizer = _regularizers.get(alpha_regularizer)

    def _build(self, input_shape):
        self.add_weight("alpha", input_shape, self.alpha_initializer, self.alpha_regularizer)
        self.output_shape = input_shape

    def forward(self, x, training=False, logits=False):
        y = self._buffer(("y", x.shape[0]), x.shape)
        neg = self._buffer(("neg", x.shape[0]), x.shape)
        np.minimum(x, 0, out=neg)
        np.maximum(x, 0, out=y)
        y += neg * self.vars["alpha"]
        self._x, self._neg = x, neg
        return y

    def backward(self, dy, need_dx=True):
        if self.trainable:
            np.einsum("i...,i...->...", dy, self._neg, out=self.grads["alpha"])
        if not need_dx:
            return None
        slope = self._buffer(("slope", dy.shape[0]), dy.shape)
        slope[...] = self.vars["alpha"]
        np.copyto(slope, 1, where=self._x > 0)
        np.multiply(dy, slope, out=dy)
        return dy

    def get_config(self):
        c = super().get_config()
        c.update(alpha_initializer=_initializers.serialize(self.alpha_initializer),
                 alpha_regularizer=_regularizers.serialize(self.alpha_regularizer))
        return c


class Maxout(Layer):
    """Maxout (Goodfellow et al. 2013): ``units`` outputs, each the max of ``pieces`` affine maps.

    >>> Maxout(4, pieces=3).compute_output_shape((5,))
    (4,)
    """

    def __init__(self, units, pieces=2, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, input_dim=None, **kwargs):
        super().__init__(input_dim=input_dim, **kwargs)
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 1:
            raise ValueError(f"units: expected a positive int, got {units!r}")
        if isinstance(pieces, bool) or not isinstance(pieces, (int, np.integer)) or pieces < 1:
            raise ValueError(f"pieces: expected a positive int, got {pieces!r}")
        self.units, self.pieces, self.use_bias = int(units), int(pieces), bool(use_bias)
        self.kernel_initializer = _initializers.get(kernel_initializer)
        self.bias_initializer = _initializers.get(bias_initializer)
        self.kernel_regularizer = _regularizers.get(kernel_regularizer)

    def _build(self, input_shape):
        _require_2d(self, input_shape)
        k = self.units * self.pieces
        self.add_weight("kernel", (input_shape[0], k), self.kernel_initializer, self.kernel_regularizer)
        if self.use_bias:
            self.add_weight("bias", (k,), self.bias_initializer)
        self.output_shape = (self.units,)

    def forward(self, x, training=False, logits=False):
        m = x.shape[0]
        z = self._buffer(("z", m), (m, self.units * self.pieces))
        op("matmul")(x, self.vars["kernel"], bias=self.vars["bias"] if self.use_bias else None, out=z)
        z3 = z.reshape(m, self.units, self.pieces)
        idx = self._argmax = np.argmax(z3, axis=2)
        y = self._buffer(("y", m), (m, self.units))
        y[...] = np.take_along_axis(z3, idx[..., None], axis=2)[..., 0]
        self._x = x
        return y

    def backward(self, dy, need_dx=True):
        m = dy.shape[0]
        dz = self._buffer(("dz", m), (m, self.units * self.pieces))
        dz.fill(0)
        np.put_along_axis(dz.reshape(m, self.units, self.pieces), self._argmax[..., None],
                          dy[..., None], axis=2)
        if self.trainable:
            op("matmul")(self._x, dz, trans_a=True, out=self.grads["kernel"])
            if self.use_bias:
                op("column_sum")(dz, out=self.grads["bias"])
        if not need_dx:
            return None
        dx = self._buffer(("dx", m), self._x.shape)
        op("matmul")(dz, self.vars["kernel"], trans_b=True, out=dx)
        return dx

    def get_config(self):
        c = super().get_config()
        c.update(units=self.units, pieces=self.pieces, use_bias=self.use_bias,
                 kernel_initializer=_initializers.serialize(self.kernel_initializer),
                 bias_initializer=_initializers.serialize(self.bias_initializer),
                 kernel_regularizer=_regularizers.serialize(self.kernel_regularizer))
        return c


LAYERS = {c.__name__: c for c in (Dense, Activation, Dropout, BatchNormalization, PReLU, Maxout, Flatten)}


def deserialize(d):
    """A layer from ``{"class_name": ..., "config": ...}`` (only the classes above; never runs code)."""
    cls = LAYERS.get(d.get("class_name"))
    if cls is None:
        raise ValueError(f"layer: unknown class {d.get('class_name')!r}; known: {', '.join(LAYERS)}")
    cfg = dict(d["config"])
    if "activation" in cfg and isinstance(cfg["activation"], dict):
        cfg["activation"] = _activations.get(cfg["activation"])
    for k, v in list(cfg.items()):
        if k.endswith("_initializer") and isinstance(v, dict):
            cfg[k] = _initializers.get(v)
        elif k.endswith("_regularizer"):
            cfg[k] = _regularizers.get(v)
    return cls(**cfg)
