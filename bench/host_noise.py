"""The host's slow phases, seen from inside the guest (session 9): fastnn fit epochs of the
notes' MLP on the first 15,000 Fashion-MNIST images (scaled to 60k), round after round.

    PYTHONPATH=python python3 bench/host_noise.py steal ROUNDS    # 2 threads; per epoch: seconds,
        process CPU seconds, and each vCPU's busy / idle / steal ticks from /proc/stat
    PYTHONPATH=python python3 bench/host_noise.py cores ROUNDS    # 1 thread, pinned to cpu0 then cpu1
"""
import os
import sys
import time

import numpy as np

import fastnn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_train as ct  # noqa: E402
import train_fashion  # noqa: E402


def _stat():
    out = {}
    for line in open("/proc/stat"):
        if line.startswith("cpu") and line[3] != " ":
            v = list(map(int, line.split()[1:]))
            out[line.split()[0]] = (v[0] + v[1] + v[2], v[3], v[7])  # busy, idle, steal
    return out


def main():
    mode, rounds = sys.argv[1], int(sys.argv[2])
    fastnn.set_num_threads(2 if mode == "steal" else 1)
    (x, y), _ = train_fashion.load_fashion_mnist()
    x, y = np.ascontiguousarray(x[:15000]), np.ascontiguousarray(y[:15000])
    fit, _ = ct.fastnn_contender(x, y, 32)
    fit()
    for r in range(rounds):
        if mode == "cores":
            line = []
            for c in (0, 1):
                os.sched_setaffinity(0, {c})
                t = time.perf_counter()
                fit()
                line.append(f"cpu{c} {4 * (time.perf_counter() - t):.2f}")
                time.sleep(0.2)
            print(r, " ".join(line), flush=True)
            continue
        s0, t0 = _stat(), os.times()
        t = time.perf_counter()
        fit()
        dt = time.perf_counter() - t
        s1, t1 = _stat(), os.times()
        d = {k: tuple(b - a for a, b in zip(s0[k], s1[k])) for k in s0}
        cpu = (t1.user - t0.user) + (t1.system - t0.system)
        print(r, f"{4 * dt:.2f}s cpu={cpu:.2f}",
              " ".join(f"{k}:busy{v[0]}/idle{v[1]}/st{v[2]}" for k, v in d.items()), flush=True)
        time.sleep(0.5)


if __name__ == "__main__":
    main()
