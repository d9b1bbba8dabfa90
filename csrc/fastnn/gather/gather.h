// Row gather: out row r = x row idx[r], for arrays of any fixed-size element (rows
// are copied as bytes). The trainer's shuffled batch comes from here: each step reads
// a batch of rows scattered over a training set far larger than the caches.
//
// Not a per-ISA family: a row is copied with memcpy (the C library picks its widest
// copy loop at run time) and the rows still to come are prefetched, so one
// translation unit at the baseline ISA serves every CPU.
#pragma once
#include <cstddef>
#include <cstdint>

namespace fastnn {

// The position of the first index outside [0, n), or -1 when every index is in range.
template <class I> std::ptrdiff_t first_index_out_of_range(const I* idx, std::size_t k, std::int64_t n);

// out[r * row_bytes, (r + 1) * row_bytes) = x[idx[r] * row_bytes, ...) for r < k, x of
// n rows. The caller checks the indices first (first_index_out_of_range), so that a
// refused call writes nothing; an index out of range here (possible only when another
// thread rewrites the indices during the call) leaves its row of out unwritten, never
// read out of bounds. out and x do not overlap. Rows split between threads past 2 MB
// a thread (a training batch stays on one); the result does not depend on the thread count.
template <class I>
void take_rows(const char* x, std::int64_t n, const I* idx, std::size_t k, std::size_t row_bytes, char* out);

}  // namespace fastnn
