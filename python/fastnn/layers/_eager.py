"""A layer used on its own, as in Keras 3: ``layer(x)`` on a NumPy array, and its variables
under Keras's attribute names (``dense.kernel``, ``dense.bias``, ``bn.gamma``,
``bn.moving_mean``, ...).

The attributes are the live arrays the layer computes with: for a layer in a model, NumPy
views into the model's parameter arena (trainable parameters) or the layer's own state
arrays (BatchNormalization's moving statistics). Writing into one
(``dense.kernel[...] = w``, ``dense.bias[0] = 0.5``) changes the model at once, as
``variable.assign`` does in Keras; the arrays also have Keras's ``assign``, ``assign_add``,
``assign_sub``, ``numpy()`` and ``value`` (:class:`VariableView`). A view stays valid until the model lays its arena out
again (a build with new shapes, a change of dtype, the layer placed in another model, a
``load_weights``): read the attribute again rather than keeping it across such changes.

>>> import numpy as np
>>> from fastnn.layers import Dense
>>> d = Dense(2, kernel_initializer="ones")
>>> d(np.ones((1, 3), dtype=np.float32))
array([[3., 3.]], dtype=float32)
>>> d.kernel[0, 0] = 4.0
>>> d(np.ones((1, 3), dtype=np.float32))
array([[6., 3.]], dtype=float32)
"""
from __future__ import annotations

import weakref

import numpy as np

from . import _mixed


_VIEWS: "weakref.WeakKeyDictionary[object, dict]" = weakref.WeakKeyDictionary()


class VariableView(np.ndarray):
    """The live array of a variable with Keras's variable methods: ``assign`` (same shape, as
    Keras), ``assign_add``, ``assign_sub`` (in place, returning the variable), ``numpy()``
    and ``value`` (copies); ``name`` (``"kernel"``) and ``path`` (``"dense/kernel"``, the layer's
    name first: Keras adds the model's name in front of a model's variables)."""

    name = path = None  # set on the views of layer variables (a result computed from one has none)

    def assign(self, value):
        if np.shape(value) != self.shape:
            raise ValueError(f"value: expected shape {self.shape}, got {np.shape(value)}")
        self[...] = value
        return self

    def assign_add(self, delta):
        return self.assign(self + np.asarray(delta, dtype=self.dtype))

    def assign_sub(self, delta):
        return self.assign(self - np.asarray(delta, dtype=self.dtype))

    def numpy(self):
        return np.array(self, copy=True).view(np.ndarray)

    value = property(numpy)


class LayerVariable:
    """A class attribute naming one of the layer's variables (Keras's ``layer.kernel``):
    the live array (see the module docstring); None when the constructor turned the
    variable off (``flag``: ``use_bias``, ``scale``, ``center``); an AttributeError, as in
    Keras, before the layer is built."""

    def __init__(self, name, flag=None):
        self.name, self.flag = name, flag

    def __get__(self, layer, owner=None):
        if layer is None:
            return self
        if self.flag is not None and not getattr(layer, self.flag):
            return None
        v = layer.vars.get(self.name)
        if v is None:
            raise AttributeError(f"layer {layer.name!r}: build the layer (call it on data, or build the model "
                                 f"holding it) before accessing `{self.name}`")
        return variable(layer, self.name)

    def __set__(self, layer, value):
        raise AttributeError(f"layer {layer.name!r}: `{self.name}` cannot be replaced; write into it "
                             f"(layer.{self.name}[...] = value) or use set_weights")


def variable(layer, name):
    """The :class:`VariableView` of ``layer.vars[name]``, one per array (``layer.kernel is
    layer.weights[0]``); kept outside the layer, so that a copy of it makes its own."""
    v = layer.vars[name]
    cache = _VIEWS.setdefault(layer, {})
    hit = cache.get(name)
    if hit is None or hit[0] is not v:
        hit = cache[name] = (v, v.view(VariableView))
    hit[1].name, hit[1].path = name, f"{layer.name}/{name}"
    return hit[1]


def own_variables(layer):
    """Variables for a layer built outside any model, from its initializers (Keras: a built
    layer owns its variables). A model placing the layer later keeps these values."""
    for s in layer.specs:
        if s.name not in layer.vars:
            layer.vars[s.name] = s.initializer(s.shape, layer.dtype)
            if s.trainable:
                layer.grads[s.name] = np.zeros(s.shape, dtype=layer.dtype)


def check_training(training, mask=None):
    """Keras's ``training`` (None, True or False) and ``mask`` (fastnn takes none)."""
    if training is not None and not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"training: expected True, False or None, got {training!r}")
    if mask is not None:
        raise ValueError("mask: fastnn layers take no mask; expected None")
    return bool(training)


def as_batch(x, what, dtype):
    """x as a C-contiguous (batch, ...) array of ``dtype``: numbers, at least one sample,
    finite (fastnn refuses NaN and infinity in inputs, as fit and predict do)."""
    x = np.asarray(x)
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_):
        raise TypeError(f"{what}: expected numbers, got an array of dtype {x.dtype}")
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"{what}: expected shape (batch, features...) with at least one sample, got {x.shape}")
    x = np.ascontiguousarray(x, dtype=dtype)
    if not np.isfinite(x).all():
        raise ValueError(f"{what}: contains NaN or infinity")
    return x


def call(layer, x, training=None, mask=None):
    """``layer(x)`` on an array: builds the layer from x's shape if needed (its own
    variables, see :func:`own_variables`), then one forward pass; returns a new array.
    ``training=True``: training behaviour (Dropout drops with its seed sequence,
    BatchNormalization uses the batch statistics and updates its moving ones, as Keras 3);
    False or None: inference."""
    training = check_training(training, mask)
    if getattr(layer, "_multi_input", False) or isinstance(x, (list, tuple, dict)):
        raise TypeError(f"layer {layer.name!r}: expected one input (an array, or the output of Input(...) "
                        f"or of another layer), got {type(x).__name__}")
    dtype = layer.dtype  # the model's, or before the build the policy's variable dtype
    x = as_batch(x, "x", dtype)
    if not layer.built:
        layer.build(x.shape[1:], dtype)
    elif tuple(x.shape[1:]) != tuple(layer.input_shape):
        raise ValueError(f"x: layer {layer.name!r} is built for inputs of shape (batch, "
                         f"{', '.join(map(str, layer.input_shape))}), got {x.shape}")
    least = getattr(layer, "_min_training_batch", 1)  # BatchNormalization: 2
    if training and layer.trainable and x.shape[0] < least:
        raise ValueError(f"x: layer {layer.name!r} in training needs at least {least} samples, got {x.shape[0]}")
    own_variables(layer)
    return _mixed.as_float(layer.forward(x, training))  # a copy; bfloat16-stored outputs widened


def call_merge(layer, xs, training=None, mask=None):
    """A merge layer (``Add()([a, b])``, ``Concatenate()([a, b])``, ...) on a list of arrays:
    the inputs as the layer's dtype, one batch size; the layer built from their shapes (a
    rejected call leaves it as it was); one forward pass; returns a new array."""
    check_training(training, mask)
    dtype = layer.dtype  # the model's, or before the build the policy's variable dtype
    xs = [as_batch(x, f"inputs[{i}]", dtype) for i, x in enumerate(xs)]
    if len({x.shape[0] for x in xs}) > 1:
        raise ValueError(f"inputs: layer {layer.name!r} needs one batch size, got "
                         f"{', '.join(str(x.shape[0]) for x in xs)}")
    shapes = tuple(tuple(x.shape[1:]) for x in xs)
    if not layer.built:
        saved = dict(layer.__dict__)
        try:
            layer.build(shapes, dtype)
        except Exception:
            layer.__dict__.clear()
            layer.__dict__.update(saved)
            raise
    elif shapes != tuple(tuple(s) for s in layer.input_shape):
        raise ValueError(f"inputs: layer {layer.name!r} is built for inputs of shapes {layer.input_shape}, "
                         f"got {shapes}")
    return np.array(layer.forward(xs, bool(training)), copy=True)
