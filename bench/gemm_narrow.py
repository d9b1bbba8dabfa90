"""Narrow GEMMs (C at most 16 columns, gemm/narrow_impl.h) vs the blocked loops, NumPy and PyTorch.

    python bench/gemm_narrow.py [--batches 32,64,128,256,512] [--threads 1,2] [--rounds 9]
                                [--layer 128-10] [--dtype float32]

The products of one training step of a layer fan_in -> fan_out with a narrow
output (default the notes' 128 -> 10): forward X·W (n = 10), dX = dY·Wᵀ
(k = 10, n = fan_in: not narrow, for reference) and dW = Xᵀ·dY (n = 10), plus
dW with the bias gradient (ops.matmul_bias_grad). Contenders, in alternation
round after round (common.time_call each, a pause between): fastnn as shipped
("narrow"), fastnn with the narrow path turned off by the tuning hook
("blocked": the packed BLIS loops, the path before it), NumPy and PyTorch.
Reports the median GFLOP/s and the ratios narrow / faster peer and
narrow / blocked; on a shared machine read the ratios, not the absolute numbers.
"""
from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402
import compare_gemm  # noqa: E402


def _cases(batch, fan_in, fan_out):
    """(label, m, n, k, trans_a, trans_b, bias_grad)"""
    return [("X·W", batch, fan_out, fan_in, False, False, False),
            ("dY·Wt", batch, fan_in, fan_out, False, True, False),
            ("Xt·dY", fan_in, fan_out, batch, True, False, False),
            ("Xt·dY+db", fan_in, fan_out, batch, True, False, True)]


def _contenders(m, n, k, dtype, ta, tb, bias_grad):
    """name -> (narrow_max_n for the tuning hook or None, zero-argument callable)"""
    import fastnn.ops as ops
    fns = compare_gemm._contenders(m, n, k, dtype, ta, tb)
    if bias_grad:  # the peers: the product and the column sums, as a Dense layer's backward pass takes them
        rng = np.random.default_rng(1)
        a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
        b = rng.standard_normal((k, n)).astype(dtype)
        w, db = np.empty((m, n), dtype), np.empty(n, dtype)
        fns["fastnn"] = lambda: ops.matmul_bias_grad(a, b, trans_a=True, out=(w, db))
        w2, db2 = np.empty((m, n), dtype), np.empty(n, dtype)

        def numpy_fn():
            np.matmul(a.T, b, out=w2)
            np.sum(b, axis=0, out=db2)
        fns["numpy"] = numpy_fn
        if "torch" in fns:
            import torch
            at, bt = torch.from_numpy(a), torch.from_numpy(b)
            wt, dbt = torch.empty((m, n), dtype=at.dtype), torch.empty(n, dtype=at.dtype)

            def torch_fn():
                torch.matmul(at.t(), bt, out=wt)
                torch.sum(bt, 0, out=dbt)
            fns["torch"] = torch_fn
    out = {"narrow": (-1, fns["fastnn"]), "blocked": (0, fns["fastnn"]), "numpy": (None, fns["numpy"])}
    if "torch" in fns:
        out["torch"] = (None, fns["torch"])
    return out


def measure(case, dtype, threads, rounds, pause, min_time):
    from fastnn import _core
    _, m, n, k, ta, tb, bias_grad = case
    live = _contenders(m, n, k, dtype, ta, tb, bias_grad)
    samples = {name: [] for name in live}
    common.set_threads(threads)
    for _ in range(rounds):
        for name, (narrow, fn) in live.items():
            if narrow is not None:
                _core._gemm_set_tuning(-1, -1, -1, -1, narrow)
            try:
                samples[name].append(common.time_call(fn, min_time))
            finally:
                _core._gemm_set_tuning(-1, -1)
            time.sleep(pause)
    return {name: statistics.median(v) for name, v in samples.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batches", default="32,64,128,256,512")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--layer", default="128-10")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--pause", type=float, default=0.05)
    p.add_argument("--min-time", type=float, default=0.01)
    a = p.parse_args(argv)
    import fastnn
    fan_in, fan_out = (int(x) for x in a.layer.split("-"))
    dtype = np.dtype(a.dtype).type
    print(f"fastnn {fastnn.__version__} isa={fastnn.cpu_info()['isa']} {a.dtype}; median of {a.rounds} "
          f"interleaved rounds")
    for t in (int(x) for x in a.threads.split(",")):
        rows = []
        for batch in (int(b) for b in a.batches.split(",")):
            for case in _cases(batch, fan_in, fan_out):
                label, m, n, k = case[:4]
                med = measure(case, dtype, t, a.rounds, a.pause, a.min_time)
                g = {name: 2.0 * m * n * k / s / 1e9 for name, s in med.items()}
                peer = max(v for name, v in g.items() if name in ("numpy", "torch"))
                rows.append([f"b{batch} {label}", f"{m}x{n}x{k}", f"{g['narrow']:.1f}", f"{g['blocked']:.1f}",
                             f"{g['numpy']:.1f}", f"{g.get('torch', float('nan')):.1f}",
                             f"{g['narrow'] / peer:.2f}x", f"{g['narrow'] / g['blocked']:.2f}x"])
        common.print_table(f"{a.layer} {a.dtype}, {t} thread(s), GFLOP/s",
                           ["product", "m x n x k", "narrow", "blocked", "numpy", "torch", "vs peer", "vs blocked"],
                           rows)


if __name__ == "__main__":
    main()
