// OpenMP helpers and thread-count control.
//
// fastnn keeps its own thread count (set_num_threads / FASTNN_NUM_THREADS) and
// passes it to every parallel region with num_threads(), so the user's other
// OpenMP code is unaffected. Small problems run on one thread: callers pass the
// amount of work and the minimum work per thread (a measured grain).
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <new>

#include <omp.h>

namespace fastnn {

// The most threads fastnn uses: set_num_threads and FASTNN_NUM_THREADS accept
// 1..kMaxThreads, and never more than the OpenMP thread limit (OMP_THREAD_LIMIT).
constexpr int kMaxThreads = 4096;
int max_threads();  // min(kMaxThreads, omp_get_thread_limit())

int get_num_threads();
// 1 <= n <= max_threads() (the bindings check; here it is clamped). A forked
// child starts with 1 thread (libgomp cannot run a team in a child whose parent's
// pool held threads -- fastnn's or another library's, e.g. PyTorch's -- it waits
// forever for them). set_num_threads(n > 1) there re-enables threads, except in
// a child forked after fastnn's own team ran, where it throws std::runtime_error.
// Use multiprocessing's "spawn" or "forkserver" start method for threaded workers.
void set_num_threads(int n);
// True in a child forked as above (see set_num_threads).
bool forked_after_threads();
// Records that an OpenMP team of more than one thread is about to start.
void note_team_start();

// Threads to use for `work` units when each thread should get at least `grain`.
// Every parallel region of the core takes its thread count from here.
inline int threads_for(std::size_t work, std::size_t grain) {
  const int nt = get_num_threads();
  if (nt <= 1) return 1;
  const std::size_t by_work = grain == 0 ? nt : work / grain;
  const int r = static_cast<int>(std::max<std::size_t>(1, std::min<std::size_t>(nt, by_work)));
  if (r > 1) note_team_start();
  return r;
}

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
#pragma omp parallel num_threads(nt)
  {
    const std::size_t t = static_cast<std::size_t>(omp_get_thread_num());
    const std::size_t T = static_cast<std::size_t>(omp_get_num_threads());
    std::size_t chunk = (n + T - 1) / T;
    chunk = (chunk + align - 1) / align * align;
    const std::size_t b = std::min(n, t * chunk);
    const std::size_t e = std::min(n, b + chunk);
    if (b < e) fn(b, e);
  }
}

// Runs band(t, tb, te) on each of nt threads: thread t gets the units
// [units * t / nt, units * (t + 1) / nt) (a function of units and nt only, so
// results are reproducible for a fixed thread count; a band may be empty). A
// band's std::bad_alloc (the only thing the kernels throw) must not leave the
// parallel region: it is caught there and thrown again after it.
template <class Band>
void parallel_bands(int nt, std::size_t units, Band&& band) {
  bool failed = false;
#pragma omp parallel num_threads(nt)
  {
    const std::size_t t = static_cast<std::size_t>(omp_get_thread_num());
    const std::size_t T = static_cast<std::size_t>(omp_get_num_threads());
    try {
      band(t, units * t / T, units * (t + 1) / T);
    } catch (...) {
#pragma omp atomic write
      failed = true;
    }
  }
  if (failed) throw std::bad_alloc();
}

}  // namespace fastnn
