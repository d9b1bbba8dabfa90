"""Small helpers shared by test modules (tests/ is on sys.path under pytest's default import mode)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np


def rss_bytes():
    """This process's resident set size, from /proc/self/status."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def kill_after_line(script, line, env, timeout=10):
    """Runs ``python -c script``, waits until it prints ``line`` (bytes), kills it with SIGKILL
    and returns its pid; the child never outlives the call (``timeout``: seconds per wait)."""
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env)
    try:
        assert p.stdout.readline().strip() == line
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(timeout)
        p.stdout.close()
    return p.pid


def fastnn_pythonpath():
    """The folder holding the fastnn under test (the checkout's python/ in development,
    site-packages in CI): what a child process needs on PYTHONPATH to import the same one."""
    import fastnn
    return os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))


def numeric_grad(f, w, eps=1e-6):
    """Central-difference gradient of the scalar function ``f`` at the array ``w``."""
    g = np.empty_like(w)
    for i in range(w.size):
        wp, wm = w.copy(), w.copy()
        wp.flat[i] += eps
        wm.flat[i] -= eps
        g.flat[i] = (f(wp) - f(wm)) / (2 * eps)
    return g


def python_stamps_during(fn):
    """How often a pure-Python thread ran during the first 80% of one fn() call, and the
    call's duration D.

    D is measured alone first; a counter thread then stamps the time in a loop while fn()
    runs once. A kernel holding the GIL freezes the counter for the whole call, so no
    stamp can fall in (t0, t0 + 0.8 D)."""
    fn()
    t = time.perf_counter()
    fn()
    duration = time.perf_counter() - t
    stamps, stop = [], threading.Event()

    def count():
        while not stop.is_set():
            stamps.append(time.perf_counter())

    th = threading.Thread(target=count)
    th.start()
    while not stamps:
        time.sleep(0.001)
    t0 = time.perf_counter()
    fn()
    stop.set()
    th.join()
    return sum(t0 < s < t0 + 0.8 * duration for s in stamps), duration
