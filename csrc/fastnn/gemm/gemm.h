// General matrix product with a fused epilogue:
//
//   C = act(alpha * op(A) · op(B) + beta * C + bias)           (forward)
//   C = (alpha * op(A) · op(B) + beta * C + bias) ⊙ act'(s)    (act_grad: backward)
//   bias_grad = alpha * column sums of op(B) + beta * bias_grad  (optional, any mode)
//
// act_grad: s is the activation's saved forward input (act_x) or output
// (act_y), m x n with row stride ldc, as activation_backward takes them: the
// input gradient of a Dense layer fused with the previous layer's activation
// gradient (dX = (dY · Wᵀ) ⊙ f'(·)). bias_grad: the column sums of op(B) are
// taken while B is packed (dW = Xᵀ · dY and db = Σ dY in one call).
//
// op(A) is m x k (A stored row-major as m x k, or as k x m when trans_a),
// op(B) is k x n (B stored as k x n, or as n x k when trans_b), C is m x n,
// bias has n entries (added to every row). beta == 0 never reads C, so C may
// hold garbage. k == 0 gives act(beta * C + bias).
//
// BLIS-style: the per-ISA code (gemm_impl.h) runs the five blocked loops with
// packed panels and a register-tiled micro-kernel on one thread; the baseline
// driver (gemm.cpp) splits C between threads.
#pragma once
#include <cstddef>

#include "fastnn/cpu.h"
#include "fastnn/dispatch.h"
#include "fastnn/eltwise/eltwise.h"

namespace fastnn {

// Cache blocking of one micro-tile shape (BLIS names; see blocking.h):
// mr x nr micro-tile (fixed per ISA and dtype at compile time), mc x kc block
// of A (L2), kc x nc panel of B (L3), kc x nr micro-panel of B (L1).
struct GemmBlockSizes {
  int mr = 0, nr = 0, mc = 0, kc = 0, nc = 0;
};
// One ISA's and dtype's blocking: the wide tile, and the narrow one used when
// C has at most narrow.nr columns.
struct GemmCacheBlocking {
  GemmBlockSizes wide, narrow;
  // Pack a transposed A (op(A) = Aᵀ: the Xᵀ of dW = Xᵀ·dY) rather than read it
  // in place: measured per microarchitecture (blocking.cpp), packed where unmeasured.
  bool pack_trans_a = true;
};

template <class T> struct GemmProblem {
  bool trans_a = false, trans_b = false;
  std::size_t m = 0, n = 0, k = 0;
  T alpha = T(1);
  const T* a = nullptr; std::size_t lda = 0;  // row stride of A as stored
  const T* b = nullptr; std::size_t ldb = 0;  // row stride of B as stored
  T beta = T(0);
  T* c = nullptr; std::size_t ldc = 0;        // row stride of C
  const T* bias = nullptr;                    // n values or null
  bool has_act = false;                       // identity needs no pass
  Act act = Act::identity;
  T act_alpha = T(0);
  bool act_grad = false;                      // multiply by act'(act_x | act_y) instead of applying act
  const T* act_x = nullptr;                   // act's forward input, m x n, row stride ldc, or null
  const T* act_y = nullptr;                   // act's forward output, m x n, row stride ldc, or null
  T* bias_grad = nullptr;                     // n values: alpha * column sums of op(B) + beta * bias_grad
  long direct_a_max_n = -1;                   // tuning: < 0 uses the ISA's default (blocking.h)
  bool direct_trans_a = false;                // a transposed A is read in place (driver: !blocking.pack_trans_a)
  std::size_t tile_n = 0;                     // n of the whole product (the driver sets it), 0: n
  long narrow_max_n = -1;                     // tuning: C at most this wide takes the narrow path (< 0: the ISA's kNarrowMaxN)
  bool swap_small_m = false;                  // computed as Cᵀ = op(B)ᵀ·op(A)ᵀ (the driver decides: gemm_impl.h)
  const GemmCacheBlocking* blocking = nullptr;  // cache blocking (the driver fills it in)
};

// The blocking in force for an ISA and dtype, chosen at import (blocking.cpp):
// a measured table for the microarchitectures tested, else derived from the
// cache sizes CPUID reports.
template <class T> const GemmCacheBlocking& gemm_blocking(Isa isa);
// The derivation from cache sizes used where no measured table exists
// (blocking.cpp gives the formulas); exposed for tests.
struct CpuCaches;
GemmBlockSizes gemm_derive_blocking(int mr, int nr, std::size_t elem, const CpuCaches& caches);
// How it was chosen: "measured table (zen4)", "derived from CPUID caches", ...
const char* gemm_blocking_source();
// Testing/benchmark hook: replaces one ISA's blocking (mc, kc, nc of the wide
// or narrow tile); any value <= 0 restores the chosen one. Throws
// std::invalid_argument for values the kernels cannot use.
template <class T> void gemm_set_blocking(Isa isa, bool narrow, int mc, int kc, int nc);

// Multithreaded (fastnn's thread count, gated by problem size); results are
// bitwise reproducible and independent of the thread count.
template <class T> void gemm(const GemmProblem<T>& p);

// Per-ISA single-threaded kernel table.
template <class T> struct GemmKernelsT {
  void (*run)(const GemmProblem<T>&);  // the five loops on one thread
  int mr, nr;                          // micro-tile, for splitting C between threads
  int narrow_mr, narrow_nr;            // the narrow micro-tile (used when C has at most narrow_nr columns)
  int swap_max_m;                      // small-m products swapped up to this m (blocking.h kSwapMaxM)
  // the multiply-adds of P on the narrow path (gemm/narrow_impl.h), counting the
  // row kernel's padded lanes; 0 when that path does not take P
  std::size_t (*narrow_work)(const GemmProblem<T>&);
};
FASTNN_DECLARE_KERNELS(GemmKernels, GemmKernelsT, gemm_kernels)

// Tuning knobs for measurements (bench/compare_gemm.py); < 0 restores the
// defaults. direct_a_max_n: read A in place when n <= it; grain_macs: minimum
// m*n*k per thread; direct_trans_a: 1 reads a transposed A in place, 0 packs
// it (default -1: as the blocking says, GemmCacheBlocking::pack_trans_a);
// swap_max_m: products with m <= it run swapped (GemmProblem::swap_small_m;
// 0 never; default -1: the ISA's kSwapMaxM); narrow_max_n: C with at most
// this many columns takes the narrow path (gemm/narrow_impl.h; 0 never;
// default -1: the ISA's kNarrowMaxN, blocking.h).
void gemm_set_tuning(long direct_a_max_n, long grain_macs, long direct_trans_a = -1, long swap_max_m = -1,
                     long narrow_max_n = -1);

// A 64-byte aligned scratch buffer owned by the calling thread, at least
// `bytes` long; slot 0 holds packed A, slot 1 packed B, slot 2 column sums,
// slot 3 the transposed product of a swapped small-m product (or a narrow one's block). It grows when needed
// and is kept for the thread's lifetime, so steady-state calls never allocate.
void* gemm_thread_buffer(int slot, std::size_t bytes);

}  // namespace fastnn
