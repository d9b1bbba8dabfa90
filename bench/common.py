"""Timing helpers shared by the comparison runners (bench/compare_*.py).

The machine is shared and noisy, so:
- contenders are measured in alternation, round after round (A B C A B C ...),
  never all of A then all of B;
- after each contender we pause (default 0.2 s) so OpenBLAS / OpenMP worker
  threads that keep spinning after a call stop stealing the other core;
- we report medians over rounds, and ratios of medians.
"""
from __future__ import annotations

import os
import statistics
import time


def set_threads(n: int) -> None:
    """Pin every contender to n threads (fastnn, PyTorch, OpenBLAS via threadpoolctl if present)."""
    import fastnn
    fastnn.set_num_threads(n)
    try:
        import torch
        torch.set_num_threads(n)
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(n)
    except ImportError:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", str(n))


def time_call(fn, min_time: float = 0.02) -> float:
    """Seconds per call of fn, running it enough times to fill min_time."""
    fn()  # warm-up
    number = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        dt = time.perf_counter() - t0
        if dt >= min_time or number >= 1 << 20:
            return dt / number
        number = max(number * 2, int(number * min_time / max(dt, 1e-9)) + 1)


def compare(contenders: dict, rounds: int = 7, pause: float = 0.2, min_time: float = 0.02) -> dict:
    """Median seconds per call for each contender, measured in alternation.

    contenders: name -> zero-argument callable (None entries are skipped)."""
    live = {k: f for k, f in contenders.items() if f is not None}
    samples = {k: [] for k in live}
    for _ in range(rounds):
        for name, fn in live.items():
            samples[name].append(time_call(fn, min_time))
            time.sleep(pause)
    return {k: statistics.median(v) for k, v in samples.items()}


def have_torch() -> bool:
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        return False


def print_table(title: str, header: list, rows: list) -> None:
    """Plain fixed-width table, one row per case."""
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(header)]
    print(f"\n## {title}")
    print("  ".join(str(h).rjust(w) for h, w in zip(header, widths)))
    for r in rows:
        print("  ".join(str(c).rjust(w) for c, w in zip(r, widths)))


def fmt(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}g}" if x == x else "-"
