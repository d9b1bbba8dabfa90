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

    def get_config(self):
        c = super().get_config()
        c.update(units=self.units, pieces=self.pieces, use_bias=self.use_bias,
                 kernel_initializer=_initializers.serialize(self.kernel_initializer),
                 bias_initializer=_initializers.serialize(self.bias_initializer),
                 kernel_regularizer=_regularizers.serialize(self.kernel_regularizer))
        return c
