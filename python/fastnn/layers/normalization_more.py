"""Normalization layers beside ``normalization``'s, as Keras 3 defines them:
``UnitNormalization`` (each sample scaled to unit L2 norm) and ``RMSNormalization``
(divided by the root mean square, times a learned scale). NumPy-vectorized forward and
backward; the helpers below also serve ``Dot(normalize=True)``.

>>> import numpy as np
>>> from fastnn.layers import UnitNormalization
>>> UnitNormalization()(np.array([[3.0, 4.0]], dtype=np.float32))
array([[0.6, 0.8]], dtype=float32)
"""
from __future__ import annotations

import numpy as np

from ._eager import LayerVariable
from .core import Layer, _name_counters, _weight_args
from .normalization import add_gamma_beta, check_axis, feature_axes


def l2_normalize(x, axes, epsilon):
    """(y, inv): ``y = x * inv`` with ``inv = min(1/sqrt(sum(x**2)), 1/epsilon)`` over ``axes``
    (Keras's ``ops.normalize``, order 2)."""
    inv = np.sum(x * x, axis=axes, keepdims=True)
    with np.errstate(divide="ignore"):
        inv = 1.0 / np.sqrt(inv)
    np.minimum(inv, x.dtype.type(1.0 / epsilon), out=inv)
    return x * inv, inv


def l2_normalize_grad(g, y, inv, axes, epsilon):
    """dx of :func:`l2_normalize` for the output gradient ``g``: ``inv * (g - y * sum(g * y))``
    where the norm is above epsilon, ``g * inv`` where ``inv`` is clamped to 1/epsilon."""
    dx = g - y * np.sum(g * y, axis=axes, keepdims=True)
    clamped = inv >= inv.dtype.type(1.0 / epsilon)
    if clamped.any():
        dx = np.where(clamped, g, dx)
    dx *= inv
    return dx


class UnitNormalization(Layer):
    """Scales each sample to unit L2 norm over ``axis`` (default -1; Keras 3:
    ``x * min(1 / ||x||, 1e12)``, so an all-zero sample stays zero). No variables.

    >>> UnitNormalization(axis=[1, 2]).get_config()["axis"]
    [1, 2]
    """

    _config_keys = ("axis",)
    _EPS = 1e-12

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = check_axis(axis)

    def _build(self, input_shape):
        self._ax = feature_axes(self, self.axis, input_shape)
        self.output_shape = input_shape

    def forward(self, x, training=False, logits=False):
        y, self._inv = l2_normalize(x, self._ax, self._EPS)
        self._y = y
        return y

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        return l2_normalize_grad(dy, self._y, self._inv, self._ax, self._EPS)


class RMSNormalization(Layer):
    """Root-mean-square normalization (Keras 3): ``y = x / sqrt(mean(x**2) + epsilon) * scale``,
    the mean over ``axis`` (default -1), ``scale`` learned, initialized to ones, of the shape of
    the normalized axes. No centring, no bias.

    >>> RMSNormalization().epsilon
    1e-06
    """

    _config_keys = ("axis", "epsilon")
    scale = LayerVariable("scale")

    def __init__(self, axis=-1, epsilon=1e-6, name=None, **kwargs):
        if name is None:  # Keras's default name (the generic rule would give "rmsnormalization")
            k = next(_name_counters["rms_normalization"])
            name = "rms_normalization" if k == 0 else f"rms_normalization_{k}"
        super().__init__(name=name, **kwargs)
        self.axis = check_axis(axis)
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float, np.integer, np.floating)) \
                or not (np.isfinite(epsilon) and epsilon > 0):
            raise ValueError(f"epsilon: expected a finite number > 0, got {epsilon!r}")
        self.epsilon = float(epsilon)

    def _build(self, input_shape):
        self._ax = feature_axes(self, self.axis, input_shape)
        rank = len(input_shape) + 1
        self._reduce = tuple(a for a in range(rank) if a not in self._ax)  # summed for dscale
        self._bshape = tuple(input_shape[a - 1] if a in self._ax else 1 for a in range(1, rank))
        self.add_weight("scale", tuple(input_shape[a - 1] for a in self._ax), "ones")
        self.output_shape = input_shape

    def forward(self, x, training=False, logits=False):
        inv = np.mean(x * x, axis=self._ax, keepdims=True)
        inv += self.dtype.type(self.epsilon)
        np.sqrt(inv, out=inv)
        np.divide(1.0, inv, out=inv)
        xhat = self._buffer(("xhat", x.shape[0]), x.shape)
        np.multiply(x, inv, out=xhat)
        y = self._buffer(("y", x.shape[0]), x.shape)
        np.multiply(xhat, self.vars["scale"].reshape(self._bshape), out=y)
        self._xhat, self._inv = xhat, inv
        return y

    def backward(self, dy, need_dx=True):
        xhat = self._xhat
        if self.trainable:
            self.grads["scale"][...] = np.sum(dy * xhat, axis=self._reduce).reshape(self.grads["scale"].shape)
        if not need_dx:
            return None
        g = dy * self.vars["scale"].reshape(self._bshape)
        dx = self._buffer(("dx", dy.shape[0]), dy.shape)
        # dx = inv * (g - xhat * mean(g * xhat)), the mean over the normalized axes
        np.multiply(xhat, np.mean(g * xhat, axis=self._ax, keepdims=True), out=dx)
        np.subtract(g, dx, out=dx)
        dx *= self._inv
        return dx


class GroupNormalization(Layer):
    """Group normalization (Keras 3): the ``axis`` channels (default -1) split into ``groups``
    groups of consecutive channels; each sample is normalized over each group's channels and
    all other feature axes, ``(x - mean) / sqrt(var + epsilon)`` with the biased variance,
    then scaled by gamma and shifted by beta, one per channel. ``groups=-1``: one group per
    channel (instance normalization). ``axis`` is one int, not the batch axis.

    >>> GroupNormalization(groups=2).compute_output_shape((3, 4))
    (3, 4)
    """

    _config_keys = ("groups", "axis", "epsilon", "center", "scale", "beta_initializer", "gamma_initializer",
                    "beta_regularizer", "gamma_regularizer")
    _optional_config_keys = ("beta_constraint", "gamma_constraint")
    gamma, beta = LayerVariable("gamma", "scale"), LayerVariable("beta", "center")

    def __init__(self, groups=32, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or (groups < 1 and groups != -1):
            raise ValueError(f"groups: expected a positive int, or -1 (instance normalization), got {groups!r}")
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"axis: expected an int, got {axis!r}")
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float, np.integer, np.floating)) \
                or not (np.isfinite(epsilon) and epsilon > 0):
            raise ValueError(f"epsilon: expected a finite number > 0, got {epsilon!r}")
        self.groups, self.axis, self.epsilon = int(groups), int(axis), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer, self.beta_regularizer, self.beta_constraint = _weight_args(
            beta_initializer, beta_regularizer, beta_constraint)
        self.gamma_initializer, self.gamma_regularizer, self.gamma_constraint = _weight_args(
            gamma_initializer, gamma_regularizer, gamma_constraint)

    def _build(self, input_shape):
        (a,) = feature_axes(self, self.axis, input_shape)
        c = input_shape[a - 1]
        g = c if self.groups == -1 else self.groups
        if g > c or c % g:
            raise ValueError(f"layer {self.name!r}: groups={self.groups} must divide the {c} channels of axis "
                             f"{self.axis} (inputs (batch, {', '.join(map(str, input_shape))}))")
        self._a, self._g = a, g
        add_gamma_beta(self, (c,))
        self.output_shape = input_shape

    def _grouped(self, x):
        """x with the channels last, as (batch, other features, groups, channels per group)."""
        xt = np.moveaxis(x, self._a, -1)
        return np.ascontiguousarray(xt).reshape(x.shape[0], -1, self._g, x.shape[self._a] // self._g)

    def _ungrouped(self, z, shape):
        moved = shape[:self._a] + shape[self._a + 1:] + (shape[self._a],)
        return np.ascontiguousarray(np.moveaxis(z.reshape(moved), -1, self._a))

    def _param(self, name):
        return self.vars[name].reshape(self._g, -1)

    def forward(self, x, training=False, logits=False):
        xg = self._grouped(x)
        mean = np.mean(xg, axis=(1, 3), keepdims=True)
        xc = xg - mean
        self._inv = 1.0 / np.sqrt(np.mean(xc * xc, axis=(1, 3), keepdims=True) + self.epsilon)
        self._xhat = xc * self._inv
        y = self._xhat * self._param("gamma") if self.scale else self._xhat.copy()
        if self.center:
            y += self._param("beta")
        return self._ungrouped(y, x.shape)

    def backward(self, dy, need_dx=True):
        dyg, xhat = self._grouped(dy), self._xhat
        if self.trainable and self.scale:
            self.grads["gamma"][...] = np.sum(dyg * xhat, axis=(0, 1)).reshape(-1)
        if self.trainable and self.center:
            self.grads["beta"][...] = np.sum(dyg, axis=(0, 1)).reshape(-1)
        if not need_dx:
            return None
        g = dyg * self._param("gamma") if self.scale else dyg
        dx = g - np.mean(g, axis=(1, 3), keepdims=True) - xhat * np.mean(g * xhat, axis=(1, 3), keepdims=True)
        dx *= self._inv
        return self._ungrouped(dx, dy.shape)
