"""Reliability of the kernels as a process sees them: the GIL is released,
4 Python threads at once give the results of one, fork never hangs, many calls
keep the RSS flat, results are bitwise reproducible for a fixed thread count,
and no kernel leaves the floating-point environment (MXCSR) changed.

Whatever could hang (threads, fork) runs in a subprocess with a timeout, so a
deadlock fails the test instead of freezing the suite.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import fastnn
from fastnn import _core, ops
from helpers import counter_pause_during, releases_the_gil, rss_bytes

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHONPATH = os.path.join(os.path.dirname(HERE), "python")
SUPPORTED_ISAS = [name for name in ("scalar", "avx2", "avx512") if _core.isa_supported(name)]


def run_script(code, *, timeout=120, env=None):
    """Runs `code` in a fresh interpreter importing this fastnn; returns the CompletedProcess.
    A hang is a test failure (subprocess.TimeoutExpired), never a frozen suite."""
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(p for p in (os.path.dirname(fastnn.__path__[0]), e.get("PYTHONPATH")) if p)
    e.update(env or {})
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=e)


# A fixed workload touching every kernel family; used alone and from threads. It lives in tools/
# (tools/leakcheck.sh runs it under valgrind) and is read here as source, to exec in fresh interpreters.
with open(os.path.join(os.path.dirname(HERE), "tools", "kernel_workload.py")) as _f:
    WORKLOAD = _f.read()


# ----------------------------------------------------------------------------
# threads
# ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_arrays():
    # each call takes 20 ms or more on one core: far longer than the few ms a busy machine
    # may deschedule the counter thread for
    rng = np.random.default_rng(0)
    n = 12_000_000
    return dict(x=rng.standard_normal((1100, 1100)), big=rng.standard_normal((12000, 1000)),
                p=rng.standard_normal(n), m=np.zeros(n), v=np.zeros(n), rm=np.zeros(1000), rv=np.ones(1000))


@pytest.mark.parametrize("op", ["matmul", "activation", "softmax", "adam_update", "batchnorm_forward", "dropout"])
def test_kernels_release_the_gil(op, big_arrays):
    """While a kernel runs, another Python thread keeps running: the kernel does not hold the GIL."""
    a = big_arrays
    x, big, p, m, v = a["x"], a["big"], a["p"], a["m"], a["v"]
    calls = {
        "matmul": lambda: ops.matmul(x, x),
        "activation": lambda: ops.activation("tanh", p),
        "softmax": lambda: ops.softmax(big),
        "adam_update": lambda: ops.adam_update(p, p, m, v, lr=1e-3, step=1),
        "batchnorm_forward": lambda: ops.batchnorm_forward(big, big[0], big[1], a["rm"], a["rv"]),
        "dropout": lambda: ops.dropout(p, 0.5, seed=1),
    }
    before = fastnn.get_num_threads()
    fastnn.set_num_threads(1)  # one core for the kernel, the other for the counter
    try:
        released, seen = releases_the_gil(calls[op])
    finally:
        fastnn.set_num_threads(before)
    assert released, f"{op}: {seen}"


def test_gil_probe_sees_a_call_that_holds_the_gil():
    """The probe itself: sorted() runs in C holding the GIL, so the counter thread stops for
    (about) the whole call, and releases_the_gil says so."""
    values = list(np.random.default_rng(1).standard_normal(300_000))
    pause, duration = counter_pause_during(lambda: sorted(values))
    assert pause >= 0.5 * duration, (pause, duration)
    assert releases_the_gil(lambda: sorted(values), tries=2)[0] is False


def test_gil_probe_sees_a_call_that_releases_the_gil():
    """...and time.sleep, which releases it, leaves the counter running."""
    assert releases_the_gil(lambda: time.sleep(0.05)) == (True, "")


@pytest.mark.parametrize("nthreads", [1, 2])
def test_ops_from_four_python_threads_match_one(nthreads):
    """4 Python threads running every kernel at once (`nthreads` per call: a call that
    finds the pool busy runs the same chunks on its own thread) give bitwise the results
    of one thread alone; nothing deadlocks."""
    code = WORKLOAD + f"""
import threading
fastnn.set_num_threads({nthreads})
data = [inputs(s) for s in range(4)]
alone = [workload(d) for d in data]
bad, done = [], []
def worker(i):
    for _ in range(15):
        if not same(workload(data[i]), alone[i]):
            bad.append(i)
    done.append(i)
ts = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
for t in ts: t.start()
for t in ts: t.join(90)
print("done", sorted(done), "mismatch", sorted(set(bad)))
assert sorted(done) == [0, 1, 2, 3] and not bad
"""
    r = run_script(code, timeout=150)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "done [0, 1, 2, 3] mismatch []" in r.stdout


# ----------------------------------------------------------------------------
# fork
# ----------------------------------------------------------------------------

FORK_PRELUDE = WORKLOAD + """
import multiprocessing as mp
fastnn.set_num_threads(2)
d = inputs(1)
parent = workload(d)   # big enough that the matmuls run on 2 threads (the pool's worker started)
"""


def fork_pool(prelude, child, processes, args, check):
    """Runs ``prelude`` then ``child`` (source defining ``child(i)``) and maps it over ``args``
    in a fork pool of ``processes``, in a fresh interpreter; ``check`` (source over ``res``,
    the list of results) must hold there."""
    code = prelude + child + f"""
with mp.get_context("fork").Pool({processes}) as pool:
    res = pool.map(child, {args!r}, chunksize=1)
print(res)
assert {check}, res
print("pool OK")
"""
    r = run_script(code, timeout=60)
    assert r.returncode == 0 and "pool OK" in r.stdout, r.stdout + r.stderr


def test_fork_after_threads_child_uses_threads():
    """fastnn with 2 threads, then a fork pool, then fastnn in the children: each child
    keeps 2 threads (its pool starts new workers: the probe needs 2 threads running at
    once) and gets bitwise the parent's results. (Under OpenMP every child hung, then ran
    single-threaded: libgomp cannot start threads after fork.)"""
    fork_pool(FORK_PRELUDE, """
from fastnn import _core
def child(i):
    return fastnn.get_num_threads(), len(_core._testing.mxcsr_of_threads(2)), same(workload(d), parent)
""", 2, [0, 1, 2, 3], "all(ok and n == 2 and k == 2 for n, k, ok in res)")


def test_fork_after_threads_child_may_change_its_thread_count():
    """set_num_threads in such a child works both ways (it raised under OpenMP)."""
    fork_pool(FORK_PRELUDE, """
def child(i):
    fastnn.set_num_threads(1)
    one = same(workload(d), workload(d))
    fastnn.set_num_threads(3)
    three = fastnn.get_num_threads() == 3 and same(workload(d), workload(d))
    fastnn.set_num_threads(2)
    return one and three and same(workload(d), parent)
""", 1, [0], "res == [True]")


def test_fork_before_any_thread_team_keeps_threads():
    """A child forked before fastnn's pool started any worker may use threads."""
    fork_pool(WORKLOAD + """
import multiprocessing as mp
fastnn.set_num_threads(1)
d = inputs(1)
parent = workload(d)
""", """
def child(i):
    fastnn.set_num_threads(2)
    return same(workload(d), parent) or "differs", fastnn.get_num_threads()
""", 2, [0, 1], "all(n == 2 for _, n in res)")


def test_spawn_children_use_threads():
    """The recommended way: the 'spawn' start method, threads in the children."""
    code = FORK_PRELUDE + """
def child(i):
    import fastnn as f
    f.set_num_threads(2)
    return same(workload(inputs(1)), parent)
if __name__ == "__main__":
    with mp.get_context("spawn").Pool(2) as pool:
        res = pool.map(child, range(2))
    assert all(res), res
    print("spawn OK")
"""
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"fastnn_spawn_{os.getpid()}.py")
    with open(path, "w") as f:
        f.write(textwrap.dedent(code))
    try:
        e = dict(os.environ)
        e["PYTHONPATH"] = os.pathsep.join(
            p for p in (os.path.dirname(fastnn.__path__[0]), e.get("PYTHONPATH")) if p)
        r = subprocess.run([sys.executable, path], capture_output=True, text=True, timeout=120, env=e)
    finally:
        os.unlink(path)
    assert r.returncode == 0 and "spawn OK" in r.stdout, r.stdout + r.stderr


def test_fork_after_another_librarys_openmp_team_never_hangs():
    """Issue 13 item 11: PyTorch runs an OpenMP team on the same libgomp.so.1, then the
    process forks before fastnn ever started a team: the child's first fastnn kernel
    must not hang (it did: libgomp waited for the parent's pool threads). fastnn no
    longer uses libgomp: the child runs on 2 threads, with the right result."""
    pytest.importorskip("torch")
    code = """
import os, signal, numpy as np
import torch
torch.set_num_threads(2)
a = torch.randn(512, 512)
assert float((a @ a).abs().sum()) > 0   # torch's OpenMP team of 2 ran
import fastnn
from fastnn import ops
fastnn.set_num_threads(2)
x = np.random.default_rng(0).standard_normal((300, 300)).astype(np.float32)
v = np.ones(1 << 20, np.float32)
pid = os.fork()
if pid == 0:
    signal.alarm(20)    # a hang ends the child with SIGALRM, not the suite
    y = ops.matmul(x, x)
    z = ops.activation("tanh", v)
    ok = np.allclose(y, x @ x, rtol=1e-4, atol=1e-3) and fastnn.get_num_threads() == 2
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
print("child exit", os.waitstatus_to_exitcode(status))
"""
    r = run_script(code, timeout=120)
    assert r.returncode == 0 and "child exit 0" in r.stdout, r.stdout + r.stderr


def test_set_num_threads_is_bounded():
    """Issue 13 item 12: 1000s of threads killed the process (then inside libgomp); the bound is
    the one FASTNN_NUM_THREADS has (4096, or OMP_THREAD_LIMIT when lower)."""
    before = fastnn.get_num_threads()
    assert _core.max_threads == 4096 or _core.max_threads < 4096
    for bad in (_core.max_threads + 1, 10**6, 2**31, 10**30):
        with pytest.raises(ValueError, match=r"^n: expected an integer in \[1, "):
            fastnn.set_num_threads(bad)
        assert fastnn.get_num_threads() == before
    code = """
import fastnn
from fastnn import _core
assert _core.max_threads == 3, _core.max_threads
try:
    fastnn.set_num_threads(4)
except ValueError as e:
    print("refused:", e)
fastnn.set_num_threads(3)
print("threads", fastnn.get_num_threads())
"""
    r = run_script(code, env={"OMP_THREAD_LIMIT": "3"})
    assert r.returncode == 0 and "refused: n: expected an integer in [1, 3]" in r.stdout and "threads 3" in r.stdout, \
        r.stdout + r.stderr


@pytest.mark.parametrize("dtype, eps", [(np.float32, 1e-39), (np.float32, 1e-45), (np.float64, 1e-310)])
@pytest.mark.parametrize("op", ["rmsprop_update", "adagrad_update", "adam_update"])
def test_subnormal_optimizer_epsilon_is_refused(op, dtype, eps):
    """Issue 13 item 13: an epsilon that is subnormal in the array's dtype reads as 0 under
    the kernels' flush-to-zero, so a zero gradient gave 0/0 = NaN weights."""
    p, g = np.ones(64, dtype), np.zeros(64, dtype)
    states = [np.zeros(64, dtype) for _ in range(2 if op == "adam_update" else 1)]
    kw = dict(lr=0.1, eps=eps) | (dict(step=1) if op == "adam_update" else {})
    with pytest.raises(ValueError, match="^eps: expected a normal"):
        getattr(ops, op)(p, g, *states, **kw)
    np.testing.assert_array_equal(p, 1)
    kw["eps"] = float(np.finfo(dtype).tiny)  # the smallest normal is fine, and no NaN
    getattr(ops, op)(p, g, *states, **kw)
    assert np.isfinite(p).all()


@pytest.mark.parametrize("opt", ["Adam", "RMSprop", "Adagrad"])
def test_subnormal_optimizer_epsilon_is_refused_at_build(opt):
    o = getattr(fastnn.optimizers, opt)(epsilon=1e-39)
    with pytest.raises(ValueError, match="^epsilon: expected a normal float32"):
        o.build(10, np.float32)
    o.build(10, np.float64)  # normal in float64
    o = getattr(fastnn.optimizers, opt)(epsilon=1e-310)
    with pytest.raises(ValueError, match="^epsilon: expected a normal float64"):
        o.build(10, np.float64)


# ----------------------------------------------------------------------------
# memory
# ----------------------------------------------------------------------------


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
def test_many_kernel_calls_keep_rss_flat():
    """3,000 rounds of every kernel family (~100,000 kernel calls, new arrays each time)
    after a warm-up: the RSS grows by less than 4 MiB (a leak of one buffer per call would
    show as tens of MiB)."""
    ns = {}
    exec(WORKLOAD, ns)
    d = ns["inputs"](3)
    d.update(a=d["a"][:40, :50].copy(), b=d["b"][:50, :30].copy(), bias=d["bias"][:30].copy())
    for _ in range(300):
        ns["workload"](d)
    before = rss_bytes()
    for _ in range(3000):
        ns["workload"](d)
    grown = rss_bytes() - before
    print(f"\nRSS growth over 3,000 workload rounds: {grown / 2**20:.2f} MiB")
    assert grown < 4 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB"


# ----------------------------------------------------------------------------
# determinism and the floating-point environment
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("nthreads", [1, 2])
def test_results_bitwise_reproducible_for_a_fixed_thread_count(nthreads):
    ns = {}
    exec(WORKLOAD, ns)
    before = fastnn.get_num_threads()
    fastnn.set_num_threads(nthreads)
    try:
        for isa in SUPPORTED_ISAS:
            _core.select_isa(isa)
            d = ns["inputs"](5, np.float64)
            first = ns["workload"](d)
            for _ in range(3):
                assert ns["same"](ns["workload"](d), first), isa
    finally:
        fastnn.set_num_threads(before)
        _core.select_isa("auto")


def thread_count_dependence():
    """Which workload outputs change bitwise between 1 and 2 threads (for docs/RELIABILITY.md)."""
    ns = {}
    exec(WORKLOAD, ns)
    d = ns["inputs"](5)
    before = fastnn.get_num_threads()
    try:
        fastnn.set_num_threads(1)
        one = ns["workload"](d)
        fastnn.set_num_threads(2)
        two = ns["workload"](d)
    finally:
        fastnn.set_num_threads(before)
    return [i for i, (x, y) in enumerate(zip(one, two)) if x.tobytes() != y.tobytes()], one, two


def test_thread_count_changes_results_only_by_rounding():
    differ, one, two = thread_count_dependence()
    print(f"\noutputs of the workload that differ bitwise between 1 and 2 threads: {differ}")
    for x, y in zip(one, two):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def _fp_environment_probe():
    """Values that depend on MXCSR: denormals (FTZ/DAZ) and the rounding mode."""
    tiny = np.array([1e-40, -3e-42], np.float32)
    return ((tiny * np.float32(1.5)).tobytes(), (tiny + np.float32(0)).tobytes(),
            (np.float64(1) / np.float64(3)).tobytes(), (np.float32(1) / np.float32(3)).tobytes())


def test_kernels_leave_the_floating_point_environment_unchanged():
    """No kernel sets flush-to-zero / denormals-are-zero or changes the rounding mode of the
    calling thread (NumPy code after a fastnn call computes exactly as before)."""
    ns = {}
    exec(WORKLOAD, ns)
    expect = _fp_environment_probe()
    assert np.frombuffer(expect[0], np.float32)[0] != 0, "denormals already flushed before any kernel"
    for isa in SUPPORTED_ISAS:
        _core.select_isa(isa)
        for nt in (1, 2):
            fastnn.set_num_threads(nt)
            ns["workload"](ns["inputs"](0))
            assert _fp_environment_probe() == expect, (isa, nt)
    _core.select_isa("auto")


def test_kernels_keep_denormal_inputs():
    """Denormal inputs are computed with, not flushed: relu and identity keep them exactly."""
    tiny = np.array([1e-40, 2e-39, -1e-41, 5e-45], np.float32)
    for isa in SUPPORTED_ISAS:
        _core.select_isa(isa)
        np.testing.assert_array_equal(ops.activation("identity", tiny), tiny)
        np.testing.assert_array_equal(ops.activation("relu", tiny), np.maximum(tiny, 0))
    _core.select_isa("auto")
