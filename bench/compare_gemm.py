"""GEMM: fastnn.ops.matmul vs NumPy (OpenBLAS) and PyTorch, GFLOP/s and ratios.

    python bench/compare.py gemm [--quick] [--threads 2]
    python bench/compare_gemm.py [--quick] [--threads 2] [--only square,mlp,f64,epilogue,backward,threads]

Sections ("bf16": see below): square float32 products (256..4096; 4096 not with --quick), the
training products of a 784-512-256-256-128-10 MLP at batch 64/128/256
(forward X·W, backward dY·Wᵀ and Xᵀ·dY per layer), float64 square 1024, the
fused bias+activation epilogue against a separate pass, the Dense backward
pass as two fused calls (ops.matmul_bias_grad, ops.matmul_act_grad) against
four separate passes and PyTorch, fastnn at 1 vs n
threads on small shapes (the threading threshold), and the fraction of the
measured FMA peak (bench/peak_flops.py). "bf16": fastnn's bf16 GEMM against
its fp32 GEMM and PyTorch bf16 on square 1024/2048 and the MLP's training products at
batch 128 and 512 (bench/compare_bf16.py: contenders and table). Contenders run in alternation with
pauses (common.compare); numbers are medians. "ratio" = fastnn speed / the
faster of NumPy and PyTorch.

On a machine shared with other busy processes the medians mostly measure the
neighbours: --stat min (or FASTNN_BENCH_STAT=min under compare.py) keeps the
same alternation but reports the best round of each contender instead.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import cases as bench_cases  # noqa: E402
import common  # noqa: E402

MLP = bench_cases.MLP
STAT = os.environ.get("FASTNN_BENCH_STAT", "median")


def _compare(fns, rounds, pause, min_time=0.02):
    """Seconds per call of each contender, alternating: median (common.compare) or best round."""
    if STAT == "median":
        return common.compare(fns, rounds=rounds, pause=pause, min_time=min_time)
    best = {k: float("inf") for k in fns if fns[k] is not None}
    for _ in range(rounds):
        for name in best:
            best[name] = min(best[name], common.time_call(fns[name], min_time))
            time.sleep(pause)
    return best


def _torch():
    if not common.have_torch():
        return None
    import torch
    return torch


def _contenders(m, n, k, dtype, ta=False, tb=False, seed=0):
    """Zero-argument callables computing op(a) @ op(b) into preallocated outputs."""
    import fastnn.ops as ops
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    c = np.empty((m, n), dtype)
    av = a.T if ta else a
    bv = b.T if tb else b
    c_np = np.empty((m, n), dtype)
    fns = {
        "fastnn": lambda: ops.matmul(a, b, trans_a=ta, trans_b=tb, out=c),
        "numpy": lambda: np.matmul(av, bv, out=c_np),
    }
    torch = _torch()
    if torch is not None:
        ta_, tb_ = torch.from_numpy(a), torch.from_numpy(b)
        at = ta_.t() if ta else ta_
        bt = tb_.t() if tb else tb_
        ct = torch.empty((m, n), dtype=at.dtype)
        fns["torch"] = lambda: torch.matmul(at, bt, out=ct)
    return fns


def _row(label, m, n, k, times, peak=None):
    flops = 2.0 * m * n * max(k, 1)
    g = {name: flops / t / 1e9 for name, t in times.items()}
    best_other = max(v for kk, v in g.items() if kk != "fastnn")
    row = [label, f"{m}x{n}x{k}", common.fmt(g["fastnn"]), common.fmt(g["numpy"]),
           common.fmt(g.get("torch", float("nan"))), f"{g['fastnn'] / best_other:.2f}x"]
    if peak is not None:
        row.append(f"{100 * g['fastnn'] / peak:.0f}%")
    return row, g["fastnn"] / best_other


def _measure(cases, rounds, pause, peak=None):
    rows, ratios = [], []
    for label, m, n, k, dtype, ta, tb in cases:
        min_time = 0.05 if 2 * m * n * k > 2e9 else 0.02
        times = _compare(_contenders(m, n, k, dtype, ta, tb), rounds, pause, min_time)
        row, r = _row(label, m, n, k, times, peak)
        rows.append(row)
        ratios.append(r)
    return rows, ratios


HEADER = ["case", "m x n x k", "fastnn GF/s", "numpy GF/s", "torch GF/s", "ratio"]


def square(quick, threads, peak, rounds, pause):
    sizes = [256, 512, 1024, 2048] + ([] if quick else [4096])
    cases = [(f"square {s}", s, s, s, np.float32, False, False) for s in sizes]
    rows, _ = _measure(cases, rounds, pause, peak)
    common.print_table(f"float32 square, {threads} threads (peak = measured {threads}-thread FMA peak "
                       f"{peak:.0f} GF/s)", HEADER + ["of peak"], rows)


def mlp_cases(batches):
    return [(label, m, n, k, np.float32, ta, tb)
            for bsz in batches for label, m, n, k, ta, tb in bench_cases.mlp_products(bsz)]


def mlp(quick, threads, peak, rounds, pause):
    rows, ratios = _measure(mlp_cases([64, 128, 256]), rounds, pause)
    common.print_table(f"float32 MLP {'-'.join(map(str, MLP))} training products, {threads} threads",
                       HEADER, rows)
    worst = min(range(len(ratios)), key=lambda i: ratios[i])
    print(f"min ratio {ratios[worst]:.2f}x ({rows[worst][0]}), geometric mean "
          f"{float(np.exp(np.mean(np.log(ratios)))):.2f}x")


def f64(quick, threads, peak, rounds, pause):
    rows, _ = _measure([("f64 square 1024", 1024, 1024, 1024, np.float64, False, False)], rounds, pause)
    common.print_table(f"float64, {threads} threads", HEADER, rows)


def epilogue(quick, threads, peak, rounds, pause):
    """Dense forward act(X·W + b): one fused call vs product then separate passes."""
    import fastnn.ops as ops
    torch = _torch()
    rows = []
    for bsz, fan_in, fan_out in [(64, 784, 512), (128, 512, 256), (256, 256, 128), (256, 784, 512)]:
        for act in ("relu", "sigmoid"):
            rng = np.random.default_rng(0)
            x = rng.standard_normal((bsz, fan_in)).astype(np.float32)
            w = rng.standard_normal((fan_in, fan_out)).astype(np.float32)
            bias = rng.standard_normal(fan_out).astype(np.float32)
            y = np.empty((bsz, fan_out), np.float32)
            bias_rows = np.broadcast_to(bias, y.shape).copy()

            def separate():
                ops.matmul(x, w, out=y)
                np.add(y, bias, out=y)
                ops.activation(act, y, out=y)

            fns = {
                "fused": lambda: ops.matmul(x, w, bias=bias, activation=act, out=y),
                "separate": separate,
                "no epilogue": lambda: ops.matmul(x, w, out=y),
            }
            if torch is not None:
                xt, wt, bt = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(bias)
                yt = torch.empty((bsz, fan_out))
                tact = torch.relu_ if act == "relu" else torch.sigmoid_

                def torch_fn():
                    torch.addmm(bt, xt, wt, out=yt)
                    tact(yt)
                fns["torch addmm+act"] = torch_fn
            del bias_rows
            t = _compare(fns, rounds, pause)
            rows.append([f"b{bsz} {fan_in}-{fan_out} {act}"] + [f"{1e6 * t[kk]:.1f}" for kk in fns] +
                        [f"{t['separate'] / t['fused']:.2f}x"])
    hdr = ["case", "fused us", "separate us", "no-epilogue us"] + (["torch us"] if torch is not None else []) + \
          ["separate/fused"]
    common.print_table(f"fused bias+activation epilogue vs a separate pass, {threads} threads", hdr, rows)


def backward(quick, threads, peak, rounds, pause):
    """Dense backward (dz given, relu before the layer): dW, db and dz_prev in two fused
    calls (matmul_bias_grad, matmul_act_grad) vs the same with separate passes vs PyTorch."""
    import fastnn.ops as ops
    torch = _torch()
    rows = []
    for bsz, fan_in, fan_out in [(64, 784, 512), (128, 512, 256), (128, 256, 128), (256, 784, 512), (256, 256, 256)]:
        rng = np.random.default_rng(0)
        x = np.maximum(rng.standard_normal((bsz, fan_in)), 0).astype(np.float32)  # the relu output h
        w = rng.standard_normal((fan_in, fan_out)).astype(np.float32)
        dz = rng.standard_normal((bsz, fan_out)).astype(np.float32)
        dw, db, dx = np.empty_like(w), np.empty(fan_out, np.float32), np.empty_like(x)

        def fused():
            ops.matmul_bias_grad(x, dz, trans_a=True, out=(dw, db))
            ops.matmul_act_grad(dz, w, trans_b=True, activation="relu", y=x, out=dx)

        def separate():
            ops.matmul(x, dz, trans_a=True, out=dw)
            ops.column_sum(dz, out=db)
            ops.matmul(dz, w, trans_b=True, out=dx)
            ops.activation_grad("relu", dx, y=x, out=dx)

        fns = {"fused": fused, "separate": separate}
        if torch is not None:
            xt, wt, dzt = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(dz)
            dwt, dbt, dxt = torch.from_numpy(dw.copy()), torch.from_numpy(db.copy()), torch.from_numpy(dx.copy())

            def torch_fn():
                torch.mm(xt.t(), dzt, out=dwt)
                torch.sum(dzt, 0, out=dbt)
                torch.mm(dzt, wt.t(), out=dxt)
                dxt.masked_fill_(xt <= 0, 0.0)
            fns["torch"] = torch_fn
        t = _compare(fns, rounds, pause)
        rows.append([f"b{bsz} {fan_in}-{fan_out}"] + [f"{1e6 * t[kk]:.1f}" for kk in fns] +
                    [f"{t['separate'] / t['fused']:.2f}x"] +
                    ([f"{t['torch'] / t['fused']:.2f}x"] if torch is not None else []))
    hdr = ["case", "fused us", "separate us"] + (["torch us"] if torch is not None else []) + ["separate/fused"] + \
          (["torch/fused"] if torch is not None else [])
    common.print_table(f"Dense backward (relu): 2 fused calls vs 4 separate passes, {threads} threads", hdr, rows)


def bf16(quick, threads, peak, rounds, pause):
    """bf16 GEMM (issue 15): fastnn matmul_bf16 vs fastnn fp32 vs PyTorch bf16, square and
    the MLP's training products at batch 128 and 512 (bench/compare_bf16.py's contenders)."""
    import compare_bf16
    compare_bf16.run_square_mlp((1024, 2048), (128, 512), rounds, STAT, pause, f"{threads} threads, ")


def thread_scaling(quick, threads, peak, rounds, pause):
    """fastnn alone at 1 vs n threads: small problems must not get slower with threads."""
    import fastnn
    import fastnn.ops as ops
    rows = []
    shapes = [(64, 10, 128), (64, 128, 10), (128, 10, 64), (32, 64, 64), (64, 64, 64), (64, 128, 256),
              (64, 256, 256), (128, 256, 256), (64, 512, 784), (784, 512, 64)]
    for m, n, k in shapes:
        rng = np.random.default_rng(0)
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        c = np.empty((m, n), np.float32)

        def at(nt):
            def fn():
                fastnn.set_num_threads(nt)
                ops.matmul(a, b, out=c)
            return fn
        t = _compare({"1": at(1), str(threads): at(threads)}, rounds, pause)
        rows.append([f"{m}x{n}x{k}", m * n * k, f"{1e6 * t['1']:.1f}", f"{1e6 * t[str(threads)]:.1f}",
                     f"{t['1'] / t[str(threads)]:.2f}x"])
    fastnn.set_num_threads(threads)
    common.print_table("fastnn thread scaling on small products (threshold check)",
                       ["m x n x k", "MACs", "1 thread us", f"{threads} threads us", "speed-up"], rows)


SECTIONS = {"square": square, "mlp": mlp, "f64": f64, "epilogue": epilogue, "backward": backward,
            "threads": thread_scaling, "bf16": bf16}


def run(quick: bool, threads: int, only=None) -> None:
    import peak_flops
    import fastnn
    peaks = peak_flops.measure(threads)
    print("\n## measured float32 FMA peak (bench/peak_flops.py)")
    for (isa, n), g in peaks.items():
        print(f"  {isa:7s} {n} thread(s): {g:6.1f} GF/s")
    isa = fastnn.cpu_info()["isa"]
    peak = max(peaks.get(("avx2", threads), 0.0), peaks.get(("avx512", threads), 0.0) or 0.0)
    print(f"fastnn isa={isa}; fraction of peak below is of the larger of the two: {peak:.0f} GF/s")
    print(f"statistic: {STAT} over alternating rounds")
    rounds, pause = (3, 0.05) if quick else (5, 0.1)
    common.set_threads(threads)
    for name, fn in SECTIONS.items():
        if only is None or name in only:
            fn(quick, threads, peak, rounds, pause)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", default=None, help="comma list of " + ",".join(SECTIONS))
    p.add_argument("--stat", choices=["median", "min"], default=STAT)
    args = p.parse_args()
    STAT = args.stat
    run(args.quick, args.threads, None if args.only is None else args.only.split(","))
