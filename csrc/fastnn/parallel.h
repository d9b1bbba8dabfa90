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

#include <omp.h>

namespace fastnn {

int get_num_threads();
// n >= 1. Throws std::runtime_error for n > 1 in a process forked after fastnn
// had started OpenMP threads: libgomp cannot run a thread team in such a child
// (it waits forever for the parent's pool threads), so fastnn stays on one
// thread there. Use multiprocessing's "spawn" or "forkserver" start method.
void set_num_threads(int n);
// True in a child forked after OpenMP threads were started (see set_num_threads).
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

}  // namespace fastnn
