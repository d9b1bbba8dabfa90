// General matrix product with a fused epilogue:
//
//   C = act(alpha * op(A) · op(B) + beta * C + bias)
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

#include "fastnn/eltwise/eltwise.h"

namespace fastnn {

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
  long direct_a_max_n = -1;                   // tuning: < 0 uses the ISA's default (blocking.h)
};

// Multithreaded (fastnn's thread count, gated by problem size); results are
// bitwise reproducible and independent of the thread count.
template <class T> void gemm(const GemmProblem<T>& p);

// Per-ISA single-threaded kernel table.
template <class T> struct GemmKernelsT {
  void (*run)(const GemmProblem<T>&);  // the five loops on one thread
  int mr, nr;                          // micro-tile, for splitting C between threads
};
struct GemmKernels {
  GemmKernelsT<float> f32;
  GemmKernelsT<double> f64;
};

namespace scalar { extern const GemmKernels gemm_kernels; }
namespace avx2 { extern const GemmKernels gemm_kernels; }
namespace avx512 { extern const GemmKernels gemm_kernels; }

// Tuning knobs for measurements (bench/compare_gemm.py); < 0 restores the
// defaults. direct_a_max_n: read A in place when n <= it; grain_macs: minimum
// m*n*k per thread.
void gemm_set_tuning(long direct_a_max_n, long grain_macs);

// A 64-byte aligned scratch buffer owned by the calling thread, at least
// `bytes` long; slot 0 holds packed A, slot 1 packed B. It grows when needed
// and is kept for the thread's lifetime, so steady-state calls never allocate.
void* gemm_thread_buffer(int slot, std::size_t bytes);

}  // namespace fastnn
