"""Image augmentation layers (Keras names): ``RandomFlip`` and ``RandomTranslation``.

They take images of feature shape (H, W) or (H, W, C) (channels last), batch first, and
are active only in training (``fit``); at inference (``predict``, ``evaluate``) they are
the identity. Put them first and a ``Flatten`` before the first ``Dense``::

    Sequential([Input((28, 28)), RandomFlip("horizontal", seed=0),
                RandomTranslation(0.1, 0.1, seed=1), Flatten(), Dense(...), ...])

Each training call draws fresh transforms per image from ``seed`` and the number of calls
so far: the same seed gives the same sequence (saved with the model). Both are linear
in the image, so they have exact gradients (used only when something trainable sits
before them).
"""
from __future__ import annotations

import numpy as np

from .regularization import _RandomLayer

_FLIP_MODES = ("horizontal", "vertical", "horizontal_and_vertical")
_FILL_MODES = ("reflect", "wrap", "nearest", "constant")
_INTERPOLATIONS = ("bilinear", "nearest")


def _image_shape(layer, input_shape):
    if len(input_shape) not in (2, 3):
        raise ValueError(f"layer {layer.name!r}: expected images of shape (batch, height, width) or "
                         f"(batch, height, width, channels), got (batch, {', '.join(map(str, input_shape))}); "
                         f"give the model Input((height, width[, channels])) and put Flatten() after it")


def _as_nhwc(x):
    return x if x.ndim == 4 else x[..., None]


class _ImageAugmentation(_RandomLayer):
    """A random image transform active in training only (identity at inference, in both
    directions); subclasses give ``_augment(x)`` and ``_augment_backward(dy)``."""

    def _build(self, input_shape):
        _image_shape(self, input_shape)
        self.output_shape = input_shape

    def forward(self, x, training=False, logits=False):
        self._active = bool(training)
        return self._augment(x) if training else x

    def backward(self, dy, need_dx=True):
        if not need_dx or not self._active:
            return dy if need_dx else None
        return self._augment_backward(dy)


class RandomFlip(_ImageAugmentation):
    """Flips each training image left-right (``"horizontal"``), up-down (``"vertical"``) or
    both independently (``"horizontal_and_vertical"``, Keras's default), each with
    probability 1/2.

    >>> RandomFlip("horizontal", seed=0).mode
    'horizontal'
    """

    _config_keys = ("mode", "seed")

    def __init__(self, mode="horizontal_and_vertical", seed=None, **kwargs):
        if mode not in _FLIP_MODES:
            raise ValueError(f"mode: expected one of {', '.join(_FLIP_MODES)}, got {mode!r}")
        self.mode = mode
        super().__init__(seed=seed, **kwargs)

    def _augment(self, x):
        n = x.shape[0]
        rng = self._next_rng()
        h = rng.random(n) < 0.5 if self.mode != "vertical" else np.zeros(n, bool)
        v = rng.random(n) < 0.5 if self.mode != "horizontal" else np.zeros(n, bool)
        self._flips = (h, v)
        return self._apply(x, self._buffer(("y", n), x.shape))

    def _apply(self, x, y):
        h, v = self._flips
        np.copyto(y, x)
        y[h] = y[h][:, :, ::-1]  # width axis
        y[v] = y[v][:, ::-1]  # height axis
        return y

    def _augment_backward(self, dy):
        return self._apply(dy, self._buffer(("dx", dy.shape[0]), dy.shape))  # a flip is its own inverse


def _factor(value, name):
    """(lower, upper) fractions from a float f (meaning [-f, f]) or a pair."""
    bad = ValueError(f"{name}: expected a number in [0, 1] or a pair (lower, upper) in [-1, 1], got {value!r}")
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or not all(isinstance(v, (int, float, np.floating)) and not isinstance(v, bool)
                                      for v in value):
            raise bad
        lo, hi = float(value[0]), float(value[1])
    elif isinstance(value, (int, float, np.floating)) and not isinstance(value, bool):
        lo, hi = -abs(float(value)), abs(float(value))
    else:
        raise bad
    if not (-1 <= lo <= hi <= 1):
        raise bad
    return lo, hi


def _fold(t, n, mode):
    """Integer source positions t mapped into [0, n) by the fill mode; (index, valid)."""
    if mode == "constant":
        valid = (t >= 0) & (t < n)
        return np.clip(t, 0, n - 1), valid
    if mode == "nearest":
        return np.clip(t, 0, n - 1), np.ones(t.shape, bool)
    if mode == "wrap":
        return np.mod(t, n), np.ones(t.shape, bool)
    t = np.mod(t, 2 * n)  # reflect: d c b a | a b c d | d c b a
    return np.where(t < n, t, 2 * n - 1 - t), np.ones(t.shape, bool)


def _resample_matrices(shift, n, mode, interpolation):
    """(batch, n, n) matrices R with out[i] = sum_j R[i, j] in[j] for in shifted by ``shift``
    (per image) pixels: out(i) = in(i - shift)."""
    b = shift.shape[0]
    src = np.arange(n)[None, :] - shift[:, None]  # (b, n) source coordinates
    if interpolation == "nearest":
        taps = [(np.floor(src + 0.5).astype(np.int64), np.ones_like(src))]
    else:
        i0 = np.floor(src)
        f = src - i0
        i0 = i0.astype(np.int64)
        taps = [(i0, 1 - f), (i0 + 1, f)]
    R = np.zeros((b, n, n))
    rows = np.broadcast_to(np.arange(n)[None, :], (b, n))
    imgs = np.broadcast_to(np.arange(b)[:, None], (b, n))
    for t, w in taps:
        idx, valid = _fold(t, n, mode)
        np.add.at(R, (imgs, rows, idx), w * valid)
    return R


class RandomTranslation(_ImageAugmentation):
    """Shifts each training image by a random fraction of its height and width (Keras
    semantics): the vertical shift is ``uniform(lower, upper) * height`` pixels, a float
    ``f`` meaning [-f, f] (positive: down / right), and likewise for the width.
    ``interpolation``: ``"bilinear"`` (Keras's default; fractional shifts) or ``"nearest"``.
    ``fill_mode`` for the pixels shifted in: ``"reflect"`` (Keras's default: d c b a | a b c
    d | d c b a), ``"wrap"``, ``"nearest"`` (edge pixel) or ``"constant"`` (``fill_value``;
    the usual choice for images on a black background such as Fashion-MNIST).

    >>> RandomTranslation(0.1, (-0.2, 0.3), fill_mode="constant", seed=0).width_factor
    (-0.2, 0.3)
    """

    _config_keys = ("height_factor", "width_factor", "fill_mode", "interpolation", "fill_value", "seed")

    def __init__(self, height_factor, width_factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, **kwargs):
        self.height_factor = _factor(height_factor, "height_factor")
        self.width_factor = _factor(width_factor, "width_factor")
        if fill_mode not in _FILL_MODES:
            raise ValueError(f"fill_mode: expected one of {', '.join(_FILL_MODES)}, got {fill_mode!r}")
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(f"interpolation: expected one of {', '.join(_INTERPOLATIONS)}, got {interpolation!r}")
        if isinstance(fill_value, bool) or not isinstance(fill_value, (int, float, np.floating)) \
                or not np.isfinite(fill_value):
            raise ValueError(f"fill_value: expected a finite number, got {fill_value!r}")
        self.fill_mode, self.interpolation, self.fill_value = fill_mode, interpolation, float(fill_value)
        super().__init__(seed=seed, **kwargs)

    def _augment(self, x):
        n, H, W = x.shape[:3]
        rng = self._next_rng()
        dy = rng.uniform(*self.height_factor, size=n) * H
        dx = rng.uniform(*self.width_factor, size=n) * W
        self._Ry = _resample_matrices(dy, H, self.fill_mode, self.interpolation).astype(self.dtype)
        self._Rx = _resample_matrices(dx, W, self.fill_mode, self.interpolation).astype(self.dtype)
        y = self._buffer(("y", n), x.shape)
        x4, y4 = _as_nhwc(x), _as_nhwc(y)
        t = np.matmul(self._Ry, x4.reshape(n, H, -1)).reshape(x4.shape)  # rows: sum_i Ry[h, i] x[i]
        np.matmul(self._Rx[:, None], t, out=y4)  # columns: sum_j Rx[w, j] t[h, j]
        if self.fill_mode == "constant" and self.fill_value != 0:
            inside = self._Ry.sum(2)[:, :, None] * self._Rx.sum(2)[:, None, :]  # weight of in-image taps
            y4 += (self.dtype.type(self.fill_value) * (1 - inside))[..., None]
        return y

    def _augment_backward(self, dy):
        n, H = dy.shape[:2]
        d4 = _as_nhwc(dy)
        t = np.matmul(self._Ry.transpose(0, 2, 1), d4.reshape(n, H, -1)).reshape(d4.shape)
        dx = self._buffer(("dx", n), dy.shape)
        np.matmul(self._Rx.transpose(0, 2, 1)[:, None], t, out=_as_nhwc(dx))
        return dx
