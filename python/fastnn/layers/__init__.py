"""Layers, grouped as in Keras 3: ``core`` (Dense, Activation, Flatten, Input),
``activations`` (PReLU, Maxout, ReLU, LeakyReLU, ELU, Softmax), ``reshaping`` (Reshape,
Identity), ``normalization`` (BatchNormalization, LayerNormalization),
``regularization`` (Dropout, AlphaDropout, GaussianNoise, GaussianDropout,
ActivityRegularization), ``augmentation`` (RandomFlip, RandomTranslation: images, active
only in training), ``merging`` (Add, Subtract, Multiply, Average, Maximum, Minimum,
Concatenate, Dot, and the functional ``add``, ..., ``dot``); ``normalization`` also has
UnitNormalization, RMSNormalization and GroupNormalization, ``reshaping`` RepeatVector and
Permute (the ``*_more`` modules). Layers never import the graph or the trainer.

A layer declares its variables in ``build`` (shape, initializer, regularizer,
trainable parameter or non-trainable state); the model places every parameter
in one flat arena and hands the layer NumPy views (``layer.vars``,
``layer.grads``). ``forward`` and ``backward`` write into buffers the layer owns,
allocated once per batch size, and call the kernels in ``fastnn.ops``.

Shapes: activations are (batch, features) row-major; ``Flatten`` turns
(batch, d1, d2, ...) into (batch, d1*d2*...).

>>> import fastnn
>>> x = fastnn.layers.Input(784)
>>> h = fastnn.layers.Dense(100, activation="sigmoid")(x)
>>> out = fastnn.layers.Dense(10, activation="softmax")(h)
>>> out.shape
(10,)
"""
from __future__ import annotations

from .activations import ELU, LeakyReLU, Maxout, PReLU, ReLU, Softmax
from .core import (Activation, Dense, Flatten, Input, InputLayer, Layer, SymbolicTensor, VarSpec,  # noqa: F401
                   _require_2d, _shape_tuple, _snake)
from .merging import Add, Average, Concatenate, Maximum, Merge, Multiply, Subtract
from .normalization import BatchNormalization, LayerNormalization
from .reshaping import Identity, Reshape
from .augmentation import RandomFlip, RandomTranslation
from .preprocessing import Normalization, Rescaling
from .regularization import AlphaDropout, Dropout, GaussianNoise
from .regularization_more import ActivityRegularization, GaussianDropout
from .normalization_more import GroupNormalization, RMSNormalization, UnitNormalization
from .merging_more import (Dot, Minimum, add, average, concatenate, dot, maximum, minimum,  # noqa: F401
                           multiply, subtract)
from .reshaping_more import Permute, RepeatVector

__all__ = ["Layer", "VarSpec", "SymbolicTensor", "InputLayer", "Input", "Flatten", "Dense", "Activation",
           "PReLU", "Maxout", "BatchNormalization", "Dropout", "AlphaDropout", "GaussianNoise", "RandomFlip",
           "RandomTranslation", "Rescaling", "Normalization", "Merge", "Add", "Subtract", "Multiply",
           "Average", "Maximum", "Concatenate", "ReLU", "LeakyReLU", "ELU", "Softmax", "LayerNormalization",
           "Reshape", "Identity", "GaussianDropout", "ActivityRegularization", "Minimum", "Dot",
           "UnitNormalization", "RMSNormalization", "GroupNormalization", "RepeatVector", "Permute", "add",
           "subtract", "multiply", "average", "maximum", "minimum", "concatenate", "dot", "deserialize"]

LAYERS = {c.__name__: c for c in (Dense, Activation, Dropout, BatchNormalization, PReLU, Maxout, Flatten,
                                   AlphaDropout, GaussianNoise, RandomFlip, RandomTranslation,
                                   Rescaling, Normalization,
                                   Add, Subtract, Multiply, Average, Maximum, Concatenate,
                                   ReLU, LeakyReLU, ELU, Softmax, LayerNormalization, Reshape, Identity,
                                   GaussianDropout, ActivityRegularization, Minimum, Dot, UnitNormalization,
                                   RMSNormalization, GroupNormalization, RepeatVector, Permute)}


def deserialize(d):
    """A layer from ``{"class_name": ..., "config": ...}`` (only the classes above, and the InputLayer
    Keras 3 writes first in a Sequential model's config; never runs code)."""
    cls = InputLayer if d.get("class_name") == "InputLayer" else LAYERS.get(d.get("class_name"))
    if cls is None:
        raise ValueError(f"layer: unknown class {d.get('class_name')!r}; known: {', '.join(LAYERS)}")
    return cls.from_config(d["config"])
