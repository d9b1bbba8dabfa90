"""Experiment 1: weight initialization and the activation statistics of a deep net.

The course notes' set-up: 10,000 examples of 500 unit Gaussians through 10
layers of 500 units, no bias. With W = 0.01*randn the activations shrink to
zero layer after layer; with W = 1.0*randn tanh saturates at -1/+1; with
Xavier (randn/sqrt(fan_in)) and Glorot (fan_avg: uniform with limit
sqrt(6/(fan_in+fan_out)), or normal with std sqrt(2/(fan_in+fan_out))) tanh
keeps a healthy spread; with ReLU they halve the variance at every layer and
He (randn/sqrt(fan_in/2)) fixes it. (Here fan_in = fan_out = 500, so fan_avg
and fan_in give the same variance; uniform and normal differ in shape only.)

Prints the activation std of every layer for every set-up, to two digits,
fastnn's forward pass beside a NumPy twin of the same experiment; the notes'
own numbers are not in this repository, so there is no third column. Writes
histograms and a std-per-layer plot.

    python examples/01_initialization.py
"""
import numpy as np

from _common import have_matplotlib, out_path, table

import fastnn
from fastnn.initializers import RandomNormal, VarianceScaling
from fastnn.layers import Dense
from fastnn.monitor import layer_outputs

LAYERS, UNITS, N = 10, 500, 10_000


def _normal(std):
    return lambda rng, n: rng.standard_normal((n, n)) * std(n)


def _uniform(limit):
    return lambda rng, n: rng.uniform(-limit(n), limit(n), size=(n, n))


def _glorot_uniform():
    return VarianceScaling(1.0, "fan_avg", "uniform")  # = Keras's glorot_uniform


def _glorot_normal():
    return VarianceScaling(1.0, "fan_avg", "untruncated_normal")


SETUPS = [  # label, activation, fastnn initializer, NumPy twin W(rng, n) of shape (n, n)
    ("tanh, W = 0.01 randn", "tanh", lambda: RandomNormal(stddev=0.01), _normal(lambda n: 0.01)),
    ("tanh, W = 1.0 randn", "tanh", lambda: RandomNormal(stddev=1.0), _normal(lambda n: 1.0)),
    ("tanh, Xavier", "tanh",
     lambda: VarianceScaling(1.0, "fan_in", "untruncated_normal"), _normal(lambda n: 1 / np.sqrt(n))),
    ("tanh, Glorot uniform", "tanh", _glorot_uniform, _uniform(lambda n: np.sqrt(6 / (n + n)))),
    ("tanh, Glorot normal fan_avg", "tanh", _glorot_normal, _normal(lambda n: np.sqrt(2 / (n + n)))),
    ("relu, Xavier", "relu",
     lambda: VarianceScaling(1.0, "fan_in", "untruncated_normal"), _normal(lambda n: 1 / np.sqrt(n))),
    ("relu, Glorot uniform", "relu", _glorot_uniform, _uniform(lambda n: np.sqrt(6 / (n + n)))),
    ("relu, Glorot normal fan_avg", "relu", _glorot_normal, _normal(lambda n: np.sqrt(2 / (n + n)))),
    ("relu, He", "relu",
     lambda: VarianceScaling(2.0, "fan_in", "untruncated_normal"), _normal(lambda n: np.sqrt(2 / n))),
]


def fastnn_outputs(x, activation, init):
    fastnn.initializers.set_random_seed(0)
    model = fastnn.Sequential([fastnn.layers.Input(UNITS)] +
                              [Dense(UNITS, activation=activation, use_bias=False,
                                     kernel_initializer=init()) for _ in range(LAYERS)])
    outs = layer_outputs(model, x)
    return list(outs.values())


def numpy_outputs(x, activation, weights, rng):
    f = np.tanh if activation == "tanh" else (lambda z: np.maximum(z, 0))
    h, out = x.astype(np.float64), []
    for _ in range(LAYERS):
        h = f(h @ weights(rng, UNITS))
        out.append(h)
    return out


def main():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, UNITS)).astype(np.float32)
    print(f"input: mean {x.mean():+.4f} std {x.std():.4f}\n")
    all_outs, stds, rows = {}, {}, []
    for label, act, init, weights in SETUPS:
        outs = fastnn_outputs(x, act, init)
        ref = numpy_outputs(x, act, weights, np.random.default_rng(1))
        all_outs[label] = outs
        stds[label] = [float(o.std()) for o in outs]
        rows.append((label, "fastnn") + tuple(f"{o.std():.2g}" for o in outs))
        rows.append(("", "NumPy twin") + tuple(f"{r.std():.2g}" for r in ref))
    print(f"activation std per layer ({N:,} samples, {LAYERS} layers of {UNITS} units, no bias)")
    table(rows, ["set-up", "run"] + [f"L{i + 1}" for i in range(LAYERS)])
    print("(the notes' own numbers are not in this repository: compare with the notes' table)\n")
    if have_matplotlib():
        from fastnn import plots
        plots.std_per_layer_plot(stds, out_path("01_init_std_per_layer.png"),
                                 title="activation std per layer (10 x 500 units)")
        for label, outs in all_outs.items():
            name = label.replace(", ", "_").replace(" = ", "").replace(" ", "").replace(".", "")
            rng_ = (-1, 1) if label.startswith("tanh") else None
            plots.activation_histograms({f"layer {i + 1}": o for i, o in enumerate(outs)},
                                        out_path(f"01_init_hist_{name}.png"), bins=30,
                                        title=label, range=rng_)
        print(f"plots written to {out_path('')}")


if __name__ == "__main__":
    main()
