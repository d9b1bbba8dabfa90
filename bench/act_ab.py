"""A/B timing of float32 activation kernels between two builds of fastnn.

    python3 bench/act_ab.py OLD_PYTHONPATH NEW_PYTHONPATH [--acts tanh,sigmoid] [--rounds 7]

Runs each build in its own subprocess, alternating A, B, A, B ... for --rounds rounds
(the machine is shared: alternation spreads the noise over both). Each subprocess keeps the
fastest of 9 timings (1 thread: the thread's CPU time, which excludes time descheduled);
printed: the median over rounds of that, per build, and the median and range of old/new."""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

CHILD = r"""
import json, sys, time
import numpy as np
import fastnn
from fastnn import ops
acts, sizes, threads, reps = json.loads(sys.argv[1])
fastnn.set_num_threads(threads)
out = {}
for n in sizes:
    x = (np.random.default_rng(0).standard_normal(n) * 2).astype(np.float32)
    y = np.empty_like(x); dy = np.ones_like(x); g = np.empty_like(x)
    for a in acts:
        for d in ("fwd", "grad"):
            f = (lambda: ops.activation(a, x, out=y)) if d == "fwd" else (lambda: ops.activation_grad(a, dy, x=x, out=g))
            f()
            k = max(1, int(reps * 1e6 / n))
            best = []
            clock = time.thread_time if threads == 1 else time.perf_counter  # 1 thread: CPU time of this thread
            for _ in range(9):
                t = clock()
                for _ in range(k):
                    f()
                best.append((clock() - t) / k / n * 1e9)
            out[f"{a} {d} {n} t{threads}"] = min(best)
print(json.dumps(out))
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old"), ap.add_argument("new")
    ap.add_argument("--acts", default="tanh")
    ap.add_argument("--sizes", default="65536,1048576,16777216")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--reps", type=float, default=20)
    a = ap.parse_args()
    acts = a.acts.split(",")
    sizes = [int(s) for s in a.sizes.split(",")]
    res = {"old": {}, "new": {}}
    for _ in range(a.rounds):
        for th in (int(t) for t in a.threads.split(",")):
            for which in ("old", "new"):
                env = dict(os.environ, PYTHONPATH=getattr(a, which))
                arg = json.dumps([acts, sizes, th, a.reps])
                out = subprocess.run([sys.executable, "-c", CHILD, arg], env=env, capture_output=True, text=True, check=True)
                for k, v in json.loads(out.stdout).items():
                    res[which].setdefault(k, []).append(v)
    print(f"{'case':32s} {'old ns/elt':>10s} {'new ns/elt':>10s} {'old/new':>8s}  (medians of {a.rounds}; ratio range)")
    for k in res["old"]:
        o, n = np.array(res["old"][k]), np.array(res["new"][k])
        r = o / n
        print(f"{k:32s} {np.median(o):10.3f} {np.median(n):10.3f} {np.median(r):7.2f}x  [{r.min():.2f}-{r.max():.2f}]")


if __name__ == "__main__":
    main()
