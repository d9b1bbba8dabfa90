"""Transposed views as GEMM operands: ``ops.matmul(x.T, dy)`` (read in place since the
view is given as the array it transposes, the flag flipped) against the explicit flag
``ops.matmul(x, dy, trans_a=True)``, a pre-made contiguous copy, and NumPy's ``x.T @ dy``;
interleaved calls with pauses, medians. The shapes: the notes' MLP weight gradients.

    PYTHONPATH=python python3 bench/gemm_views.py [--threads 1] [--batch 128] [--rounds 7]
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np

from fastnn import ops

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    common.set_threads(a.threads)
    print(f"threads={a.threads} batch={a.batch}: GFLOP/s, median of {a.rounds} rounds of 20 calls")
    for k, n in [(784, 512), (512, 256), (256, 256), (256, 128)]:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((a.batch, k)).astype(np.float32)
        dy = rng.standard_normal((a.batch, n)).astype(np.float32)
        out = np.empty((k, n), np.float32)
        fs = {"ops.matmul(x.T, dy)": lambda: ops.matmul(x.T, dy, out=out),
              "trans_a=True": lambda: ops.matmul(x, dy, trans_a=True, out=out),
              "numpy x.T @ dy": lambda: np.matmul(x.T, dy, out=out)}
        ts = {name: [] for name in fs}
        for _ in range(a.rounds):
            for name, f in fs.items():
                time.sleep(0.02)
                t = time.perf_counter()
                for _ in range(20):
                    f()
                ts[name].append((time.perf_counter() - t) / 20)
        flops = 2.0 * a.batch * k * n
        print(f"  {k}x{n}x{a.batch}: " + "  ".join(f"{name} {flops / np.median(v) / 1e9:.0f}" for name, v in ts.items()))


if __name__ == "__main__":
    main()
