"""Merge layers beside ``merging``'s: ``Minimum`` and ``Dot(axes, normalize=False)``, and
Keras 3's functional forms ``add``, ``subtract``, ``multiply``, ``average``, ``maximum``,
``minimum``, ``concatenate`` and ``dot``: ``add([a, b])`` is ``Add()([a, b])``, the merged
symbolic tensor on tensors, the merged array on NumPy arrays.

>>> import numpy as np
>>> from fastnn import layers as L
>>> L.minimum([np.array([[1.0, 5.0]]), np.array([[3.0, 2.0]])])
array([[1., 2.]], dtype=float32)
>>> x = L.Input(4); y = L.Input(4)
>>> L.dot([x, y], axes=1).shape
(1,)
"""
from __future__ import annotations

import string

import numpy as np

from .merging import Add, Average, Concatenate, Maximum, Merge, Multiply, Subtract, _fmt
from .normalization_more import l2_normalize, l2_normalize_grad


class Minimum(Maximum):
    """Element-wise minimum; the gradient goes to the first input attaining it."""

    _beats = staticmethod(np.less)


_DOT_EPS = 1e-7  # Keras's backend.epsilon(), the floor of the norm under normalize=True


def _dot_axes(axes):
    if isinstance(axes, (int, np.integer)) and not isinstance(axes, bool):
        return int(axes)
    if not isinstance(axes, (list, tuple)):
        raise TypeError(f"axes: expected an int or a list/tuple of two ints, got {type(axes).__name__}")
    if len(axes) != 2 or any(isinstance(a, bool) or not isinstance(a, (int, np.integer)) for a in axes):
        raise ValueError(f"axes: expected an int or two ints, got {axes!r}")
    return [int(a) for a in axes]


class Dot(Merge):
    """The dot product of two inputs along ``axes`` (Keras 3: counted with the batch axis
    first, one int for both inputs or one per input; the batch axis cannot be one), per
    sample. The output holds the first input's other axes, then the second's; a per-sample
    scalar comes as shape (1,). ``normalize=True``: each input L2-normalized along its axis
    first (the cosine similarity; norms floored at 1e-7 as Keras).

    >>> Dot(axes=(1, 2)).compute_output_shape([(3, 5), (10, 3)])
    (5, 10)
    """

    _config_keys = ("axes", "normalize")
    _max_inputs = 2

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        self.axes = _dot_axes(axes)
        self.normalize = bool(normalize)

    def _build(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        self._check_count(shapes)
        ranks = [len(s) + 1 for s in shapes]
        axes = [self.axes] * 2 if isinstance(self.axes, int) else list(self.axes)
        axes = [a % r if a < 0 else a for a, r in zip(axes, ranks)]
        if any(not 1 <= a < r for a, r in zip(axes, ranks)):
            raise ValueError(f"axes: expected feature axes (not the batch axis 0) of inputs "
                             f"{', '.join(_fmt(s) for s in shapes)}, got {self.axes!r}")
        (s1, s2), (a1, a2) = shapes, axes
        if s1[a1 - 1] != s2[a2 - 1]:
            raise ValueError(f"layer {self.name!r}: Dot(axes={self.axes!r}) needs equal sizes on those axes, got "
                             f"{s1[a1 - 1]} and {s2[a2 - 1]} for inputs {_fmt(s1)}, {_fmt(s2)}")
        letters = iter(string.ascii_lowercase)
        sub1 = [next(letters) for _ in s1]
        sub2 = [next(letters) for _ in s2]
        sub1[a1 - 1] = sub2[a2 - 1] = "Z"  # the contracted axis; "Y": the batch
        out = [c for c in sub1 if c != "Z"] + [c for c in sub2 if c != "Z"]
        self._subs = ["Y" + "".join(sub1), "Y" + "".join(sub2), "Y" + "".join(out)]
        self._ax = (a1, a2)
        self._out_core = tuple(s for i, s in enumerate(s1) if i != a1 - 1) + \
            tuple(s for i, s in enumerate(s2) if i != a2 - 1)
        self.output_shape = self._out_core or (1,)

    def forward(self, xs, training=False, logits=False):
        x1, x2 = xs
        self._inv = (None, None)
        if self.normalize:
            (x1, i1), (x2, i2) = l2_normalize(x1, self._ax[0], _DOT_EPS), l2_normalize(x2, self._ax[1], _DOT_EPS)
            self._inv = (i1, i2)
        self._xs = (x1, x2)
        s1, s2, so = self._subs
        y = self._buffer(("y", x1.shape[0]), (x1.shape[0],) + self.output_shape)
        np.einsum(f"{s1},{s2}->{so}", x1, x2, out=y.reshape((x1.shape[0],) + self._out_core))
        return y

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        (x1, x2), (s1, s2, so) = self._xs, self._subs
        g = dy.reshape((dy.shape[0],) + self._out_core)
        dxs = [np.einsum(f"{so},{s2}->{s1}", g, x2), np.einsum(f"{so},{s1}->{s2}", g, x1)]
        if self.normalize:
            dxs = [l2_normalize_grad(d, x, inv, ax, _DOT_EPS) for d, x, inv, ax in zip(dxs, self._xs, self._inv,
                                                                                         self._ax)]
        return [np.ascontiguousarray(d) for d in dxs]


def _functional(cls):
    """Keras's functional form of the merge layer ``cls``: ``fn(inputs, **kwargs)`` is
    ``cls(**kwargs)(inputs)``."""
    def fn(inputs, **kwargs):
        return cls(**kwargs)(inputs)
    fn.__name__ = fn.__qualname__ = cls.__name__.lower()
    fn.__doc__ = f"``{cls.__name__}(**kwargs)(inputs)`` (Keras's ``keras.layers.{fn.__name__}``)."
    return fn


add, subtract, multiply = _functional(Add), _functional(Subtract), _functional(Multiply)
average, maximum, minimum = _functional(Average), _functional(Maximum), _functional(Minimum)


def concatenate(inputs, axis=-1, **kwargs):
    """``Concatenate(axis=axis, **kwargs)(inputs)`` (Keras's ``keras.layers.concatenate``)."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def dot(inputs, axes=-1, **kwargs):
    """``Dot(axes=axes, **kwargs)(inputs)`` (Keras's ``keras.layers.dot``)."""
    return Dot(axes=axes, **kwargs)(inputs)
