"""Experiment 4: the first sanity check — overfit 20 examples.

Before a long run, the notes say: take a tiny subset (20 examples), turn
regularization off, and make sure the network reaches 100% training accuracy
(loss near zero). If it cannot, something is broken. This script does it by
hand (printing the loss and accuracy as it goes) and then runs the one-call
version, fastnn.sanity.sanity_check, which also checks the initial loss
(ln 10 for 10 classes) and that regularization raises the loss.

    python examples/04_overfit_small.py
"""
import numpy as np

from _common import fashion_mnist, have_matplotlib, out_path, table

import fastnn
from fastnn.initializers import RandomNormal
from fastnn.layers import Dense
from fastnn.sanity import sanity_check


def build(l2=None):
    fastnn.initializers.set_random_seed(0)
    m = fastnn.Sequential([Dense(256, activation="relu", kernel_initializer="he_normal", input_dim=784),
                           Dense(128, activation="relu", kernel_initializer="he_normal"),
                           # small output weights (0.01 randn, as in the notes): initial loss ~ ln 10
                           Dense(10, activation="softmax", kernel_initializer=RandomNormal(stddev=0.01))])
    m.compile(fastnn.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"],
              regularizer=l2)
    return m


def main():
    (x, y), _ = fashion_mnist()
    rng = np.random.default_rng(0)
    idx = rng.choice(len(x), 20, replace=False)
    xs, ys = x[idx], y[idx]
    m = build()
    rows, losses = [], []
    for epoch in range(1, 201):
        h = m.fit(xs, ys, batch_size=20, epochs=1, verbose=0, shuffle=False)
        losses.append(h.history["loss"][-1])
        acc = float((m.predict_classes(xs) == ys).mean())
        if epoch in (1, 2, 5) or epoch % 10 == 0 or acc == 1.0:
            rows.append((epoch, f"{losses[-1]:.4f}", f"{acc:.0%}"))
        if acc == 1.0:
            break
    table(rows, ["epoch", "loss", "train accuracy (20 examples)"])
    print(f"\n100% training accuracy on 20 examples after {epoch} epochs\n")

    print("fastnn.sanity.sanity_check on the full model (with L2):")
    print(sanity_check(build(l2=fastnn.regularizers.L2(1e-4)), x, y))
    if have_matplotlib():
        from fastnn.plots import learning_curves
        learning_curves({"loss": losses}, out_path("04_overfit_small.png"),
                        title="overfitting 20 examples")
        print(f"\nplot: {out_path('04_overfit_small.png')}")


if __name__ == "__main__":
    main()
