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

import cases
import common
from cases import mlp_shapes


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


def _alternate(contenders: dict, setup, rounds: int, reps: int = 20) -> dict:
    """Median seconds of each contender's call alone (setup() runs untimed before
    every call), contenders alternating round after round with a pause."""
    import statistics
    import time
    samples = {k: [] for k in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            for _ in range(reps):
                setup()
                t0 = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - t0)
            time.sleep(0.1)
    return {k: statistics.median(v) for k, v in samples.items()}


def denormal_rows(quick: bool) -> list:
    """FTZ/DAZ off vs on, 1 thread: rows (case, off us, on us, off/on).

    - Adam over the MLP's 633,226 values (and 65,536, L2-resident) where 90% of
      the units are dead (g = 0) and their first moments denormal (~1e-39):
      m <- b1*m then produces denormal results. m and v are restored before each
      step, untimed.
    - A GEMM, NumPy/OpenBLAS (256x512)@(512x256) float32, 90% of the weights
      denormal (dead units under weight decay), so most products are denormal.
      FTZ/DAZ set on OpenBLAS's (only) thread with torch.set_flush_denormal.
    """
    import fastnn
    import fastnn.ops as ops
    from fastnn import _core
    rng = np.random.default_rng(0)
    rounds = 3 if quick else 7
    rows = []
    old_threads, old_flush = fastnn.get_num_threads(), _core.get_flush_denormals()
    fastnn.set_num_threads(1)
    try:
        for n in (cases.MLP_PARAMS, 1 << 16):
            dead = rng.random(n) < 0.9
            p = rng.standard_normal(n).astype(np.float32)
            g = np.where(dead, 0.0, rng.standard_normal(n) * 1e-2).astype(np.float32)
            m0 = np.where(dead, 1e-39, rng.standard_normal(n) * 1e-3).astype(np.float32)
            v0 = np.where(dead, 1e-30, 1e-5).astype(np.float32)
            m, v = m0.copy(), v0.copy()

            def restore():
                np.copyto(m, m0)
                np.copyto(v, v0)

            def adam(flush):
                def f():
                    _core.set_flush_denormals(flush)
                    ops.adam_update(p, g, m, v, lr=1e-3, step=10)
                return f
            t = _alternate({"off": adam(False), "on": adam(True)}, restore, rounds)
            rows.append([f"Adam n={n:,}, 90% denormal m", f"{t['off'] * 1e6:.0f}", f"{t['on'] * 1e6:.0f}",
                         f"{t['off'] / t['on']:.2f}x"])
        if common.have_torch():
            import torch
            from threadpoolctl import threadpool_limits
            x = rng.standard_normal((256, 512)).astype(np.float32)
            w = np.where(rng.random((512, 256)) < 0.9, 1e-39,
                         rng.standard_normal((512, 256)) * 0.05).astype(np.float32)

            def gemm(flush):
                def f():
                    torch.set_flush_denormal(flush)
                    try:
                        np.matmul(x, w)
                    finally:
                        torch.set_flush_denormal(False)
                return f
            with threadpool_limits(1):
                t = _alternate({"off": gemm(False), "on": gemm(True)}, lambda: None, rounds)
            rows.append(["GEMM 256x512x256, 90% denormal W", f"{t['off'] * 1e6:.0f}", f"{t['on'] * 1e6:.0f}",
                         f"{t['off'] / t['on']:.2f}x"])
    finally:
        fastnn.set_num_threads(old_threads)
        _core.set_flush_denormals(old_flush)
    return rows


def run(quick: bool, threads: int) -> None:
    common.print_table("optim: denormals, FTZ/DAZ off vs on, 1 thread (us, median)",
                       ["case", "off us", "on us", "speedup"], denormal_rows(quick))
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
