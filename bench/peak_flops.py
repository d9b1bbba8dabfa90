"""Measured FMA peak of this machine, per core and for n threads, AVX2 and AVX-512.

    python bench/peak_flops.py [--threads 2]

Compiles a tiny C probe (cc, cached in a temp dir) whose loop is nothing but
12 independent register FMA chains (more than FMA latency x pipes),
so the rate it reaches is what the FMA units can do. Used by compare_gemm.py
to report GEMM speed as a fraction of peak.
"""
from __future__ import annotations

import argparse
import ctypes
import hashlib
import os
import pathlib
import shutil
import subprocess
import tempfile
import time

_SRC = r"""
#include <immintrin.h>
#include <omp.h>
/* 12 independent accumulators in registers (named, not an array, so nothing
   is spilled); the loop body is 12 FMAs and a counter. */
#define STEP(VT, FMA) \
  a0 = FMA(a0, x, y); a1 = FMA(a1, x, y); a2 = FMA(a2, x, y); a3 = FMA(a3, x, y); \
  a4 = FMA(a4, x, y); a5 = FMA(a5, x, y); a6 = FMA(a6, x, y); a7 = FMA(a7, x, y); \
  a8 = FMA(a8, x, y); a9 = FMA(a9, x, y); a10 = FMA(a10, x, y); a11 = FMA(a11, x, y);
#define DEF(NAME, VT, SET1, FMA, ADD, STORE, LANES, ATTR)                        \
  ATTR double NAME(long iters, int threads) {                                  \
    double sink = 0;                                                           \
    _Pragma("omp parallel num_threads(threads) reduction(+:sink)")             \
    {                                                                          \
      const VT x = SET1(0.999999f), y = SET1(1e-7f);                           \
      VT a0 = SET1(0), a1 = SET1(1), a2 = SET1(2), a3 = SET1(3), a4 = SET1(4),   \
         a5 = SET1(5), a6 = SET1(6), a7 = SET1(7), a8 = SET1(8), a9 = SET1(9),   \
         a10 = SET1(10), a11 = SET1(11);                                       \
      for (long i = 0; i < iters; ++i) { STEP(VT, FMA) }                       \
      VT s = ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7)));  \
      s = ADD(s, ADD(ADD(a8, a9), ADD(a10, a11)));                             \
      float out[LANES];                                                        \
      STORE(out, s);                                                           \
      sink += out[0];                                                          \
    }                                                                          \
    return sink;                                                               \
  }
DEF(fma_avx2, __m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, _mm256_storeu_ps, 8,
    __attribute__((target("avx2,fma"))))
DEF(fma_avx512, __m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_storeu_ps, 16,
    __attribute__((target("avx512f,avx2,fma"))))
"""

_LANES = {"avx2": 8, "avx512": 16}
_CHAINS = 12


def _library() -> ctypes.CDLL:
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if cc is None:
        raise RuntimeError("peak_flops: no C compiler (cc/gcc) found")
    tag = hashlib.sha1(_SRC.encode()).hexdigest()[:12]
    d = pathlib.Path(tempfile.gettempdir()) / f"fastnn_peak_{os.getuid()}_{tag}"
    so = d / "peak.so"
    if not so.exists():
        d.mkdir(parents=True, exist_ok=True)
        (d / "peak.c").write_text(_SRC)
        subprocess.run([cc, "-O2", "-fopenmp", "-shared", "-fPIC", str(d / "peak.c"), "-o", str(so)],
                       check=True, capture_output=True)
    lib = ctypes.CDLL(str(so))
    for name in ("fma_avx2", "fma_avx512"):
        fn = getattr(lib, name)
        fn.argtypes = [ctypes.c_long, ctypes.c_int]
        fn.restype = ctypes.c_double
    return lib


def peak_gflops(isa: str, threads: int, seconds: float = 0.3, repeats: int = 5) -> float:
    """Best-of-`repeats` float32 FMA rate in GFLOP/s (2 flops per FMA lane)."""
    import fastnn
    if not fastnn._core.isa_supported(isa):
        return float("nan")
    fn = getattr(_library(), f"fma_{isa}")
    iters = 1 << 16
    while True:  # size the loop to about `seconds`
        t0 = time.perf_counter()
        fn(iters, threads)
        dt = time.perf_counter() - t0
        if dt > seconds / 4:
            break
        iters *= 4
    iters = int(iters * seconds / dt)
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(iters, threads)
        dt = time.perf_counter() - t0
        best = max(best, iters * _CHAINS * _LANES[isa] * 2 * threads / dt / 1e9)
        time.sleep(0.1)
    return best


def measure(threads: int) -> dict:
    """{(isa, n): GFLOP/s} for n in (1, threads)."""
    out = {}
    for isa in ("avx2", "avx512"):
        for n in sorted({1, threads}):
            out[(isa, n)] = peak_gflops(isa, n)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    for (isa, n), g in measure(a.threads).items():
        print(f"{isa:7s} {n} thread(s): {g:7.1f} GFLOP/s float32 ({g / n:.1f} per core)")


if __name__ == "__main__":
    main()
