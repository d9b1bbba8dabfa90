"""A/B of fastnn builds (or pool spin settings) on the notes' MLP ``fit`` epoch: each
variant runs in its own subprocess, round after round (interleaved, 1 s pauses), and
reports the best of two timed epochs on the first 15,000 Fashion-MNIST images, scaled to
60,000; the table gives the median over rounds.

    python3 bench/epoch_ab.py --batch 512 --threads 2 --rounds 4 \
        old=/path/to/old/checkout/python new=python new@0=python new@2000000=python

A variant is NAME=PYTHONPATH[@SPIN_NS]... written as ``NAME@SPIN=PATH`` to run that tree
with ``_core._testing.set_pool_spin_ns(SPIN)`` (the pool's idle spin; a build without
the pool ignores it). Make an old tree with ``git worktree add --detach DIR COMMIT`` and
build it there (tools/devbuild.sh).
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
from fastnn.datasets import fashion_mnist
batch, threads, spin = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
fastnn.set_num_threads(threads)
if spin and hasattr(fastnn._core, "_testing") and hasattr(fastnn._core._testing, "set_pool_spin_ns"):
    fastnn._core._testing.set_pool_spin_ns(int(spin))
(x, y), _ = fashion_mnist.load_data()
x = x.reshape(len(x), -1)[:15000].astype(np.float32) / 255
y = y[:15000].astype(np.int64)
L = fastnn.layers
m = fastnn.Sequential([L.Input((784,))] + [L.Dense(u, activation="relu") for u in (512, 256, 256, 128)]
                      + [L.Dense(10)])
m.compile(optimizer=fastnn.optimizers.Adam(1e-3),
          loss=fastnn.losses.SparseCategoricalCrossentropy(from_logits=True))
m.fit(x[:2048], y[:2048], batch_size=batch, epochs=1, verbose=0)
times = []
for _ in range(2):
    t = time.perf_counter()
    m.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    times.append((time.perf_counter() - t) * 4)
print(min(times))
"""


def parse_variant(text):
    name, _, path = text.partition("=")
    if not path:
        raise SystemExit(f"variant {text!r}: expected NAME=PYTHONPATH or NAME@SPIN=PYTHONPATH")
    name, _, spin = name.partition("@")
    return text.split("=", 1)[0], os.path.abspath(path), spin


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variants", nargs="+")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args()
    variants = [parse_variant(v) for v in args.variants]
    times = {label: [] for label, _, _ in variants}
    for _ in range(args.rounds):
        for label, path, spin in variants:
            env = dict(os.environ, PYTHONPATH=path)
            out = subprocess.run([sys.executable, "-c", CHILD, str(args.batch), str(args.threads), spin],
                                 env=env, capture_output=True, text=True, check=False)
            if out.returncode:
                raise SystemExit(f"{label}: {out.stderr[-2000:]}")
            times[label].append(float(out.stdout.split()[-1]))
            time.sleep(1.0)
    print(f"fit epoch (s per 60k images), batch {args.batch}, threads {args.threads}, {args.rounds} rounds")
    for label, ts in times.items():
        print(f"  {label:>16}  median {statistics.median(ts):.3f}   rounds " + " ".join(f"{t:.2f}" for t in ts))


if __name__ == "__main__":
    main()
