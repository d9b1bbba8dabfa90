"""A/B of fastnn builds on BatchNorm fwd(train)+bwd, with PyTorch's aten kernels as
the yardstick: each variant runs in its own subprocess, round after round
(interleaved, short pauses); inside a child, fastnn and torch-aten steps alternate
call by call. The table gives medians over rounds of each child's median step.

    python3 bench/norm_ab.py --threads 2 --rounds 6 old=/work/main/python new=python

fastnn steps use out= buffers (what a layer does); torch-aten is
torch.ops.aten.native_batch_norm + native_batch_norm_backward (new outputs).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SHAPES = ((128, 512), (256, 1024), (4096, 512), (8192, 256), (2048, 1024), (16384, 512))

CHILD = r"""
import json, sys, time, statistics
import numpy as np
import fastnn
from fastnn import ops
threads, reps, shapes = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
fastnn.set_num_threads(threads)
try:
    import torch
    torch.set_num_threads(threads)
except ImportError:
    torch = None
out = {}
for m, n in shapes:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((m, n), dtype=np.float32)
    dy = rng.standard_normal((m, n), dtype=np.float32)
    g, b = np.ones(n, np.float32), np.zeros(n, np.float32)
    rm, rv = np.zeros(n, np.float32), np.ones(n, np.float32)
    fo = (np.empty_like(x), np.empty(n, np.float32), np.empty(n, np.float32))
    bo = (np.empty_like(x), np.empty(n, np.float32), np.empty(n, np.float32))

    def fast():
        _, mean, inv = ops.batchnorm_forward(x, g, b, rm, rv, momentum=0.99, eps=1e-3, out=fo)
        ops.batchnorm_backward(dy, x, g, mean, inv, out=bo)
    steps = {"fastnn": fast}
    if torch is not None:
        tx, tdy, tg, tb = map(torch.from_numpy, (x, dy, g, b))
        trm, trv = torch.zeros(n), torch.ones(n)

        def aten():
            _, mean, inv = torch.ops.aten.native_batch_norm(tx, tg, tb, trm, trv, True, 0.01, 1e-3)
            torch.ops.aten.native_batch_norm_backward(tdy, tx, tg, trm, trv, mean, inv, True, 1e-3,
                                                      [True, True, True])
        steps["torch-aten"] = aten
    inner = max(1, int(2e6 // (m * n)))
    samples = {k: [] for k in steps}
    for f in steps.values():
        f()
    for _ in range(reps):
        for k, f in steps.items():
            t0 = time.perf_counter()
            for _ in range(inner):
                f()
            samples[k].append((time.perf_counter() - t0) / inner)
    out[f"{m}x{n}"] = {k: statistics.median(v) * 1e6 for k, v in samples.items()}
print(json.dumps(out))
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variants", nargs="+", help="NAME=PYTHONPATH")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--shapes", default=",".join(f"{m}x{n}" for m, n in SHAPES), help="MxN,MxN,...")
    a = ap.parse_args()
    shapes = [[int(v) for v in s.split("x")] for s in a.shapes.split(",")]
    variants = dict(v.split("=", 1) for v in a.variants)
    res = {name: [] for name in variants}
    for _ in range(a.rounds):
        for name, path in variants.items():
            env = dict(os.environ, PYTHONPATH=path)
            r = subprocess.run([sys.executable, "-c", CHILD, str(a.threads), str(a.reps), json.dumps(shapes)],
                               env=env, capture_output=True, text=True, check=True)
            res[name].append(json.loads(r.stdout))
            time.sleep(0.5)
    print(f"BatchNorm fwd(train)+bwd float32, {a.threads} threads, {a.rounds} rounds: median us per step "
          "(range over rounds); x aten = torch-aten / fastnn")
    for m, n in shapes:
        key = f"{m}x{n}"
        cells = []
        for name in variants:
            f = [r[key]["fastnn"] for r in res[name]]
            t = [r[key].get("torch-aten", float("nan")) for r in res[name]]
            ratio = [ti / fi for ti, fi in zip(t, f)]
            cells.append(f"{name} {statistics.median(f):7.0f} ({min(f):.0f}-{max(f):.0f}) "
                         f"x aten {statistics.median(ratio):.2f} ({min(ratio):.2f}-{max(ratio):.2f})")
        print(f"{key:>10}  " + " | ".join(cells))


if __name__ == "__main__":
    main()
