// fastnn's thread pool and thread-count control.
//
// Every parallel region of the core is a job of `nchunks` chunks, run by
// run_chunks on fastnn's own pool (parallel.cpp; no OpenMP): the caller and the
// pool's workers claim chunks from one atomic counter, so a worker the kernel
// has descheduled is never waited for unless it already claimed a chunk. Chunk
// boundaries depend only on the problem size and the thread count, never on
// which thread runs a chunk, so results are bitwise reproducible for a fixed
// thread count, whether the chunks ran on the pool or one after another on the
// caller (which is what happens when the pool is busy with another caller's
// job, and for a nested call from inside a chunk).
//
// fastnn keeps its own thread count (set_num_threads / FASTNN_NUM_THREADS, else
// OMP_NUM_THREADS, else the CPUs this process may run on). Small problems run
// on one thread: callers pass the amount of work and the minimum work per
// thread (a measured grain).
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace fastnn {

// The most threads fastnn uses: set_num_threads and FASTNN_NUM_THREADS accept
// 1..kMaxThreads, and never more than OMP_THREAD_LIMIT when that is set and lower.
constexpr int kMaxThreads = 4096;
int max_threads();

int get_num_threads();
void set_num_threads(int n);  // 1 <= n <= max_threads() (the bindings check; here it is clamped)

// Threads to use for `work` units when each thread should get at least `grain`.
// Every parallel region of the core takes its thread count from here.
inline int threads_for(std::size_t work, std::size_t grain) {
  const int nt = get_num_threads();
  if (nt <= 1) return 1;
  const std::size_t by_work = grain == 0 ? nt : work / grain;
  return static_cast<int>(std::max<std::size_t>(1, std::min<std::size_t>(nt, by_work)));
}

// Calls chunk(ctx, c) once for every c in [0, nchunks) (1 <= nchunks <=
// kMaxThreads), on the calling thread and the pool's workers, each worker under
// the caller's MXCSR (FTZ/DAZ, rounding). Returns when every chunk has finished.
// A chunk's exception is thrown again here once every started chunk finished
// (chunks not yet started when it was thrown are skipped).
void run_chunks(int nchunks, void (*chunk)(void*, std::size_t), void* ctx);

// How long (ns) an idle worker spins for the next job before it sleeps (tests and
// bench/pool_load.py; the default is measured, see docs/ARCHITECTURE.md).
long pool_spin_ns();
void set_pool_spin_ns(long ns);

// Calls fn(begin, end) on contiguous chunks of [0, n). Chunk boundaries depend
// only on n, the thread count and `align` (chunks start at multiples of it), so
// results are reproducible for a fixed thread count.
template <class Fn>
void parallel_for(std::size_t n, std::size_t grain, Fn&& fn, std::size_t align = 64) {
  if (n == 0) return;
  const int nt = threads_for(n, grain);
  if (nt <= 1) {
    fn(std::size_t(0), n);
    return;
  }
  std::size_t chunk = (n + nt - 1) / nt;
  chunk = (chunk + align - 1) / align * align;
  auto body = [&](std::size_t t) {
    const std::size_t b = std::min(n, t * chunk);
    const std::size_t e = std::min(n, b + chunk);
    if (b < e) fn(b, e);
  };
  run_chunks(nt, [](void* p, std::size_t t) { (*static_cast<decltype(body)*>(p))(t); }, &body);
}

// Runs band(t, tb, te) for t in [0, nt): band t gets the units
// [units * t / nt, units * (t + 1) / nt) (a function of units and nt only, so
// results are reproducible for a fixed thread count; a band may be empty). Two
// bands may run one after the other on one thread, so per-thread (thread_local)
// scratch must not carry anything from one band to the next.
template <class Band>
void parallel_bands(int nt, std::size_t units, Band&& band) {
  const std::size_t T = static_cast<std::size_t>(std::max(nt, 1));
  auto body = [&](std::size_t t) { band(t, units * t / T, units * (t + 1) / T); };
  run_chunks(static_cast<int>(T), [](void* p, std::size_t t) { (*static_cast<decltype(body)*>(p))(t); }, &body);
}

}  // namespace fastnn
