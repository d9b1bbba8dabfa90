"""bf16 GEMM: fastnn bf16 vs fastnn float32 vs PyTorch bf16, GFLOP/s and ratios.

    python bench/compare_bf16.py [--threads 2] [--only square,mlp] [--rounds 7] [--stat median|min]

Sections: square products 512/1024/2048, and the training products of the
notes' MLP (784-512-256-256-128-10) at batch 128 and 512: per layer the
forward X·W, and the backward dY·Wᵀ (trans_b) and Xᵀ·dY (trans_a).

Contenders (float32 arrays in, float32 out for fastnn):
  fastnn bf16      _core.matmul_bf16 (operands rounded to bf16 while packed; the
                   kernel _core.bf16_kernel() names, avx512_bf16 or fallback)
  fastnn fp32      _core.matmul (the float32 GEMM)
  torch bf16       torch.matmul on bfloat16 tensors (converted once, outside the timing)
  torch autocast   torch.matmul on float32 tensors under torch.autocast("cpu", bfloat16)
                   (converts the operands on every call, as a training step does)
Both fastnn contenders are called through _core with a preallocated out, so
Python overhead is the same for both (ops.matmul_bf16 adds its argument checks).
Contenders alternate round after round with pauses (common.compare); medians
(or the best round, --stat min, on a busy machine). "bf16/fp32" is fastnn bf16's
speed over fastnn fp32's; "vs torch" is fastnn bf16's over the faster torch bf16.
"""
from __future__ import annotations

import argparse
import pathlib
import statistics
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

MLP = [784, 512, 256, 256, 128, 10]


def _compare(fns, rounds, stat, pause=0.1, min_time=0.05):
    live = {k: f for k, f in fns.items() if f is not None}
    samples = {k: [] for k in live}
    import time
    for _ in range(rounds):
        for name, fn in live.items():
            samples[name].append(common.time_call(fn, min_time))
            time.sleep(pause)
    agg = statistics.median if stat == "median" else min
    return {k: agg(v) for k, v in samples.items()}


def contenders(m, n, k, ta, tb, seed=0):
    from fastnn import _core
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    c = np.empty((m, n), np.float32)
    fns = {
        "fastnn bf16": lambda: _core.matmul_bf16(a, b, c, ta, tb, 1.0, 0.0, None, None, 0.0),
        "fastnn fp32": lambda: _core.matmul(a, b, c, ta, tb, 1.0, 0.0, None, None, 0.0),
        "torch bf16": None,
        "torch autocast": None,
    }
    if common.have_torch():
        import torch
        ta_t, tb_t = torch.from_numpy(a), torch.from_numpy(b)
        A = ta_t.T if ta else ta_t
        B = tb_t.T if tb else tb_t
        A16, B16 = A.to(torch.bfloat16), B.to(torch.bfloat16)

        def autocast():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return torch.matmul(A, B)
        fns["torch bf16"] = lambda: torch.matmul(A16, B16)
        fns["torch autocast"] = autocast
    return fns


def run_cases(title, cases, args):
    names = ["fastnn bf16", "fastnn fp32", "torch bf16", "torch autocast"]
    rows = []
    for label, (m, n, k, ta, tb) in cases:
        t = _compare(contenders(m, n, k, ta, tb), args.rounds, args.stat)
        gf = {name: 2.0 * m * n * k / t[name] / 1e9 if name in t else float("nan") for name in names}
        torch_best = max(gf["torch bf16"], gf["torch autocast"])
        rows.append([label, *(common.fmt(gf[x], 4) for x in names), common.fmt(gf["fastnn bf16"] / gf["fastnn fp32"]),
                     common.fmt(gf["fastnn bf16"] / torch_best)])
    common.print_table(f"{title} (GFLOP/s, {args.stat} of {args.rounds} alternating rounds)",
                       ["case", *names, "bf16/fp32", "vs torch"], rows)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", default="square,mlp")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--stat", choices=["median", "min"], default="median")
    args = p.parse_args(argv)
    import fastnn
    from fastnn import _core
    common.set_threads(args.threads)
    print(f"fastnn {fastnn.__version__}: isa {_core.active_isa()}, bf16 kernel {_core.bf16_kernel()}, "
          f"{args.threads} threads; CPU {fastnn.cpu_info()['brand']}")
    only = set(args.only.split(","))
    if "square" in only:
        run_cases("square", [(f"{s}^3", (s, s, s, False, False)) for s in (512, 1024, 2048)], args)
    if "mlp" in only:
        for batch in (128, 512):
            cases = []
            for fin, fout in zip(MLP[:-1], MLP[1:]):
                cases.append((f"b{batch} X·W {fin}->{fout}", (batch, fout, fin, False, False)))
                cases.append((f"b{batch} dY·Wt {fout}->{fin}", (batch, fin, fout, False, True)))
                cases.append((f"b{batch} Xt·dY {fin}x{fout}", (fin, fout, batch, True, False)))
            run_cases(f"MLP training products, batch {batch}", cases, args)


if __name__ == "__main__":
    main()
