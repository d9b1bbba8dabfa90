"""Normalization layers: ``BatchNormalization``."""
from __future__ import annotations

import numpy as np

from .. import initializers as _initializers
from .. import ops as _ops
from .._validate import Interval, Real, validate
from .core import Layer, _require_2d


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

    _parameter_constraints = {"momentum": [Interval(Real, 0, 1, closed="both")],
                              "epsilon": [Interval(Real, 0, None, closed="neither")]}

    def __init__(self, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones", **kwargs):
        super().__init__(**kwargs)
        validate({"momentum": momentum, "epsilon": epsilon}, self._parameter_constraints, "BatchNormalization")
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

    def get_config(self):
        c = super().get_config()
        c.update(momentum=self.momentum, epsilon=self.epsilon, center=self.center, scale=self.scale,
                 beta_initializer=_initializers.serialize(self.beta_initializer),
                 gamma_initializer=_initializers.serialize(self.gamma_initializer),
                 moving_mean_initializer=_initializers.serialize(self.moving_mean_initializer),
                 moving_variance_initializer=_initializers.serialize(self.moving_variance_initializer))
        return c
