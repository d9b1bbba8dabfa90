"""Experiment 8: BatchNorm at test time, moving averages vs population statistics.

The notes (000/001) define BatchNorm's test-time statistics as averages over the
training mini-batches: E[x] = mean of the batch means, Var[x] = m/(m-1) times the mean
of the batch variances. Keras (and fastnn's training loop) keep exponential moving
averages instead (momentum 0.99 by default), which lag behind the weights: they mix
statistics of older versions of the network. ``model.recompute_batchnorm_statistics(x,
batch_size)`` (PyTorch's swa_utils.update_bn) replaces them by the notes' population
values for the current weights, in one pass over the training data.

This script trains an MLP with BatchNormalization (Dense -> BN -> ReLU, twice, Adam) on
Fashion-MNIST and, after every epoch, measures the dev accuracy with the moving
statistics and, on a copy, with the recomputed population statistics (the training run
itself is never changed). It does so for Keras's momentum 0.99 and a slow 0.999 (training
normalizes with batch statistics, so the momentum changes only the moving averages and
the population column is the same for both). The dev split is the last 5,000 training
images; the test set is reported once, at the end.

    python examples/09_batchnorm_population.py [--epochs 10] [--momenta 0.99 0.999]

Uses the full Fashion-MNIST when found (Debian's dataset-fashion-mnist,
/usr/share/datasets/fashion-mnist), else the bundled subset.
"""
import argparse
import copy
import time

import numpy as np
from _common import table

import fastnn
from fastnn.datasets import load_fashion_mnist, load_fashion_mnist_subset
from fastnn.layers import Activation, BatchNormalization, Dense
from fastnn.preprocessing import StandardScaler


def load():
    try:
        (x, y), (xt, yt) = load_fashion_mnist(download=False)
        src = "full Fashion-MNIST"
    except Exception:  # noqa: BLE001 (not installed: the bundled subset)
        (x, y), (xt, yt) = load_fashion_mnist_subset()
        src = "bundled Fashion-MNIST subset"
    x = x.reshape(len(x), -1).astype(np.float32) / 255
    xt = xt.reshape(len(xt), -1).astype(np.float32) / 255
    n_dev = min(5000, len(x) // 10)
    x, xd, y, yd = x[:-n_dev], x[-n_dev:], y[:-n_dev], y[-n_dev:]
    scaler = StandardScaler(per_feature=False).fit(x)  # training statistics only
    return src, (scaler.transform(x), y.astype(np.int64)), (scaler.transform(xd), yd.astype(np.int64)), \
        (scaler.transform(xt), yt.astype(np.int64))


def build(momentum):
    fastnn.set_random_seed(0)
    m = fastnn.Sequential([Dense(256, kernel_initializer="he_normal", input_dim=784),
                           BatchNormalization(momentum=momentum), Activation("relu"),
                           Dense(128, kernel_initializer="he_normal"),
                           BatchNormalization(momentum=momentum), Activation("relu"),
                           Dense(10, activation="softmax")])
    m.compile(fastnn.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def acc(m, x, y):
    return m.evaluate(x, y, batch_size=2048, return_dict=True)["accuracy"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--momenta", type=float, nargs="+", default=[0.99, 0.999])
    args = ap.parse_args()
    src, (x, y), (xd, yd), (xt, yt) = load()
    print(f"{src}: {len(x)} training, {len(xd)} dev, {len(xt)} test images; batch {args.batch_size}, "
          f"Adam 1e-3, 784-256-BN-ReLU-128-BN-ReLU-10")
    rows, final = [], []
    for mom in args.momenta:
        m = build(mom)
        t0 = time.perf_counter()
        for epoch in range(1, args.epochs + 1):
            m.fit(x, y, epochs=1, batch_size=args.batch_size, verbose=0, seed=epoch)
            pop = copy.deepcopy(m)
            pop.recompute_batchnorm_statistics(x, batch_size=args.batch_size)
            a_mov, a_pop = acc(m, xd, yd), acc(pop, xd, yd)
            rows.append([mom, epoch, f"{a_mov:.4f}", f"{a_pop:.4f}", f"{a_pop - a_mov:+.4f}"])
            print(f"  momentum {mom} epoch {epoch}: dev {a_mov:.4f} (moving) {a_pop:.4f} (population) "
                  f"[{time.perf_counter() - t0:.0f} s]", flush=True)
        final.append([mom, f"{acc(m, xd, yd):.4f}", f"{acc(pop, xd, yd):.4f}", f"{acc(m, xt, yt):.4f}",
                      f"{acc(pop, xt, yt):.4f}"])
    print()
    table(rows, ["BN momentum", "epoch", "dev acc (moving stats)", "dev acc (population stats)", "difference"])
    print()
    table(final, ["BN momentum", "dev (moving)", "dev (population)", "test (moving)", "test (population)"])


if __name__ == "__main__":
    main()
