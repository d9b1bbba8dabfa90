"""fit epochs on imbalanced tabular data (50,000 rows, 20 features, about 1 in 12 positive)
with class_weight {0: 1, 1: 5}: a 20-64-32-1 sigmoid MLP, binary cross-entropy, Adam.
Native (the native epoch, the weights gathered in the core) vs the same fit unweighted vs
the Python step (FASTNN_NATIVE_STEP=0, read at every fit), interleaved round by round in
one process on one model (separate models train to different weights, whose speed can
differ by 10-20% here); medians of the rounds.

    PYTHONPATH=python python3 bench/weights_ab.py --batch 32 --threads 1 --rounds 7
"""
import argparse
import os
import statistics
import time

import numpy as np

import fastnn

VARIANTS = {  # name: (FASTNN_NATIVE_STEP, fit keywords)
    "native, class_weight": ("1", {"class_weight": {0: 1.0, 1: 5.0}}),
    "native, unweighted": ("1", {}),
    "python, class_weight": ("0", {"class_weight": {0: 1.0, 1: 5.0}}),
}


def _model():
    L = fastnn.layers
    fastnn.utils.set_random_seed(0)
    m = fastnn.Sequential([L.Input((20,)), L.Dense(64, activation="relu"), L.Dense(32, activation="relu"),
                           L.Dense(1, activation="sigmoid")])
    m.compile(fastnn.optimizers.Adam(1e-3), "binary_crossentropy")
    return m


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    fastnn.set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50000, 20)).astype(np.float32)
    y = (x[:, :3].sum(axis=1) + rng.normal(size=50000) > 2.5).astype(np.float32)
    model = _model()
    times = {name: [] for name in VARIANTS}
    for r in range(a.rounds + 1):  # round 0: warm-up (build, optimizer state, plan)
        for name, (native, kw) in VARIANTS.items():
            os.environ["FASTNN_NATIVE_STEP"] = native
            t = time.perf_counter()
            model.fit(x, y, batch_size=a.batch, epochs=1, verbose=0, **kw)
            if r:
                times[name].append(time.perf_counter() - t)
    print(f"fit epoch seconds, batch {a.batch}, {a.threads} thread(s), median of {a.rounds} rounds")
    for name, ts in times.items():
        print(f"  {name:22s} {statistics.median(ts):.4f}   rounds " + " ".join(f"{t:.4f}" for t in ts))


if __name__ == "__main__":
    main()
