"""ns per element of gelu (exact, tanh form) vs swish, fastnn vs torch.nn.functional.gelu,
forward and gradient, float32, 1M elements, 2 threads, interleaved rounds, medians.

    PYTHONPATH=python python3 bench/gelu_speed.py [--n 1048576] [--rounds 31]"""
import argparse
import time

import numpy as np

import fastnn
from fastnn import ops


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1 << 20)
    ap.add_argument("--rounds", type=int, default=31)
    a = ap.parse_args()
    fastnn.set_num_threads(2)
    x = np.random.default_rng(0).standard_normal(a.n).astype(np.float32) * 3
    dy = np.ones_like(x)
    y = np.empty_like(x)
    cases = {
        "swish fwd": lambda: ops.activation("swish", x, out=y),
        "gelu fwd": lambda: ops.activation("gelu", x, out=y),
        "gelu tanh fwd": lambda: ops.activation("gelu", x, alpha=1.0, out=y),
        "swish grad": lambda: ops.activation_grad("swish", dy, x=x, out=y),
        "gelu grad": lambda: ops.activation_grad("gelu", dy, x=x, out=y),
        "gelu tanh grad": lambda: ops.activation_grad("gelu", dy, x=x, alpha=1.0, out=y),
    }
    try:
        import torch
        torch.set_num_threads(2)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        cases["torch gelu fwd"] = lambda: torch.nn.functional.gelu(tx)
        cases["torch gelu tanh fwd"] = lambda: torch.nn.functional.gelu(tx, approximate="tanh")
        cases["torch silu fwd"] = lambda: torch.nn.functional.silu(tx)
    except ImportError:
        pass
    times = {k: [] for k in cases}
    for f in cases.values():
        f()
    for _ in range(a.rounds):
        for k, f in cases.items():
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    for k, ts in times.items():
        print(f"{k:22s} {np.median(ts) / a.n * 1e9:6.3f} ns/element (median of {a.rounds})")


if __name__ == "__main__":
    main()
