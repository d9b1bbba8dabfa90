"""ONNX graphs of the Keras 3 activations beyond the classic set, for :mod:`fastnn.export`,
built from operators onnxruntime runs in float32 and float64 alike (its HardSigmoid,
HardSwish, Softsign and Mish kernels are float-only, and HardSigmoid's default slope
is not Keras 3's 1/6):
relu6 -> Min(Relu(x), 6); hard_sigmoid -> Min(Relu(x + 3), 6) / 6; hard_silu, hard_swish ->
x * hard_sigmoid; softsign -> x / (1 + |x|); exponential -> Exp; mish -> x * Tanh(softplus);
log_sigmoid -> Min(x, 0) - log(1 + exp(-|x|)); celu -> Relu(x) + alpha (exp(Min(x, 0) / alpha) - 1);
hard_tanh -> Min(Max(x, -1), 1); squareplus -> Where(x < 0, b / (2 (s - x)), (x + s) / 2),
s = Sqrt(x^2 + b); sparse_plus -> (z + 1)^2 / 4 + Relu(x - 1), z = Min(Max(x, -1), 1);
tanh_shrink -> x - Tanh(x) (Keras's formula: near 0 its error is an ulp of x, not of the
result); hard_shrink -> Where(|x| > t, x, x - x); soft_shrink -> Where(x > t, x - t,
Where(x < -t, x + t, x - x)), t the threshold (x - x: 0, or NaN for NaN, as the kernels)."""
from __future__ import annotations

MORE_ACTIVATIONS = ("relu6", "hard_sigmoid", "hard_silu", "hard_swish", "softsign", "exponential", "mish",
                    "log_sigmoid", "celu", "hard_tanh", "squareplus", "sparse_plus", "tanh_shrink", "hard_shrink",
                    "soft_shrink")


def _log1p_exp_neg_abs(g, x, base):
    """log(1 + exp(-|x|)), the stable tail of softplus."""
    e = g.node("Exp", [g.node("Neg", [g.node("Abs", [x], base + "_abs")], base + "_nabs")], base + "_exp")
    return g.node("Log", [g.node("Add", [e, g.const("one", 1.0)], base + "_1p")], base + "_log")


def _hard_sigmoid(g, x, base):
    r = g.node("Relu", [g.node("Add", [x, g.const("three", 3.0)], base + "_x3")], base + "_relu")
    return g.node("Div", [g.node("Min", [r, g.const("six", 6.0)], base + "_relu6"), g.const("six", 6.0)], base)


def _squareplus(g, x, b):
    s = g.node("Sqrt", [g.node("Add", [g.node("Mul", [x, x], "squareplus_x2"), g.const("squareplus_b", b)],
                               "squareplus_r")], "squareplus_s")
    pos = g.node("Mul", [g.node("Add", [x, s], "squareplus_xs"), g.const("half", 0.5)], "squareplus_pos")
    den = g.node("Mul", [g.node("Sub", [s, x], "squareplus_sx"), g.const("two", 2.0)], "squareplus_den")
    neg = g.node("Div", [g.const("squareplus_b", b), den], "squareplus_neg")
    return g.node("Where", [g.node("Less", [x, g.const("zero", 0.0)], "squareplus_lt"), neg, pos], "squareplus")


def more_activation(g, x, name, alpha):
    """The output of `name` (one of MORE_ACTIVATIONS) applied to x, added to graph g."""
    if name == "relu6":
        return g.node("Min", [g.node("Relu", [x], "relu6_relu"), g.const("six", 6.0)], "relu6")
    if name == "hard_sigmoid":
        return _hard_sigmoid(g, x, "hard_sigmoid")
    if name in ("hard_silu", "hard_swish"):
        return g.node("Mul", [x, _hard_sigmoid(g, x, "hard_silu_gate")], "hard_silu")
    if name == "softsign":
        den = g.node("Add", [g.node("Abs", [x], "softsign_abs"), g.const("one", 1.0)], "softsign_den")
        return g.node("Div", [x, den], "softsign")
    if name == "exponential":
        return g.node("Exp", [x], "exponential")
    if name == "mish":
        sp = g.node("Add", [g.node("Relu", [x], "mish_pos"), _log1p_exp_neg_abs(g, x, "mish_sp")], "mish_softplus")
        return g.node("Mul", [x, g.node("Tanh", [sp], "mish_tanh")], "mish")
    neg = g.node("Min", [x, g.const("zero", 0.0)], name + "_neg")
    if name == "log_sigmoid":
        return g.node("Sub", [neg, _log1p_exp_neg_abs(g, x, "log_sigmoid_sp")], "log_sigmoid")
    if name == "celu":
        a = g.const("celu_alpha", float(alpha))
        em1 = g.node("Sub", [g.node("Exp", [g.node("Div", [neg, a], "celu_u")], "celu_exp"), g.const("one", 1.0)],
                     "celu_expm1")
        return g.node("Add", [g.node("Relu", [x], "celu_pos"), g.node("Mul", [em1, a], "celu_scaled")], "celu")
    if name == "hard_tanh":
        lo = g.node("Max", [x, g.const("minus_one", -1.0)], "hard_tanh_lo")
        return g.node("Min", [lo, g.const("one", 1.0)], "hard_tanh")
    if name == "squareplus":
        return _squareplus(g, x, float(alpha))
    if name == "sparse_plus":
        z = g.node("Min", [g.node("Max", [x, g.const("minus_one", -1.0)], "sparse_plus_lo"), g.const("one", 1.0)],
                   "sparse_plus_z")
        u = g.node("Add", [z, g.const("one", 1.0)], "sparse_plus_u")
        q = g.node("Mul", [g.node("Mul", [u, u], "sparse_plus_u2"), g.const("quarter", 0.25)], "sparse_plus_q")
        lin = g.node("Relu", [g.node("Sub", [x, g.const("one", 1.0)], "sparse_plus_xm1")], "sparse_plus_lin")
        return g.node("Add", [q, lin], "sparse_plus")
    if name == "tanh_shrink":
        return g.node("Sub", [x, g.node("Tanh", [x], "tanh_shrink_tanh")], "tanh_shrink")
    if name in ("hard_shrink", "soft_shrink"):
        t = g.const(name + "_threshold", float(alpha))
        zero = g.node("Sub", [x, x], name + "_zero")  # 0, NaN where x is NaN
        if name == "hard_shrink":
            keep = g.node("Greater", [g.node("Abs", [x], "hard_shrink_abs"), t], "hard_shrink_keep")
            return g.node("Where", [keep, x, zero], "hard_shrink")
        below = g.node("Where", [g.node("Less", [x, g.node("Neg", [t], "soft_shrink_neg_t")], "soft_shrink_lt"),
                                 g.node("Add", [x, t], "soft_shrink_plus"), zero], "soft_shrink_below")
        above = g.node("Sub", [x, t], "soft_shrink_minus")
        return g.node("Where", [g.node("Greater", [x, t], "soft_shrink_gt"), above, below], "soft_shrink")
    raise ValueError(f"name: {name!r} is not one of {', '.join(MORE_ACTIVATIONS)}")
