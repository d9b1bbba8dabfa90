// Row gather (see gather.h): memcpy per row, the next rows' first cache lines
// prefetched, rows split between threads for large batches.
#include "fastnn/gather/gather.h"

#include <algorithm>
#include <cstring>

#include "fastnn/parallel.h"

namespace fastnn {
namespace {

// Prefetch the first kPrefetchBytes of the row kPrefetchAhead rows ahead: the rows
// of a shuffled batch are scattered over a training set in DRAM, and once a row's
// first lines are on their way the hardware prefetcher streams the rest of it.
// Measured on AMD Zen 4 (512 rows of 3136 bytes from a 188 MB array, 1 thread):
// no prefetch 324 us, 2-4 rows ahead x 256 bytes 204 us, whole rows ahead 271-292 us
// (more prefetches than the line-fill buffers hold).
constexpr std::size_t kPrefetchAhead = 4;
constexpr std::size_t kPrefetchBytes = 256;
constexpr std::size_t kLine = 64;
// Minimum bytes copied per thread: a training batch of 512 rows of 784 float32 (1.6 MB)
// is split between two threads. Measured on a 2-core AMD Zen 4 guest (bench/gather_step.py
// --threads 2 --rows 60000, medians, other processes running): 512 rows 189 us on one thread,
// 98-156 us on two; with two busy-loop processes on the two cores, 102 us. (Under OpenMP a
// 2 MB grain was needed: its team waited for a thread that was not scheduled, 17 ms at load
// 10; fastnn's pool lets the caller take the chunks a worker has not started, parallel.h.)
constexpr std::size_t kGrainBytes = std::size_t(256) << 10;

// Row i of x (of n rows) on its way to the cache; an index out of range is skipped.
inline void prefetch_row(const char* x, std::size_t n, std::size_t i, std::size_t row_bytes) {
#if defined(__GNUC__) || defined(__clang__)
  if (i >= n) return;
  const char* p = x + i * row_bytes;
  const std::size_t len = std::min(row_bytes, kPrefetchBytes);
  for (std::size_t o = 0; o < len; o += kLine) __builtin_prefetch(p + o, 0, 3);
#else
  (void)x, (void)n, (void)i, (void)row_bytes;
#endif
}

// The row of index v: v as an unsigned offset, so that a negative index is out of range.
template <class I> inline std::size_t row_of(I v) { return static_cast<std::size_t>(static_cast<std::int64_t>(v)); }

// Rows [b, e) of the batch. Each index is compared with n where it is used, so a row is
// never read out of bounds even if the indices change under the call.
template <class I>
void copy_rows(const char* x, std::size_t n, const I* idx, std::size_t b, std::size_t e, std::size_t row_bytes,
               char* out) {
  for (std::size_t r = b; r < std::min(e, b + kPrefetchAhead); ++r) prefetch_row(x, n, row_of(idx[r]), row_bytes);
  for (std::size_t r = b; r < e; ++r) {
    if (r + kPrefetchAhead < e) prefetch_row(x, n, row_of(idx[r + kPrefetchAhead]), row_bytes);
    const std::size_t i = row_of(idx[r]);
    if (i < n) std::memcpy(out + r * row_bytes, x + i * row_bytes, row_bytes);
  }
}

}  // namespace

template <class I> std::ptrdiff_t first_index_out_of_range(const I* idx, std::size_t k, std::int64_t n) {
  // one branch-free pass (vectorizes), then the position only when something is wrong
  bool bad = false;
  for (std::size_t r = 0; r < k; ++r) {
    const std::int64_t i = idx[r];
    bad |= (i < 0) | (i >= n);
  }
  if (!bad) return -1;
  for (std::size_t r = 0; r < k; ++r)
    if (idx[r] < 0 || static_cast<std::int64_t>(idx[r]) >= n) return static_cast<std::ptrdiff_t>(r);
  return -1;
}

template <class I>
void take_rows(const char* x, std::int64_t n, const I* idx, std::size_t k, std::size_t row_bytes, char* out) {
  if (k == 0 || row_bytes == 0 || n <= 0) return;
  const std::size_t rows = static_cast<std::size_t>(n);
  const std::size_t grain = std::max<std::size_t>(1, kGrainBytes / row_bytes);
  parallel_for(k, grain, [&](std::size_t b, std::size_t e) { copy_rows(x, rows, idx, b, e, row_bytes, out); }, 8);
}

template std::ptrdiff_t first_index_out_of_range<std::int32_t>(const std::int32_t*, std::size_t, std::int64_t);
template std::ptrdiff_t first_index_out_of_range<std::int64_t>(const std::int64_t*, std::size_t, std::int64_t);
template void take_rows<std::int32_t>(const char*, std::int64_t, const std::int32_t*, std::size_t, std::size_t, char*);
template void take_rows<std::int64_t>(const char*, std::int64_t, const std::int64_t*, std::size_t, std::size_t, char*);

}  // namespace fastnn
