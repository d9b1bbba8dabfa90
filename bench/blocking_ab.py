"""fit epochs of the notes' MLP (the first 7,500 Fashion-MNIST images, scaled to 60k) under
several float32 AVX-512 GEMM blockings (_core._gemm_set_blocking: mc, kc, nc), interleaved
round by round; medians of the epoch and of the step profile's Dense forward and backward.

    NT=2 B=128 PYTHONPATH=python python3 bench/blocking_ab.py ROUNDS 128,512,4096 128,256,4096 128,512,256
"""
import sys, time, numpy as np, fastnn, os, statistics
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_train as ct, train_fashion
from fastnn import _core
fastnn.set_num_threads(int(os.environ.get("NT", "2")))
B = int(os.environ.get("B", "128"))
(x, y), _ = train_fashion.load_fashion_mnist()
x, y = np.ascontiguousarray(x[:7500]), np.ascontiguousarray(y[:7500])
f, model = ct.fastnn_contender(x, y, B)
f()
variants = [tuple(map(int, v.split(","))) for v in sys.argv[2:]]  # mc,kc,nc
res = {v: [] for v in variants}
for r in range(int(sys.argv[1])):
    for v in variants:
        _core._gemm_set_blocking("avx512", "float32", False, *v)
        _core._testing.set_step_profiling(True)
        t = time.perf_counter(); f(); dt = time.perf_counter() - t
        p = _core._testing.step_profile(); _core._testing.set_step_profiling(False)
        res[v].append((8 * dt, 1e6 * p["dense_forward"] / p["steps"], 1e6 * p["dense_backward"] / p["steps"]))
        time.sleep(0.2)
for v, rs in res.items():
    print(v, "epoch %.3f s  fwd %.0f us  bwd %.0f us" % tuple(statistics.median(c) for c in zip(*rs)))
