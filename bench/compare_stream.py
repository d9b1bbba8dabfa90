"""Memory bandwidth of this machine: a STREAM-style triad a = b + s*c, float32.

    python bench/compare.py stream

Bytes counted as in STREAM: 3 arrays x 4 bytes per element (two reads, one
write; write-allocate traffic not counted). Contenders:
- numpy: ``np.multiply(c, s, out=a); np.add(a, b, out=a)`` (NumPy has no fused
  triad, so it makes two passes: its figure is a lower bound of the machine);
- fastnn: ``sgd_update(a, c, lr=-s)``, i.e. a += s*c in place in one fused pass
  (2 reads + 1 write: the triad's traffic), with 1 and 2 threads.
"""
from __future__ import annotations

import numpy as np

import common

BYTES_PER_ELEM = 12


def triad_numbers(quick: bool, n: int | None = None) -> dict:
    """GB/s for each contender (name -> GB/s), measured in alternation."""
    import fastnn
    import fastnn.ops as ops
    n = n or (8 << 20 if quick else 16 << 20)  # 32 / 64 MiB per array: far beyond L3
    rng = np.random.default_rng(0)
    a = rng.standard_normal(n).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    c = rng.standard_normal(n).astype(np.float32)
    s = np.float32(1e-7)

    def numpy_triad():
        np.multiply(c, s, out=a)
        np.add(a, b, out=a)

    def fastnn_triad(threads):
        def f():
            fastnn.set_num_threads(threads)
            ops.sgd_update(a, c, lr=float(s))  # a -= s*c: same traffic
        return f

    old = fastnn.get_num_threads()
    try:
        times = common.compare({
            "numpy (2 passes)": numpy_triad,
            "fastnn 1 thread": fastnn_triad(1),
            "fastnn 2 threads": fastnn_triad(2),
        }, rounds=3 if quick else 7)
    finally:
        fastnn.set_num_threads(old)
    return {k: BYTES_PER_ELEM * n / t / 1e9 for k, t in times.items()}


def run(quick: bool, threads: int) -> None:
    gbs = triad_numbers(quick)
    rows = [[k, common.fmt(v, 3)] for k, v in gbs.items()]
    common.print_table("stream: triad a = b + s*c, float32, GB/s (12 bytes per element)", ["contender", "GB/s"], rows)
