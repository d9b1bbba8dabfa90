"""Regularization layers: ``Dropout``, ``AlphaDropout`` (SELU networks) and ``GaussianNoise``."""
from __future__ import annotations

import numpy as np

from .. import initializers as _initializers
from .. import ops as _ops
from .._validate import Interval, Real, validate
from .core import Layer


class _CountsCalls:
    """Saves the number of training calls with the model (``_calls``): a layer that draws
    fresh randomness at every call resumes its sequence where it stopped."""

    def _extra_state(self):
        return {"calls": np.array(self._calls, dtype=np.int64)}

    def _set_extra_state(self, state):
        self._calls = int(state["calls"])


class Dropout(_CountsCalls, Layer):
    """Inverted dropout: in training each unit is zeroed with probability ``rate`` and the
    kept ones scaled by 1/(1-rate); at inference the identity. A fresh mask every step,
    reproducible from ``seed``.

    >>> Dropout(0.5, seed=1).rate
    0.5
    """

    _config_keys = ("rate", "seed")

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


def _rate(rate):
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating)) or not 0 <= rate < 1:
        raise ValueError(f"rate: expected a number in [0, 1), got {rate!r}")
    return float(rate)


def _seed(seed):
    if seed is None:
        return int(_initializers.global_rng().integers(0, 2**63))
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected an int >= 0 or None, got {seed!r}")
    return int(seed)


class _RandomLayer(_CountsCalls, Layer):
    """A layer drawing fresh randomness at every training call, reproducible from ``seed``
    and the number of calls so far (saved with the model, as Dropout's)."""

    _config_keys = ("seed",)

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = _seed(seed)
        self._calls = 0

    def _next_rng(self):
        rng = np.random.default_rng([self.seed, self._calls])
        self._calls += 1
        return rng


# SELU's constants (Klambauer et al. 2017), as Keras's AlphaDropout
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


class AlphaDropout(_RandomLayer):
    """Dropout for SELU networks (Keras semantics): in training each unit is set, with
    probability ``rate``, to SELU's negative saturation -alpha*scale, then ``y = a*x + b``
    with ``a = ((1-rate)(1 + rate*alpha_p^2))^-1/2`` and ``b = -a*alpha_p*rate`` so that
    inputs of zero mean and unit variance keep them. At inference the identity.
    The gradient is ``a`` for kept units, 0 for dropped ones.

    >>> round(AlphaDropout(0.1, seed=0).rate, 2)
    0.1
    """

    _config_keys = ("rate", "seed")

    def __init__(self, rate, seed=None, **kwargs):
        self.rate = _rate(rate)
        super().__init__(seed=seed, **kwargs)

    def _coefficients(self):
        alpha_p = -_SELU_ALPHA * _SELU_SCALE
        a = ((1 - self.rate) * (1 + self.rate * alpha_p ** 2)) ** -0.5
        return alpha_p, a, -a * alpha_p * self.rate

    def forward(self, x, training=False, logits=False):
        self._active = training and self.rate > 0
        if not self._active:
            return x
        alpha_p, a, b = self._coefficients()
        kept = self._kept = self._bufs.get(("kept", x.shape))
        if kept is None:
            kept = self._kept = self._bufs[("kept", x.shape)] = np.empty(x.shape, dtype=bool)
        u = self._buffer(("u", x.shape[0]), x.shape)
        self._next_rng().random(out=u, dtype=self.dtype)
        np.greater_equal(u, self.rate, out=kept)  # Keras: kept where uniform >= rate
        y = self._buffer(("y", x.shape[0]), x.shape)
        np.multiply(x, self.dtype.type(a), out=y)
        y += self.dtype.type(b)
        np.copyto(y, self.dtype.type(a * alpha_p + b), where=~kept)
        return y

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        if self._active:
            np.multiply(dy, self.dtype.type(self._coefficients()[1]), out=dy)
            np.copyto(dy, 0, where=~self._kept)
        return dy


class GaussianNoise(_RandomLayer):
    """Adds zero-mean Gaussian noise of standard deviation ``stddev`` in training (Keras
    semantics; a regularizer, and data augmentation for real-valued inputs); the identity
    at inference. The gradient is the identity.

    >>> GaussianNoise(0.1, seed=0).stddev
    0.1
    """

    _config_keys = ("stddev", "seed")

    def __init__(self, stddev, seed=None, **kwargs):
        if isinstance(stddev, bool) or not isinstance(stddev, (int, float, np.floating)) \
                or not np.isfinite(stddev) or stddev < 0:
            raise ValueError(f"stddev: expected a finite number >= 0, got {stddev!r}")
        self.stddev = float(stddev)
        super().__init__(seed=seed, **kwargs)

    def forward(self, x, training=False, logits=False):
        if not (training and self.stddev > 0):
            return x
        y = self._buffer(("y", x.shape[0]), x.shape)
        self._next_rng().standard_normal(out=y, dtype=self.dtype)
        y *= self.dtype.type(self.stddev)
        y += x
        return y

    def backward(self, dy, need_dx=True):
        return dy if need_dx else None
