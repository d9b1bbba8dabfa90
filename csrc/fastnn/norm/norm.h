// BatchNorm over the batch axis of a row-major (m, n) matrix: m rows (the
// batch), n features, features contiguous. Per-feature statistics are
// reductions down the columns, so kernels vectorize over the feature axis.
// Threads split the features for small batches (no cross-thread combine) and
// the rows for large ones (norm.cpp, norm_rows_impl.h: fixed parts of rows,
// added in part order). Either way results are bitwise independent of the
// thread count.
//
// Training forward (biased batch variance, Keras running-stat convention):
//   mean_j  = sum_i x_ij / m,  var_j = sum_i (x_ij - mean_j)^2 / m
//   invstd_j = 1 / sqrt(var_j + eps)
//   y_ij    = (x_ij - mean_j) * scale_j + beta_j,     scale_j = gamma_j * invstd_j
//   run_mean = momentum * run_mean + (1 - momentum) * mean
//   run_var  = momentum * run_var  + (1 - momentum) * var * m / (m - 1)
// Inference forward (folded): y = x * scale + shift with
//   scale = gamma / sqrt(run_var + eps), shift = beta - run_mean * scale.
// Backward, given the training forward's mean and invstd (xhat = (x-mean)*invstd):
//   dbeta = sum_i dy,  dgamma = sum_i dy * xhat
//   dx = gamma*invstd/m * (m*dy - dbeta - xhat*dgamma)
//      = k1*dy + k2*(x - mean) + k0,  k1 = gamma*invstd,
//        k2 = -k1*invstd*dgamma/m,    k0 = -k1*dbeta/m
#pragma once
#include "fastnn/dispatch.h"
#include <cstddef>

namespace fastnn {

// Training-mode forward. Requires m >= 2, eps > 0, momentum in [0, 1].
// running_mean / running_var (n) are updated in place; y is (m, n);
// batch_mean / batch_invstd (n) receive the batch statistics.
template <class T>
void batchnorm_forward_train(const T* x, const T* gamma, const T* beta, T* running_mean, T* running_var, T* y,
                             T* batch_mean, T* batch_invstd, std::size_t m, std::size_t n, double momentum,
                             double eps);
// Inference-mode forward; mean_out receives running_mean, invstd_out 1/sqrt(running_var + eps).
template <class T>
void batchnorm_forward_infer(const T* x, const T* gamma, const T* beta, const T* running_mean,
                             const T* running_var, T* y, T* mean_out, T* invstd_out, std::size_t m, std::size_t n,
                             double eps);
// The same with the caller's scratch for the folded scale and shift (n each): no allocation
// (the native step plan); the other overload calls this one, so both are bitwise the same.
template <class T>
void batchnorm_forward_infer(const T* x, const T* gamma, const T* beta, const T* running_mean,
                             const T* running_var, T* y, T* mean_out, T* invstd_out, std::size_t m, std::size_t n,
                             double eps, T* scale, T* shift);
// Backward of the training-mode forward. dx is (m, n); dgamma, dbeta (n).
template <class T>
void batchnorm_backward(const T* dy, const T* x, const T* gamma, const T* mean, const T* invstd, T* dx, T* dgamma,
                        T* dbeta, std::size_t m, std::size_t n);

// Per-ISA single-threaded kernels. The column kernels handle features
// [c0, c1) over all m rows (row stride n); affine_rows handles whole rows.
template <class T> struct NormKernelsT {
  void (*forward_train_cols)(const T* x, const T* gamma, const T* beta, T* running_mean, T* running_var, T* y,
                             T* batch_mean, T* batch_invstd, std::size_t m, std::size_t n, std::size_t c0,
                             std::size_t c1, T momentum, T one_minus_momentum, T unbias, T eps);
  void (*backward_cols)(const T* dy, const T* x, const T* gamma, const T* mean, const T* invstd, T* dx,
                        T* dgamma, T* dbeta, std::size_t m, std::size_t n, std::size_t c0, std::size_t c1);
  // y = x * scale + shift per feature, for `rows` whole rows of n features.
  void (*affine_rows)(const T* x, const T* scale, const T* shift, T* y, std::size_t rows, std::size_t n);
  // The row path (norm_rows_impl.h): per-part sums over rows [i0, i1) into acc,
  // the statistics from all parts' sums, and the output over rows [i0, i1);
  // one_row: rows one at a time, else in groups of 4.
  void (*forward_band_sums)(const T* x, std::size_t n, std::size_t i0, std::size_t i1, bool one_row, T* acc);
  void (*forward_band_stats)(const T* acc, std::size_t parts, std::size_t stride, const T* x, const T* gamma,
                             const T* beta, T* running_mean, T* running_var, T* batch_mean, T* batch_invstd,
                             T* par, std::size_t m, std::size_t n, T momentum, T one_minus_momentum, T unbias,
                             T eps);
  void (*forward_band_apply)(const T* x, const T* par, T* y, std::size_t n, std::size_t i0, std::size_t i1,
                             bool one_row);
  void (*backward_band_sums)(const T* dy, const T* x, const T* mean, std::size_t n, std::size_t i0,
                             std::size_t i1, bool one_row, T* acc);
  void (*backward_band_stats)(const T* acc, std::size_t parts, std::size_t stride, const T* gamma,
                              const T* mean, const T* invstd, T* dgamma, T* dbeta, T* par, std::size_t m,
                              std::size_t n);
  void (*backward_band_apply)(const T* dy, const T* x, const T* par, T* dx, std::size_t n, std::size_t i0,
                              std::size_t i1, bool one_row);
};
FASTNN_DECLARE_KERNELS(NormKernels, NormKernelsT, norm_kernels)

}  // namespace fastnn
