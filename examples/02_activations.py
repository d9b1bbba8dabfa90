"""Experiment 2: activation functions on Fashion-MNIST.

The same MLP (784-256-128-10, Adam, He/Glorot init to match the activation)
trained with sigmoid, tanh, ReLU, leaky ReLU, ELU and swish on the bundled
Fashion-MNIST subset. Prints test accuracy and the final training loss,
writes the learning curves.

    python examples/02_activations.py [--epochs 8]
"""
import time

from _common import epochs_arg, fashion_mnist, plot_runs, table

import fastnn
from fastnn.layers import Dense

ACTIVATIONS = ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "swish"]


def build(activation):
    init = "glorot_uniform" if activation in ("sigmoid", "tanh") else "he_normal"
    fastnn.initializers.set_random_seed(0)
    m = fastnn.Sequential([Dense(256, activation=activation, kernel_initializer=init, input_dim=784),
                           Dense(128, activation=activation, kernel_initializer=init),
                           Dense(10, activation="softmax")])
    m.compile(fastnn.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def main():
    epochs = epochs_arg(8)
    (x, y), (xt, yt) = fashion_mnist()
    rows, curves = [], {}
    for act in ACTIVATIONS:
        m = build(act)
        t = time.perf_counter()
        h = m.fit(x, y, epochs=epochs, batch_size=128, verbose=0, seed=0,
                  validation_data=(xt, yt))
        secs = time.perf_counter() - t
        rows.append((act, f"{h.history['loss'][-1]:.4f}", f"{h.history['val_accuracy'][-1]:.4f}",
                     f"{secs:.1f}"))
        curves[act] = h.history
    table(rows, ["activation", "train loss", "test accuracy", "seconds"])
    plot_runs(curves, ("loss", "val_accuracy"), "02_activations.png", "training loss and test accuracy per activation")


if __name__ == "__main__":
    main()
