"""Small-batch training GEMMs: fastnn vs NumPy and PyTorch at 1 and 2 threads.

    python bench/gemm_small.py [--batches 32,64,128,256,512] [--rounds 10] [--only fwd,dx,dw]
                               [--layers 784-512,128-10] [--stat p10|median]

The products of one training step of the notes' MLP 784-512-256-256-128-10
(forward X·W, dX = dY·Wᵀ, dW = Xᵀ·dY) at each batch size. Each round times
--calls single calls of every contender at 1 thread, then at 2 threads
(A B C A B C ...: interleaved, so a busy neighbour hits all of them alike).
The table gives GFLOP/s from the chosen statistic of the per-call times
(default the 10th percentile: on a machine shared with busy neighbours the
median mostly measures them, while a 20-300 us call often runs undisturbed;
--stat median for a quiet machine), fastnn's ratio to the faster of NumPy
and PyTorch at the same thread count, and fastnn's 1-thread CPU-time GFLOP/s
(time.process_time over the round, median over rounds). The per-batch line
sums the step: GEMM microseconds per training step, fastnn and the faster
peer product by product.
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

KINDS = {"fwd": "X·W", "dx": "dY·Wt", "dw": "Xt·dY"}


def _cases(batch, only, layers):
    """(label, m, n, k, trans_a, trans_b) of one step's products."""
    out = []
    for fan_in, fan_out in zip(compare_gemm.MLP[:-1], compare_gemm.MLP[1:]):
        if layers and f"{fan_in}-{fan_out}" not in layers:
            continue
        for kind in only:
            tag = f"{fan_in}-{fan_out} {KINDS[kind]}"
            if kind == "fwd":
                out.append((tag, batch, fan_out, fan_in, False, False))
            elif kind == "dx":
                out.append((tag, batch, fan_in, fan_out, False, True))
            else:
                out.append((tag, fan_in, fan_out, batch, True, False))
    return out


def _time(fn, calls):
    """(wall seconds of each of `calls` calls of fn, CPU seconds per call over all of them)."""
    fn()
    wall = []
    c0 = time.process_time()
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t0)
    return wall, (time.process_time() - c0) / calls


def measure(case, threads, rounds, calls, pause, stat):
    """Wall seconds per call for each (contender, threads), and fastnn's 1-thread median CPU seconds."""
    _, m, n, k, ta, tb = case
    fns = compare_gemm._contenders(m, n, k, np.float32, ta, tb)
    wall = {(name, t): [] for name in fns for t in threads}
    cpu = []
    for _ in range(rounds):
        for t in threads:
            common.set_threads(t)
            for name, fn in fns.items():
                w, c = _time(fn, calls)
                wall[(name, t)] += w
                if name == "fastnn" and t == 1:
                    cpu.append(c)
                time.sleep(pause)
    pick = statistics.median if stat == "median" else (lambda v: float(np.percentile(v, 10)))
    return {key: pick(v) for key, v in wall.items()}, statistics.median(cpu) if cpu else None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batches", default="32,64,128,256,512")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--only", default="fwd,dx,dw")
    p.add_argument("--layers", default="", help="comma list such as 784-512,128-10 (default: all)")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--calls", type=int, default=20, help="timed calls per contender and round")
    p.add_argument("--pause", type=float, default=0.05)
    p.add_argument("--stat", choices=["p10", "median"], default="p10")
    a = p.parse_args(argv)
    import fastnn
    threads = [int(t) for t in a.threads.split(",")]
    only = a.only.split(",")
    layers = [x for x in a.layers.split(",") if x]
    print(f"fastnn {fastnn.__version__} isa={fastnn.cpu_info()['isa']}; {a.stat} of {a.rounds} interleaved rounds "
          f"of {a.calls} calls")
    for batch in (int(b) for b in a.batches.split(",")):
        header = ["product", "m x n x k"]
        for t in threads:
            header += [f"fastnn {t}t", f"numpy {t}t", f"torch {t}t", f"ratio {t}t"]
        header.append("fastnn 1t cpu")
        rows, step = [], {t: [0.0, 0.0] for t in threads}
        for case in _cases(batch, only, layers):
            label, m, n, k, _, _ = case
            med, cpu = measure(case, threads, a.rounds, a.calls, a.pause, a.stat)
            flops = 2.0 * m * n * k
            row = [label, f"{m}x{n}x{k}"]
            for t in threads:
                g = {name: flops / med[(name, t)] / 1e9 for name in ("fastnn", "numpy", "torch") if (name, t) in med}
                peer = max(v for kk, v in g.items() if kk != "fastnn")
                row += [f"{g['fastnn']:.0f}", f"{g['numpy']:.0f}", f"{g.get('torch', float('nan')):.0f}",
                        f"{g['fastnn'] / peer:.2f}"]
                step[t][0] += med[("fastnn", t)]
                step[t][1] += flops / peer / 1e9
            row.append(f"{flops / cpu / 1e9:.0f}" if cpu else "-")
            rows.append(row)
        common.print_table(f"batch {batch}, float32 GFLOP/s (ratio: fastnn / faster peer)", header, rows)
        for t in threads:
            f, peer = step[t]
            print(f"  step GEMMs {t}t: fastnn {1e6 * f:.0f} us, faster peer per product {1e6 * peer:.0f} us "
                  f"({peer / f:.2f}x)")


if __name__ == "__main__":
    main()
