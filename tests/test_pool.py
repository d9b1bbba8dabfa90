"""fastnn's thread pool (csrc/fastnn/parallel.cpp): chunks claimed by the caller and the
workers, results that depend on the thread count only, concurrent and nested callers,
exceptions, the caller's MXCSR on the workers, fork.

Whatever could hang runs in a subprocess with a timeout."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import fastnn
from fastnn import _core, ops

T = _core._testing
HAS_MXCSR = bool(T.mxcsr_of_threads(1)[0])


def run_script(code, timeout=120):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (os.path.dirname(fastnn.__path__[0]), env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.fixture
def two_threads():
    before = fastnn.get_num_threads()
    fastnn.set_num_threads(2)
    yield
    fastnn.set_num_threads(before)


def batchnorm(x):
    c = x.shape[1]
    return ops.batchnorm_forward(x, np.ones(c, x.dtype), np.zeros(c, x.dtype), np.zeros(c, x.dtype),
                                 np.ones(c, x.dtype), training=True)


def products(seed):
    """Thread-split results: GEMMs split by columns and by rows, a row-split product whose
    bias gradient one band writes, batchnorm forward/backward, softmax cross-entropy, an
    elementwise op, column sums and a global norm (reductions)."""
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((300, 700), np.float32), rng.standard_normal((700, 500), np.float32)
    tall = rng.standard_normal((4000, 96), np.float32)
    v = rng.standard_normal(1 << 20).astype(np.float32)
    dw, db = ops.matmul_bias_grad(tall, tall, trans_a=True)
    y, mean, invstd = batchnorm(tall)[:3]
    labels = rng.integers(0, 96, 4000)
    grads = [v.copy(), tall.copy()]
    return [ops.matmul(a, b), ops.matmul(tall, a[:96, :96]), dw, db, y,
            *ops.batchnorm_backward(tall, tall, np.ones(96, np.float32), mean, invstd),
            *ops.softmax_cross_entropy(tall, labels), ops.activation("tanh", v), ops.column_sum(tall),
            ops.clip_by_global_norm(grads, 1.0), *grads]


def test_one_job_uses_distinct_threads_and_the_caller_mxcsr(two_threads):
    """Each chunk of a 2-chunk job runs while the other runs (2 threads), and the worker
    computes with the caller's MXCSR, including one set just for this call (rounding
    toward zero, FTZ, DAZ); afterwards the caller's MXCSR is its own again."""
    if not HAS_MXCSR:
        pytest.skip("no MXCSR on this platform")
    mine = T.mxcsr_of_threads(1)[0]
    assert T.mxcsr_of_threads(2) == [mine, mine]
    special = 0x1F80 | 0x6000 | 0x8000 | 0x0040
    got = T.mxcsr_of_threads(2, special)
    assert got == [special, special]
    assert T.mxcsr_of_threads(1)[0] == mine
    assert T.mxcsr_of_threads(3) == [mine] * 3                 # a job may use more chunks than the thread count


def test_results_depend_on_the_thread_count_only():
    """1 and 2 threads give bitwise the same results, run after run (GEMM columns and rows,
    the bias gradient written by one band, batchnorm, elementwise, reductions)."""
    before = fastnn.get_num_threads()
    try:
        runs = []
        for nt in (1, 2, 1, 2):
            fastnn.set_num_threads(nt)
            runs.append(products(0))
    finally:
        fastnn.set_num_threads(before)
    for r in runs[1:]:
        for x, y in zip(runs[0], r):
            assert np.array_equal(np.asarray(x), np.asarray(y))


def test_concurrent_python_threads_give_the_results_of_one():
    """4 Python threads calling matmul/batchnorm/... at once at 2 threads (the pool busy for
    all but one: the others run the same chunks on their own thread) give bitwise the
    results of one caller alone; no deadlock (subprocess, timeout)."""
    code = """
import concurrent.futures as cf, threading, numpy as np, fastnn
from fastnn import ops
fastnn.set_num_threads(2)
def work(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((300, 700), np.float32), rng.standard_normal((700, 500), np.float32)
    x = rng.standard_normal((2000, 128), np.float32)
    c = x.shape[1]
    bn = ops.batchnorm_forward(x, np.ones(c, x.dtype), np.zeros(c, x.dtype), np.zeros(c, x.dtype),
                               np.ones(c, x.dtype), training=True)[0]
    return [ops.matmul(a, b), np.asarray(bn), ops.activation("tanh", x)]
alone = [work(s) for s in range(4)]
start = threading.Barrier(4)
def mismatches(i):
    start.wait()   # the 4 callers begin together
    return sum(not all(np.array_equal(p, q) for p, q in zip(work(i), alone[i])) for _ in range(30))
with cf.ThreadPoolExecutor(4) as ex:
    print("mismatches", list(ex.map(mismatches, range(4), timeout=90)))
"""
    r = run_script(code, timeout=120)
    assert r.returncode == 0 and "mismatches [0, 0, 0, 0]" in r.stdout, r.stdout + r.stderr


def test_nested_parallel_for_runs_every_chunk_once(two_threads):
    """parallel_for inside a chunk (the caller's or a worker's) runs serially on that
    thread: every (i, j) written exactly once, no deadlock."""
    for outer, inner in ((2, 500), (7, 300), (64, 3), (1, 1000)):
        out = np.array(T.nested_parallel_for(outer, inner))
        assert out.shape == (outer * inner,) and np.all(out == 1), (outer, inner)


@pytest.mark.parametrize("failing", [0, 1])
def test_a_chunk_exception_reaches_the_caller_after_every_started_chunk(two_threads, failing):
    """std::bad_alloc in a chunk (caller's or worker's) is a MemoryError on the caller, raised
    only once every chunk that had started finished; the pool keeps working."""
    with pytest.raises(MemoryError):
        T.chunk_error(2, failing, "bad_alloc", 50)
    started, finished, running = T.chunk_error_stats()
    assert running == 0 and 1 <= started <= 2 and finished == started - 1
    with pytest.raises(RuntimeError, match="chunk 2 failed"):
        T.chunk_error(4, 2, "runtime_error", 10)
    assert T.chunk_error_stats()[2] == 0
    x = np.random.default_rng(0).standard_normal((400, 400), np.float32)
    np.testing.assert_allclose(ops.matmul(x, x), x @ x, rtol=1e-4, atol=1e-3)
    assert T.mxcsr_of_threads(2)  # both threads still answer


def test_fork_child_runs_two_threads_with_the_parents_results():
    """After the pool ran in the parent, children of a 'fork' multiprocessing pool run on
    2 threads (their own new workers) with bitwise the parent's results; no hang."""
    code = """
import multiprocessing as mp, numpy as np, fastnn
from fastnn import ops, _core
fastnn.set_num_threads(2)
rng = np.random.default_rng(0)
a, b = rng.standard_normal((300, 700), np.float32), rng.standard_normal((700, 500), np.float32)
parent = ops.matmul(a, b)
assert len(_core._testing.mxcsr_of_threads(2)) == 2   # the parent's worker exists
def child(i):
    threads_at_once = len(_core._testing.mxcsr_of_threads(2))
    return fastnn.get_num_threads(), threads_at_once, bool(np.array_equal(ops.matmul(a, b), parent))
with mp.get_context("fork").Pool(2) as pool:
    res = pool.map(child, range(4), chunksize=1)
print(res)
assert res == [(2, 2, True)] * 4, res
print("fork OK")
"""
    r = run_script(code, timeout=60)
    assert r.returncode == 0 and "fork OK" in r.stdout, r.stdout + r.stderr


def test_python_threads_share_the_pool_without_waiting_forever(two_threads):
    """Many short jobs from two Python threads at once (each job either on the pool or serial
    on its caller) all finish, with the right answers."""
    x = np.random.default_rng(1).standard_normal(200_000).astype(np.float32)
    want = ops.activation("relu", x)
    errors = []

    def loop():
        for _ in range(300):
            if not np.array_equal(ops.activation("relu", x), want):
                errors.append(1)

    ts = [threading.Thread(target=loop) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not any(t.is_alive() for t in ts) and not errors


@pytest.fixture
def spin_restored():
    before = T.pool_spin_ns()
    yield
    T.set_pool_spin_ns(before)


def test_sleeping_workers_are_woken_for_every_job(two_threads, spin_restored):
    """With no idle spin (each worker sleeps as soon as it is idle) every job still runs
    on 2 threads with its answer; a negative spin reads as 0."""
    T.set_pool_spin_ns(-5)
    assert T.pool_spin_ns() == 0
    x = np.random.default_rng(0).standard_normal((300, 300), np.float32)
    for _ in range(20):
        np.testing.assert_allclose(ops.matmul(x, x), x @ x, rtol=1e-4, atol=1e-3)
        assert len(T.mxcsr_of_threads(2)) == 2


def test_pool_under_thread_sanitizer(tmp_path):
    """tests/pool_stress.cpp (4 concurrent callers, nested calls, exceptions, thread-count
    changes; every index written once) built with parallel.cpp under ThreadSanitizer:
    no data race report, right answers."""
    import shutil
    cxx = shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
    if not cxx:
        pytest.skip("no C++ compiler")
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}  # tools/sanitize.sh preloads ASan
    probe = tmp_path / "probe.cpp"
    probe.write_text("#include <thread>\nint main() { std::thread t([] {}); t.join(); }\n")
    if subprocess.run([cxx, "-fsanitize=thread", str(probe), "-o", str(tmp_path / "probe"), "-lpthread"],
                      capture_output=True, env=env).returncode != 0:
        pytest.skip("this compiler cannot build with -fsanitize=thread")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    exe = tmp_path / "stress"
    build = subprocess.run([cxx, "-std=c++17", "-O1", "-g", "-fsanitize=thread", "-I", os.path.join(root, "csrc"),
                            os.path.join(root, "tests", "pool_stress.cpp"),
                            os.path.join(root, "csrc", "fastnn", "parallel.cpp"), "-o", str(exe), "-lpthread"],
                           capture_output=True, text=True, env=env)
    assert build.returncode == 0, build.stderr
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120,
                       env=dict(env, TSAN_OPTIONS="halt_on_error=1"))
    if r.returncode != 0 and "unexpected memory mapping" in r.stderr:
        pytest.skip("ThreadSanitizer cannot run under this kernel's address-space layout")
    assert r.returncode == 0 and "ok 6000 jobs" in r.stdout and "ThreadSanitizer" not in r.stderr, r.stdout + r.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs Linux and 2 CPUs")
def test_workers_keep_to_the_process_cpus_and_run_on_one_allowed_cpu():
    """A worker that moves off its caller's CPU keeps to the CPUs it started with (never an
    empty or foreign set); a process allowed one CPU still runs 2-thread jobs, its workers
    there too, with the 2-thread results (subprocess)."""
    code = """
import os, glob, numpy as np, fastnn
from fastnn import ops
allowed = os.sched_getaffinity(0)
rng = np.random.default_rng(0)
a, b = rng.standard_normal((256, 512), np.float32), rng.standard_normal((512, 384), np.float32)
fastnn.set_num_threads(2)
want = ops.matmul(a, b)
for _ in range(300):
    assert np.array_equal(ops.matmul(a, b), want)
def task_cpus():
    return [os.sched_getaffinity(int(os.path.basename(d))) for d in glob.glob("/proc/self/task/*")]
sets = task_cpus()
assert all(s and s <= allowed for s in sets), (sets, allowed)
one = {min(allowed)}
os.sched_setaffinity(0, one)
for _ in range(300):
    assert np.array_equal(ops.matmul(a, b), want)
print("affinity OK")
"""
    r = run_script(code, timeout=60)
    assert r.returncode == 0 and "affinity OK" in r.stdout, r.stdout + r.stderr
