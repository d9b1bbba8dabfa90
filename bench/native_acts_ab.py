"""fit epochs of a 784-512-256-10 MLP whose hidden Dense layers use an activation whose
gradient needs its input (gelu by default), on the first N Fashion-MNIST training images:
the Python step (FASTNN_NATIVE_STEP=0) vs the native step, interleaved round by round in
one process (the variable is read at every fit), medians of the rounds.

    PYTHONPATH=python python3 bench/native_acts_ab.py --batch 32 --threads 1 --rounds 9 --act gelu
"""
import argparse
import os
import statistics
import time

import numpy as np

import fastnn
from fastnn.datasets import fashion_mnist


def _model(act):
    L = fastnn.layers
    fastnn.utils.set_random_seed(0)
    m = fastnn.Sequential([L.Input((784,)), L.Dense(512, activation=act), L.Dense(256, activation=act), L.Dense(10)])
    m.compile(fastnn.optimizers.Adam(1e-3), fastnn.losses.SparseCategoricalCrossentropy(from_logits=True))
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--act", default="gelu")
    a = ap.parse_args()
    fastnn.set_num_threads(a.threads)
    (x, y), _ = fashion_mnist.load_data()
    x, y = x.reshape(len(x), -1)[:a.n].astype(np.float32) / 255, y[:a.n].astype(np.int64)
    models = {"python": _model(a.act), "native": _model(a.act)}
    times = {k: [] for k in models}
    for r in range(a.rounds + 1):  # round 0: warm-up (build, optimizer state, plan)
        for name, m in models.items():
            os.environ["FASTNN_NATIVE_STEP"] = "0" if name == "python" else "1"
            t0 = time.perf_counter()
            m.fit(x, y, batch_size=a.batch, epochs=1, verbose=0, seed=r)
            if r:
                times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{a.act} batch {a.batch} threads {a.threads} n={a.n} rounds={a.rounds}: "
          f"python {med['python'] * 1e3:.0f} ms, native {med['native'] * 1e3:.0f} ms an epoch; "
          f"python/native {med['python'] / med['native']:.2f}x")


if __name__ == "__main__":
    main()
