"""The native step's update layer by layer (each Dense layer's parameters right after its
backward) against the update after the whole backward (``_core._testing.set_layer_by_layer``;
the same bits), on the notes' MLP 784-512-256-256-128-10 relu with Adam (or --opt sgd /
rmsprop): fit epochs on the first N Fashion-MNIST training images, the two settings
alternated round by round in one process, medians (seconds scaled to 60,000 images).

    PYTHONPATH=python python3 bench/layerwise_ab.py [--batch 128] [--threads 2] [--rounds 7] [--n 15000]
"""
import argparse
import statistics
import time

import numpy as np

import fastnn
from fastnn import _core
from fastnn.datasets import fashion_mnist

L = fastnn.layers


def _model(opt):
    fastnn.utils.set_random_seed(0)
    m = fastnn.Sequential([L.Input((784,))] + [L.Dense(u, activation="relu") for u in (512, 256, 256, 128)]
                          + [L.Dense(10, activation="softmax")])
    m.compile({"adam": lambda: fastnn.optimizers.Adam(1e-3),
               "sgd": lambda: fastnn.optimizers.SGD(0.01, momentum=0.9),
               "rmsprop": lambda: fastnn.optimizers.RMSprop(1e-3)}[opt](), "sparse_categorical_crossentropy")
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--n", type=int, default=15000)
    ap.add_argument("--opt", default="adam", choices=["adam", "sgd", "rmsprop"])
    a = ap.parse_args()
    fastnn.set_num_threads(a.threads)
    (x, y), _ = fashion_mnist.load_data()
    x, y = x.reshape(len(x), -1)[:a.n].astype(np.float32) / 255, y[:a.n].astype(np.int64)
    models = {"layer by layer": _model(a.opt), "at the end": _model(a.opt)}
    times = {k: [] for k in models}
    try:
        for r in range(a.rounds + 1):  # round 0: warm-up (build, optimizer state, plan)
            for name, m in models.items():
                _core._testing.set_layer_by_layer(name == "layer by layer")
                t0 = time.perf_counter()
                m.fit(x, y, batch_size=a.batch, epochs=1, verbose=0, seed=r)
                if r:
                    times[name].append((time.perf_counter() - t0) * 60000 / a.n)
                time.sleep(0.5)
    finally:
        _core._testing.set_layer_by_layer(True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{a.opt} batch {a.batch} threads {a.threads} n={a.n} rounds={a.rounds}: "
          + ", ".join(f"{k} {v:.3f} s" for k, v in med.items())
          + f" per 60k-image epoch; at the end / layer by layer {med['at the end'] / med['layer by layer']:.3f}x")
    for k, v in times.items():
        print(f"  {k}: " + " ".join(f"{t:.2f}" for t in v))


if __name__ == "__main__":
    main()
