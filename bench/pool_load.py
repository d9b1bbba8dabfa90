"""Batch-32 training step of the notes' MLP (784-512-256-256-128-10, ReLU, softmax +
sparse categorical cross-entropy, Adam) at 2 threads, quiet and with busy-loop
processes competing for the cores: fastnn's thread pool vs an OpenMP build of the
core (a copy of an older ``_core*.so``), each run in its own subprocess, interleaved
round after round; medians of the per-step times.

    PYTHONPATH=python python3 bench/pool_load.py --omp-so /tmp/pool-omp/_core.cpython-311-x86_64-linux-gnu.so \
        [--variants omp pool pool:0 pool:20000] [--rounds 5] [--busy 2] [--seconds 1.5] [--step native|python]

A variant is ``omp`` (the .so given by --omp-so) or ``pool[:SPIN_NS]`` (this tree's
core; SPIN_NS sets how long an idle worker spins before it sleeps, through
``_core._testing.set_pool_spin_ns``), either with ``@THREADS`` to override --threads
(``omp@1``). ``--busy N`` busy-loop processes run during the
loaded half of each round.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent

CHILD = r"""
import json, os, sys, time
import numpy as np
import fastnn
from fastnn import _core, trainer
spin, threads, seconds, max_steps = {spin}, {threads}, {seconds}, {max_steps}
if spin is not None:
    _core._testing.set_pool_spin_ns(spin)
fastnn.set_num_threads(threads)
L = fastnn.layers
m = fastnn.Sequential([L.Input((784,))] + [L.Dense(u, activation="relu") for u in (512, 256, 256, 128)]
                      + [L.Dense(10, activation="softmax")])
m.compile(fastnn.optimizers.Adam(1e-4), "sparse_categorical_crossentropy")
rng = np.random.default_rng(0)
x = rng.random((32, 784), dtype=np.float32)
y = rng.integers(0, 10, 32)
m.fit(x, y, batch_size=32, epochs=1, verbose=0)
modes = trainer.loss_mode(m)
for _ in range(20):
    trainer.train_step(m, x, y, *modes)
times, t_end = [], time.perf_counter() + seconds
while len(times) < max_steps and (time.perf_counter() < t_end or len(times) < 20):
    t0 = time.perf_counter()
    trainer.train_step(m, x, y, *modes)
    times.append(time.perf_counter() - t0)
print(json.dumps(times))
"""


def stage_omp(so: str, into: pathlib.Path) -> pathlib.Path:
    """A package dir: this tree's Python sources (linked) next to the given core."""
    pkg = into / "fastnn"
    pkg.mkdir(parents=True)
    for f in (ROOT / "python" / "fastnn").iterdir():
        if f.suffix != ".so" and not f.name.startswith("."):
            (pkg / f.name).symlink_to(f)
    shutil.copy(so, pkg / pathlib.Path(so).name)
    return into


def run_child(variant, omp_dir, a):
    variant, _, threads = variant.partition("@")
    kind, _, spin = variant.partition(":")
    path = omp_dir if kind == "omp" else ROOT / "python"
    code = CHILD.format(spin=(int(spin) if spin else None), threads=int(threads or a.threads), seconds=a.seconds,
                        max_steps=a.max_steps)
    env = dict(os.environ, PYTHONPATH=str(path), FASTNN_NATIVE_STEP="1" if a.step == "native" else "0")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    if r.returncode != 0:
        raise SystemExit(f"{variant}: child failed\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--omp-so", help="an OpenMP build's _core*.so (the 'omp' variant)")
    ap.add_argument("--variants", nargs="+", default=["omp", "pool"])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--busy", type=int, default=2, help="busy-loop processes in the loaded half")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=1.5, help="timed steps per child (at least 20)")
    ap.add_argument("--max-steps", type=int, default=2000)
    ap.add_argument("--step", choices=["native", "python"], default="native")
    ap.add_argument("--loads", nargs="+", default=["quiet", "loaded"], choices=["quiet", "loaded"])
    a = ap.parse_args()
    if "omp" in a.variants and not a.omp_so:
        raise SystemExit("--omp-so: needed for the 'omp' variant")
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="pool_load_"))
    try:
        omp_dir = stage_omp(a.omp_so, tmp) if "omp" in a.variants else None
        med = {(v, load): [] for v in a.variants for load in a.loads}
        for rnd in range(a.rounds):
            for load in a.loads:
                busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in
                        range(a.busy if load == "loaded" else 0)]
                try:
                    for v in (a.variants if rnd % 2 == 0 else a.variants[::-1]):
                        times = run_child(v, omp_dir, a)
                        med[(v, load)].append(statistics.median(times))
                        print(f"round {rnd} {load:6s} {v:12s} median {statistics.median(times) * 1e3:7.3f} ms "
                              f"over {len(times)} steps", flush=True)
                finally:
                    for p in busy:
                        p.kill()
                        p.wait()
        print(f"\nbatch-32 {a.step} step, {a.threads} threads unless @N, median over {a.rounds} rounds of per-child medians:")
        for load in a.loads:
            for v in a.variants:
                xs = med[(v, load)]
                print(f"  {load:6s} {v:12s} {statistics.median(xs) * 1e3:7.3f} ms  "
                      f"(rounds: {', '.join(f'{x * 1e3:.2f}' for x in xs)})")
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
