"""Softmax cross-entropy forward + backward: fastnn vs PyTorch vs NumPy.

    python bench/compare.py loss [--quick] [--threads 2]

fastnn: ops.softmax_cross_entropy(logits, int64 ids) -> (mean loss, dlogits), float32.
PyTorch: two contenders, the faster one is the baseline for the ratio:
  torch-autograd  F.cross_entropy(z, labels) then loss.backward()
  torch-aten      _log_softmax + nll_loss_forward + nll_loss_backward +
                  _log_softmax_backward_data (the same kernels, no autograd graph)
NumPy: the twin in fastnn.reference.
"""
from __future__ import annotations


import cases
import common

CASES = cases.LOSS_SHAPES


def contenders(m, C):
    from fastnn import ops, reference as ref
    z, ids, _ = cases.loss_inputs(m, C)
    out = {"fastnn": lambda: ops.softmax_cross_entropy(z, ids),
           "numpy": lambda: ref.softmax_cross_entropy(z, ids)}
    if common.have_torch():
        import torch
        import torch.nn.functional as F
        tz = torch.from_numpy(z.copy()).requires_grad_(True)
        tl = torch.from_numpy(ids)

        def torch_autograd():
            tz.grad = None
            loss = F.cross_entropy(tz, tl)
            loss.backward()
            return loss.item()

        az = tz.detach()
        one = torch.ones(())

        def torch_aten():
            with torch.no_grad():
                lsm = torch.ops.aten._log_softmax(az, 1, False)
                loss, total = torch.ops.aten.nll_loss_forward(lsm, tl, None, 1, -100)
                dlsm = torch.ops.aten.nll_loss_backward(one, lsm, tl, None, 1, -100, total)
                torch.ops.aten._log_softmax_backward_data(dlsm, lsm, 1, torch.float32)
                return loss.item()

        out["torch-autograd"] = torch_autograd
        out["torch-aten"] = torch_aten
    return out


def run(quick: bool, threads: int) -> None:
    rows = []
    for m, C in CASES:
        t = common.compare(contenders(m, C), rounds=3 if quick else 7)
        us = {k: v * 1e6 for k, v in t.items()}
        torch_best = min((us[k] for k in ("torch-autograd", "torch-aten") if k in us), default=float("nan"))
        rows.append([f"({m},{C})", common.fmt(us["fastnn"]), common.fmt(us.get("torch-autograd", float("nan"))),
                     common.fmt(us.get("torch-aten", float("nan"))), common.fmt(us["numpy"]),
                     common.fmt(torch_best / us["fastnn"]), common.fmt(us["numpy"] / us["fastnn"])])
    common.print_table(f"softmax cross-entropy fwd+bwd, float32, {threads} threads, median us per call",
                       ["shape", "fastnn", "torch-autograd", "torch-aten", "numpy", "x best torch", "x numpy"],
                       rows)
