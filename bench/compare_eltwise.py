"""Activations forward and gradient: fastnn vs NumPy vs PyTorch, float32.

ns/element and effective GB/s (forward moves 8 bytes per element: read x,
write y; the gradient 12: read dy and x or y, write dx), and the ratios
numpy/fastnn and torch/fastnn of median times (higher = fastnn faster).
"""
from __future__ import annotations

import numpy as np

import cases
import common
from fastnn import ops

NAMES = list(cases.ACTIVATIONS)
SELU_A, SELU_S = 1.6732632423543772, 1.0507009873554805


def numpy_forward(name, x, out):
    """Straightforward NumPy, with out= buffers where NumPy allows."""
    if name == "relu":
        return lambda: np.maximum(x, 0, out=out)
    if name == "leaky_relu":
        return lambda: np.where(x > 0, x, x * np.float32(0.01))
    if name == "elu":
        return lambda: np.where(x > 0, x, np.expm1(x))
    if name == "selu":
        return lambda: np.where(x > 0, np.float32(SELU_S) * x, np.float32(SELU_S * SELU_A) * np.expm1(x))
    if name == "sigmoid":
        def f():
            np.negative(x, out=out); np.exp(out, out=out); np.add(out, 1, out=out); np.reciprocal(out, out=out)
        return f
    if name == "tanh":
        return lambda: np.tanh(x, out=out)
    if name == "swish":
        def f():
            np.negative(x, out=out); np.exp(out, out=out); np.add(out, 1, out=out); np.divide(x, out, out=out)
        return f
    if name == "softplus":
        return lambda: np.logaddexp(x, np.float32(0), out=out)
    raise KeyError(name)


def numpy_grad(name, dy, x, y, out):
    if name == "relu":
        return lambda: np.multiply(dy, x > 0, out=out)
    if name == "leaky_relu":
        return lambda: np.multiply(dy, np.where(x > 0, np.float32(1), np.float32(0.01)), out=out)
    if name in ("elu", "selu"):
        s = 1.0 if name == "elu" else SELU_S
        a = 1.0 if name == "elu" else SELU_S * SELU_A
        return lambda: np.multiply(dy, np.where(x > 0, np.float32(s), y + np.float32(a)), out=out)
    if name == "sigmoid":
        return lambda: np.multiply(dy, y * (1 - y), out=out)
    if name == "tanh":
        return lambda: np.multiply(dy, 1 - y * y, out=out)
    if name == "swish":
        def f():
            s = 1 / (1 + np.exp(-x))
            np.multiply(dy, s * (1 + x * (1 - s)), out=out)
        return f
    if name == "softplus":
        return lambda: np.multiply(dy, 1 / (1 + np.exp(-x)), out=out)
    raise KeyError(name)


def torch_pair(name, xt, yt, dyt, outt):
    import torch
    import torch.nn.functional as F
    A = torch.ops.aten
    fwd = {
        "relu": lambda: torch.clamp_min(xt, 0, out=outt),
        "leaky_relu": lambda: A.leaky_relu.out(xt, 0.01, out=outt),
        "elu": lambda: A.elu.out(xt, 1.0, 1.0, 1.0, out=outt),
        "selu": lambda: F.selu(xt),
        "sigmoid": lambda: torch.sigmoid(xt, out=outt),
        "tanh": lambda: torch.tanh(xt, out=outt),
        "swish": lambda: A.silu.out(xt, out=outt),
        "softplus": lambda: A.softplus.out(xt, 1.0, 20.0, out=outt),
    }[name]
    bwd = {
        "relu": lambda: A.threshold_backward.grad_input(dyt, yt, 0.0, grad_input=outt),
        "leaky_relu": lambda: A.leaky_relu_backward.grad_input(dyt, xt, 0.01, False, grad_input=outt),
        "elu": lambda: A.elu_backward.grad_input(dyt, 1.0, 1.0, 1.0, False, xt, grad_input=outt),
        "selu": lambda: A.elu_backward.grad_input(dyt, SELU_A, SELU_S, 1.0, False, xt, grad_input=outt),
        "sigmoid": lambda: A.sigmoid_backward.grad_input(dyt, yt, grad_input=outt),
        "tanh": lambda: A.tanh_backward.grad_input(dyt, yt, grad_input=outt),
        "swish": lambda: A.silu_backward.grad_input(dyt, xt, grad_input=outt),
        "softplus": lambda: A.softplus_backward.grad_input(dyt, xt, 1.0, 20.0, grad_input=outt),
    }[name]
    return fwd, bwd


def run(quick: bool = False, threads: int = 2) -> None:
    sizes = cases.ELTWISE_SIZES[:1] if quick else cases.ELTWISE_SIZES
    rounds = 3 if quick else 7
    torch = None
    if common.have_torch():
        import torch
    rows = []
    for n in sizes:
        x, dy = cases.eltwise_inputs(n)
        out = np.empty_like(x)
        for name in NAMES:
            y = ops.activation(name, x)
            tf = tb = None
            if torch is not None:
                xt, yt, dyt, outt = (torch.from_numpy(a) for a in (x, y, dy, np.empty_like(x)))
                tf, tb = torch_pair(name, xt, yt, dyt, outt)
            needs_x = name in ("swish", "softplus", "elu", "selu", "leaky_relu")
            kw = {"x": x} if needs_x else {"y": y}
            for kind, fast, npf, tor, nbytes in [
                ("fwd", lambda: ops.activation(name, x, out=out), numpy_forward(name, x, out), tf, 8),
                ("grad", lambda: ops.activation_grad(name, dy, out=out, **kw),
                 numpy_grad(name, dy, x, y, out), tb, 12),
            ]:
                t = common.compare({"fastnn": fast, "numpy": npf, "torch": tor}, rounds=rounds)
                tt = t.get("torch", float("nan"))
                rows.append([f"{n >> 20}M", name, kind,
                             common.fmt(t["fastnn"] / n * 1e9), common.fmt(t["numpy"] / n * 1e9),
                             common.fmt(tt / n * 1e9), common.fmt(nbytes * n / t["fastnn"] / 1e9),
                             common.fmt(t["numpy"] / t["fastnn"]), common.fmt(tt / t["fastnn"])])
    common.print_table(f"activations, float32, {threads} threads (ns/element, GB/s, speed-up of fastnn)",
                       ["n", "activation", "pass", "fastnn ns", "numpy ns", "torch ns", "fastnn GB/s",
                        "x numpy", "x torch"], rows)


if __name__ == "__main__":
    common.set_threads(2)
    run()
