"""Preprocessing layers (Keras 3 names): ``Rescaling`` and ``Normalization``, so that a
saved model takes raw inputs (uint8 pixels, unscaled features) and predicts right.

Both are affine maps with no trainable parameter; gradients flow through them
(``dx = dy * scale``). ``Normalization`` keeps its statistics as non-trainable
variables (``mean``, ``variance``, ``count``), saved with the model like
BatchNormalization's moving statistics.

>>> import numpy as np
>>> n = Normalization()
>>> n.adapt(np.array([[0.0, 10.0], [2.0, 30.0]]))
>>> n.mean.tolist(), n.variance.tolist()
([1.0, 20.0], [1.0, 100.0])
"""
from __future__ import annotations

import numpy as np

from .core import Layer

_EPSILON = 1e-7  # Keras's backend.epsilon(): the smallest standard deviation divided by


def _number(v, what):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not np.isfinite(v):
        raise ValueError(f"{what}: expected a finite number, got {v!r}")
    return float(v)


class Rescaling(Layer):
    """``y = x * scale + offset`` (Keras ``Rescaling``): ``Rescaling(1 / 255)`` maps uint8
    pixels to [0, 1], ``Rescaling(1 / 127.5, offset=-1)`` to [-1, 1].

    >>> import numpy as np, fastnn
    >>> m = fastnn.Sequential([fastnn.layers.Input(2), Rescaling(0.5, offset=1.0)])
    >>> m.predict(np.array([[2, 4]], dtype=np.uint8)).tolist()
    [[2.0, 3.0]]
    """

    _config_keys = ("scale", "offset")

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = _number(scale, "scale")
        self.offset = _number(offset, "offset")

    def forward(self, x, training=False, logits=False):
        y = self._buffer(("y", x.shape[0]), x.shape)
        np.multiply(x, self.dtype.type(self.scale), out=y)
        if self.offset:
            y += self.dtype.type(self.offset)
        return y

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        dx = self._buffer(("dx", dy.shape[0]), dy.shape)
        np.multiply(dy, self.dtype.type(self.scale), out=dx)
        return dx


class Normalization(Layer):
    """``y = (x - mean) / max(sqrt(variance), 1e-7)`` per feature (Keras ``Normalization``).

    axis: the axis (or tuple of axes) that keeps its own statistics, counted on the
    full input with the batch first (default -1: one mean per feature of (batch, d));
    None: one scalar mean and variance. mean, variance: given statistics (broadcast to the
    kept axes), else learned from data by ``adapt``. The population variance (ddof=0)
    is used, as Keras does.
    """

    _config_keys = ("axis", "invert")

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        if axis is None:
            axes = ()
        elif isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
            axes = (int(axis),)
        elif isinstance(axis, (tuple, list)) and all(isinstance(a, (int, np.integer)) for a in axis):
            axes = tuple(int(a) for a in axis)
        else:
            raise TypeError(f"axis: expected an int, a tuple of ints or None, got {axis!r}")
        if 0 in axes:
            raise ValueError("axis: the batch axis (0) cannot keep its own statistics")
        if (mean is None) != (variance is None):
            raise ValueError("mean, variance: give both or neither")
        self.axis = axis if axis is None or isinstance(axis, int) else tuple(axes)
        self._axes = axes
        self.invert = bool(invert)
        self._init_mean = None if mean is None else np.asarray(mean, dtype=np.float64)
        self._init_var = None if variance is None else np.asarray(variance, dtype=np.float64)
        if self._init_var is not None and (self._init_var < 0).any():
            raise ValueError("variance: expected values >= 0")

    # -- shapes ------------------------------------------------------------------
    def _kept(self, input_shape):
        nd = len(input_shape) + 1
        kept = []
        for a in self._axes:
            k = a + nd if a < 0 else a
            if not 1 <= k < nd:
                raise ValueError(f"axis: {a} is out of range for inputs of shape (batch, "
                                 f"{', '.join(map(str, input_shape))})")
            kept.append(k)
        return tuple(sorted(set(kept)))

    def _build(self, input_shape):
        kept = self._kept(input_shape)
        self._stat_shape = tuple(input_shape[k - 1] for k in kept) or (1,)  # axis=None: one value
        bshape = [1] * len(input_shape)
        for k in kept:
            bshape[k - 1] = input_shape[k - 1]
        self._bshape = tuple(bshape)
        self._reduce = tuple(i for i in range(len(input_shape) + 1) if i not in kept)
        self.add_weight("mean", self._stat_shape, "zeros", trainable=False)
        self.add_weight("variance", self._stat_shape, "ones", trainable=False)
        self.add_weight("count", (1,), "zeros", trainable=False)
        if self._init_mean is not None and "mean" not in self.vars:
            try:
                self.vars["mean"] = np.broadcast_to(self._init_mean, self._stat_shape).astype(self.dtype)
                self.vars["variance"] = np.broadcast_to(self._init_var, self._stat_shape).astype(self.dtype)
            except ValueError:
                raise ValueError(f"mean, variance: shapes {self._init_mean.shape} / {self._init_var.shape} do "
                                 f"not broadcast to the kept axes' shape {self._stat_shape}") from None
            self.vars["count"] = np.zeros(1, dtype=self.dtype)
        self.output_shape = input_shape

    mean = property(lambda self: self.vars["mean"])
    variance = property(lambda self: self.vars["variance"])

    def _scale_shift(self):
        """(1/std, mean) broadcastable to the input, in the layer's dtype."""
        std = np.maximum(np.sqrt(self.vars["variance"].astype(np.float64)), _EPSILON)
        inv = (1.0 / std).astype(self.dtype).reshape(self._bshape)
        return inv, self.vars["mean"].astype(self.dtype, copy=False).reshape(self._bshape)

    def forward(self, x, training=False, logits=False):
        inv, mean = self._scale_shift()
        y = self._buffer(("y", x.shape[0]), x.shape)
        if self.invert:  # y = x * std + mean
            np.divide(x, inv, out=y)
            y += mean
        else:
            np.subtract(x, mean, out=y)
            y *= inv
        self._inv = inv
        return y

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        dx = self._buffer(("dx", dy.shape[0]), dy.shape)
        if self.invert:
            np.divide(dy, self._inv, out=dx)
        else:
            np.multiply(dy, self._inv, out=dx)
        return dx

    # -- adapt -------------------------------------------------------------------
    def adapt(self, data, batch_size=1024, steps=None):
        """Learn mean and variance from ``data``: an array, or any fastnn.data input (an
        iterable of batches, a ``Dataset``, a DataFrame, a memmap, ``from_parquet``...; only
        the inputs of each batch are used; a DataFrame whole), streamed batch by batch in float64 (Chan's
        parallel update). Builds the layer from the data's shape if needed."""
        from ._adapt import stream_batches
        n, mean, m2 = 0, None, None
        for i, xb in enumerate(stream_batches(data, batch_size)):
            if steps is not None and i >= steps:
                break
            xb = np.asarray(xb)
            if not self.built:
                self.build(xb.shape[1:], "float32")
            elif tuple(xb.shape[1:]) != tuple(self.input_shape):
                raise ValueError(f"data: expected batches of shape (n, {', '.join(map(str, self.input_shape))}), "
                                 f"got {xb.shape}")
            xb = xb.astype(np.float64)
            if not np.isfinite(xb).all():
                raise ValueError("data: contains NaN or infinity")
            k = int(np.prod([xb.shape[a] for a in self._reduce]))
            bm = xb.mean(axis=self._reduce).reshape(self._stat_shape)
            bv = ((xb - bm.reshape(self._bshape)) ** 2).sum(axis=self._reduce).reshape(self._stat_shape)
            if mean is None:
                n, mean, m2 = k, bm, bv
            else:
                d = bm - mean
                tot = n + k
                mean = mean + d * (k / tot)
                m2 = m2 + bv + d * d * (n * k / tot)
                n = tot
        if mean is None:
            raise ValueError("data: holds no sample to adapt to")
        dtype = self._dtype or np.dtype(np.float32)
        for name, v in (("mean", mean), ("variance", m2 / n), ("count", np.array([n], np.float64))):
            if name in self.vars and self.vars[name].shape == v.shape:
                self.vars[name][...] = v
            else:
                self.vars[name] = v.astype(dtype)

    def get_config(self):
        c = super().get_config()
        c.update(mean=None if self._init_mean is None else self._init_mean.tolist(),
                 variance=None if self._init_var is None else self._init_var.tolist())
        return c
