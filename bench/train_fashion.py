"""Fashion-MNIST, the course notes' network, 10 epochs: test accuracy and seconds per epoch.

    PYTHONPATH=python python3 bench/train_fashion.py            # both variants
    PYTHONPATH=python python3 bench/train_fashion.py --bn       # only with BatchNormalization
    PYTHONPATH=python python3 bench/train_fashion.py --no-bn    # only without

784-512-256-256-128-10, ReLU, He init, Adam 1e-3, batch 128, inputs in [0, 1];
target: >= 89.5% test accuracy within 10 epochs, with and without BatchNormalization
after each hidden Dense. Not part of the unit tests (about a minute per variant).
"""
from __future__ import annotations

import argparse
import gzip
import os
import time

import numpy as np

import fastnn
from fastnn.layers import Activation, BatchNormalization, Dense, Input

FMNIST_DIR = "/usr/share/datasets/fashion-mnist"
HIDDEN = (512, 256, 256, 128)


def _read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_fashion_mnist():
    """(x_train, y_train), (x_test, y_test): x float32 in [0, 1] of shape (n, 784), y int64."""
    try:
        from fastnn.datasets import load_fashion_mnist as load
        (xtr, ytr), (xte, yte) = load()
    except ImportError:
        p = lambda name: os.path.join(FMNIST_DIR, name)  # noqa: E731
        xtr, ytr = _read_idx(p("train-images-idx3-ubyte.gz")), _read_idx(p("train-labels-idx1-ubyte.gz"))
        xte, yte = _read_idx(p("t10k-images-idx3-ubyte.gz")), _read_idx(p("t10k-labels-idx1-ubyte.gz"))

    def prep(x):
        x = np.asarray(x).reshape(len(x), -1)
        return x.astype(np.float32) / np.float32(255) if x.dtype == np.uint8 else x.astype(np.float32)
    return (prep(xtr), np.asarray(ytr, np.int64)), (prep(xte), np.asarray(yte, np.int64))


def build(batchnorm, seed=0, bn_before_relu=False):
    """The course notes' network; with batchnorm, BatchNormalization after each hidden
    Dense(relu), or with bn_before_relu Dense (linear) -> BatchNormalization -> ReLU."""
    fastnn.set_random_seed(seed)
    layers = [Input(784)]
    for units in HIDDEN:
        if batchnorm and bn_before_relu:
            layers += [Dense(units, kernel_initializer="he_normal"), BatchNormalization(), Activation("relu")]
            continue
        layers.append(Dense(units, activation="relu", kernel_initializer="he_normal"))
        if batchnorm:
            layers.append(BatchNormalization())
    layers.append(Dense(10, activation="softmax", kernel_initializer="he_normal"))
    model = fastnn.Sequential(layers)
    model.compile(fastnn.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", ["accuracy"])
    return model


class TestAccuracy(fastnn.callbacks.Callback):
    """Test accuracy after each epoch and the training time of the epoch (evaluation excluded)."""

    def __init__(self, x, y):
        super().__init__()
        self.x, self.y, self.acc, self.secs = x, y, [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.secs.append(time.perf_counter() - self.t0)
        self.acc.append(float(np.mean(self.model.predict_classes(self.x) == self.y)))
        print(f"  epoch {epoch + 1:2d}  train loss {logs['loss']:.4f}  train acc {logs['accuracy']:.4f}  "
              f"test acc {self.acc[-1]:.4f}  {self.secs[-1]:.2f} s", flush=True)


def torch_reference(xtr, ytr, xte, yte, batchnorm, epochs, seed, bn_before_relu=False):
    """The same recipe in PyTorch (same init, BatchNorm momentum/eps as Keras): its test accuracy per epoch."""
    import torch
    from torch import nn
    torch.manual_seed(seed)
    layers, d = [], 784
    for units in HIDDEN:
        lin = nn.Linear(d, units)
        nn.init.trunc_normal_(lin.weight, std=(2 / d) ** 0.5 / 0.8796256610342398,
                              a=-2 * (2 / d) ** 0.5 / 0.8796256610342398, b=2 * (2 / d) ** 0.5 / 0.8796256610342398)
        nn.init.zeros_(lin.bias)
        bn = [nn.BatchNorm1d(units, momentum=0.01, eps=1e-3)] if batchnorm else []
        layers += [lin] + (bn + [nn.ReLU()] if bn_before_relu else [nn.ReLU()] + bn)
        d = units
    out = nn.Linear(d, 10)
    nn.init.kaiming_normal_(out.weight)
    nn.init.zeros_(out.bias)
    net = nn.Sequential(*layers, out)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7, fused=True)
    tx, ty, txe = torch.from_numpy(xtr), torch.from_numpy(ytr), torch.from_numpy(xte)
    accs = []
    for epoch in range(epochs):
        net.train()
        t0 = time.perf_counter()
        perm = torch.randperm(len(tx))
        for s in range(0, len(tx), 128):
            idx = perm[s:s + 128]
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(net(tx[idx]), ty[idx]).backward()
            opt.step()
        dt = time.perf_counter() - t0
        net.eval()
        with torch.no_grad():
            accs.append(float((net(txe).argmax(1).numpy() == yte).mean()))
        print(f"  torch epoch {epoch + 1:2d}  test acc {accs[-1]:.4f}  {dt:.2f} s", flush=True)
    return accs


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--bn", action="store_true", help="only the BatchNormalization variant")
    g.add_argument("--no-bn", action="store_true", help="only the plain variant")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--torch", action="store_true", help="also train the same recipe in PyTorch, for reference")
    p.add_argument("--bn-before-relu", action="store_true",
                   help="BatchNormalization between the Dense and its ReLU (normalize z, as the notes do)")
    a = p.parse_args(argv)
    fastnn.set_num_threads(a.threads)
    (xtr, ytr), (xte, yte) = load_fashion_mnist()
    print(f"fastnn {fastnn.__version__} isa={fastnn.cpu_info()['isa']} threads={a.threads}")
    variants = [False] if a.no_bn else [True] if a.bn else [False, True]
    ok = True
    for bn in variants:
        print(f"\n784-512-256-256-128-10 ReLU, He, Adam 1e-3, batch 128{' + BatchNormalization' if bn else ''}"
              f"{' (before ReLU)' if bn and a.bn_before_relu else ''}, seed {a.seed}")
        model = build(bn, a.seed, a.bn_before_relu)
        cb = TestAccuracy(xte, yte)
        model.fit(xtr, ytr, epochs=a.epochs, batch_size=128, verbose=0, callbacks=[cb], seed=a.seed)
        best = max(cb.acc)
        print(f"  best test accuracy {best:.4f} (epoch {cb.acc.index(best) + 1}), final {cb.acc[-1]:.4f}; "
              f"median {np.median(cb.secs):.2f} s per epoch; target >= 0.895: {'met' if best >= 0.895 else 'MISSED'}")
        ok &= best >= 0.895
        if a.torch:
            import torch
            torch.set_num_threads(a.threads)
            accs = torch_reference(xtr, ytr, xte, yte, bn, a.epochs, a.seed, a.bn_before_relu)
            print(f"  PyTorch, same recipe: best test accuracy {max(accs):.4f}, final {accs[-1]:.4f}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
