"""Elementwise and row-wise ops: activation, activation_grad, softmax, log_softmax."""
from __future__ import annotations

from .. import _core
from ._common import _activation_alpha, _activation_name, _float_array, _out_array


def activation(name, x, *, alpha=None, out=None):
    """y = act(x) elementwise, any shape.

    name: any of ``ACTIVATIONS`` (the registry ``_core.activations()``): linear
    (identity), relu, leaky_relu (alpha, default 0.2: Keras's
    ``keras.activations.leaky_relu`` negative_slope), elu (alpha, default 1.0),
    selu, sigmoid, tanh, swish (silu), softplus, gelu (alpha: keras.activations.gelu's
    approximate flag, 0 = exact x Phi(x) (default), 1 = the tanh form; anything else is
    refused).

    >>> import numpy as np, fastnn.ops as ops
    >>> ops.activation("relu", np.array([-1.0, 2.0]))
    array([0., 2.])
    """
    name = _activation_name(name)
    a = _activation_alpha(name, alpha)
    x = _float_array(x, "x")
    y = _out_array(out, "out", dtype=x.dtype, shape=x.shape)
    _core.activation_forward(name, x, y, a)
    return y


def activation_grad(name, dy, *, x=None, y=None, alpha=None, out=None):
    """dL/dx = dy * act'(x), given the forward input ``x`` and/or output ``y``.

    What each one needs is the registry's ``grad_needs``: swish, softplus and gelu need x
    ("x"); the others take either ("x_or_y"; sigmoid and tanh are cheapest from y).
    """
    name = _activation_name(name)
    a = _activation_alpha(name, alpha)
    dy = _float_array(dy, "dy")
    if x is not None:
        x = _float_array(x, "x", dtype=dy.dtype, shape=dy.shape)
    if y is not None:
        y = _float_array(y, "y", dtype=dy.dtype, shape=dy.shape)
    dx = _out_array(out, "out", dtype=dy.dtype, shape=dy.shape)
    _core.activation_backward(name, dy, x, y, dx, a)
    return dx


def softmax(x, *, out=None):
    """Row-wise (last axis) softmax, numerically stable."""
    x = _float_array(x, "x", ndim=(1, 2))
    y = _out_array(out, "out", dtype=x.dtype, shape=x.shape)
    _core.softmax(x, y, False)
    return y


def log_softmax(x, *, out=None):
    """Row-wise (last axis) log-softmax, numerically stable."""
    x = _float_array(x, "x", ndim=(1, 2))
    y = _out_array(out, "out", dtype=x.dtype, shape=x.shape)
    _core.softmax(x, y, True)
    return y
