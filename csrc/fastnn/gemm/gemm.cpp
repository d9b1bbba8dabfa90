// GEMM driver (baseline ISA): ISA dispatch, per-thread scratch, and the split
// of C between threads.
//
// Threads: each thread gets a contiguous band of whole micro-tiles of C
// (columns, or rows when C is thin; a swapped small-m product by columns, in
// units of its transpose's micro-tile rows) and runs the five loops on it with its
// own packed buffers: no barriers, and every element of C is computed by the
// same sequence of operations whatever the thread count, so results are
// bitwise reproducible (and equal for 1 and 2 threads).
#include "fastnn/gemm/gemm.h"

#include <algorithm>
#include <cstdlib>
#include <new>

#include "fastnn/cpu.h"
#include "fastnn/parallel.h"

namespace fastnn {
namespace {

template <class T> const GemmKernelsT<T>& kernels_for() { return FASTNN_KERNELS(T, gemm_kernels); }

// Minimum multiply-adds (m * n * k) per thread before a second thread pays
// off, measured with bench/compare_gemm.py (threshold section).
constexpr std::size_t kGrainMacs = std::size_t(3) << 17;  // 2 threads from ~786K MACs on
// Narrow products (gemm/narrow_impl.h; their work counted with the row
// kernel's padded lanes) split from half that on: measured on the Zen 4 class
// guest, 2 threads, p10 of interleaved runs: 256x10x128 X·W 1.2x faster split
// (524K padded MACs), 128x10x128 X·W even (262K), 128x10x128 Xᵀ·dY 0.8x (164K),
// 128x10x256 Xᵀ·dY 1.04x (327K).
constexpr std::size_t kNarrowGrainMacs = std::size_t(3) << 16;

long g_direct_a_max_n = -1;
long g_direct_trans_a = -1;
long g_swap_max_m = -1;
long g_narrow_max_n = -1;
std::size_t g_grain_macs = kGrainMacs;
bool g_grain_tuned = false;  // the tuning knob's grain, for every product

struct ThreadBuffer {
  void* p = nullptr;
  std::size_t bytes = 0;
  ~ThreadBuffer() { std::free(p); }
};

}  // namespace

void* gemm_thread_buffer(int slot, std::size_t bytes) {
  thread_local ThreadBuffer buf[4];
  ThreadBuffer& b = buf[slot];
  if (b.bytes < bytes) {
    std::free(b.p);
    const std::size_t rounded = (bytes + 4095) / 4096 * 4096;
    b.p = std::aligned_alloc(64, rounded);
    if (!b.p) {
      b.bytes = 0;
      throw std::bad_alloc();
    }
    b.bytes = rounded;
  }
  return b.p;
}

void gemm_set_tuning(long direct_a_max_n, long grain_macs, long direct_trans_a, long swap_max_m,
                     long narrow_max_n) {
  g_narrow_max_n = narrow_max_n < 0 ? -1 : narrow_max_n;
  g_direct_a_max_n = direct_a_max_n < 0 ? -1 : direct_a_max_n;
  g_swap_max_m = swap_max_m < 0 ? -1 : swap_max_m;
  g_direct_trans_a = direct_trans_a < 0 ? -1 : (direct_trans_a > 0 ? 1 : 0);
  g_grain_macs = grain_macs < 0 ? kGrainMacs : static_cast<std::size_t>(grain_macs);
  g_grain_tuned = grain_macs >= 0;
}

// m == 0 with a bias gradient: the column sums of op(B) are still due.
template <class T>
void bias_grad_only(const GemmProblem<T>& P) {
  for (std::size_t j = 0; j < P.n; ++j) {
    T s = T(0);
    for (std::size_t p = 0; p < P.k; ++p) s += P.trans_b ? P.b[j * P.ldb + p] : P.b[p * P.ldb + j];
    P.bias_grad[j] = P.beta != T(0) ? P.alpha * s + P.beta * P.bias_grad[j] : P.alpha * s;
  }
}

namespace {

// Small m: run C = op(A)·op(B) as Cᵀ = op(B)ᵀ·op(A)ᵀ (gemm_impl.h
// gemm_swapped) when that lets the micro-kernel read the big op(B) in place:
// B stored n x k (dX = dY·Wᵀ), or k x n where a transposed A is read in place
// (X·W). C at least as wide as tall; no bias gradient (the column sums of
// op(B) are not taken there). op(B) must be big, k*n >= kSwapMinBPerRow * m:
// packing it is what the swap saves, and on small products (64x64x64,
// 32x128x10) the transposed store costs more (measured, 1 thread, Zen 4 class:
// swapped/unswapped 1.13-1.18x slower there, 1.07-1.66x faster on the MLP's
// 784x512 .. 256x128 weights at m = 16..32). The tuning knob forces it on.
constexpr std::size_t kSwapMinBPerRow = 1024;
template <class T> bool swap_small_m(const GemmProblem<T>& P, const GemmKernelsT<T>& K) {
  if (P.bias_grad) return false;
  if (g_swap_max_m >= 0) return P.m <= static_cast<std::size_t>(g_swap_max_m);
  return P.m <= static_cast<std::size_t>(K.swap_max_m) && P.n >= P.m && (P.trans_b || P.direct_trans_a) &&
         P.k * P.n >= kSwapMinBPerRow * P.m;
}

}  // namespace

template <class T>
void gemm(const GemmProblem<T>& P_in) {
  if (P_in.n == 0) return;
  if (P_in.m == 0) {
    if (P_in.bias_grad) bias_grad_only(P_in);
    return;
  }
  GemmProblem<T> P = P_in;
  if (P.direct_a_max_n < 0) P.direct_a_max_n = g_direct_a_max_n;
  if (P.narrow_max_n < 0) P.narrow_max_n = g_narrow_max_n;
  P.tile_n = P.n;
  P.blocking = &gemm_blocking<T>(active_isa());
  P.direct_trans_a = g_direct_trans_a < 0 ? !P.blocking->pack_trans_a : g_direct_trans_a > 0;
  const GemmKernelsT<T>& K = kernels_for<T>();
  P.swap_small_m = swap_small_m(P, K);
  // A swapped product's columns are the rows of its transpose, in micro-tiles
  // of the narrow tile when m (its width) is at most narrow_nr.
  const std::size_t unit_n = !P.swap_small_m ? K.nr : P.m <= static_cast<std::size_t>(K.narrow_nr) ? K.narrow_mr : K.mr;
  const std::size_t tiles_m = (P.m + K.mr - 1) / K.mr, tiles_n = (P.n + unit_n - 1) / unit_n;
  // Columns first: A is read in place, so a column band packs only its own
  // part of B and nothing is packed twice; rows when C is too thin for that.
  const bool split_n =
      P.swap_small_m || tiles_n >= 4 * static_cast<std::size_t>(get_num_threads()) || tiles_n >= tiles_m;
  const std::size_t tiles = split_n ? tiles_n : tiles_m;
  const std::size_t narrow = K.narrow_work(P);
  const std::size_t macs = narrow ? narrow : P.m * P.n * std::max<std::size_t>(P.k, 1);
  const std::size_t grain = narrow && !g_grain_tuned ? kNarrowGrainMacs : g_grain_macs;
  const int nt = static_cast<int>(std::min<std::size_t>(threads_for(macs, grain), tiles));
  if (nt <= 1) {
    K.run(P);
    return;
  }
  parallel_bands(nt, tiles, [&](std::size_t t, std::size_t tb, std::size_t te) {
    GemmProblem<T> S = P;
    if (split_n) {
      const std::size_t j0 = tb * unit_n, j1 = std::min(P.n, te * unit_n);
      S.n = j1 > j0 ? j1 - j0 : 0;
      S.b = P.trans_b ? P.b + j0 * P.ldb : P.b + j0;
      S.c = P.c + j0;
      S.bias = P.bias ? P.bias + j0 : nullptr;
      S.bias_grad = P.bias_grad ? P.bias_grad + j0 : nullptr;
      S.act_x = P.act_x ? P.act_x + j0 : nullptr;
      S.act_y = P.act_y ? P.act_y + j0 : nullptr;
    } else {
      const std::size_t i0 = tb * K.mr, i1 = std::min(P.m, te * K.mr);
      S.m = i1 > i0 ? i1 - i0 : 0;
      S.a = P.trans_a ? P.a + i0 : P.a + i0 * P.lda;
      S.c = P.c + i0 * P.ldc;
      S.act_x = P.act_x ? P.act_x + i0 * P.ldc : nullptr;
      S.act_y = P.act_y ? P.act_y + i0 * P.ldc : nullptr;
      if (t != 0) S.bias_grad = nullptr;  // every row band sums the same columns of op(B): one writes them
    }
    if (S.m && S.n) K.run(S);
  });
}

template void gemm<float>(const GemmProblem<float>&);
template void gemm<double>(const GemmProblem<double>&);

}  // namespace fastnn
