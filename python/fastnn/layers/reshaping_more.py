"""Reshaping layers beside ``reshaping``'s, as Keras 3 defines them: ``RepeatVector(n)``
((batch, features) -> (batch, n, features)) and ``Permute(dims)`` (reorders the feature axes).

>>> import numpy as np
>>> from fastnn.layers import Permute, RepeatVector
>>> RepeatVector(2)(np.array([[1.0, 2.0]])).tolist()
[[[1.0, 2.0], [1.0, 2.0]]]
>>> Permute((2, 1)).compute_output_shape((3, 4))
(4, 3)
"""
from __future__ import annotations

import numpy as np

from .core import POSITIVE_INT, Layer, _require_2d
from .._validate import validate


class RepeatVector(Layer):
    """Repeats each (batch, features) sample ``n`` times: (batch, n, features). The gradient
    is the sum over the repeats.

    >>> RepeatVector(3).compute_output_shape((4,))
    (3, 4)
    """

    _config_keys = ("n",)

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        validate({"n": n}, {"n": [POSITIVE_INT]}, "RepeatVector")
        self.n = int(n)

    def _build(self, input_shape):
        _require_2d(self, input_shape)
        self.output_shape = (self.n, input_shape[0])

    def forward(self, x, training=False, logits=False):
        y = self._buffer(("y", x.shape[0]), (x.shape[0],) + self.output_shape)
        np.copyto(y, x[:, None, :])
        return y

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        dx = self._buffer(("dx", dy.shape[0]), (dy.shape[0],) + self.input_shape)
        return np.sum(dy, axis=1, out=dx)


class Permute(Layer):
    """Permutes the feature axes: ``dims`` is a permutation of 1..rank-1 (Keras 3: 1-indexed,
    the batch axis not included), e.g. ``Permute((2, 1))`` swaps the two feature axes.
    The output is a contiguous copy; the gradient the inverse permutation.

    >>> Permute((2, 1)).get_config()["dims"]
    [2, 1]
    """

    _config_keys = ("dims",)

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        try:
            d = tuple(dims)
        except TypeError:
            raise TypeError(f"dims: expected a tuple of ints, got {type(dims).__name__}") from None
        if any(isinstance(a, bool) or not isinstance(a, (int, np.integer)) for a in d) \
                or sorted(d) != list(range(1, len(d) + 1)):
            raise ValueError(f"dims: expected a permutation of 1..{len(d)} (the batch axis 0 excluded), "
                             f"got {dims!r}")
        self.dims = tuple(int(a) for a in d)

    def _build(self, input_shape):
        if len(self.dims) != len(input_shape):
            raise ValueError(f"layer {self.name!r}: dims {self.dims} permute {len(self.dims)} axes, inputs of "
                             f"shape (batch, {', '.join(map(str, input_shape))}) have {len(input_shape)}")
        self._perm = (0,) + self.dims
        self._inverse = tuple(int(i) for i in np.argsort(self._perm))
        self.output_shape = tuple(input_shape[a - 1] for a in self.dims)

    def forward(self, x, training=False, logits=False):
        y = self._buffer(("y", x.shape[0]), (x.shape[0],) + self.output_shape)
        np.copyto(y, x.transpose(self._perm))
        return y

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        dx = self._buffer(("dx", dy.shape[0]), (dy.shape[0],) + self.input_shape)
        np.copyto(dx, dy.transpose(self._inverse))
        return dx
