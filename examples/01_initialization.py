"""Experiment 1: weight initialization and the activation statistics of a deep net.

The course notes' set-up: 1000 examples of 500 unit Gaussians through 10
layers of 500 units, no bias. With W = 0.01*randn the activations shrink to
zero layer after layer; with W = 1.0*randn tanh saturates at -1/+1; with
Xavier (randn/sqrt(fan_in)) tanh keeps a healthy spread; with ReLU, Xavier
halves the variance at every layer and He (randn/sqrt(fan_in/2)) fixes it.

Prints the per-layer mean and std of every set-up (fastnn forward pass, with
a NumPy twin of the same experiment beside it), writes histograms and a
std-per-layer plot.

    python examples/01_initialization.py
"""
import numpy as np

from _common import have_matplotlib, out_path, table

import fastnn
from fastnn.initializers import RandomNormal, VarianceScaling
from fastnn.layers import Dense
from fastnn.monitor import layer_outputs

LAYERS, UNITS, N = 10, 500, 1000
SETUPS = [  # label, activation, fastnn initializer, NumPy scale of randn(fan_in, fan_out)
    ("tanh, W = 0.01 randn", "tanh", lambda: RandomNormal(stddev=0.01), lambda n: 0.01),
    ("tanh, W = 1.0 randn", "tanh", lambda: RandomNormal(stddev=1.0), lambda n: 1.0),
    ("tanh, Xavier", "tanh",
     lambda: VarianceScaling(1.0, "fan_in", "untruncated_normal"), lambda n: 1 / np.sqrt(n)),
    ("relu, Xavier", "relu",
     lambda: VarianceScaling(1.0, "fan_in", "untruncated_normal"), lambda n: 1 / np.sqrt(n)),
    ("relu, He", "relu",
     lambda: VarianceScaling(2.0, "fan_in", "untruncated_normal"), lambda n: np.sqrt(2 / n)),
]


def fastnn_outputs(x, activation, init):
    fastnn.initializers.set_random_seed(0)
    model = fastnn.Sequential([fastnn.layers.Input(UNITS)] +
                              [Dense(UNITS, activation=activation, use_bias=False,
                                     kernel_initializer=init()) for _ in range(LAYERS)])
    outs = layer_outputs(model, x)
    return list(outs.values())


def numpy_outputs(x, activation, scale, rng):
    f = np.tanh if activation == "tanh" else (lambda z: np.maximum(z, 0))
    h, out = x.astype(np.float64), []
    for _ in range(LAYERS):
        h = f(h @ (rng.standard_normal((UNITS, UNITS)) * scale(UNITS)))
        out.append(h)
    return out


def main():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, UNITS)).astype(np.float32)
    print(f"input: mean {x.mean():+.4f} std {x.std():.4f}\n")
    all_outs, stds = {}, {}
    for label, act, init, scale in SETUPS:
        outs = fastnn_outputs(x, act, init)
        ref = numpy_outputs(x, act, scale, np.random.default_rng(1))
        all_outs[label] = outs
        stds[label] = [float(o.std()) for o in outs]
        print(label)
        table([(i + 1, f"{o.mean():+.6f}", f"{o.std():.6f}", f"{r.std():.6f}")
               for i, (o, r) in enumerate(zip(outs, ref))],
              ["layer", "mean", "std (fastnn)", "std (NumPy twin)"])
        print()
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
