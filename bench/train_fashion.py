"""Fashion-MNIST, the course notes' network, 10 epochs: test accuracy and seconds per epoch.

    PYTHONPATH=python python3 bench/train_fashion.py            # both variants
    PYTHONPATH=python python3 bench/train_fashion.py --bn       # only with BatchNormalization
    PYTHONPATH=python python3 bench/train_fashion.py --no-bn    # only without
    PYTHONPATH=python python3 bench/train_fashion.py --bn --val --torch --threads 1 --json r.json
        # hold out the last 10k training images and report accuracy on them instead of the test
        # set (for choosing options); also train the same recipe in PyTorch; save per-epoch results

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


INITS = ("he_normal", "he_uniform")


def build(batchnorm, seed=0, bn_before_relu=False, momentum=0.99, epsilon=1e-3, init="he_normal"):
    """The course notes' network; with batchnorm, BatchNormalization after each hidden
    Dense(relu), or with bn_before_relu Dense (linear) -> BatchNormalization -> ReLU.
    momentum, epsilon: BatchNormalization's (Keras defaults); init: he_normal (Keras's,
    truncated normal) or he_uniform, for every Dense."""
    fastnn.set_random_seed(seed)
    bn = lambda: BatchNormalization(momentum=momentum, epsilon=epsilon)  # noqa: E731
    layers = [Input(784)]
    for units in HIDDEN:
        if batchnorm and bn_before_relu:
            layers += [Dense(units, kernel_initializer=init), bn(), Activation("relu")]
            continue
        layers.append(Dense(units, activation="relu", kernel_initializer=init))
        if batchnorm:
            layers.append(bn())
    layers.append(Dense(10, activation="softmax", kernel_initializer=init))
    model = fastnn.Sequential(layers)
    model.compile(fastnn.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", ["accuracy"])
    return model


class TestAccuracy(fastnn.callbacks.Callback):
    """Test accuracy after each epoch and the training time of the epoch (evaluation excluded)."""

    def __init__(self, x, y, label="test"):
        super().__init__()
        self.x, self.y, self.acc, self.secs, self.loss, self.label = x, y, [], [], [], label

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.secs.append(time.perf_counter() - self.t0)
        self.acc.append(float(np.mean(self.model.predict_classes(self.x) == self.y)))
        self.loss.append(float(logs["loss"]))
        print(f"  epoch {epoch + 1:2d}  train loss {logs['loss']:.4f}  train acc {logs['accuracy']:.4f}  "
              f"{self.label} acc {self.acc[-1]:.4f}  {self.secs[-1]:.2f} s", flush=True)


def torch_reference(xtr, ytr, xte, yte, batchnorm, epochs, seed, bn_before_relu=False, momentum=0.99,
                    epsilon=1e-3, init="he_normal", label="test"):
    """The same recipe in PyTorch (same init, BatchNorm momentum/eps as the fastnn run; torch's
    momentum is 1 - Keras's): (accuracy per epoch, train loss per epoch, seconds per epoch)."""
    import torch
    from torch import nn
    torch.manual_seed(seed)

    def linear(d, units):
        lin = nn.Linear(d, units)
        std = (2 / d) ** 0.5
        if init == "he_uniform":
            nn.init.uniform_(lin.weight, -(3 ** 0.5) * std, 3 ** 0.5 * std)
        else:  # Keras he_normal: normal truncated to 2 std, std corrected for the truncation
            s = std / 0.8796256610342398
            nn.init.trunc_normal_(lin.weight, std=s, a=-2 * s, b=2 * s)
        nn.init.zeros_(lin.bias)
        return lin

    layers, d = [], 784
    for units in HIDDEN:
        lin = linear(d, units)
        bn = [nn.BatchNorm1d(units, momentum=1 - momentum, eps=epsilon)] if batchnorm else []
        layers += [lin] + (bn + [nn.ReLU()] if bn_before_relu else [nn.ReLU()] + bn)
        d = units
    net = nn.Sequential(*layers, linear(d, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7, fused=True)
    tx, ty, txe = torch.from_numpy(xtr), torch.from_numpy(ytr), torch.from_numpy(xte)
    accs, losses, secs = [], [], []
    for epoch in range(epochs):
        net.train()
        t0 = time.perf_counter()
        perm = torch.randperm(len(tx))
        total = 0.0
        for s in range(0, len(tx), 128):
            idx = perm[s:s + 128]
            opt.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(net(tx[idx]), ty[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        secs.append(time.perf_counter() - t0)
        losses.append(total / len(tx))
        net.eval()
        with torch.no_grad():
            accs.append(float((net(txe).argmax(1).numpy() == yte).mean()))
        print(f"  torch epoch {epoch + 1:2d}  train loss {losses[-1]:.4f}  {label} acc {accs[-1]:.4f}  "
              f"{secs[-1]:.2f} s", flush=True)
    return accs, losses, secs


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
    p.add_argument("--momentum", type=float, default=0.99,
                   help="BatchNormalization momentum, Keras convention (default 0.99; PyTorch's default is 0.9)")
    p.add_argument("--epsilon", type=float, default=1e-3,
                   help="BatchNormalization epsilon (default 1e-3, Keras; PyTorch's default is 1e-5)")
    p.add_argument("--init", choices=INITS, default="he_normal", help="kernel initializer (default he_normal)")
    p.add_argument("--val", action="store_true",
                   help="train on the first 50,000 training images and report accuracy on the last 10,000 "
                        "(a validation split, for choosing options) instead of on the test set")
    p.add_argument("--only-torch", action="store_true", help="train only the PyTorch reference")
    p.add_argument("--json", metavar="PATH", help="write the per-epoch results to PATH")
    a = p.parse_args(argv)
    fastnn.set_num_threads(a.threads)
    (xtr, ytr), (xte, yte) = load_fashion_mnist()
    label = "test"
    if a.val:
        (xtr, ytr), (xte, yte), label = (xtr[:50000], ytr[:50000]), (xtr[50000:], ytr[50000:]), "val"
    print(f"fastnn {fastnn.__version__} isa={fastnn.cpu_info()['isa']} threads={a.threads}")
    variants = [False] if a.no_bn else [True] if a.bn else [False, True]
    ok, results = True, []
    for bn in variants:
        opts = dict(bn_before_relu=a.bn_before_relu, momentum=a.momentum, epsilon=a.epsilon, init=a.init)
        print(f"\n784-512-256-256-128-10 ReLU, {a.init}, Adam 1e-3, batch 128"
              f"{f' + BatchNormalization(momentum={a.momentum}, epsilon={a.epsilon})' if bn else ''}"
              f"{' (before ReLU)' if bn and a.bn_before_relu else ''}, seed {a.seed}, {label} set")
        rec = dict(opts, batchnorm=bn, seed=a.seed, eval_set=label, epochs=a.epochs)
        if not a.only_torch:
            model = build(bn, a.seed, **opts)
            cb = TestAccuracy(xte, yte, label)
            model.fit(xtr, ytr, epochs=a.epochs, batch_size=128, verbose=0, callbacks=[cb], seed=a.seed)
            best = max(cb.acc)
            print(f"  best {label} accuracy {best:.4f} (epoch {cb.acc.index(best) + 1}), final {cb.acc[-1]:.4f}; "
                  f"median {np.median(cb.secs):.2f} s per epoch; target >= 0.895: "
                  f"{'met' if best >= 0.895 else 'MISSED'}")
            ok &= best >= 0.895
            results.append(dict(rec, framework="fastnn", acc=cb.acc, loss=cb.loss, secs=cb.secs))
        if a.torch or a.only_torch:
            import torch
            torch.set_num_threads(a.threads)
            accs, losses, secs = torch_reference(xtr, ytr, xte, yte, bn, a.epochs, a.seed, label=label, **opts)
            print(f"  PyTorch, same recipe: best {label} accuracy {max(accs):.4f}, final {accs[-1]:.4f}")
            results.append(dict(rec, framework="torch", acc=accs, loss=losses, secs=secs))
    if a.json:
        import json
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
