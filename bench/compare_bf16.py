"""bf16 GEMM: fastnn bf16 vs fastnn float32 vs PyTorch bf16, GFLOP/s and ratios.

    python bench/compare_bf16.py [--threads 2] [--only square,mlp] [--rounds 7] [--stat median|min]
    python bench/compare.py gemm       # its "bf16" section: square 1024/2048 and the MLP rows

Sections: square products 512/1024/2048, and the training products of the
notes' MLP (784-512-256-256-128-10) at batch 128 and 512: per layer the
forward X·W, and the backward dY·Wᵀ (trans_b) and Xᵀ·dY (trans_a)
(bench/cases.py: mlp_products).

Contenders (float32 arrays in, float32 out for fastnn):
  fastnn bf16      _core.matmul_bf16 (operands rounded to bf16 while packed; the
                   kernel _core.bf16_kernel() names, avx512_bf16 or fallback)
  fastnn fp32      _core.matmul (the float32 GEMM)
  torch bf16       torch.matmul on bfloat16 tensors (converted once, outside the timing)
                   into a preallocated bf16 out: PyTorch's fastest bf16 CPU product here
                   (oneDNN; torch.mm without out= and F.linear on a (n, k) weight were
                   within a few % of it, autocast slower by its conversions)
  torch autocast   torch.matmul on float32 tensors under torch.autocast("cpu", bfloat16)
                   (converts the operands on every call, as a training step does)
Both fastnn contenders are called through _core with a preallocated out, so
Python overhead is the same for both (ops.matmul_bf16 adds its argument checks).
Contenders alternate round after round with pauses (common.compare); medians
(or the best round, --stat min, on a busy machine). "bf16/fp32" is fastnn bf16's
speed over fastnn fp32's; "vs torch" is fastnn bf16's over the faster of the two
torch columns, named in "torch best".
"""
from __future__ import annotations

import argparse
import pathlib
import statistics
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import cases as bench_cases  # noqa: E402
import common  # noqa: E402


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
        C16 = torch.empty((m, n), dtype=torch.bfloat16)

        def autocast():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return torch.matmul(A, B)
        fns["torch bf16"] = lambda: torch.matmul(A16, B16, out=C16)
        fns["torch autocast"] = autocast
    return fns


def run_cases(title, cases, rounds, stat, pause=0.1):
    """One table: per case (label, (m, n, k, trans_a, trans_b)) GFLOP/s of each contender and the ratios."""
    names = ["fastnn bf16", "fastnn fp32", "torch bf16", "torch autocast"]
    rows = []
    for label, (m, n, k, ta, tb) in cases:
        t = _compare(contenders(m, n, k, ta, tb), rounds, stat, pause)
        gf = {name: 2.0 * m * n * k / t[name] / 1e9 if name in t else float("nan") for name in names}
        tbest = max(("torch bf16", "torch autocast"), key=lambda x: gf[x] if gf[x] == gf[x] else -1.0)
        rows.append([label, f"{m}x{n}x{k}", *(common.fmt(gf[x], 4) for x in names),
                     common.fmt(gf["fastnn bf16"] / gf["fastnn fp32"]), common.fmt(gf["fastnn bf16"] / gf[tbest]),
                     tbest if gf[tbest] == gf[tbest] else "-"])
    common.print_table(f"{title} (GFLOP/s, {stat} of {rounds} alternating rounds)",
                       ["case", "m x n x k", *names, "bf16/fp32", "vs torch", "torch best"], rows)


def run_square_mlp(sizes, batches, rounds, stat, pause=0.1, note=""):
    """The square products of sizes, then the MLP's training products at each batch size."""
    from fastnn import _core
    kernel = f"{note}bf16 kernel {_core.bf16_kernel()}"
    if sizes:
        run_cases(f"bf16 square, {kernel}", [(f"{s}^3", (s, s, s, False, False)) for s in sizes], rounds, stat, pause)
    for batch in batches:
        cases = [(label, (m, n, k, ta, tb)) for label, m, n, k, ta, tb in bench_cases.mlp_products(batch)]
        run_cases(f"bf16 MLP training products, batch {batch}, {kernel}", cases, rounds, stat, pause)


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
    run_square_mlp((512, 1024, 2048) if "square" in only else (), (128, 512) if "mlp" in only else (),
                   args.rounds, args.stat)


if __name__ == "__main__":
    main()
