"""Reshaping layers: ``Reshape(target_shape)`` and ``Identity`` (Keras 3 semantics)."""
from __future__ import annotations

import numpy as np

from .core import Layer


class Reshape(Layer):
    """(batch, *input_shape) -> (batch, *target_shape), a view when the input is contiguous.
    One entry of ``target_shape`` may be -1 (inferred), as in Keras 3.

    >>> Reshape((-1, 4)).compute_output_shape((2, 6))
    (3, 4)
    """

    _config_keys = ("target_shape",)

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        if isinstance(target_shape, (int, np.integer)) and not isinstance(target_shape, bool):
            target_shape = (target_shape,)
        try:
            ts = tuple(target_shape)
        except TypeError:
            raise TypeError(f"target_shape: expected a tuple of ints, got {type(target_shape).__name__}") from None
        if (not ts or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) for s in ts)
                or any(s < 1 and s != -1 for s in ts) or sum(s == -1 for s in ts) > 1):
            raise ValueError(f"target_shape: expected positive ints with at most one -1, got {target_shape!r}")
        self.target_shape = tuple(int(s) for s in ts)

    def _build(self, input_shape):
        n = int(np.prod(input_shape))
        known = int(np.prod([s for s in self.target_shape if s != -1]))
        if -1 in self.target_shape:
            if n % known:
                raise ValueError(f"layer {self.name!r}: cannot reshape inputs of shape {tuple(input_shape)} "
                                 f"({n} values) to {self.target_shape}")
            out = tuple(n // known if s == -1 else s for s in self.target_shape)
        else:
            out = self.target_shape
        if int(np.prod(out)) != n:
            raise ValueError(f"layer {self.name!r}: target_shape {self.target_shape} holds {int(np.prod(out))} "
                             f"values, inputs of shape {tuple(input_shape)} hold {n}")
        self.output_shape = out

    def forward(self, x, training=False, logits=False):
        return x.reshape((x.shape[0],) + self.output_shape)

    def backward(self, dy, need_dx=True):
        return dy.reshape((dy.shape[0],) + self.input_shape) if need_dx else None


class Identity(Layer):
    """Returns its input unchanged (a placeholder, as Keras's ``Identity``).

    >>> Identity().compute_output_shape((5,))
    (5,)
    """
