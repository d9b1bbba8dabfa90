"""Activation layers with parameters: ``PReLU`` and ``Maxout``."""
from __future__ import annotations

import numpy as np

from .. import initializers as _initializers
from .. import ops as _ops
from .. import regularizers as _regularizers
from .._validate import validate
from .core import POSITIVE_INT, Layer, _require_2d, affine_backward


class PReLU(Layer):
    """Parametric ReLU: y = x for x > 0, alpha * x otherwise, with a learned alpha per unit.

    >>> PReLU().alpha_initializer.get_config()
    {}
    """

    _config_keys = ("alpha_initializer", "alpha_regularizer")

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


class Maxout(Layer):
    """Maxout (Goodfellow et al. 2013): ``units`` outputs, each the max of ``pieces`` affine maps.

    >>> Maxout(4, pieces=3).compute_output_shape((5,))
    (4,)
    """

    _config_keys = ("units", "pieces", "use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer")

    def __init__(self, units, pieces=2, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, input_dim=None, **kwargs):
        super().__init__(input_dim=input_dim, **kwargs)
        validate({"units": units, "pieces": pieces}, {"units": [POSITIVE_INT], "pieces": [POSITIVE_INT]},
                 "Maxout")
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
        _ops.matmul(x, self.vars["kernel"], bias=self.vars["bias"] if self.use_bias else None, out=z)
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
        return affine_backward(self, dz, need_dx)


# ---------------------------------------------------------------------------
# Activation layers as Keras 3 names them (ReLU, LeakyReLU, ELU, Softmax).
# NumPy-vectorized forward/backward (no kernel call): the fused kernels stay on
# Dense(activation=...) and Activation(...); these layers carry Keras's extra
# arguments (ReLU's max_value/threshold, Softmax's axis).

def _nonneg(name, value, allow_none=False):
    if value is None and allow_none:
        return None
    if value is None or isinstance(value, bool) or not np.isfinite(float(value)) or float(value) < 0:
        raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
    return float(value)


class ReLU(Layer):
    """Keras 3's ReLU layer: ``y = min(x, max_value)`` for ``x > threshold``,
    ``negative_slope * (x - threshold)`` for ``x <= threshold`` (0 at ``x == threshold``).

    >>> import numpy as np
    >>> r = ReLU(max_value=6.0); r.build((3,), "float64")
    >>> r.forward(np.array([[-1.0, 3.0, 9.0]]))
    array([[0., 3., 6.]])
    """

    _config_keys = ("max_value", "negative_slope", "threshold")

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        self.max_value = _nonneg("max_value", max_value, allow_none=True)
        self.negative_slope = _nonneg("negative_slope", negative_slope)
        self.threshold = _nonneg("threshold", threshold)

    def forward(self, x, training=False, logits=False):
        y = self._buffer(("y", x.shape[0]), x.shape)
        y.fill(0)
        np.copyto(y, x, where=x > self.threshold)  # Keras: x * (x > threshold), without -0
        if self.max_value is not None:
            np.clip(y, 0, self.max_value, out=y)
        if self.negative_slope:
            y -= self.negative_slope * np.maximum(self.threshold - x, 0)
        self._x = x
        return y

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        x = self._x
        slope = (x > self.threshold).astype(dy.dtype)
        if self.max_value is not None:
            slope *= x < self.max_value
        if self.negative_slope:
            slope += self.negative_slope * (x < self.threshold)
        np.multiply(dy, slope, out=dy)
        return dy


class LeakyReLU(Layer):
    """``y = x`` for ``x >= 0``, ``negative_slope * x`` otherwise; Keras 3's layer default 0.3
    (the ``leaky_relu`` activation function's default is 0.2, as in Keras).

    >>> LeakyReLU().negative_slope
    0.3
    """

    _config_keys = ("negative_slope",)

    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:  # Keras 2 name, accepted by Keras 3 too
            negative_slope = kwargs.pop("alpha")
        super().__init__(**kwargs)
        self.negative_slope = _nonneg("negative_slope", negative_slope)

    def forward(self, x, training=False, logits=False):
        y = self._buffer(("y", x.shape[0]), x.shape)
        np.multiply(x, np.where(x >= 0, 1.0, self.negative_slope).astype(x.dtype), out=y)
        self._x = x
        return y

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        np.multiply(dy, np.where(self._x >= 0, 1.0, self.negative_slope).astype(dy.dtype), out=dy)
        return dy


class ELU(Layer):
    """``y = x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise (Keras default alpha 1.0).

    >>> ELU().alpha
    1.0
    """

    _config_keys = ("alpha",)

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(alpha, bool) or not np.isfinite(float(alpha)):
            raise ValueError(f"alpha: expected a finite number, got {alpha!r}")
        self.alpha = float(alpha)

    def forward(self, x, training=False, logits=False):
        y = self._buffer(("y", x.shape[0]), x.shape)
        np.expm1(np.minimum(x, 0), out=y)
        y *= self.alpha
        np.copyto(y, x, where=x > 0)
        self._x, self._y = x, y
        return y

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        # d/dx alpha*(exp(x)-1) = y + alpha for x <= 0
        np.multiply(dy, np.where(self._x > 0, 1.0, self._y + self.alpha), out=dy)
        return dy


class Softmax(Layer):
    """Softmax over ``axis`` (default -1; an int or a tuple of ints, never the batch axis).

    >>> import numpy as np
    >>> s = Softmax(); s.build((2,), "float64")
    >>> s.forward(np.zeros((1, 2)))
    array([[0.5, 0.5]])
    """

    _config_keys = ("axis",)

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        axes = axis if isinstance(axis, (list, tuple)) else (axis,)
        if not axes or any(isinstance(a, bool) or not isinstance(a, (int, np.integer)) for a in axes):
            raise TypeError(f"axis: expected an int or a tuple of ints, got {axis!r}")
        self.axis = int(axis) if not isinstance(axis, (list, tuple)) else tuple(int(a) for a in axis)

    def _axes(self, input_shape):
        rank = len(input_shape) + 1
        axes = self.axis if isinstance(self.axis, tuple) else (self.axis,)
        out = tuple(sorted({a % rank if -rank <= a < rank else -1 for a in axes}))
        if -1 in out or 0 in out:
            raise ValueError(f"layer {self.name!r}: axis {self.axis!r} is the batch axis or out of range for "
                             f"inputs of shape (batch, {', '.join(map(str, input_shape))})")
        return out

    def _build(self, input_shape):
        self._ax = self._axes(input_shape)
        self.output_shape = input_shape

    def forward(self, x, training=False, logits=False):
        y = self._buffer(("y", x.shape[0]), x.shape)
        np.subtract(x, np.max(x, axis=self._ax, keepdims=True), out=y)
        np.exp(y, out=y)
        y /= np.sum(y, axis=self._ax, keepdims=True)
        self._y = y
        return y

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        s = np.sum(dy * self._y, axis=self._ax, keepdims=True)
        np.subtract(dy, s, out=dy)
        np.multiply(dy, self._y, out=dy)
        return dy
