// Reductions for the training step: sums of squares (global-norm clipping, L2
// penalties), sums of absolute values (L1 penalties),
// clip by value, column sums (bias gradients).
//
// Sums of squares are accumulated in double over fixed blocks of kNormBlock
// values; the block partials are then added in block order. The partition
// does not depend on the thread count, so norms are bitwise reproducible for
// any number of threads.
#pragma once
#include "fastnn/dispatch.h"
#include <cstddef>
#include <vector>

namespace fastnn {

constexpr std::size_t kNormBlock = 1 << 14;

// sum_i x_i^2 in double.
template <class T> double sum_squares(const T* x, std::size_t n);
// sum_i |x_i| in double (the same fixed blocks as sum_squares).
template <class T> double abs_sum(const T* x, std::size_t n);
// x_i *= s
template <class T> void scale_inplace(T* x, std::size_t n, T s);
// x_i = clamp(x_i, -limit, limit) (NaN stays NaN); returns sqrt(sum x_i^2) before.
template <class T> double clip_by_value(T* x, std::size_t n, double limit);
// out_j = sum_i x_ij over a row-major (rows, cols) matrix, rows added in order.
template <class T> void column_sum(const T* x, T* out, std::size_t rows, std::size_t cols);
// Whether no x_i is NaN or infinite (no temporary: the trainer checks its whole x with it).
template <class T> bool all_finite(const T* x, std::size_t n);

// One gradient array of clip_by_global_norm: float32 or float64 data.
struct GradView {
  void* data;
  std::size_t n;
  bool is_f64;
};
// norm = sqrt(sum over arrays, in order, of sum_squares); when norm is finite
// and > max_norm every array is scaled by max_norm / norm. Returns the norm.
double clip_by_global_norm(const std::vector<GradView>& grads, double max_norm);

// Per-ISA single-threaded kernels over the range they are given.
template <class T> struct ReduceKernelsT {
  double (*sum_squares)(const T*, std::size_t);
  double (*clip_value)(T*, std::size_t, T);  // clamps, returns sum of squares before
  void (*scale)(T*, std::size_t, T);
  // column sums of columns [c0, c1) of a (rows, cols) matrix
  void (*column_sum)(const T*, T*, std::size_t rows, std::size_t cols, std::size_t c0, std::size_t c1);
  bool (*all_finite)(const T*, std::size_t);
  double (*abs_sum)(const T*, std::size_t);
};
FASTNN_DECLARE_KERNELS(ReduceKernels, ReduceKernelsT, reduce_kernels)

}  // namespace fastnn
