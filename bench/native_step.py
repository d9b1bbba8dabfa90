"""Per-step time of the native training step vs the Python step (trainer.train_step),
interleaved in one run, medians: the notes' MLP 784-512-256-256-128-10, ReLU, softmax +
sparse categorical cross-entropy, Adam; ``--model bn``: 784-(Dense-BatchNormalization-ReLU)
x3 (512, 256, 128)-10, the notes' placement of BatchNormalization.

    PYTHONPATH=python python3 bench/native_step.py --threads 1 --batches 32 128 [--model bn]
"""
import argparse
import os
import time

import numpy as np

import fastnn
from fastnn import native_step, trainer


def model_for(batch, kind="mlp"):
    L = fastnn.layers
    if kind == "bn":
        hidden = [l for u in (512, 256, 128) for l in (L.Dense(u), L.BatchNormalization(), L.Activation("relu"))]
    else:
        hidden = [L.Dense(u, activation="relu") for u in (512, 256, 256, 128)]
    m = fastnn.Sequential([L.Input((784,))] + hidden + [L.Dense(10, activation="softmax")])
    m.compile(fastnn.optimizers.Adam(1e-4), "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.random((batch, 784), dtype=np.float32)
    y = rng.integers(0, 10, batch)
    m.fit(x, y, batch_size=batch, epochs=1, verbose=0)  # build, place, optimizer state
    return m, x, y


def time_steps(model, x, y, native, steps):
    os.environ["FASTNN_NATIVE_STEP"] = "1" if native else "0"
    modes = trainer.loss_mode(model)
    if native:  # (re)build the plan outside the timing; a model that falls back is no measurement
        if native_step.try_step(model, x, y, *modes, None) is None:
            raise SystemExit("the native step does not run this model (it falls back to the Python step)")
    else:
        trainer.train_step(model, x, y, *modes)
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(model, x, y, *modes)
    return (time.perf_counter() - t0) / steps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batches", type=int, nargs="+", default=[32, 128])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--model", choices=["mlp", "bn"], default="mlp")
    a = ap.parse_args()
    fastnn.set_num_threads(a.threads)
    for batch in a.batches:
        model, x, y = model_for(batch, a.model)
        t = {False: [], True: []}
        for _ in range(a.rounds):
            for native in (False, True):
                t[native].append(time_steps(model, x, y, native, a.steps))
        py, nat = np.median(t[False]) * 1e6, np.median(t[True]) * 1e6
        print(f"{a.model}: batch {batch:4d}, {a.threads} thread(s): Python step {py:8.1f} us, native step {nat:8.1f} us, "
              f"saved {py - nat:6.1f} us/step ({py / nat:.3f}x)  [median of {a.rounds} x {a.steps} steps]")


if __name__ == "__main__":
    main()
