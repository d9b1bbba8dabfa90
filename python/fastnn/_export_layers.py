"""ONNX graphs (opset 17) of the Keras 3 layers of the second round, for :mod:`fastnn.export`,
each mirroring the layer's own forward (same operations in the same order):
UnitNormalization -> x * Min(1 / Sqrt(ReduceSumSquare(x)), 1 / 1e-12) (its ``l2_normalize``:
the inverse norm clamped, not an epsilon under the root); RMSNormalization ->
x * (1 / Sqrt(ReduceMean(x * x) + epsilon)) * scale; GroupNormalization -> Transpose (channel
axis last, when it is not), Reshape to (batch, -1, groups, channels / groups), ReduceMean
over axes 1 and 3, the biased variance, (x - mean) * (1 / Sqrt(var + epsilon)), gamma and beta
as (groups, channels / groups), Reshape and Transpose back; RepeatVector -> Unsqueeze + Tile;
Permute -> Transpose; Dot -> Einsum with the layer's own subscripts (letters renamed to
lowercase), each input first scaled as UnitNormalization with the floor 1e-7 under
``normalize=True``, then Reshape to (batch, 1) for a per-sample scalar.
In opset 17 ReduceMean and ReduceSumSquare take their axes as an attribute; Unsqueeze and
Tile take theirs as inputs. Every operator here has float and double kernels in onnxruntime.
"""
from __future__ import annotations

import string

import numpy as np

from .layers.merging_more import _DOT_EPS

SINGLE_INPUT = ("UnitNormalization", "RMSNormalization", "GroupNormalization", "RepeatVector", "Permute")
MORE_LAYERS = SINGLE_INPUT + ("Dot",)


def _inverse_norm(g, x, axes, epsilon, base):
    """min(1 / sqrt(sum(x**2)), 1 / epsilon) over ``axes``, kept (normalization_more.l2_normalize)."""
    s = g.node("ReduceSumSquare", [x], base + "_sumsq", axes=[int(a) for a in axes], keepdims=1)
    inv = g.node("Div", [g.const("one", 1.0), g.node("Sqrt", [s], base + "_norm")], base + "_inv")
    return g.node("Min", [inv, g.const(base + "_max_inv", 1.0 / epsilon)], base + "_inv_clamped")


def _rms_norm(g, x, layer):
    ax = [int(a) for a in layer._ax]
    ms = g.node("ReduceMean", [g.node("Mul", [x, x], "rms_sq")], "rms_mean_sq", axes=ax, keepdims=1)
    rms = g.node("Sqrt", [g.node("Add", [ms, g.const("rms_eps", layer.epsilon)], "rms_eps_added")], "rms")
    xhat = g.node("Mul", [x, g.node("Div", [g.const("one", 1.0), rms], "rms_inv")], "rms_xhat")
    scale = np.asarray(layer.vars["scale"]).reshape(layer._bshape)
    return g.node("Mul", [xhat, g.const("rms_scale", scale, key=(id(layer), "scale"))], "rms_normalization")


def _group_norm(g, x, layer, in_shape):
    """GroupNormalization's ``_grouped`` / forward / ``_ungrouped`` as ONNX nodes."""
    a, groups, k = layer._a, layer._g, id(layer)
    rank, c = len(in_shape) + 1, int(in_shape[layer._a - 1])
    perm = [i for i in range(rank) if i != a] + [a]
    moved = [int(in_shape[i - 1]) for i in perm[1:]]  # the feature shape, channels last
    if a != rank - 1:
        x = g.node("Transpose", [x], "gn_channels_last", perm=perm)
    xg = g.node("Reshape", [x, g.const("shape", [0, -1, groups, c // groups], np.int64)], "gn_grouped")
    mean = g.node("ReduceMean", [xg], "gn_mean", axes=[1, 3], keepdims=1)
    xc = g.node("Sub", [xg, mean], "gn_center")
    var = g.node("ReduceMean", [g.node("Mul", [xc, xc], "gn_sq")], "gn_var", axes=[1, 3], keepdims=1)
    std = g.node("Sqrt", [g.node("Add", [var, g.const("gn_eps", layer.epsilon)], "gn_var_eps")], "gn_std")
    y = g.node("Mul", [xc, g.node("Div", [g.const("one", 1.0), std], "gn_inv")], "gn_xhat")
    if layer.scale:
        gamma = np.asarray(layer.vars["gamma"]).reshape(groups, -1)
        y = g.node("Mul", [y, g.const("gn_gamma", gamma, key=(k, "gamma"))], "gn_scaled")
    if layer.center:
        beta = np.asarray(layer.vars["beta"]).reshape(groups, -1)
        y = g.node("Add", [y, g.const("gn_beta", beta, key=(k, "beta"))], "gn_shifted")
    y = g.node("Reshape", [y, g.const("shape", [0] + moved, np.int64)], "gn_ungrouped")
    if a != rank - 1:
        y = g.node("Transpose", [y], "gn_channels_back", perm=[int(i) for i in np.argsort(perm)])
    return y


def more_layer(g, x, layer, kind, in_shape):
    """The output of the single-input layer ``kind`` (one of SINGLE_INPUT) on tensor ``x``."""
    if kind == "UnitNormalization":
        return g.node("Mul", [x, _inverse_norm(g, x, layer._ax, layer._EPS, "unit")], "unit_normalization")
    if kind == "RMSNormalization":
        return _rms_norm(g, x, layer)
    if kind == "GroupNormalization":
        return _group_norm(g, x, layer, in_shape)
    if kind == "RepeatVector":
        x = g.node("Unsqueeze", [x, g.const("axes", [1], np.int64)], "repeat_unsqueeze")
        return g.node("Tile", [x, g.const("repeats", [1, int(layer.n), 1], np.int64)], "repeat_vector")
    if kind == "Permute":
        return g.node("Transpose", [x], "permute", perm=[int(a) for a in layer._perm])
    raise ValueError(f"kind: {kind!r} is not one of {', '.join(SINGLE_INPUT)}")


def dot(g, xs, layer):
    """Dot(axes, normalize) of the two tensors ``xs`` as the layer's einsum."""
    x1, x2 = xs
    if layer.normalize:  # l2_normalize(x, axis, 1e-7) of each input along its contracted axis
        x1 = g.node("Mul", [x1, _inverse_norm(g, x1, [layer._ax[0]], _DOT_EPS, "dot_a")], "dot_a_unit")
        x2 = g.node("Mul", [x2, _inverse_norm(g, x2, [layer._ax[1]], _DOT_EPS, "dot_b")], "dot_b_unit")
    s1, s2, so = layer._subs
    free = iter(c for c in string.ascii_lowercase if c not in s1 + s2)
    rename = {"Y": next(free), "Z": next(free)}  # the batch and the contracted axis
    eq = f"{s1},{s2}->{so}".translate(str.maketrans(rename))
    y = g.node("Einsum", [x1, x2], "dot", equation=eq)
    if not layer._out_core:  # a per-sample scalar comes as (batch, 1)
        y = g.node("Unsqueeze", [y, g.const("axes", [1], np.int64)], "dot_scalar")
    return y
