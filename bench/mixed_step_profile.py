"""Where a mixed_bfloat16 training step of the notes' MLP spends its time (issue 15).

    PYTHONPATH=python python3 bench/mixed_step_profile.py --batch 512 --threads 1

The Python step (FASTNN_NATIVE_STEP=0: the native step runs the same kernels in one
call) on one random batch, each core call the step makes timed in place: the bf16
forward GEMMs (``ops.matmul_bf16``), the mixed Dense backward (``dense_bf16_backward``:
act', dW + db, dX), the optimizer; mean microseconds per step and share of the step.
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fastnn  # noqa: E402
from fastnn import mixed_precision, ops, trainer  # noqa: E402
from fastnn.layers import _mixed  # noqa: E402
from train_fashion import build  # noqa: E402

SPENT, CALLS = collections.defaultdict(float), collections.Counter()


def timed(owner, name, label):
    """Replaces owner.name by a wrapper adding its time under label(args)."""
    f = getattr(owner, name)

    def wrapper(*args, **kw):
        key = label(args, kw)
        t = time.perf_counter()
        r = f(*args, **kw)
        SPENT[key] += time.perf_counter() - t
        CALLS[key] += 1
        return r
    setattr(owner, name, wrapper)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=30)
    a = ap.parse_args()
    fastnn.set_num_threads(a.threads)
    mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build(False, seed=0)
    finally:
        mixed_precision.set_global_policy("float32")
    model.build((784,))
    rng = np.random.default_rng(0)
    x = rng.random((a.batch, 784), dtype=np.float32)
    y = rng.integers(0, 10, a.batch).astype(np.int64)
    timed(ops, "matmul_bf16", lambda args, kw: f"forward GEMM {args[0].shape} x {args[1].shape}")
    timed(_mixed._core, "dense_bf16_backward", lambda args, kw: f"backward (act', dW+db, dX) W {args[2].shape}")
    timed(model.optimizer, "apply", lambda args, kw: "optimizer")
    os.environ["FASTNN_NATIVE_STEP"] = "0"
    loss_on_logits, last_logits = trainer.loss_mode(model)
    for _ in range(5):
        trainer.train_step(model, x, y, loss_on_logits, last_logits)
    SPENT.clear()
    t = time.perf_counter()
    for _ in range(a.steps):
        trainer.train_step(model, x, y, loss_on_logits, last_logits)
    step = (time.perf_counter() - t) / a.steps * 1e6
    print(f"mixed_bfloat16 step, batch {a.batch}, threads {a.threads}: {step:.0f} us")
    for key, s in sorted(SPENT.items(), key=lambda kv: -kv[1]):
        us = s / a.steps * 1e6
        print(f"  {us:8.0f} us {100 * us / step:5.1f}%  {key}")
    rest = step - sum(SPENT.values()) / a.steps * 1e6
    print(f"  {rest:8.0f} us {100 * rest / step:5.1f}%  the rest (Python, loss)")


if __name__ == "__main__":
    main()
