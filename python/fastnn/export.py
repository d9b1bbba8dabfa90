"""ONNX export (the ``onnx`` package, opset 17) of a built fastnn model, for inference.

>>> import fastnn
>>> from fastnn.layers import Dense
>>> m = fastnn.Sequential([Dense(4, activation="relu", input_dim=3), Dense(2, activation="softmax")])
>>> export_onnx(m, "model.onnx")                                    # doctest: +SKIP

Layers map to ONNX nodes as follows (the graph computes ``model.predict``):
Dense -> Gemm (+ its activation); Activation -> the activation; BatchNormalization ->
folded into the preceding Dense's Gemm when that Dense has no activation, else one
Mul + Add with the inference scale and shift; Dropout -> nothing (inference);
Flatten -> Flatten; PReLU -> PRelu; Maxout -> Gemm, Reshape, ReduceMax; Rescaling ->
Mul + Add; Normalization -> Sub + Mul (Mul + Add inverted) with its statistics. Activations:
linear (no node), relu, leaky_relu, elu, selu, sigmoid, tanh, softplus, softmax
(axis -1), swish (x * Sigmoid(x)). Anything else raises a ``ValueError`` naming the
layer. Layer parameters are read by name (``layer.vars["kernel"]``, or attributes of
that name), so any layer object with the same public names exports alike.
"""
from __future__ import annotations

import numpy as np

from . import modelfile as _modelfile
from .reference import SELU_ALPHA, SELU_SCALE

OPSET = 17
# layers active only in training: nothing at inference
_INFERENCE_IDENTITY = ("AlphaDropout", "GaussianNoise", "RandomFlip", "RandomTranslation")
SUPPORTED_LAYERS = ("InputLayer", "Dense", "Activation", "BatchNormalization", "Dropout", "Flatten", "PReLU",
                    "Maxout", "Rescaling", "Normalization") + _INFERENCE_IDENTITY
SUPPORTED_ACTIVATIONS = ("linear", "identity", "relu", "leaky_relu", "elu", "selu", "sigmoid", "tanh",
                         "softplus", "softmax", "swish", "silu")


def _weight(layer, name):
    """A layer parameter by name: ``layer.vars[name]`` or the attribute ``layer.<name>``."""
    vars_ = getattr(layer, "vars", None)
    if isinstance(vars_, dict) and name in vars_:
        return np.asarray(vars_[name])
    v = getattr(layer, name, None)
    if v is None:
        return None
    return np.asarray(getattr(v, "value", v))


class _Graph:
    """Nodes and initializers appended in order, one tensor flowing through the chain."""

    def __init__(self, dtype):
        from onnx import helper
        self.helper = helper
        self.dtype = np.dtype(dtype)
        self.nodes, self.inits, self.count = [], [], 0

    def name(self, base):
        self.count += 1
        return f"{base}_{self.count}"

    def const(self, base, value, dtype=None):
        from onnx import numpy_helper
        n = self.name(base)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=dtype or self.dtype), n))
        return n

    def node(self, op, inputs, base, **attrs):
        out = self.name(base)
        self.nodes.append(self.helper.make_node(op, list(inputs), [out], name=out + "_node", **attrs))
        return out


def _float64_activation(g, x, name, alpha):
    """leaky_relu, elu, selu, softplus from ops onnxruntime implements for double
    (its LeakyRelu, Elu, Selu and Softplus kernels are float-only)."""
    zero = g.const("zero", 0.0)
    pos = g.node("Relu", [x], name + "_pos")
    if name == "softplus":  # max(x, 0) + log(1 + exp(-|x|))
        e = g.node("Exp", [g.node("Neg", [g.node("Abs", [x], "abs")], "neg")], "exp")
        return g.node("Add", [pos, g.node("Log", [g.node("Add", [e, g.const("one", 1.0)], "1p")], "log")], name)
    neg = g.node("Min", [x, zero], name + "_neg")
    if name == "leaky_relu":
        return g.node("Add", [pos, g.node("Mul", [neg, g.const("alpha", alpha)], "slope")], name)
    if name == "selu":
        alpha, scale = SELU_ALPHA, SELU_SCALE
    else:
        scale = 1.0
    em1 = g.node("Sub", [g.node("Exp", [neg], "exp"), g.const("one", 1.0)], "expm1")
    y = g.node("Add", [pos, g.node("Mul", [em1, g.const("alpha", alpha)], "scaled")], name)
    return y if scale == 1.0 else g.node("Mul", [y, g.const("scale", scale)], name + "_scale")


def _activation(g, x, act, where):
    name = getattr(act, "name", act)
    alpha = getattr(act, "alpha", None)
    if name in ("linear", "identity", None):
        return x
    if g.dtype == np.float64 and name in ("leaky_relu", "elu", "selu", "softplus"):
        return _float64_activation(g, x, name, alpha)
    if name == "relu":
        return g.node("Relu", [x], "relu")
    if name == "leaky_relu":
        return g.node("LeakyRelu", [x], "leaky_relu", alpha=float(alpha))
    if name == "elu":
        return g.node("Elu", [x], "elu", alpha=float(alpha))
    if name == "selu":
        return g.node("Selu", [x], "selu", alpha=float(SELU_ALPHA), gamma=float(SELU_SCALE))
    if name == "sigmoid":
        return g.node("Sigmoid", [x], "sigmoid")
    if name == "tanh":
        return g.node("Tanh", [x], "tanh")
    if name == "softplus":
        return g.node("Softplus", [x], "softplus")
    if name == "softmax":
        return g.node("Softmax", [x], "softmax", axis=-1)
    if name in ("swish", "silu"):
        return g.node("Mul", [x, g.node("Sigmoid", [x], "swish_sigmoid")], "swish")
    raise ValueError(f"export_onnx: {where} has the activation {name!r}, which has no ONNX export; "
                     f"supported: {', '.join(SUPPORTED_ACTIVATIONS)}")


def _bn_scale_shift(layer):
    """Inference BatchNormalization as y = x * scale + shift (computed in float64)."""
    mean = _weight(layer, "moving_mean").astype(np.float64)
    var = _weight(layer, "moving_variance").astype(np.float64)
    gamma = _weight(layer, "gamma") if getattr(layer, "scale", True) else None
    beta = _weight(layer, "beta") if getattr(layer, "center", True) else None
    gamma = np.ones_like(mean) if gamma is None else gamma.astype(np.float64)
    beta = np.zeros_like(mean) if beta is None else beta.astype(np.float64)
    scale = gamma / np.sqrt(var + float(layer.epsilon))
    return scale, beta - mean * scale


def _dense(g, x, layer, kernel=None, bias=None):
    kernel = _weight(layer, "kernel") if kernel is None else kernel
    if bias is None and getattr(layer, "use_bias", True):
        bias = _weight(layer, "bias")
    if bias is None:
        bias = np.zeros(kernel.shape[1])
    return g.node("Gemm", [x, g.const("kernel", kernel), g.const("bias", bias)], "dense")


def _maxout(g, x, layer):
    units, pieces = int(layer.units), int(layer.pieces)
    z = _dense(g, x, layer)
    z = g.node("Reshape", [z, g.const("shape", [-1, units, pieces], np.int64)], "maxout_pieces")
    return g.node("ReduceMax", [z], "maxout", axes=[2], keepdims=0)


def _preprocessing(g, x, layer, kind):
    if kind == "Rescaling":
        x = g.node("Mul", [x, g.const("scale", layer.scale)], "rescale")
        return g.node("Add", [x, g.const("offset", layer.offset)], "rescaling") if layer.offset else x
    inv, mean = layer._scale_shift()  # Normalization: its own broadcast shapes, float64 kept
    inv = inv.astype(np.float64)
    if layer.invert:
        return g.node("Add", [g.node("Mul", [x, g.const("std", 1.0 / inv)], "denorm"), g.const("mean", mean)],
                      "normalization")
    return g.node("Mul", [g.node("Sub", [x, g.const("mean", mean)], "center"), g.const("inv_std", inv)],
                  "normalization")


def _layers(model):
    layers = list(model.layers)
    return [layer for layer in layers if type(layer).__name__ != "InputLayer"]


def _emit(g, x, layers):
    """Append the nodes of the chain ``layers`` to ``g``; returns the output tensor name."""
    i = 0
    while i < len(layers):
        layer = layers[i]
        kind = type(layer).__name__
        where = f"layer {getattr(layer, 'name', '?')!r} ({kind})"
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        if kind == "Dense":
            act = getattr(layer, "activation", None)
            if nxt is not None and type(nxt).__name__ == "BatchNormalization" and \
                    getattr(act, "name", act) in ("linear", "identity", None):
                scale, shift = _bn_scale_shift(nxt)
                k = _weight(layer, "kernel").astype(np.float64)
                b = _weight(layer, "bias") if getattr(layer, "use_bias", True) else None
                b = np.zeros(k.shape[1]) if b is None else b.astype(np.float64)
                x = _dense(g, x, layer, k * scale, b * scale + shift)
                i += 2
                continue
            x = _activation(g, _dense(g, x, layer), act, where)
        elif kind == "Activation":
            x = _activation(g, x, layer.activation, where)
        elif kind == "BatchNormalization":
            scale, shift = _bn_scale_shift(layer)
            x = g.node("Add", [g.node("Mul", [x, g.const("bn_scale", scale)], "bn_mul"),
                              g.const("bn_shift", shift)], "batchnorm")
        elif kind == "Dropout" or kind in _INFERENCE_IDENTITY:
            pass
        elif kind == "Flatten":
            x = g.node("Flatten", [x], "flatten", axis=1)
        elif kind == "PReLU":
            x = g.node("PRelu", [x, g.const("alpha", _weight(layer, "alpha"))], "prelu")
        elif kind == "Maxout":
            x = _maxout(g, x, layer)
        elif kind in ("Rescaling", "Normalization"):
            x = _preprocessing(g, x, layer, kind)
        else:
            raise ValueError(f"export_onnx: {where} has no ONNX export; supported layers: "
                             f"{', '.join(SUPPORTED_LAYERS)}")
        i += 1
    return x


def to_onnx(model, dtype=None):
    """The ``onnx.ModelProto`` of a built model (input ``"input"``, output ``"output"``,
    batch dimension dynamic). dtype: float32 or float64 (default: the model's)."""
    from onnx import TensorProto, checker, helper
    if not getattr(model, "built", False):
        raise ValueError("model: not built; build it (or fit it) before exporting")
    if getattr(model, "_chain", True) is None:
        raise ValueError("export_onnx: the model is a graph (several inputs or outputs, merge or shared "
                         "layers); ONNX export supports chains of layers (Sequential or a one-path "
                         "functional model) only")
    dtype = np.dtype(dtype if dtype is not None else getattr(model, "dtype", np.float32))
    elem = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE}.get(dtype)
    if elem is None:
        raise ValueError(f"dtype: expected float32 or float64, got {dtype}")
    g = _Graph(dtype)
    first = g.node("Identity", ["input"], "input")
    out = _emit(g, first, _layers(model))
    g.nodes.append(helper.make_node("Identity", [out], ["output"], name="output_node"))
    in_shape = ["batch"] + [int(d) for d in model.input_shape[1:]]
    out_shape = ["batch"] + [int(d) for d in model.output_shape[1:]]
    graph = helper.make_graph(g.nodes, "fastnn", [helper.make_tensor_value_info("input", elem, in_shape)],
                              [helper.make_tensor_value_info("output", elem, out_shape)], initializer=g.inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="fastnn")
    proto.ir_version = min(proto.ir_version, 8)  # readable by onnxruntime >= 1.14
    checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model, path, dtype=None):
    """Write ``model`` as an ONNX file at ``path`` (see the module doc); returns the path."""
    import os
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a file path, got {type(path).__name__}")
    proto = to_onnx(model, dtype)
    with open(path, "wb") as f:
        f.write(proto.SerializeToString())
    return path


_modelfile.EXPORTERS["onnx"] = export_onnx  # model.export(path, format="onnx")
