// LayerNorm over the last axis of a row-major (m, n) matrix: each row (sample)
// normalized over its n features, then scaled by gamma and shifted by beta
// (both per feature, each optional: Keras's scale / center).
//
// Forward, per row i (biased variance, two passes over the row):
//   mean_i = sum_j x_ij / n,  var_i = sum_j (x_ij - mean_i)^2 / n
//   inv_i  = 1 / sqrt(var_i + eps),  xhat_ij = (x_ij - mean_i) * inv_i
//   y_ij   = xhat_ij * gamma_j + beta_j
// Backward, given xhat and inv of the forward, g = dy * gamma:
//   dbeta_j = sum_i dy_ij,  dgamma_j = sum_i dy_ij * xhat_ij
//   dx_ij = inv_i * (g_ij - mean_j(g_i.) - xhat_ij * mean_j(g_i. * xhat_i.))
// Accumulation is in T: the row sums in one vector of partial sums per row
// (lanes added at the end), the column sums (dgamma, dbeta) row by row in row
// order, as NumPy's sum over axis 0 adds them. Threads split the rows (every row
// computed by one thread) and, for the column sums, the features (every column
// summed by one thread, rows in order): results are bitwise independent of the
// thread count.
#pragma once
#include "fastnn/dispatch.h"
#include <cstddef>

namespace fastnn {

// y, xhat (m, n), inv (m). gamma / beta (n) may be null (1 / 0). Requires eps > 0.
// y may be x itself (in place); xhat and inv must not overlap x or y.
template <class T>
void layernorm_forward(const T* x, const T* gamma, const T* beta, T* y, T* xhat, T* inv, std::size_t m,
                       std::size_t n, double eps);
// dx (m, n) (may be dy itself), dgamma, dbeta (n). gamma may be null (1).
template <class T>
void layernorm_backward(const T* dy, const T* xhat, const T* inv, const T* gamma, T* dx, T* dgamma, T* dbeta,
                        std::size_t m, std::size_t n);

// Per-ISA single-threaded kernels: rows [i0, i1) (forward, dx) or features [c0, c1) (column sums).
template <class T> struct LayerNormKernelsT {
  void (*forward_rows)(const T* x, const T* gamma, const T* beta, T* y, T* xhat, T* inv, std::size_t n,
                       std::size_t i0, std::size_t i1, T eps);
  void (*column_sums)(const T* dy, const T* xhat, T* dgamma, T* dbeta, std::size_t m, std::size_t n,
                      std::size_t c0, std::size_t c1);
  void (*dx_rows)(const T* dy, const T* xhat, const T* inv, const T* gamma, T* dx, std::size_t n, std::size_t i0,
                  std::size_t i1);
};
FASTNN_DECLARE_KERNELS(LayerNormKernels, LayerNormKernelsT, layernorm_kernels)

}  // namespace fastnn
