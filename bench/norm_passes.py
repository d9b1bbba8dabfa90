"""BatchNorm kernels beside the plain streaming passes they are made of.

    PYTHONPATH=python python3 bench/norm_passes.py [--threads 1]

Minimum over repeats of timeit, µs per call, float32, out= buffers reused:
batchnorm forward (training) and backward, and for scale one column sum (one
read stream), relu (read + write) and relu_grad (two reads + write) over the
same (m, n). Training BatchNorm is two passes each way (statistics, then the
output): forward ~ column sum + relu, backward ~ a two-stream sum + relu_grad.
Shapes: compare_norm.CASES (from 128 rows on, threads split the rows; below, the
features: csrc/fastnn/norm/norm.cpp).
A (2, 16) row gives the per-call overhead.
"""
from __future__ import annotations

import argparse
import timeit

import numpy as np

import fastnn
from fastnn import ops

import cases
import compare_norm


def best_us(fn, elements):
    number = max(10, int(2e6 / max(elements, 1)))
    return min(timeit.repeat(fn, number=number, repeat=15)) / number * 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    fastnn.set_num_threads(a.threads)
    print(f"threads={a.threads} isa={fastnn.cpu_info()['isa']}  (us per call)")
    print(f"{'shape':>12} {'bn fwd':>8} {'bn bwd':>8} {'colsum':>8} {'relu':>8} {'relu_grad':>9}")
    for m, n in (cases.NORM_OVERHEAD_SHAPE,) + compare_norm.CASES:
        x, dy, g, b, rm, rv = cases.norm_inputs(m, n)
        y, dx, cs = np.empty_like(x), np.empty_like(x), np.empty(n, np.float32)
        fwd_out = (y, np.empty(n, np.float32), np.empty(n, np.float32))
        bwd_out = (dx, np.empty(n, np.float32), np.empty(n, np.float32))
        _, mean, inv = ops.batchnorm_forward(x, g, b, rm, rv, out=fwd_out)
        t = [best_us(f, m * n) for f in (
            lambda: ops.batchnorm_forward(x, g, b, rm, rv, out=fwd_out),
            lambda: ops.batchnorm_backward(dy, x, g, mean, inv, out=bwd_out),
            lambda: ops.column_sum(x, out=cs),
            lambda: ops.activation("relu", x, out=y),
            lambda: ops.activation_grad("relu", dy, x=x, out=dx))]
        print(f"{str((m, n)):>12} " + " ".join(f"{v:8.2f}" for v in t[:4]) + f" {t[4]:9.2f}")


if __name__ == "__main__":
    main()
