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
void set_num_threads(int n);  // n >= 1

// Threads to use for `work` units when each thread should get at least `grain`.
inline int threads_for(std::size_t work, std::size_t grain) {
  const int nt = get_num_threads();
  if (nt <= 1 || grain == 0) return nt < 1 ? 1 : nt;
  const std::size_t by_work = work / grain;
  return static_cast<int>(std::max<std::size_t>(1, std::min<std::size_t>(nt, by_work)));
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
