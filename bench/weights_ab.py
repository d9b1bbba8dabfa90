"""A/B of a weighted fit epoch (imbalanced tabular data, class_weight {0: 1, 1: 5}): a
20-64-32-1 sigmoid MLP, binary cross-entropy, Adam, 50,000 rows, each variant in its own
subprocess, round after round (interleaved); the table gives the median over rounds of the
best of two timed epochs.

    python3 bench/weights_ab.py --batch 32 --rounds 5 \
        new=python new-unweighted=python@none new-python=python@python old=/old/tree/python

A variant is NAME=PYTHONPATH[@MODE]: MODE "none" fits without weights, "python" with
FASTNN_NATIVE_STEP=0 (the Python step), else class weights on the native path.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

CHILD = r"""
import sys, time
import numpy as np
import fastnn
batch, threads, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
fastnn.set_num_threads(threads)
rng = np.random.default_rng(0)
x = rng.normal(size=(50000, 20)).astype(np.float32)
y = (x[:, :3].sum(axis=1) + rng.normal(size=50000) > 2.5).astype(np.float32)  # about 1 in 12 positive
L = fastnn.layers
m = fastnn.Sequential([L.Input((20,)), L.Dense(64, activation="relu"), L.Dense(32, activation="relu"),
                       L.Dense(1, activation="sigmoid")])
m.compile(optimizer=fastnn.optimizers.Adam(1e-3), loss="binary_crossentropy")
kw = {} if mode == "none" else {"class_weight": {0: 1.0, 1: 5.0}}
m.fit(x[:4096], y[:4096], batch_size=batch, epochs=1, verbose=0, **kw)
times = []
for _ in range(2):
    t = time.perf_counter()
    m.fit(x, y, batch_size=batch, epochs=1, verbose=0, **kw)
    times.append(time.perf_counter() - t)
print(min(times))
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variants", nargs="+")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    variants = []
    for text in args.variants:
        name, _, rest = text.partition("=")
        path, _, mode = rest.partition("@")
        variants.append((name, os.path.abspath(path), mode or "class"))
    results = {name: [] for name, _, _ in variants}
    for _ in range(args.rounds):
        for name, path, mode in variants:
            env = dict(os.environ, PYTHONPATH=path)
            if mode == "python":
                env["FASTNN_NATIVE_STEP"] = "0"
            out = subprocess.run([sys.executable, "-c", CHILD, str(args.batch), str(args.threads), mode],
                                 env=env, capture_output=True, text=True, check=True).stdout
            results[name].append(float(out.split()[-1]))
            time.sleep(1)
    print(f"batch {args.batch}, {args.threads} thread(s), {args.rounds} rounds: epoch seconds (median)")
    for name, times in results.items():
        print(f"  {name:20s} {statistics.median(times):8.3f}   {' '.join(f'{t:.3f}' for t in times)}")


if __name__ == "__main__":
    main()
