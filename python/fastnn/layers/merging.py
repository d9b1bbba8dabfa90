"""Merge layers, as Keras 3 names them: ``Add``, ``Subtract``, ``Multiply``, ``Average``,
``Maximum`` and ``Concatenate(axis=-1)``. Each is called on a list of tensors and returns
one; they hold no variables. Called on a list of NumPy arrays (as Keras 3 allows eagerly),
a merge layer returns the merged array.

>>> import fastnn
>>> from fastnn.layers import Input, Dense, Add, Concatenate
>>> x = Input(8); h = Dense(8)(x)
>>> Add()([x, h]).shape, Concatenate()([x, h]).shape
((8,), (16,))

The element-wise merges need inputs of one shape (Keras also broadcasts a size-1
dimension; fastnn refuses it with the shapes in the message). ``Maximum`` sends the
gradient to the first input that attains the maximum (ties go to the earliest input).
Forward and backward write into buffers the layer owns, one set per batch size. Each
input's gradient is a separate array, the graph and the layers below may write into it
(``Add`` and ``Subtract`` hand the incoming gradient itself to their first input: nothing
reads it after this layer).
"""
from __future__ import annotations

import numpy as np

from . import _eager
from .core import Layer, SymbolicTensor


def _fmt(shape):
    return "(None, " + ", ".join(map(str, shape)) + ")"


class Merge(Layer):
    """Base of the merge layers: called on a list of at least two tensors."""

    _multi_input = True  # the graph passes a list of arrays to forward, expects a list from backward
    _min_inputs, _max_inputs = 2, None

    def __call__(self, tensors, training=None, mask=None):
        if isinstance(tensors, (list, tuple)) and tensors and not any(isinstance(t, SymbolicTensor)
                                                                      for t in tensors):
            return _eager.call_merge(self, tensors, training, mask)  # arrays: the merged array
        if training is not None or mask is not None:
            raise TypeError(f"layer {self.name!r}: training= and mask= are taken on arrays only, "
                            f"not when building a model")
        if isinstance(tensors, SymbolicTensor) or not isinstance(tensors, (list, tuple)):
            raise TypeError(f"layer {self.name!r}: {type(self).__name__} is called on a list of tensors, "
                            f"got {type(tensors).__name__}")
        for t in tensors:
            if not isinstance(t, SymbolicTensor):
                raise TypeError(f"layer {self.name!r}: expected outputs of Input(...) or of other layers, "
                                f"got {type(t).__name__}")
        shape = self.compute_output_shape([t.shape for t in tensors])
        return SymbolicTensor(shape, self, tuple(tensors))

    def _check_count(self, shapes):
        n = len(shapes)
        if n < self._min_inputs or (self._max_inputs is not None and n > self._max_inputs):
            want = (f"exactly {self._max_inputs}" if self._max_inputs == self._min_inputs
                    else f"at least {self._min_inputs}")
            raise ValueError(f"layer {self.name!r}: {type(self).__name__} needs {want} inputs, got {n}")

    def _build(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        self._check_count(shapes)
        for s in shapes[1:]:
            if s != shapes[0]:
                raise ValueError(f"layer {self.name!r}: {type(self).__name__} needs inputs of one shape, got "
                                 f"{', '.join(_fmt(s) for s in shapes)}")
        self.output_shape = shapes[0]

    def _fold(self, ufunc, xs):
        """``ufunc(...ufunc(xs[0], xs[1])..., xs[-1])`` into the layer's output buffer."""
        y = self._buffer(("y", xs[0].shape[0]), xs[0].shape)
        ufunc(xs[0], xs[1], out=y)
        for x in xs[2:]:
            ufunc(y, x, out=y)
        return y

    def _dxs(self, dy):
        """One gradient buffer per input, each a distinct array."""
        return [self._buffer(("dx", i, dy.shape[0]), dy.shape) for i in range(len(self.input_shape))]


class Add(Merge):
    """Element-wise sum of the inputs."""

    def forward(self, xs, training=False, logits=False):
        return self._fold(np.add, xs)

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        dxs = self._dxs(dy)[1:]  # the first input takes dy itself (this node was its only reader)
        for d in dxs:
            np.copyto(d, dy)
        return [dy] + dxs


class Subtract(Merge):
    """``inputs[0] - inputs[1]`` (exactly two inputs)."""

    _max_inputs = 2

    def forward(self, xs, training=False, logits=False):
        y = self._buffer(("y", xs[0].shape[0]), xs[0].shape)
        return np.subtract(xs[0], xs[1], out=y)

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        d1 = self._dxs(dy)[1]
        np.negative(dy, out=d1)
        return [dy, d1]


class Multiply(Merge):
    """Element-wise product of the inputs."""

    def forward(self, xs, training=False, logits=False):
        self._xs = list(xs)
        return self._fold(np.multiply, xs)

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        dxs = self._dxs(dy)
        for i, d in enumerate(dxs):  # d_i = dy * prod of the other inputs
            np.copyto(d, dy)
            for j, x in enumerate(self._xs):
                if j != i:
                    np.multiply(d, x, out=d)
        return dxs


class Average(Merge):
    """Element-wise mean of the inputs."""

    def forward(self, xs, training=False, logits=False):
        y = self._fold(np.add, xs)
        y *= y.dtype.type(1.0 / len(xs))
        return y

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        dxs = self._dxs(dy)
        scale = dy.dtype.type(1.0 / len(dxs))
        for d in dxs:
            np.multiply(dy, scale, out=d)
        return dxs


class Maximum(Merge):
    """Element-wise maximum; the gradient goes to the first input attaining it."""

    _beats = staticmethod(np.greater)  # Minimum: np.less

    def forward(self, xs, training=False, logits=False):
        m = xs[0].shape[0]
        y = self._buffer(("y", m), xs[0].shape)
        which = self._buffer(("which", m), xs[0].shape, np.int64)
        gt = self._buffer(("gt", m), xs[0].shape, np.bool_)
        np.copyto(y, xs[0])
        which.fill(0)
        for i, x in enumerate(xs[1:], 1):
            self._beats(x, y, out=gt)  # strictly: a tie stays with the earlier input
            np.copyto(y, x, where=gt)
            np.copyto(which, i, where=gt)
        self._which = which
        return y

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        dxs = self._dxs(dy)
        eq = self._buffer(("eq", dy.shape[0]), dy.shape, np.bool_)
        for i, d in enumerate(dxs):
            np.equal(self._which, i, out=eq)
            np.multiply(dy, eq, out=d)
        return dxs


class Concatenate(Merge):
    """Joins the inputs along ``axis`` (counted with the batch axis first, as in Keras;
    default -1, the features). The other dimensions must agree."""

    _config_keys = ("axis",)

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"axis: expected an int, got {type(axis).__name__}")
        self.axis = int(axis)

    def _build(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        self._check_count(shapes)
        rank = len(shapes[0]) + 1
        if any(len(s) + 1 != rank for s in shapes):
            raise ValueError(f"layer {self.name!r}: Concatenate needs inputs of one rank, got "
                             f"{', '.join(_fmt(s) for s in shapes)}")
        if not -rank <= self.axis < rank or self.axis % rank == 0:
            raise ValueError(f"axis: expected a feature axis in [1, {rank - 1}] or [-{rank - 1}, -1] for inputs "
                             f"{_fmt(shapes[0])}, got {self.axis}")
        ax = self.axis % rank - 1  # in the feature shape
        for s in shapes[1:]:
            if s[:ax] + s[ax + 1:] != shapes[0][:ax] + shapes[0][ax + 1:]:
                raise ValueError(f"layer {self.name!r}: Concatenate(axis={self.axis}) needs inputs that agree "
                                 f"except on that axis, got {', '.join(_fmt(s) for s in shapes)}")
        self._ax = ax + 1  # with the batch axis
        self._splits = np.cumsum([s[ax] for s in shapes])[:-1].tolist()
        self.output_shape = shapes[0][:ax] + (int(sum(s[ax] for s in shapes)),) + shapes[0][ax + 1:]

    def forward(self, xs, training=False, logits=False):
        m = xs[0].shape[0]
        y = self._buffer(("y", m), (m,) + self.output_shape)
        return np.concatenate(xs, axis=self._ax, out=y)

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        dxs = [self._buffer(("dx", i, dy.shape[0]), (dy.shape[0],) + tuple(s))
               for i, s in enumerate(self.input_shape)]
        for d, part in zip(dxs, np.split(dy, self._splits, axis=self._ax)):
            np.copyto(d, part)
        return dxs
