"""Experiment 7: transfer learning.

Train an MLP on 8 Fashion-MNIST classes, then reuse its hidden layers for the
2 held-out classes with only 200 labelled examples, as the notes describe:
(a) freeze the transferred layers and train a new output layer (the base as a
fixed feature extractor), then (b) unfreeze and fine-tune everything with a
small learning rate. Both are compared with training the same network from
scratch on the 200 examples. The default held-out pair is T-shirt/top vs
Shirt, the hardest pair of the dataset; --pair picks another. Whether the
transferred features win depends on how much the new task resembles the old
one — the notes' caveat — and the table shows what happened, not a promise.

    python examples/07_transfer_learning.py [--pair 0,6]
"""
import argparse

import numpy as np

from _common import fashion_mnist, have_matplotlib, out_path, table

import fastnn
from fastnn.layers import Dense

HELD_OUT = (0, 6)  # T-shirt/top, Shirt
N_SMALL = 200


def hidden_layers():
    return [Dense(256, activation="relu", kernel_initializer="he_normal", input_dim=784),
            Dense(128, activation="relu", kernel_initializer="he_normal")]


def main():
    global HELD_OUT
    ap = argparse.ArgumentParser()
    ap.add_argument("--pair", default="0,6", help="the two held-out classes, e.g. 2,4")
    HELD_OUT = tuple(int(c) for c in ap.parse_args().pair.split(","))
    assert len(HELD_OUT) == 2 and HELD_OUT[0] != HELD_OUT[1], "--pair: two different classes"
    (x, y), (xt, yt) = fashion_mnist()
    base_cls = [c for c in range(10) if c not in HELD_OUT]
    remap = {c: i for i, c in enumerate(base_cls)}
    keep = np.isin(y, base_cls)
    xb, yb = x[keep], np.array([remap[c] for c in y[keep]])
    keep_t = np.isin(yt, base_cls)
    xbt, ybt = xt[keep_t], np.array([remap[c] for c in yt[keep_t]])

    fastnn.initializers.set_random_seed(0)
    base = fastnn.Sequential(hidden_layers() + [Dense(8, activation="softmax")])
    base.compile(fastnn.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    base.fit(xb, yb, epochs=8, batch_size=128, verbose=0, seed=0)
    base_acc = base.evaluate(xbt, ybt, return_dict=True)["accuracy"]
    print(f"base network on the 8 classes: test accuracy {base_acc:.4f}\n")

    rng = np.random.default_rng(0)
    pos = np.flatnonzero(np.isin(y, HELD_OUT))
    small = rng.choice(pos, N_SMALL, replace=False)
    xs, ys = x[small], (y[small] == HELD_OUT[1]).astype(np.int64)
    tmask = np.isin(yt, HELD_OUT)
    xs_t, ys_t = xt[tmask], (yt[tmask] == HELD_OUT[1]).astype(np.int64)

    def new_model(transfer):
        fastnn.initializers.set_random_seed(1)
        hidden = hidden_layers()
        m = fastnn.Sequential(hidden + [Dense(2, activation="softmax")])
        m.build()
        if transfer:
            for src, dst in zip(base.layers[:2], hidden):
                dst.set_weights(src.get_weights())
        return m, hidden

    rows, curves = [], {}
    m, _ = new_model(False)
    m.compile(fastnn.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    h = m.fit(xs, ys, epochs=40, batch_size=32, verbose=0, seed=0, validation_data=(xs_t, ys_t))
    rows.append(("from scratch", m._param_counts()[0], f"{h.history['val_accuracy'][-1]:.4f}"))
    curves["from scratch"] = h.history["val_accuracy"]

    m, hidden = new_model(True)
    for layer in hidden:
        layer.trainable = False
    m.compile(fastnn.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    h1 = m.fit(xs, ys, epochs=20, batch_size=32, verbose=0, seed=0, validation_data=(xs_t, ys_t))
    rows.append(("transfer, frozen base", m._param_counts()[0], f"{h1.history['val_accuracy'][-1]:.4f}"))
    for layer in hidden:
        layer.trainable = True
    m.compile(fastnn.optimizers.Adam(1e-4), "sparse_categorical_crossentropy", metrics=["accuracy"])
    h2 = m.fit(xs, ys, epochs=20, batch_size=32, verbose=0, seed=0, validation_data=(xs_t, ys_t))
    rows.append(("  then fine-tuned (lr 1e-4)", m._param_counts()[0],
                 f"{h2.history['val_accuracy'][-1]:.4f}"))
    curves["transfer: frozen, then fine-tuned"] = h1.history["val_accuracy"] + h2.history["val_accuracy"]
    from fastnn.datasets import FASHION_MNIST_CLASSES as names
    print(f"held-out classes {HELD_OUT} ({names[HELD_OUT[0]]} vs {names[HELD_OUT[1]]}), "
          f"{N_SMALL} training examples, "
          f"{len(ys_t)} test examples")
    table(rows, ["model", "trainable params", "test accuracy"])
    if have_matplotlib():
        from fastnn.plots import compare_runs
        fig = compare_runs(curves, "test accuracy (held-out pair)")
        fig.axes[0].axvline(20.5, color="k", ls=":", lw=1)  # frozen -> fine-tuned
        fig.savefig(out_path("07_transfer_learning.png"), dpi=100)
        print(f"plot: {out_path('07_transfer_learning.png')}")


if __name__ == "__main__":
    main()
