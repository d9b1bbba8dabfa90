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


def count_native_steps(monkeypatch):
    """{"n": steps the native step ran} from now on (fit's native_step.try_step and
    epoch_steps wrapped: a step they decline runs in Python)."""
    from fastnn import native_step, trainer
    count = {"n": 0}

    def counting(*args):
        r = native_step.try_step(*args)
        count["n"] += r is not None
        return r

    def counting_epoch(*args):
        run = native_step.epoch_steps(*args)
        if run is None:
            return None

        def counted(order, guard, execution=0):
            for done, losses, *rest in run(order, guard, execution):
                count["n"] += len(losses)
                yield (done, losses, *rest)
        return counted
    monkeypatch.setattr(trainer, "_native_step", type("M", (), {"try_step": staticmethod(counting),
                                                               "epoch_steps": staticmethod(counting_epoch)}))
    return count


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


def counter_pause_during(fn):
    """The longest pause of a pure-Python counter thread during one fn() call, and fn's
    duration alone (the fastest of three calls), in seconds.

    A call that holds the GIL freezes the counter for all of its C part: a pause about as
    long as the call. A call that releases it leaves only short pauses. The pause is measured
    between the counter's own stamps and the call's two ends, so time the main thread spends
    waiting for the GIL before or after the call (up to sys.getswitchinterval()) counts as
    running, never as a pause."""
    fn()
    durations = []
    for _ in range(3):
        t = time.perf_counter()
        fn()
        durations.append(time.perf_counter() - t)
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
    t1 = time.perf_counter()
    stop.set()
    th.join()
    points = [t0] + [s for s in stamps if t0 < s < t1] + [t1]
    return max(b - a for a, b in zip(points, points[1:])), min(durations)


def releases_the_gil(fn, tries=10):
    """(True, "") when a Python thread kept running through one fn() call: its longest pause
    under half the call's duration. A busy machine may deschedule the counter for a while, so
    up to `tries` calls; a call holding the GIL fails every one. (False, what was seen) else."""
    for _ in range(tries):
        pause, duration = counter_pause_during(fn)
        if pause < 0.5 * duration:
            return True, ""
    return False, f"a Python thread paused {pause * 1e3:.1f} ms during a {duration * 1e3:.1f} ms call"


def keras_on_jax():
    """keras, imported with KERAS_BACKEND=jax (set unless already chosen); the test is skipped
    when keras is not installed or this process already runs it on another backend."""
    import pytest
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("Keras runs on another backend in this process")
    return keras
