"""The shuffled batch gather of fit: the core's ops.take_rows (what the trainer uses) vs
NumPy's ``np.take(x, idx, axis=0, out=buf, mode="clip")`` (what it used before), interleaved
in one run, medians.

1. Per step: the x rows (float32, 784 wide) and the int64 labels of one batch, gathered in
   the order of a permutation of the training set (Fashion-MNIST sized: rows spread over
   47 MB for 15,000 images, 188 MB for 60,000), an 8 MB buffer written between gathers
   (as the step's GEMMs would evict the caches).
2. The notes' MLP ``fit`` epoch (as bench/compare_train.py's fastnn contender: the first
   --fraction of Fashion-MNIST) batch by batch (the native epoch, which gathers in the core,
   switched off), once with each gather (``_batches._take_rows`` swapped), alternating
   (ABBA), seconds scaled to a 60,000-image epoch.

    PYTHONPATH=python python3 bench/gather_step.py [--threads 2] [--batches 32 128 512]
        [--rows 15000 60000] [--rounds 5] [--fraction 0.25] [--no-epoch]
"""
from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import fastnn  # noqa: E402
from fastnn import _batches, native_step  # noqa: E402


def numpy_take(a, idx, out):
    return np.take(a, idx, axis=0, out=out, mode="clip")


GATHERS = {"np.take(out=, clip)": numpy_take, "ops.take_rows": _batches._take_rows}


def per_step(n, batch, rounds, rng):
    x = rng.standard_normal((n, 784)).astype(np.float32)
    y = rng.integers(0, 10, n)
    xb, yb = np.empty((batch, 784), np.float32), np.empty(batch, np.int64)
    evict = np.zeros(1 << 20)  # 8 MB
    t = {k: [] for k in GATHERS}
    for _ in range(rounds):
        perm = rng.permutation(n)
        for s in range(0, n - batch + 1, batch):
            idx = perm[s:s + batch]
            for name, gather in GATHERS.items():
                evict += 1.0
                t0 = time.perf_counter()
                gather(x, idx, xb)
                gather(y, idx, yb)
                t[name].append(time.perf_counter() - t0)
    assert np.array_equal(xb, x[idx]) and np.array_equal(yb, y[idx])
    return {k: statistics.median(v) for k, v in t.items()}


def epochs(batch, rounds, fraction):
    import train_fashion
    (x, y), _ = train_fashion.load_fashion_mnist()
    n = max(1, int(round(len(x) * fraction)))
    x, y = np.ascontiguousarray(x[:n]), np.ascontiguousarray(y[:n])
    model = train_fashion.build(False)
    model.fit(x, y, epochs=1, batch_size=batch, verbose=0, seed=0)  # warm-up
    t = {k: [] for k in GATHERS}
    real, real_epoch = _batches._take_rows, native_step.epoch_steps
    native_step.epoch_steps = lambda *a: None  # batch by batch: the gathers in Python
    try:
        for r in range(rounds):
            order = list(GATHERS.items())
            for name, gather in (order if r % 2 == 0 else order[::-1]):  # ABBA: no order bias
                _batches._take_rows = gather
                time.sleep(0.3)
                t0 = time.perf_counter()
                model.fit(x, y, epochs=1, batch_size=batch, verbose=0, seed=r)
                t[name].append((time.perf_counter() - t0) * 60000 / n)
    finally:
        _batches._take_rows, native_step.epoch_steps = real, real_epoch
    for k, v in t.items():
        print(f"  [batch {batch}] {k}: " + " ".join(f"{s:.2f}" for s in v) + " s")
    return {k: statistics.median(v) for k, v in t.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", type=int, nargs="+", default=[32, 128, 512])
    ap.add_argument("--rows", type=int, nargs="+", default=[15000, 60000])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--fraction", type=float, default=0.25)
    ap.add_argument("--no-epoch", action="store_true")
    a = ap.parse_args()
    fastnn.set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    print(f"threads={a.threads}; x float32 (n, 784) + int64 labels per batch; medians")
    for n in a.rows:
        for batch in a.batches:
            m = per_step(n, batch, max(1, a.rounds // 2), rng)
            base, new = m["np.take(out=, clip)"], m["ops.take_rows"]
            print(f"gather  n={n:6d} batch={batch:4d}: np.take {1e6 * base:7.1f} us, ops.take_rows "
                  f"{1e6 * new:7.1f} us ({base / new:.2f}x)")
    if a.no_epoch:
        return
    for batch in a.batches:
        e = epochs(batch, a.rounds, a.fraction)
        base, new = e["np.take(out=, clip)"], e["ops.take_rows"]
        print(f"epoch   batch={batch:4d}: np.take {base:.3f} s, ops.take_rows {new:.3f} s ({base / new:.3f}x) "
              f"[60k-image epoch, median of {a.rounds} alternating rounds]")


if __name__ == "__main__":
    main()
