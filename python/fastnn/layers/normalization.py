"""Normalization layers: ``BatchNormalization``, ``LayerNormalization``."""
from __future__ import annotations

import numpy as np

from .. import initializers as _initializers
from .. import ops as _ops
from .._validate import Interval, Real, validate
from ._eager import LayerVariable
from .core import Layer, _require_2d, _weight_args


def check_axis(axis):
    """An int or a list/tuple of ints (Keras's ``axis``), as saved: an int or a list."""
    axes = axis if isinstance(axis, (list, tuple)) else (axis,)
    if not axes or any(isinstance(a, bool) or not isinstance(a, (int, np.integer)) for a in axes):
        raise TypeError(f"axis: expected an int or a list/tuple of ints, got {axis!r}")
    return [int(a) for a in axes] if isinstance(axis, (list, tuple)) else int(axis)


def feature_axes(layer, axis, input_shape):
    """The axes of ``axis`` in (batch, *input_shape), sorted; the batch axis is refused."""
    rank = len(input_shape) + 1
    axes = axis if isinstance(axis, list) else [axis]
    if any(not -rank <= a < rank for a in axes) or any(a % rank == 0 for a in axes):
        raise ValueError(f"layer {layer.name!r}: axis {axis!r} is the batch axis or out of range for "
                         f"inputs of shape (batch, {', '.join(map(str, input_shape))})")
    return tuple(sorted({a % rank for a in axes}))


def add_gamma_beta(layer, shape):
    """The learned scale and offset of a normalization layer with Keras's ``scale`` / ``center``
    flags: "gamma" and "beta" of ``shape`` with the layer's initializers, regularizers and
    constraints."""
    if layer.scale:
        layer.add_weight("gamma", shape, layer.gamma_initializer, layer.gamma_regularizer,
                         constraint=layer.gamma_constraint)
    if layer.center:
        layer.add_weight("beta", shape, layer.beta_initializer, layer.beta_regularizer,
                         constraint=layer.beta_constraint)


class BatchNormalization(Layer):
    """Normalizes each feature over the batch, then scales by gamma and shifts by beta.

    Training: batch statistics, and the moving ones updated with
    ``moving = momentum * moving + (1 - momentum) * batch`` (moving variance unbiased).
    Inference, or ``trainable = False`` (as in Keras): the moving statistics.
    gamma and beta are trainable; the moving statistics are not.

    ``momentum`` is in [0, 1] as in the op below it (Keras does not restrict it): 1 keeps
    the moving statistics fixed while gamma and beta train, 0 keeps the last batch's.
    A training batch of one row is refused by the op (and up front by ``fit``).

    >>> BatchNormalization().momentum
    0.99
    """

    _config_keys = ("momentum", "epsilon", "center", "scale", "beta_initializer", "gamma_initializer",
                    "moving_mean_initializer", "moving_variance_initializer", "beta_regularizer",
                    "gamma_regularizer", "beta_constraint", "gamma_constraint")

    # the variables under Keras's names: live arrays (fastnn.layers._eager); gamma / beta None
    # when scale / center is off
    gamma, beta = LayerVariable("gamma", "scale"), LayerVariable("beta", "center")
    moving_mean, moving_variance = LayerVariable("moving_mean"), LayerVariable("moving_variance")
    _min_training_batch = 2  # batch statistics of one sample are refused (layer(x, training=True))

    _parameter_constraints = {"momentum": [Interval(Real, 0, 1, closed="both")],
                              "epsilon": [Interval(Real, 0, None, closed="neither")]}

    def __init__(self, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, beta_constraint=None, gamma_constraint=None, **kwargs):
        super().__init__(**kwargs)
        validate({"momentum": momentum, "epsilon": epsilon}, self._parameter_constraints, "BatchNormalization")
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer, self.beta_regularizer, self.beta_constraint = _weight_args(
            beta_initializer, beta_regularizer, beta_constraint)
        self.gamma_initializer, self.gamma_regularizer, self.gamma_constraint = _weight_args(
            gamma_initializer, gamma_regularizer, gamma_constraint)
        self.moving_mean_initializer = _initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = _initializers.get(moving_variance_initializer)

    def _build(self, input_shape):
        _require_2d(self, input_shape)
        n = input_shape[0]
        add_gamma_beta(self, (n,))
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
        n = x.shape[1]
        y, self._mean, self._invstd = _ops.batchnorm_forward(
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
        dx, _, _ = _ops.batchnorm_backward(
            dy, self._x, gamma, self._mean, self._invstd,
            out=(self._buffer(("dx", dy.shape[0]), dy.shape),
                 self.grads["gamma"] if self.scale else self._buffer("dgamma", (n,)),
                 self.grads["beta"] if self.center else self._buffer("dbeta", (n,))))
        return dx if need_dx else None


class LayerNormalization(Layer):
    """Normalizes each sample over ``axis`` (default -1: the features), then scales by gamma and
    shifts by beta (Keras 3): ``y = (x - mean) / sqrt(var + epsilon) * gamma + beta`` with the
    biased variance of the sample. gamma and beta have the shape of the normalized axes.
    A 2-D input normalized over its last axis (the common case, after Dense) runs on the core
    kernels (``ops.layernorm_forward`` / ``layernorm_backward``); other axes and shapes on
    NumPy.

    >>> LayerNormalization().epsilon
    0.001
    """

    _config_keys = ("axis", "epsilon", "center", "scale", "beta_initializer", "gamma_initializer",
                    "beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint")
    gamma, beta = LayerVariable("gamma", "scale"), LayerVariable("beta", "center")

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None,
                 beta_constraint=None, gamma_constraint=None, **kwargs):
        super().__init__(**kwargs)
        axis = check_axis(axis)
        if isinstance(epsilon, bool) or not (np.isfinite(float(epsilon)) and float(epsilon) > 0):
            raise ValueError(f"epsilon: expected a positive number, got {epsilon!r}")
        self.axis = axis
        self.epsilon, self.center, self.scale = float(epsilon), bool(center), bool(scale)
        self.beta_initializer, self.beta_regularizer, self.beta_constraint = _weight_args(
            beta_initializer, beta_regularizer, beta_constraint)
        self.gamma_initializer, self.gamma_regularizer, self.gamma_constraint = _weight_args(
            gamma_initializer, gamma_regularizer, gamma_constraint)

    def _build(self, input_shape):
        rank = len(input_shape) + 1
        self._ax = feature_axes(self, self.axis, input_shape)
        self._reduce = tuple(a for a in range(rank) if a not in self._ax)  # axes summed for dgamma
        pshape = tuple(input_shape[a - 1] for a in self._ax)
        # parameters broadcast against (batch, *input_shape): size 1 on the other axes
        self._bshape = tuple(input_shape[a - 1] if a in self._ax else 1 for a in range(1, rank))
        add_gamma_beta(self, pshape)
        self.output_shape = input_shape

    def _kernel_case(self, x):
        return x.ndim == 2 and self._ax == (1,) and x.dtype == self.dtype

    def forward(self, x, training=False, logits=False):
        self._fast = self._kernel_case(x)
        if self._fast:
            m = x.shape[0]
            y, self._xhat, self._inv = _ops.layernorm_forward(
                x, self.vars["gamma"] if self.scale else None, self.vars["beta"] if self.center else None,
                eps=self.epsilon, out=(self._buffer(("y", m), x.shape), self._buffer(("xhat", m), x.shape),
                                       self._buffer(("inv", m), (m,))))
            return y
        return self._forward_numpy(x)

    def _forward_numpy(self, x):
        mean = np.mean(x, axis=self._ax, keepdims=True)
        xc = x - mean
        var = np.mean(xc * xc, axis=self._ax, keepdims=True)
        inv = 1.0 / np.sqrt(var + self.epsilon)
        xhat = self._buffer(("xhat", x.shape[0]), x.shape)
        np.multiply(xc, inv, out=xhat)
        y = self._buffer(("y", x.shape[0]), x.shape)
        if self.scale:
            np.multiply(xhat, self.vars["gamma"].reshape(self._bshape), out=y)
        else:
            np.copyto(y, xhat)
        if self.center:
            y += self.vars["beta"].reshape(self._bshape)
        self._xhat, self._inv = xhat, inv
        return y

    def backward(self, dy, need_dx=True):
        if not self._fast:
            return self._backward_numpy(dy, need_dx)
        if not (need_dx or self.trainable):
            return None
        m, n = dy.shape
        learn = self.trainable
        # dgamma and dbeta land straight in the gradient arena (scratch when not learned)
        dx, _, _ = _ops.layernorm_backward(
            dy, self._xhat, self._inv, self.vars["gamma"] if self.scale else None,
            out=(self._buffer(("dx", m), dy.shape),
                 self.grads["gamma"] if learn and self.scale else self._buffer("dgamma", (n,)),
                 self.grads["beta"] if learn and self.center else self._buffer("dbeta", (n,))))
        return dx if need_dx else None

    def _backward_numpy(self, dy, need_dx):
        xhat = self._xhat
        if self.trainable:
            pshape = self.grads["gamma" if self.scale else "beta"].shape
            if self.scale:
                self.grads["gamma"][...] = np.sum(dy * xhat, axis=self._reduce).reshape(pshape)
            if self.center:
                self.grads["beta"][...] = np.sum(dy, axis=self._reduce).reshape(pshape)
        if not need_dx:
            return None
        g = dy * self.vars["gamma"].reshape(self._bshape) if self.scale else dy
        dx = self._buffer(("dx", dy.shape[0]), dy.shape)
        # dx = inv * (g - mean(g) - xhat * mean(g * xhat)), means over the normalized axes
        np.subtract(g, np.mean(g, axis=self._ax, keepdims=True), out=dx)
        dx -= xhat * np.mean(g * xhat, axis=self._ax, keepdims=True)
        dx *= self._inv
        return dx
