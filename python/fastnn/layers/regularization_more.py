"""Regularization layers beside ``regularization``'s: ``GaussianDropout`` (multiplicative
noise in training) and ``ActivityRegularization`` (a penalty on the activity, added to the
loss), with Keras 3's names, arguments and defaults.

>>> import numpy as np
>>> from fastnn.layers import ActivityRegularization, GaussianDropout
>>> x = np.ones((2, 3), dtype=np.float32)
>>> GaussianDropout(0.5, seed=0)(x)  # inference: the identity
array([[1., 1., 1.],
       [1., 1., 1.]], dtype=float32)
>>> reg = ActivityRegularization(l2=0.5)
>>> reg(x).shape, reg.losses  # 0.5 * sum(x**2) / batch
((2, 3), [1.5])
"""
from __future__ import annotations

import math

import numpy as np

from .. import ops as _ops
from .core import Layer
from .regularization import Dropout, _RandomLayer, _rate


class GaussianDropout(_RandomLayer):
    """Multiplicative Gaussian noise in training (Keras 3): ``y = x * n`` with ``n`` drawn from
    N(1, rate / (1 - rate)) afresh at every step, reproducible from ``seed`` and the number of
    training calls (saved with the model, as Dropout's); the identity at inference. The
    gradient is ``dy * n``. ``rate`` is in [0, 1) (Keras also takes 1, an infinite variance).

    >>> GaussianDropout(0.2, seed=0).rate
    0.2
    """

    _config_keys = ("rate", "seed")

    def __init__(self, rate, seed=None, **kwargs):
        self.rate = _rate(rate)
        super().__init__(seed=seed, **kwargs)

    def forward(self, x, training=False, logits=False):
        self._active = training and self.rate > 0
        if not self._active:
            return x
        noise = self._mask = self._buffer(("noise", x.shape[0]), x.shape)
        self._next_rng().standard_normal(out=noise, dtype=self.dtype)
        noise *= self.dtype.type(math.sqrt(self.rate / (1.0 - self.rate)))
        noise += self.dtype.type(1.0)
        y = self._buffer(("y", x.shape[0]), x.shape)
        return np.multiply(x, noise, out=y)

    backward = Dropout.backward  # dy * the noise (kept as _mask) in training, dy at inference


def _factor(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
    return float(value)


class ActivityRegularization(Layer):
    """The identity, adding ``(l1 * sum(|x|) + l2 * sum(x**2)) / batch_size`` to the loss (Keras
    3: its activity regularizer normalized by the batch size). As in Keras the penalty is
    taken at every call, in training (``fit``: part of the reported ``loss``, its gradient
    ``(l1 * sign(x) + 2 * l2 * x) / batch_size`` added to the input gradient) and in
    inference (``evaluate``'s ``loss``); ``data_loss`` is the loss without it. ``losses``
    holds the penalty of the last call (Keras's ``layer.losses``).

    >>> ActivityRegularization(l1=0.01).get_config()["l1"]
    0.01
    """

    _config_keys = ("l1", "l2")
    adds_activity_loss = True  # the trainer adds activity_loss (the last call's) to the loss

    def __init__(self, l1=0.0, l2=0.0, **kwargs):
        super().__init__(**kwargs)
        self.l1, self.l2 = _factor(l1, "l1"), _factor(l2, "l2")
        self.activity_loss = None

    @property
    def losses(self):
        return [] if self.activity_loss is None else [self.activity_loss]

    def forward(self, x, training=False, logits=False):
        self._x = x
        m = x.shape[0]
        # a float32/float64 activity's sums: ops.abs_sum and ops.sum_squares (float64, a fixed
        # order, as Regularizer.__call__: the native training step computes the same bits)
        core = x.dtype in (np.float32, np.float64)
        pen = 0.0
        if self.l1:
            pen += self.l1 * (_ops.abs_sum(x) if core else float(np.sum(np.abs(x), dtype=np.float64)))
        if self.l2:
            pen += self.l2 * (_ops.sum_squares(x) if core else float(np.vdot(x, x)))
        self.activity_loss = pen / m
        return x

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        x, m = self._x, self._x.shape[0]
        if self.l1:
            g = self._buffer(("g", m), x.shape)
            np.sign(x, out=g)
            g *= self.dtype.type(self.l1 / m)
            dy += g
        if self.l2:
            g = self._buffer(("g", m), x.shape)
            np.multiply(x, self.dtype.type(2.0 * self.l2 / m), out=g)
            dy += g
        return dy
