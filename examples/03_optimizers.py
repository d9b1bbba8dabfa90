"""Experiment 3: optimizers compared on Fashion-MNIST.

SGD, SGD with momentum 0.9 (and Nesterov), RMSProp and Adam, each at a
learning rate that suits it (the notes' usual starting points), on the same
ReLU MLP and data. Prints the loss after each epoch and the test accuracy,
writes the learning curves.

    python examples/03_optimizers.py [--epochs 8]
"""

from _common import epochs_arg, fashion_mnist, plot_runs, table

import fastnn
from fastnn.layers import Dense
from fastnn.optimizers import SGD, Adam, RMSprop

OPTIMIZERS = {
    "SGD lr 0.05": lambda: SGD(learning_rate=0.05),
    "momentum 0.9 lr 0.01": lambda: SGD(learning_rate=0.01, momentum=0.9),
    "Nesterov 0.9 lr 0.01": lambda: SGD(learning_rate=0.01, momentum=0.9, nesterov=True),
    "RMSProp lr 1e-3": lambda: RMSprop(learning_rate=1e-3),
    "Adam lr 1e-3": lambda: Adam(learning_rate=1e-3),
}


def main():
    epochs = epochs_arg(8)
    (x, y), (xt, yt) = fashion_mnist()
    rows, curves = [], {}
    for name, make in OPTIMIZERS.items():
        fastnn.initializers.set_random_seed(0)
        m = fastnn.Sequential([Dense(256, activation="relu", kernel_initializer="he_normal",
                                     input_dim=784),
                               Dense(10, activation="softmax")])
        m.compile(make(), "sparse_categorical_crossentropy", metrics=["accuracy"])
        h = m.fit(x, y, epochs=epochs, batch_size=64, verbose=0, seed=0,
                  validation_data=(xt, yt))
        curves[name] = h
        losses = h.history["loss"]
        rows.append([name] + [f"{v:.3f}" for v in (losses[0], losses[len(losses) // 2], losses[-1])]
                    + [f"{h.history['val_accuracy'][-1]:.4f}"])
    table(rows, ["optimizer", "loss ep 1", f"loss ep {epochs // 2 + 1}",
                 f"loss ep {epochs}", "test acc"])
    plot_runs(curves, ("loss", "val_loss"), "03_optimizers.png", "training and test loss per optimizer")


if __name__ == "__main__":
    main()
