"""ONNX export (the ``onnx`` package, opset 17) of a built fastnn model, for inference.

>>> import fastnn
>>> from fastnn.layers import Dense
>>> m = fastnn.Sequential([Dense(4, activation="relu", input_dim=3), Dense(2, activation="softmax")])
>>> export_onnx(m, "model.onnx")                                    # doctest: +SKIP

Any model exports: a Sequential as graph input ``"input"`` and output ``"output"``; a
functional model (any DAG) with one graph input per model input, named after its Input,
and one output per model output, named as ``model.output_names``. A shared layer's
every use reads the same initializers.

Layers map to ONNX nodes as follows (the graph computes ``model.predict``):
Dense -> Gemm (+ its activation); Activation -> the activation; BatchNormalization ->
folded into the preceding Dense's Gemm when that Dense has no activation and feeds only
it, else one Mul + Add with the inference scale and shift; Dropout, Identity and the
training-only noise/augmentation layers -> nothing; Flatten -> Flatten; Reshape ->
Reshape; PReLU -> PRelu; Maxout -> Gemm, Reshape, ReduceMax; Rescaling -> Mul + Add;
Normalization -> Sub + Mul (Mul + Add inverted) with its statistics; LayerNormalization
-> LayerNormalization over trailing axes, else ReduceMean/Sub/Mul/Sqrt/Div; ReLU layer ->
Greater/Where (+ Min for max_value, Relu/Mul/Sub for negative_slope); LeakyReLU, ELU ->
as the activations; Softmax layer -> Softmax (one axis) or ReduceMax/Exp/ReduceSum/Div;
Add/Subtract/Multiply -> Add/Sub/Mul in fastnn's order, Average -> Mean (float64: Add then
Mul by 1/n, onnxruntime has no double Mean), Maximum -> Max, Minimum -> Min, Concatenate ->
Concat; UnitNormalization, RMSNormalization, GroupNormalization -> their formulas
(ReduceSumSquare / ReduceMean, Sqrt, Div, Min...; GroupNormalization with Transpose and
Reshape), RepeatVector -> Unsqueeze + Tile, Permute -> Transpose, Dot -> Einsum (see
_export_layers.py).
Activations: linear (no node), relu, leaky_relu, elu, selu, sigmoid, tanh, softplus,
softmax (axis -1), swish (x * Sigmoid(x)), gelu (opset 17 has no Gelu: exact
0.5 x (1 + Erf(x / sqrt 2)), approximate 0.5 x (1 + Tanh(sqrt(2/pi) (x + 0.044715 x^3)));
the exact form float32 only: onnxruntime's Erf has no double kernel), relu6, hard_sigmoid,
hard_silu, softsign, exponential, mish, log_sigmoid, celu, hard_tanh, squareplus, sparse_plus, tanh_shrink,
hard_shrink, soft_shrink (from elementary operators: see _export_acts.py). Anything else raises a ``ValueError`` naming
the layer. Layer parameters are read by name (``layer.vars["kernel"]``, or attributes of
that name), so any layer object with the same public names exports alike.
"""
from __future__ import annotations

import numpy as np

from . import _safe_files
from . import modelfile as _modelfile
from ._export_acts import MORE_ACTIVATIONS as _MORE_ACTIVATIONS, more_activation as _more_activation
from ._export_layers import MORE_LAYERS as _MORE_LAYERS, SINGLE_INPUT as _SINGLE_INPUT_MORE
from ._export_layers import dot as _dot, more_layer as _more_layer
from .reference import SELU_ALPHA, SELU_SCALE

OPSET = 17
# layers active only in training: nothing at inference
_INFERENCE_IDENTITY = ("AlphaDropout", "GaussianNoise", "RandomFlip", "RandomTranslation", "GaussianDropout",
                       "ActivityRegularization")  # ActivityRegularization: only a loss term
_MERGE = ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate")
SUPPORTED_LAYERS = ("InputLayer", "Dense", "Activation", "BatchNormalization", "Dropout", "Flatten", "PReLU",
                    "Maxout", "Rescaling", "Normalization", "LayerNormalization", "ReLU", "LeakyReLU", "ELU",
                    "Softmax", "Reshape", "Identity") + _MERGE + _INFERENCE_IDENTITY + _MORE_LAYERS
SUPPORTED_ACTIVATIONS = ("linear", "identity", "relu", "leaky_relu", "elu", "selu", "sigmoid", "tanh",
                         "softplus", "softmax", "swish", "silu", "gelu") + _MORE_ACTIVATIONS


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

    def __init__(self, dtype, reserved=()):
        from onnx import helper
        self.helper = helper
        self.dtype = np.dtype(dtype)
        self.nodes, self.inits, self.count = [], [], 0
        self.reserved, self.cache = set(reserved), {}  # graph input/output names; key -> initializer

    def name(self, base):
        self.count += 1
        while f"{base}_{self.count}" in self.reserved:
            self.count += 1
        return f"{base}_{self.count}"

    def const(self, base, value, dtype=None, key=None):
        """An initializer; with ``key`` (a layer's id and a tag) one per key, so a shared
        layer's every use reads the same initializers."""
        from onnx import numpy_helper
        if key is not None and key in self.cache:
            return self.cache[key]
        n = self.name(base)
        if key is not None:
            self.cache[key] = n
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


def _gelu(g, x, approximate, where):
    """0.5 x (1 + Erf(x / sqrt 2)), or 0.5 x (1 + Tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    if approximate:
        x3 = g.node("Mul", [g.node("Mul", [x, x], "gelu_x2"), x], "gelu_x3")
        inner = g.node("Add", [x, g.node("Mul", [x3, g.const("gelu_coef", 0.044715)], "gelu_cubic")], "gelu_inner")
        gate = g.node("Tanh", [g.node("Mul", [inner, g.const("gelu_scale", np.sqrt(2 / np.pi))], "gelu_v")],
                      "gelu_tanh")
    else:
        if g.dtype == np.float64:
            raise ValueError(f"export_onnx: {where} has the activation 'gelu' (exact), which has no float64 ONNX "
                             f"export (onnxruntime's Erf is float-only); export a float32 model or use "
                             f"approximate=True")
        gate = g.node("Erf", [g.node("Mul", [x, g.const("gelu_rsqrt2", np.sqrt(0.5))], "gelu_u")], "gelu_erf")
    half = g.node("Mul", [g.node("Add", [gate, g.const("one", 1.0)], "gelu_1p"), g.const("half", 0.5)], "gelu_cdf")
    return g.node("Mul", [x, half], "gelu")


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
    if name == "gelu":
        return _gelu(g, x, bool(alpha), where)
    if name in _MORE_ACTIVATIONS:  # relu6, hard_sigmoid, ... (_export_acts.py)
        return _more_activation(g, x, name, alpha)
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


def _dense(g, x, layer, kernel=None, bias=None, key=None):
    kernel = _weight(layer, "kernel") if kernel is None else kernel
    if bias is None and getattr(layer, "use_bias", True):
        bias = _weight(layer, "bias")
    if bias is None:
        bias = np.zeros(kernel.shape[1])
    key = key or (id(layer),)
    return g.node("Gemm", [x, g.const("kernel", kernel, key=key + ("kernel",)),
                           g.const("bias", bias, key=key + ("bias",))], "dense")


def _folded_dense(g, x, layer, bn):
    """Dense (no activation) then BatchNormalization as one Gemm with the folded parameters."""
    scale, shift = _bn_scale_shift(bn)
    k = _weight(layer, "kernel").astype(np.float64)
    b = _weight(layer, "bias") if getattr(layer, "use_bias", True) else None
    b = np.zeros(k.shape[1]) if b is None else b.astype(np.float64)
    return _dense(g, x, layer, k * scale, b * scale + shift, key=(id(layer), id(bn)))


def _maxout(g, x, layer):
    units, pieces = int(layer.units), int(layer.pieces)
    z = _dense(g, x, layer)
    z = g.node("Reshape", [z, g.const("shape", [-1, units, pieces], np.int64)], "maxout_pieces")
    return g.node("ReduceMax", [z], "maxout", axes=[2], keepdims=0)


def _preprocessing(g, x, layer, kind):
    k = id(layer)
    if kind == "Rescaling":
        x = g.node("Mul", [x, g.const("scale", layer.scale, key=(k, "scale"))], "rescale")
        return g.node("Add", [x, g.const("offset", layer.offset, key=(k, "offset"))], "rescaling") \
            if layer.offset else x
    inv, mean = layer._scale_shift()  # Normalization: its own broadcast shapes, float64 kept
    inv = inv.astype(np.float64)
    if layer.invert:
        return g.node("Add", [g.node("Mul", [x, g.const("std", 1.0 / inv, key=(k, "std"))], "denorm"),
                              g.const("mean", mean, key=(k, "mean"))], "normalization")
    return g.node("Mul", [g.node("Sub", [x, g.const("mean", mean, key=(k, "mean"))], "center"),
                          g.const("inv_std", inv, key=(k, "inv"))], "normalization")


def _batchnorm(g, x, layer):
    scale, shift = _bn_scale_shift(layer)
    return g.node("Add", [g.node("Mul", [x, g.const("bn_scale", scale, key=(id(layer), "scale"))], "bn_mul"),
                          g.const("bn_shift", shift, key=(id(layer), "shift"))], "batchnorm")


def _layer_norm(g, x, layer, in_shape):
    """LayerNormalization: the ONNX op when the axes are the trailing ones (float32), else
    ReduceMean / Sub / Mul / Sqrt / Div over the axes (the layer's own formula). float64
    always takes the formula: the op's epsilon is a float32 attribute (1e-3 would become
    1.0000000475e-3, a 5e-10 relative error in double)."""
    rank, ax, k = len(in_shape) + 1, tuple(layer._ax), id(layer)
    bshape = ax_shape = tuple(in_shape[a - 1] for a in ax)
    trailing = ax == tuple(range(ax[0], rank)) and g.dtype == np.float32
    if ax != tuple(range(ax[0], rank)):
        bshape = tuple(layer._bshape)
    gamma = _weight(layer, "gamma") if layer.scale else np.ones(ax_shape)
    beta = _weight(layer, "beta") if layer.center else np.zeros(ax_shape)
    gamma = g.const("ln_gamma", gamma.reshape(bshape), key=(k, "gamma"))
    beta = g.const("ln_beta", beta.reshape(bshape), key=(k, "beta"))
    if trailing:
        return g.node("LayerNormalization", [x, gamma, beta], "layernorm", axis=ax[0], epsilon=layer.epsilon)
    xc = g.node("Sub", [x, g.node("ReduceMean", [x], "ln_mean", axes=list(ax), keepdims=1)], "ln_center")
    var = g.node("ReduceMean", [g.node("Mul", [xc, xc], "ln_sq")], "ln_var", axes=list(ax), keepdims=1)
    std = g.node("Sqrt", [g.node("Add", [var, g.const("eps", layer.epsilon)], "ln_var_eps")], "ln_std")
    y = g.node("Mul", [g.node("Div", [xc, std], "ln_xhat"), gamma], "ln_scaled")
    return g.node("Add", [y, beta], "layernorm")


def _relu_layer(g, x, layer):
    """ReLU(max_value, negative_slope, threshold) as Keras computes it."""
    thr, zero = g.const("threshold", layer.threshold), g.const("zero", 0.0)
    y = g.node("Where", [g.node("Greater", [x, thr], "above"), x, zero], "relu_pos")
    if layer.max_value is not None:
        y = g.node("Min", [y, g.const("max_value", layer.max_value)], "relu_capped")  # y >= 0 already
    if layer.negative_slope:
        below = g.node("Relu", [g.node("Sub", [thr, x], "relu_below")], "relu_below_pos")
        y = g.node("Sub", [y, g.node("Mul", [below, g.const("slope", layer.negative_slope)], "relu_slope")],
                   "relu")
    return y


def _softmax_layer(g, x, layer):
    ax = list(layer._ax)
    if len(ax) == 1:
        return g.node("Softmax", [x], "softmax", axis=ax[0])
    e = g.node("Exp", [g.node("Sub", [x, g.node("ReduceMax", [x], "sm_max", axes=ax, keepdims=1)],
                              "sm_shift")], "sm_exp")
    total = g.node("ReduceSum", [e, g.const("axes", ax, np.int64)], "sm_sum", keepdims=1)
    return g.node("Div", [e, total], "softmax")


def _merge(g, xs, layer, kind, where):
    if kind in ("Add", "Multiply", "Subtract"):
        op = {"Add": "Add", "Multiply": "Mul", "Subtract": "Sub"}[kind]
        y = xs[0]
        for x in xs[1:]:  # in fastnn's order: ((x0 op x1) op x2) ...
            y = g.node(op, [y, x], kind.lower())
        return y
    if kind == "Average":
        if g.dtype == np.float32:
            return g.node("Mean", list(xs), "average")
        y = xs[0]  # onnxruntime has no double Mean: the sum, then times 1/n (fastnn's order)
        for x in xs[1:]:
            y = g.node("Add", [y, x], "average_sum")
        return g.node("Mul", [y, g.const("inv_n", 1.0 / len(xs))], "average")
    if kind in ("Maximum", "Minimum"):
        return g.node(kind[:3], list(xs), kind.lower())
    if kind == "Concatenate":
        return g.node("Concat", list(xs), "concatenate", axis=int(layer._ax))
    if kind == "Dot":
        return _dot(g, xs, layer)
    raise ValueError(f"export_onnx: {where} has no ONNX export; supported layers: {', '.join(SUPPORTED_LAYERS)}")


def _layer(g, x, layer, kind, where, in_shape):
    """The nodes of one single-input layer call on tensor ``x``; returns its output tensor."""
    if kind == "Dense":
        return _activation(g, _dense(g, x, layer), getattr(layer, "activation", None), where)
    if kind == "Activation":
        return _activation(g, x, layer.activation, where)
    if kind == "BatchNormalization":
        return _batchnorm(g, x, layer)
    if kind in ("Dropout", "Identity") or kind in _INFERENCE_IDENTITY:
        return x
    if kind == "Flatten":
        return g.node("Flatten", [x], "flatten", axis=1)
    if kind == "Reshape":
        shape = g.const("shape", [0] + [int(d) for d in layer.output_shape], np.int64)
        return g.node("Reshape", [x, shape], "reshape")
    if kind == "PReLU":
        return g.node("PRelu", [x, g.const("alpha", _weight(layer, "alpha"), key=(id(layer), "alpha"))], "prelu")
    if kind == "Maxout":
        return _maxout(g, x, layer)
    if kind in ("Rescaling", "Normalization"):
        return _preprocessing(g, x, layer, kind)
    if kind == "LayerNormalization":
        return _layer_norm(g, x, layer, in_shape)
    if kind == "ReLU":
        return _relu_layer(g, x, layer)
    if kind in ("LeakyReLU", "ELU"):
        act = "leaky_relu" if kind == "LeakyReLU" else "elu"
        return _activation(g, x, _Act(act, layer.negative_slope if kind == "LeakyReLU" else layer.alpha), where)
    if kind == "Softmax":
        return _softmax_layer(g, x, layer)
    if kind in _SINGLE_INPUT_MORE:  # UnitNormalization, ..., Permute (_export_layers.py)
        return _more_layer(g, x, layer, kind, in_shape)
    raise ValueError(f"export_onnx: {where} has no ONNX export; supported layers: {', '.join(SUPPORTED_LAYERS)}")


class _Act:
    def __init__(self, name, alpha):
        self.name, self.alpha = name, alpha


def _fold_targets(nodes, n_in, outs):
    """{Dense node index: BatchNormalization node index} where a Dense without activation
    feeds only that BatchNormalization (and is no model output): one Gemm for both."""
    readers = {}
    for j, node in enumerate(nodes):
        for v in node.inbound:
            readers.setdefault(v, []).append(j)
    fold = {}
    for k, node in enumerate(nodes):
        act = getattr(node.layer, "activation", None)
        r = readers.get(n_in + k, [])
        if type(node.layer).__name__ == "Dense" and getattr(act, "name", act) in ("linear", "identity", None) \
                and len(r) == 1 and type(nodes[r[0]].layer).__name__ == "BatchNormalization" \
                and n_in + k not in outs:
            fold[k] = r[0]
    return fold


def _emit(g, model, in_names):
    """Append the nodes of the model's graph to ``g`` (nodes in topological order over the
    values: inputs, then one per node); returns the output tensor names."""
    nodes, outs, n_in, shapes = model._nodes, model._outs, model._n_in, model._shapes
    fold = _fold_targets(nodes, n_in, outs)
    folded = {}  # BatchNormalization node -> the folded Gemm's output
    vals = list(in_names)
    for k, node in enumerate(nodes):
        layer = node.layer
        kind = type(layer).__name__
        where = f"layer {getattr(layer, 'name', '?')!r} ({kind})"
        ins = [vals[v] for v in node.inbound]
        if k in folded:
            y = folded[k]
        elif k in fold:
            y = folded[fold[k]] = _folded_dense(g, ins[0], layer, nodes[fold[k]].layer)
        elif node.merge:
            y = _merge(g, ins, layer, kind, where)
        else:
            y = _layer(g, ins[0], layer, kind, where, shapes[node.inbound[0]])
        vals.append(y)
    return [vals[v] for v in outs]


def _io_names(model):
    """(input names, output names): a functional model's input layers' and output layers'
    names (``model.output_names``); a Sequential's ``"input"`` and ``"output"``."""
    if model._graph_inputs:
        return [i.name for i in model._graph_inputs], list(model.output_names)
    return ["input"], ["output"]


def to_onnx(model, dtype=None):
    """The ``onnx.ModelProto`` of a built model, batch dimension dynamic: one graph input
    per model input, one output per model output (see :func:`_io_names`).
    dtype: float32 or float64 (default: the model's)."""
    from onnx import TensorProto, checker, helper
    if not getattr(model, "built", False):
        raise ValueError("model: not built; build it (or fit it) before exporting")
    dtype = np.dtype(dtype if dtype is not None else getattr(model, "dtype", np.float32))
    elem = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE}.get(dtype)
    if elem is None:
        raise ValueError(f"dtype: expected float32 or float64, got {dtype}")
    in_names, out_names = _io_names(model)
    g = _Graph(dtype, reserved=in_names + out_names)
    outs = _emit(g, model, in_names)
    for out, name in zip(outs, out_names):
        g.nodes.append(helper.make_node("Identity", [out], [name], name=name + "_node"))
    ins = [helper.make_tensor_value_info(n, elem, ["batch"] + [int(d) for d in model._shapes[i]])
           for i, n in enumerate(in_names)]
    outs = [helper.make_tensor_value_info(n, elem, ["batch"] + [int(d) for d in model._shapes[v]])
            for n, v in zip(out_names, model._outs)]
    graph = helper.make_graph(g.nodes, "fastnn", ins, outs, initializer=g.inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="fastnn")
    proto.ir_version = min(proto.ir_version, 8)  # readable by onnxruntime >= 1.14
    checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model, path, dtype=None):
    """Write ``model`` as an ONNX file at ``path`` (see the module doc), atomically as
    ``Model.save`` writes (``fastnn._safe_files``: a failed write, a full disk, leaves the
    file that was there intact); returns the path."""
    import os
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a file path, got {type(path).__name__}")
    data = to_onnx(model, dtype).SerializeToString()
    _safe_files.atomic_write(path, lambda f: f.write(data))
    return path


_modelfile.EXPORTERS["onnx"] = export_onnx  # model.export(path, format="onnx")
