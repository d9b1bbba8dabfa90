"""float32 vs mixed_bfloat16 on Fashion-MNIST, the notes' MLP (issue 15).

    OMP_NUM_THREADS=1 PYTHONPATH=python python3 bench/compare_mixed.py --threads 1 --rounds 5 \
        --epochs 5 --seeds 0 1 2

784-512-256-256-128-10, ReLU, He normal, Adam 1e-3, no BatchNormalization.
Speed: one training epoch at --batch (default 512) per policy, the policies
interleaved round by round (one warm-up epoch each first), median seconds.
The speed runs also time "mixed_f32store": mixed_bfloat16 with the activations
between Dense layers kept in float32 (the plan of layers/_mixed.py cleared: the
code before bfloat16 storage), and print the bytes of the activations each
layer keeps for the backward pass after one training step.
Accuracy: test accuracy after --epochs epochs (batch 128 as the notes), per seed
and policy, mean over the seeds. Not a unit test (minutes).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fastnn  # noqa: E402
from fastnn import mixed_precision  # noqa: E402
from train_fashion import build, load_fashion_mnist  # noqa: E402

POLICIES = ("float32", "mixed_bfloat16", "mixed_f32store")


def make(policy, seed):
    mixed_precision.set_global_policy("float32" if policy == "float32" else "mixed_bfloat16")
    try:
        fastnn.utils.set_random_seed(seed)
        m = build(False, seed=seed)
    finally:
        mixed_precision.set_global_policy("float32")
    m.build((784,))
    if policy == "mixed_f32store":
        for layer in m.layers:
            layer._bf16_readers = ()
    return m


def saved_bytes(model, x, y, batch):
    """Bytes of the activations the layers keep for the backward pass (their outputs y, and
    z where kept) after the training forward of one batch (the Python step's; the native
    step, which fit uses for both policies, stores the same buffers the same way)."""
    model._forward(np.ascontiguousarray(x[:batch], dtype=np.float32), True, True)
    return sum(a.nbytes for layer in model.layers for a in (getattr(layer, "_y", None), getattr(layer, "_z", None))
               if isinstance(a, np.ndarray))


def epoch_seconds(model, x, y, batch):
    t = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    return time.perf_counter() - t


def speed(x, y, batch, rounds):
    models = {p: make(p, 0) for p in POLICIES}
    for p in POLICIES:
        epoch_seconds(models[p], x, y, batch)  # warm-up: buffers, arena, optimizer state
    times = {p: [] for p in POLICIES}
    for _ in range(rounds):
        for p in POLICIES:
            times[p].append(epoch_seconds(models[p], x, y, batch))
    med = {p: statistics.median(t) for p, t in times.items()}
    for p in POLICIES:
        print(f"epoch batch {batch} {p:15s} median {med[p]:.3f} s  rounds {', '.join(f'{t:.3f}' for t in times[p])}")
    print(f"mixed/float32 epoch time: {med['mixed_bfloat16'] / med['float32']:.3f}")
    print(f"mixed (bf16 storage) / mixed (f32 storage): {med['mixed_bfloat16'] / med['mixed_f32store']:.3f}")
    for p in POLICIES[1:]:
        print(f"{p:15s} saved activations per step: {saved_bytes(models[p], x, y, batch) / 2 ** 20:.2f} MiB")


def _protocol_state(model):
    """What must match between the policies before training: the initial weights and the
    state of the generator fit shuffles with (so both see the same batches in the same order)."""
    from fastnn import initializers
    return [w.copy() for w in model.get_weights()], initializers.global_rng().bit_generator.state


def _check_same_start(start):
    (w32, rng32), (wmp, rngmp) = start["float32"], start["mixed_bfloat16"]
    if rng32 != rngmp or len(w32) != len(wmp) or not all(np.array_equal(a, b) for a, b in zip(w32, wmp)):
        raise AssertionError("protocol: the two policies start from different weights or shuffling state")


def accuracy(xtr, ytr, xte, yte, epochs, seeds):
    acc = {p: [] for p in POLICIES[:2]}
    band = np.zeros(epochs)  # per epoch: max over seeds of |loss_mixed - loss_fp32|
    for seed in seeds:
        start, loss = {}, {}
        for p in POLICIES[:2]:
            m = make(p, seed)
            start[p] = _protocol_state(m)
            loss[p] = np.asarray(m.fit(xtr, ytr, batch_size=128, epochs=epochs, verbose=0).history["loss"])
            a = float(np.mean(np.argmax(m.predict(xte, verbose=0), axis=1) == yte))
            acc[p].append(a)
            print(f"seed {seed} {p:15s} test accuracy after {epochs} epochs: {100 * a:.2f}%  "
                  f"loss per epoch: {' '.join(f'{v:.4f}' for v in loss[p])}", flush=True)
        _check_same_start(start)
        gap = np.abs(loss["mixed_bfloat16"] - loss["float32"])
        band = np.maximum(band, gap)
        print(f"seed {seed} |loss_mixed - loss_fp32| per epoch: {' '.join(f'{v:.4f}' for v in gap)}", flush=True)
    print(f"test set: {len(yte)} images; seeds {list(seeds)}")
    for p in POLICIES[:2]:
        print(f"{p:15s} mean test accuracy: {100 * np.mean(acc[p]):.2f}%  "
              f"(per seed {', '.join(f'{100 * a:.2f}' for a in acc[p])})")
    print(f"difference (mixed - float32): {100 * (np.mean(acc['mixed_bfloat16']) - np.mean(acc['float32'])):+.2f} points")
    print(f"loss band, max over seeds of |loss_mixed - loss_fp32| per epoch: {' '.join(f'{v:.4f}' for v in band)} "
          f"(max {band.max():.4f})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=5, help="speed rounds (0: skip the speed comparison)")
    ap.add_argument("--epochs", type=int, default=5, help="epochs for the accuracy comparison (0: skip it)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    a = ap.parse_args()
    fastnn.set_num_threads(a.threads)
    from fastnn import _core
    print(f"fastnn threads={a.threads} OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} "
          f"isa={fastnn.cpu_info()['isa']} bf16 kernel={_core.bf16_kernel()}")
    (xtr, ytr), (xte, yte) = load_fashion_mnist()
    if a.rounds:
        speed(xtr, ytr, a.batch, a.rounds)
    if a.epochs:
        accuracy(xtr, ytr, xte, yte, a.epochs, a.seeds)


if __name__ == "__main__":
    main()
