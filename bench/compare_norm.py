"""BatchNorm forward (training) + backward: fastnn vs PyTorch vs NumPy.

    python bench/compare.py norm [--quick] [--threads 2]

fastnn: ops.batchnorm_forward (training) + ops.batchnorm_backward, float32,
  new outputs each call (as PyTorch); fastnn-out: with out= buffers reused.
PyTorch: two contenders, the faster one is the baseline for the ratio:
  torch-autograd  F.batch_norm(training=True) then y.backward(dy)
  torch-aten      torch.ops.aten.native_batch_norm + native_batch_norm_backward
                  (the same kernels without the autograd graph)
NumPy: the twins in fastnn.reference.

GB/s: fastnn's effective bandwidth counting the 8 array passes a two-pass
BatchNorm needs (forward: read x for the statistics, read x again and write y;
backward: read dy and x for the sums, read them again and write dx), 8*m*n*4
bytes; compare with `compare.py stream` (and with L2/L3 speed at the small
shapes, whose arrays stay in cache between calls).
"""
from __future__ import annotations

import numpy as np

import cases
import common

# the shared shapes, then larger batches beyond L2 (the row path's territory)
CASES = cases.NORM_SHAPES + tuple(s for s in ((8192, 256), (2048, 1024)) if s not in cases.NORM_SHAPES)


def contenders(m, n):
    from fastnn import ops, reference as ref
    x, dy, g, b, rm, rv = cases.norm_inputs(m, n)

    def fastnn_step():
        _, mean, invstd = ops.batchnorm_forward(x, g, b, rm, rv, momentum=0.99, eps=1e-3)
        ops.batchnorm_backward(dy, x, g, mean, invstd)

    rm2, rv2 = rm.copy(), rv.copy()

    def numpy_step():
        _, mean, invstd = ref.batchnorm_forward(x, g, b, rm2, rv2, momentum=0.99, eps=1e-3)
        ref.batchnorm_backward(dy, x, g, mean, invstd)

    y_buf, dx_buf = np.empty_like(x), np.empty_like(x)

    def fastnn_out_step():  # what a layer does: its own buffers, reused every step
        _, mean, invstd = ops.batchnorm_forward(x, g, b, rm, rv, momentum=0.99, eps=1e-3, out=y_buf)
        ops.batchnorm_backward(dy, x, g, mean, invstd, out=dx_buf)

    out = {"fastnn": fastnn_step, "fastnn-out": fastnn_out_step, "numpy": numpy_step}
    if common.have_torch():
        import torch
        import torch.nn.functional as F
        tx = torch.from_numpy(x.copy()).requires_grad_(True)
        tdy = torch.from_numpy(dy)
        tg = torch.from_numpy(g.copy()).requires_grad_(True)
        tb = torch.from_numpy(b.copy()).requires_grad_(True)
        trm, trv = torch.zeros(n), torch.ones(n)

        def torch_autograd():
            tx.grad = tg.grad = tb.grad = None
            y = F.batch_norm(tx, trm, trv, tg, tb, training=True, momentum=0.01, eps=1e-3)
            y.backward(tdy)

        ax, ag, ab = tx.detach(), tg.detach(), tb.detach()
        arm, arv = torch.zeros(n), torch.ones(n)

        def torch_aten():
            with torch.no_grad():
                _, mean, invstd = torch.ops.aten.native_batch_norm(ax, ag, ab, arm, arv, True, 0.01, 1e-3)
                torch.ops.aten.native_batch_norm_backward(tdy, ax, ag, arm, arv, mean, invstd, True, 1e-3,
                                                          [True, True, True])

        out["torch-autograd"] = torch_autograd
        out["torch-aten"] = torch_aten
    return out


def run(quick: bool, threads: int) -> None:
    rows = []
    for m, n in CASES[:2] if quick else CASES:
        t = common.compare(contenders(m, n), rounds=3 if quick else 7)
        us = {k: v * 1e6 for k, v in t.items()}
        torch_best = min((us[k] for k in ("torch-autograd", "torch-aten") if k in us), default=float("nan"))
        rows.append([f"({m},{n})", common.fmt(us["fastnn"]), common.fmt(us["fastnn-out"]), common.fmt(us.get("torch-autograd", float("nan"))),
                     common.fmt(us.get("torch-aten", float("nan"))), common.fmt(us["numpy"]),
                     common.fmt(torch_best / us["fastnn"]), common.fmt(us["numpy"] / us["fastnn"]),
                     common.fmt(8 * m * n * 4 / (us["fastnn-out"] * 1e3))])
    common.print_table(f"BatchNorm fwd(train)+bwd, float32, {threads} threads, median us per step",
                       ["shape", "fastnn", "fastnn-out", "torch-autograd", "torch-aten", "numpy", "x best torch", "x numpy", "GB/s (out)"],
                       rows)
