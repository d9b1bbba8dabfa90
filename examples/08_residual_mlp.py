"""Experiment 8: vanishing gradients in a deep MLP, and residual connections that fix them.

Two networks of the same depth (20 Dense layers of WIDTH units, the same parameter count)
on Fashion-MNIST: a plain stack, and the same layers in residual blocks
``h = h + Dense(Dense(h, act))`` (a functional graph with ``Add``; no activation on the
identity path, as in He et al.'s identity mappings). At initialization
the plain stack's gradients shrink layer after layer on the way down to the input (the
course notes' vanishing-gradient lesson); the identity paths of the residual blocks carry
the gradient to every layer. Then both train with the same optimizer and epochs, and
their test accuracies are printed side by side.

    python examples/08_residual_mlp.py            # full Fashion-MNIST (60k / 10k)
    python examples/08_residual_mlp.py --quick    # 10k / 2k examples, fewer epochs

The full dataset is read from /usr/share/datasets/fashion-mnist (or $FASTNN_DATA; see
fastnn.datasets.load_fashion_mnist); the bundled subset is used when it is missing.
"""
import argparse
import time

import numpy as np

from _common import table

import fastnn
from fastnn.layers import Add, Dense, Input

DEPTH = 20  # Dense layers in each network


def load(quick):
    try:
        (x, y), (xt, yt) = fastnn.datasets.load_fashion_mnist(download=False)
        source = "Fashion-MNIST"
    except FileNotFoundError:
        (x, y), (xt, yt) = fastnn.datasets.load_default()
        source = "bundled Fashion-MNIST subset"
    if quick:
        x, y, xt, yt = x[:10000], y[:10000], xt[:2000], yt[:2000]
    x = x.reshape(len(x), -1).astype(np.float32) / 255
    xt = xt.reshape(len(xt), -1).astype(np.float32) / 255
    mean, std = x.mean(), x.std()
    return ((x - mean) / std, y.astype(np.int64)), ((xt - mean) / std, yt.astype(np.int64)), source


def plain(width, act):
    x = Input(784)
    h = Dense(width, activation=act)(x)
    for _ in range(DEPTH - 2):
        h = Dense(width, activation=act)(h)
    return fastnn.Model(x, Dense(10, activation="softmax")(h), name="plain")


def residual(width, act):
    x = Input(784)
    h = Dense(width, activation=act)(x)
    for _ in range((DEPTH - 2) // 2):  # each block: two Dense layers and the identity path
        r = Dense(width, activation=act)(h)
        h = Add()([h, Dense(width)(r)])
    return fastnn.Model(x, Dense(10, activation="softmax")(h), name="residual")


def kernel_grad_norms(model, x, y):
    """The norm of the loss gradient of every Dense kernel, input side first."""
    _, g = model.compute_loss_and_gradients(x, y)
    return [float(np.linalg.norm(g[off:off + spec.size]))
            for _, spec, off in model.arena.entries if spec.name == "kernel"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10k training / 2k test examples, fewer epochs")
    ap.add_argument("--activation", default="sigmoid", help="hidden activation (default sigmoid)")
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=None)
    args = ap.parse_args()
    epochs = args.epochs or (3 if args.quick else 5)
    (x, y), (xt, yt), source = load(args.quick)
    print(f"{source}: {len(x)} training, {len(xt)} test examples; {DEPTH} Dense layers of {args.width} "
          f"units, {args.activation}\n")
    models = []
    for build in (plain, residual):
        fastnn.set_random_seed(0)
        m = build(args.width, args.activation)
        m.compile(fastnn.optimizers.SGD(learning_rate=0.01, momentum=0.9),
                  "sparse_categorical_crossentropy", metrics=["accuracy"])
        models.append(m)
    print(f"parameters: plain {models[0].count_params():,}, residual {models[1].count_params():,}\n")
    norms = [kernel_grad_norms(m, x[:512], y[:512]) for m in models]
    print("gradient norm of each Dense kernel at initialization (one batch of 512):")
    table([[k + 1, f"{a:.2e}", f"{b:.2e}"] for k, (a, b) in enumerate(zip(*norms))],
          ["layer", "plain", "residual"])
    print(f"\nfirst / last layer ratio: plain {norms[0][0] / norms[0][-1]:.1e}, "
          f"residual {norms[1][0] / norms[1][-1]:.1e}\n")
    rows = []
    for m in models:
        t = time.perf_counter()
        h = m.fit(x, y, batch_size=128, epochs=epochs, verbose=0, seed=0)
        secs = time.perf_counter() - t
        loss, acc = m.evaluate(xt, yt)
        rows.append([m.name, " ".join(f"{v:.3f}" for v in h.history["loss"]), f"{acc:.4f}", f"{secs:.1f}"])
    print(f"training ({epochs} epochs, SGD lr 0.01 momentum 0.9, batch 128):")
    table(rows, ["model", "training loss per epoch", "test accuracy", "seconds"])


if __name__ == "__main__":
    main()
