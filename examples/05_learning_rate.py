"""Experiment 5: learning rate too small, too large, about right.

The notes' symptoms: too small, the loss barely moves; too large, it
explodes (NaN, or a huge loss after which dead ReLUs leave the network
stuck) — fastnn's DivergenceStop/TerminateOnNaN callbacks end such a run early. Then the automated version: tuning.lr_range_test sweeps the rate
on a log scale and reports where the loss falls fastest and where it
explodes.

    python examples/05_learning_rate.py
"""
import math

from _common import fashion_mnist, have_matplotlib, out_path, table

import fastnn
from fastnn.callbacks import DivergenceStop, TerminateOnNaN
from fastnn.layers import Dense
from fastnn.tuning import lr_range_test


def build(lr=0.01):
    fastnn.initializers.set_random_seed(0)
    m = fastnn.Sequential([Dense(128, activation="relu", kernel_initializer="he_normal", input_dim=784),
                           Dense(10, activation="softmax")])
    m.compile(fastnn.optimizers.SGD(learning_rate=lr), "sparse_categorical_crossentropy",
              metrics=["accuracy"])
    return m


def main():
    (x, y), (xt, yt) = fashion_mnist()
    rows, curves = [], {}
    for lr in (1e-6, 1e-2, 3.0):
        m = build(lr)
        initial = m.evaluate(x, y, return_dict=True)["loss"]
        h = m.fit(x, y, epochs=6, batch_size=64, verbose=0, seed=0,
                  callbacks=[DivergenceStop(factor=3.0), TerminateOnNaN()])
        loss = h.history["loss"]
        acc = m.evaluate(xt, yt, return_dict=True)["accuracy"] if math.isfinite(loss[-1]) else float("nan")
        exploded = len(loss) < 6 or not all(math.isfinite(v) for v in loss) or \
            max(loss) > 3 * initial or loss[-1] >= initial
        verdict = ("too large: the loss exploded" if exploded
                   else "too small: the loss barely moves" if initial - loss[-1] < 0.05 * initial
                   else "about right")
        rows.append((f"{lr:g}", len(loss), f"{initial:.4f}", f"{max(loss):.4g}", f"{loss[-1]:.4g}",
                     f"{acc:.4f}", verdict))
        curves[f"lr {lr:g}"] = loss
    table(rows, ["lr", "epochs run", "initial loss", "max epoch loss", "last loss", "test acc",
                 "verdict"])

    r = lr_range_test(build, x, y, lr_min=1e-6, lr_max=10, steps=200)
    print(f"\nlr_range_test: loss falls fastest at lr {r.steepest_lr:.3g}, lowest at "
          f"{r.min_loss_lr:.3g}, explodes at "
          f"{'never' if r.diverged_lr is None else format(r.diverged_lr, '.3g')} "
          f"-> suggested lr {r.suggested_lr:.3g}")
    if have_matplotlib():
        r.plot(out_path("05_lr_range_test.png"))
        from fastnn.plots import compare_runs
        compare_runs(curves, "training loss", out_path("05_learning_rates.png"), log_scale=True)
        print(f"plots: {out_path('05_lr_range_test.png')}, {out_path('05_learning_rates.png')}")


if __name__ == "__main__":
    main()
