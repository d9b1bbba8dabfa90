"""Small helpers shared by test modules (tests/ is on sys.path under pytest's default import mode)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys


def rss_bytes():
    """This process's resident set size, from /proc/self/status."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def kill_after_line(script, line, env):
    """Runs ``python -c script``, waits until it prints ``line`` (bytes), kills it with SIGKILL
    and returns its pid; the child never outlives the call."""
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env)
    try:
        assert p.stdout.readline().strip() == line
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
        p.stdout.close()
    return p.pid


def fastnn_pythonpath():
    """The folder holding the fastnn under test (the checkout's python/ in development,
    site-packages in CI): what a child process needs on PYTHONPATH to import the same one."""
    import fastnn
    return os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))
