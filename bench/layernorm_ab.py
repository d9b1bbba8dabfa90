"""LayerNormalization forward + backward: the core kernels (the layer's 2-D last-axis path)
against the NumPy code the layer ran before (kept as its _forward_numpy / _backward_numpy
for other axes), interleaved, medians of per-round times.

    PYTHONPATH=python python3 bench/layernorm_ab.py [rounds]
"""
import sys
import time

import numpy as np

import fastnn
from fastnn import layers as L


def main(rounds=30):
    print("threads", fastnn.get_num_threads())
    for dtype in ("float32", "float64"):
        for m, n in [(64, 128), (256, 512), (1024, 256), (128, 2048)]:
            model = fastnn.Sequential([L.Input(n), L.LayerNormalization()], dtype=dtype)
            model.compile("sgd", "mse")
            layer = model.layers[-1]
            rng = np.random.default_rng(0)
            x, dy = rng.normal(size=(m, n)).astype(dtype), rng.normal(size=(m, n)).astype(dtype)
            reps = max(1, 200_000 // (m * n))

            def kernel():
                for _ in range(reps):
                    layer.forward(x, training=True)
                    layer.backward(dy.copy())

            def numpy_path():
                for _ in range(reps):
                    layer._forward_numpy(x)
                    layer._backward_numpy(dy.copy(), True)
            kernel(), numpy_path()
            tk, tn = [], []
            for _ in range(rounds):
                for f, t in ((kernel, tk), (numpy_path, tn)):
                    t0 = time.perf_counter()
                    f()
                    t.append((time.perf_counter() - t0) / reps)
            a, b = np.median(tk), np.median(tn)
            print(f"{dtype} ({m},{n}): kernel {a * 1e6:8.1f} us  numpy {b * 1e6:8.1f} us  speedup {b / a:5.2f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
