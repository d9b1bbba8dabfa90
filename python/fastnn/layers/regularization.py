"""Regularization layers: ``Dropout``."""
from __future__ import annotations

import numpy as np

from .. import initializers as _initializers
from .. import ops as _ops
from .._validate import Interval, Real, validate
from .core import Layer


class Dropout(Layer):
    """Inverted dropout: in training each unit is zeroed with probability ``rate`` and the
    kept ones scaled by 1/(1-rate); at inference the identity. A fresh mask every step,
    reproducible from ``seed``.

    >>> Dropout(0.5, seed=1).rate
    0.5
    """

    _MIX = 0x9E3779B97F4A7C15
    _parameter_constraints = {"rate": [Interval(Real, 0, 1, closed="left")]}

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        validate({"rate": rate}, self._parameter_constraints, "Dropout")
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
        _, self._mask = _ops.dropout(x, self.rate, seed=s, out=(y, mask))
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
