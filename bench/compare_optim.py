"""Optimizer steps: fastnn's fused updates vs PyTorch's, float32.

    python bench/compare.py optim [--quick] [--threads N]

Cases:
- Adam over the parameters of a 784-512-256-256-128-10 MLP (633,226 values;
  fastnn: one call over the flat arena; PyTorch: its 10 parameter tensors, as a
  model holds them) and over one 10M-element tensor;
- SGD with momentum 0.9 over the same sizes.
Contenders: fastnn, ``torch.optim.Adam(fused=True)``, ``torch.optim.Adam()``
(the default, for-loop implementation on CPU), and for SGD
``torch.optim.SGD(momentum=0.9)`` default and ``fused=True``.
Effective GB/s counts the bytes the update must move: Adam 28 bytes per element
(read p, g, m, v; write p, m, v), SGD-momentum 20 (read p, g, vel; write p, vel);
beside them the STREAM triad figure of this machine (bench/compare_stream.py).
"""
from __future__ import annotations

import numpy as np

import common

MLP = [784, 512, 256, 256, 128, 10]


def mlp_shapes():
    shapes = []
    for fan_in, fan_out in zip(MLP[:-1], MLP[1:]):
        shapes += [(fan_out, fan_in), (fan_out,)]
    return shapes


def cases(quick):
    mlp = mlp_shapes()
    return [("MLP (0.63M)", mlp), ("10M", [(10_000_000,)])]


def torch_setup(shapes, make_opt):
    import torch
    g = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s, generator=g)) for s in shapes]
    for p in params:
        p.grad = torch.randn(p.shape, generator=g) * 1e-2
    opt = make_opt(params)
    opt.step()  # allocate state
    return opt.step


def fastnn_setup(n, kind):
    import fastnn.ops as ops
    rng = np.random.default_rng(0)
    p = rng.standard_normal(n).astype(np.float32)
    g = (rng.standard_normal(n) * 1e-2).astype(np.float32)
    m, v = np.zeros(n, np.float32), np.zeros(n, np.float32)
    state = {"step": 0}
    if kind == "adam":
        def step():
            state["step"] += 1
            ops.adam_update(p, g, m, v, lr=1e-3, step=state["step"])
    else:
        def step():
            ops.sgd_update(p, g, m, lr=1e-3, momentum=0.9)
    return step


def run(quick: bool, threads: int) -> None:
    import compare_stream
    stream = compare_stream.triad_numbers(quick)
    stream_gbs = max(v for k, v in stream.items() if k.startswith("fastnn"))
    have_torch = common.have_torch()
    if have_torch:
        import torch
    else:
        print("PyTorch not installed: its columns are skipped")
    rounds = 3 if quick else 7
    for kind, bytes_per in (("adam", 28), ("sgd", 20)):
        rows = []
        for label, shapes in cases(quick):
            n = sum(int(np.prod(s)) for s in shapes)
            contenders = {"fastnn": fastnn_setup(n, kind)}
            if have_torch:
                if kind == "adam":
                    contenders["torch fused"] = torch_setup(shapes, lambda ps: torch.optim.Adam(ps, lr=1e-3, fused=True))
                    contenders["torch default"] = torch_setup(shapes, lambda ps: torch.optim.Adam(ps, lr=1e-3))
                else:
                    contenders["torch fused"] = torch_setup(
                        shapes, lambda ps: torch.optim.SGD(ps, lr=1e-3, momentum=0.9, fused=True))
                    contenders["torch default"] = torch_setup(
                        shapes, lambda ps: torch.optim.SGD(ps, lr=1e-3, momentum=0.9))
            t = common.compare(contenders, rounds=rounds)
            f = t["fastnn"]
            row = [label, f"{f * 1e6:.0f}", f"{bytes_per * n / f / 1e9:.1f}"]
            for k in ("torch fused", "torch default"):
                if k in t:
                    row += [f"{t[k] * 1e6:.0f}", f"{t[k] / f:.2f}x"]
                else:
                    row += ["-", "-"]
            rows.append(row)
        title = {"adam": "Adam step", "sgd": "SGD momentum step"}[kind]
        common.print_table(
            f"optim: {title}, float32, {threads} threads (us, median; GB/s at {bytes_per} B/elem; "
            f"STREAM triad best {stream_gbs:.1f} GB/s)",
            ["params", "fastnn us", "fastnn GB/s", "torch fused us", "speedup", "torch default us", "speedup"],
            rows)
