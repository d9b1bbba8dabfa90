"""fit epochs on the first N Fashion-MNIST training images, the Python step
(FASTNN_NATIVE_STEP=0) against the native step, for the training setups the native step
took over in session 9 (each one ran the Python step before), interleaved round by round
in one process (the variable is read at every fit), medians of the rounds:

  gelu      784-512-256-10, gelu hidden layers (a gradient from the input), Adam
  l2        784-512-256-10 relu, L2(1e-4) on every kernel, Adam
  bce       784-512-256-1 relu, sigmoid output and binary_crossentropy (class 0 vs the rest)
  rmsprop   784-512-256-10 relu, RMSprop(momentum=0.9, centered=True)
  hooks     784-512-256-10 relu, Adam, a batch callback under compile(steps_per_execution=32)
  weights   784-512-256-10 relu, Adam, class_weight (the native epoch with sample weights)
  clip      784-512-256-10 relu, Adam(global_clipnorm=1) and MaxNorm(3) kernels
  nadam, adamax, lion, sgdema   784-512-256-10 relu, Nadam / Adamax / Lion(1e-4) /
            SGD(0.05, momentum=0.9, momentum_form="ema", weight_decay=1e-4)
  smooth    784-512-256-10 relu, Adam, CategoricalCrossentropy(from_logits=True,
            label_smoothing=0.1) on one-hot labels (session 10)
  bcesmooth the bce case with BinaryCrossentropy(label_smoothing=0.1) (session 10)
  actreg    784-512-256-10 relu, ActivityRegularization(l1=1e-5, l2=1e-4) after each hidden
            layer, Adam (session 10)
  inputdrop 784-Dropout(0.2)-512-256-10 relu (input dropout), Adam (session 10)
  mae, huber 784-512-256-10 relu, a linear output, mean absolute error / Huber on one-hot
            rows, Adam (session 10)

    PYTHONPATH=python python3 bench/native_ab.py --case gelu --batch 32 --threads 2 --rounds 7
"""
import argparse
import os
import statistics
import time

import numpy as np

import fastnn
from fastnn.datasets import fashion_mnist

L = fastnn.layers


class _Hook(fastnn.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        self.last = batch


def _build(case):
    """(model, fit kwargs, binary labels)"""
    fastnn.utils.set_random_seed(0)
    act = "gelu" if case == "gelu" else "relu"
    reg = fastnn.regularizers.L2(1e-4) if case == "l2" else None
    con = fastnn.constraints.MaxNorm(3) if case == "clip" else None
    hidden = [L.Dense(512, activation=act, kernel_regularizer=reg, kernel_constraint=con),
              L.Dense(256, activation=act, kernel_regularizer=reg, kernel_constraint=con)]
    if case == "inputdrop":
        hidden = [L.Dropout(0.2, seed=1)] + hidden
    if case == "actreg":
        hidden = [hidden[0], L.ActivityRegularization(1e-5, 1e-4), hidden[1], L.ActivityRegularization(1e-5, 1e-4)]
    out = L.Dense(1, activation="sigmoid") if case in ("bce", "bcesmooth") else L.Dense(10)
    m = fastnn.Sequential([L.Input((784,))] + hidden + [out])
    opt = {"rmsprop": lambda: fastnn.optimizers.RMSprop(1e-3, momentum=0.9, centered=True),
           "clip": lambda: fastnn.optimizers.Adam(1e-3, global_clipnorm=1.0),
           "nadam": lambda: fastnn.optimizers.Nadam(1e-3), "adamax": lambda: fastnn.optimizers.Adamax(1e-3),
           "lion": lambda: fastnn.optimizers.Lion(1e-4),
           "sgdema": lambda: fastnn.optimizers.SGD(0.05, momentum=0.9, momentum_form="ema", weight_decay=1e-4)}.get(case, lambda: fastnn.optimizers.Adam(1e-3))()
    loss = {"bce": "binary_crossentropy", "bcesmooth": fastnn.losses.BinaryCrossentropy(label_smoothing=0.1),
            "smooth": fastnn.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
            "mae": "mae", "huber": "huber"}.get(
        case, fastnn.losses.SparseCategoricalCrossentropy(from_logits=True))
    m.compile(opt, loss, steps_per_execution=32 if case == "hooks" else 1)
    kw = {"callbacks": [_Hook()]} if case == "hooks" else {}
    if case == "weights":
        kw["class_weight"] = {k: 1.0 + 0.25 * k for k in range(10)}
    return m, kw


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", default="gelu", choices=["gelu", "l2", "bce", "rmsprop", "hooks", "weights", "clip",
                                                          "nadam", "adamax", "lion", "sgdema", "smooth", "bcesmooth",
                                                          "actreg", "inputdrop", "mae", "huber"])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--n", type=int, default=10000)
    a = ap.parse_args()
    fastnn.set_num_threads(a.threads)
    (x, y), _ = fashion_mnist.load_data()
    x, y = x.reshape(len(x), -1)[:a.n].astype(np.float32) / 255, y[:a.n].astype(np.int64)
    if a.case in ("bce", "bcesmooth"):
        y = (y == 0).astype(np.float32)
    elif a.case in ("smooth", "mae", "huber"):
        y = np.eye(10, dtype=np.float32)[y]
    models = {"python": _build(a.case), "native": _build(a.case)}
    times = {k: [] for k in models}
    for r in range(a.rounds + 1):  # round 0: warm-up (build, optimizer state, plan)
        for name, (m, kw) in models.items():
            os.environ["FASTNN_NATIVE_STEP"] = "0" if name == "python" else "1"
            t0 = time.perf_counter()
            m.fit(x, y, batch_size=a.batch, epochs=1, verbose=0, seed=r, **kw)
            if r:
                times[name].append(time.perf_counter() - t0)
            time.sleep(0.2)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{a.case} batch {a.batch} threads {a.threads} n={a.n} rounds={a.rounds}: "
          f"python {med['python'] * 1e3:.0f} ms, native {med['native'] * 1e3:.0f} ms an epoch; "
          f"python/native {med['python'] / med['native']:.2f}x", flush=True)


if __name__ == "__main__":
    main()
