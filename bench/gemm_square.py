"""Square GEMMs, float64 and float32, 2 threads: fastnn vs NumPy (OpenBLAS) and PyTorch,
interleaved calls with pauses, medians (issue 14's square 1024-4096 target).

    PYTHONPATH=python python3 bench/gemm_square.py [--threads 2] [--sizes 1024 2048 4096]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import fastnn
from fastnn import ops


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    a = ap.parse_args()
    fastnn.set_num_threads(a.threads)
    try:
        import threadpoolctl
        threadpoolctl.threadpool_limits(a.threads)
    except ImportError:
        print("threadpoolctl not installed: NumPy's BLAS uses its own thread count")
    try:
        import torch
        torch.set_num_threads(a.threads)
    except ImportError:
        torch = None
    for dt in (np.float64, np.float32):
        for n in a.sizes:
            rng = np.random.default_rng(0)
            x, y, c = rng.random((n, n)).astype(dt), rng.random((n, n)).astype(dt), np.empty((n, n), dt)
            fs = {"fastnn": lambda: ops.matmul(x, y, out=c), "numpy": lambda: np.matmul(x, y, out=c)}
            if torch is not None:
                tx, ty, tc = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(np.empty_like(c))
                fs["torch"] = lambda: torch.mm(tx, ty, out=tc)
            ts = {k: [] for k in fs}
            for f in fs.values():
                f()
            for _ in range(7 if n < 4096 else 3):
                for k, f in fs.items():
                    time.sleep(0.05)
                    t = time.perf_counter()
                    f()
                    ts[k].append(time.perf_counter() - t)
            g = {k: 2 * n ** 3 / np.median(v) / 1e9 for k, v in ts.items()}
            best = max(v for k, v in g.items() if k != "fastnn")
            print(f"{np.dtype(dt).name} {n}: " + "  ".join(f"{k} {v:.0f} GF/s" for k, v in g.items())
                  + f"  fastnn/best {g['fastnn'] / best:.2f}x")


if __name__ == "__main__":
    main()
