// Dispatch and threading for the BatchNorm family (baseline ISA).
//
// Threads split the features (columns) into fixed chunks: each feature's sums
// are computed by one thread in one order, so results do not depend on the
// thread count at all.
#include "fastnn/norm/norm.h"

#include <cassert>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "fastnn/cpu.h"
#include "fastnn/parallel.h"

namespace fastnn {
namespace {

template <class T> const NormKernelsT<T>& kernels_for() { return FASTNN_KERNELS(T, norm_kernels); }

// Minimum elements (m*n) per thread: below it a second thread costs more than
// it saves. Measured (wall-clock minima, 1 vs 2 threads, load ~4 on the shared
// 2-core Zen 5): (128,512) fwd 21 -> 12 us, bwd 29 -> 15 us with 2 threads.
// Under heavier load (>= 7 runnable tasks on 2 cores) the second thread often
// waits a scheduler tick for its core and no size gains.
constexpr std::size_t kGrain = 1 << 15;
// Column chunks start at multiples of 16 features (a 64-byte line of floats).
constexpr std::size_t kColAlign = 16;

std::size_t grain_cols(std::size_t m) { return std::max<std::size_t>(1, kGrain / std::max<std::size_t>(m, 1)); }


}  // namespace

template <class T>
void batchnorm_forward_train(const T* x, const T* gamma, const T* beta, T* running_mean, T* running_var, T* y,
                             T* batch_mean, T* batch_invstd, std::size_t m, std::size_t n, double momentum,
                             double eps) {
  // checked by the binding: eps > 0 also in T (1e-50 is 0 in float32: a constant feature
  // would give 0 * inf = NaN), momentum in [0, 1], at least 2 rows
  assert(m >= 2 && static_cast<T>(eps) > 0 && std::isfinite(eps) && momentum >= 0 && momentum <= 1);
  const auto fn = kernels_for<T>().forward_train_cols;
  const T mom = static_cast<T>(momentum), omm = static_cast<T>(1 - momentum);
  const T unbias = static_cast<T>(static_cast<double>(m) / static_cast<double>(m - 1));
  const T e = static_cast<T>(eps);
  parallel_for(n, grain_cols(m), [&](std::size_t c0, std::size_t c1) {
    fn(x, gamma, beta, running_mean, running_var, y, batch_mean, batch_invstd, m, n, c0, c1, mom, omm, unbias, e);
  }, kColAlign);
}

template <class T>
void batchnorm_forward_infer(const T* x, const T* gamma, const T* beta, const T* running_mean,
                             const T* running_var, T* y, T* mean_out, T* invstd_out, std::size_t m, std::size_t n,
                             double eps) {
  std::vector<T> scale(n), shift(n);
  batchnorm_forward_infer<T>(x, gamma, beta, running_mean, running_var, y, mean_out, invstd_out, m, n, eps,
                             scale.data(), shift.data());
}

template <class T>
void batchnorm_forward_infer(const T* x, const T* gamma, const T* beta, const T* running_mean,
                             const T* running_var, T* y, T* mean_out, T* invstd_out, std::size_t m, std::size_t n,
                             double eps, T* scale, T* shift) {
  assert(static_cast<T>(eps) > 0 && std::isfinite(eps));  // checked by the binding
  // Fold into one scale and shift per feature, then one streaming pass.
  const T e = static_cast<T>(eps);
  for (std::size_t j = 0; j < n; ++j) {
    const T invstd = T(1) / std::sqrt(running_var[j] + e);
    scale[j] = gamma[j] * invstd;
    shift[j] = beta[j] - running_mean[j] * scale[j];
    mean_out[j] = running_mean[j];
    invstd_out[j] = invstd;
  }
  const auto fn = kernels_for<T>().affine_rows;
  const std::size_t grain_rows = std::max<std::size_t>(1, (std::size_t(1) << 16) / std::max<std::size_t>(n, 1));
  parallel_for(m, grain_rows, [&](std::size_t b, std::size_t e2) {
    fn(x + b * n, scale, shift, y + b * n, e2 - b, n);
  }, 1);
}

template <class T>
void batchnorm_backward(const T* dy, const T* x, const T* gamma, const T* mean, const T* invstd, T* dx, T* dgamma,
                        T* dbeta, std::size_t m, std::size_t n) {
  assert(m >= 1);  // checked by the binding
  const auto fn = kernels_for<T>().backward_cols;
  parallel_for(n, grain_cols(m), [&](std::size_t c0, std::size_t c1) {
    fn(dy, x, gamma, mean, invstd, dx, dgamma, dbeta, m, n, c0, c1);
  }, kColAlign);
}

#define FASTNN_NORM_INSTANTIATE(T)                                                                           \
  template void batchnorm_forward_train<T>(const T*, const T*, const T*, T*, T*, T*, T*, T*, std::size_t,    \
                                           std::size_t, double, double);                                    \
  template void batchnorm_forward_infer<T>(const T*, const T*, const T*, const T*, const T*, T*, T*, T*,     \
                                           std::size_t, std::size_t, double);                               \
  template void batchnorm_forward_infer<T>(const T*, const T*, const T*, const T*, const T*, T*, T*, T*,     \
                                           std::size_t, std::size_t, double, T*, T*);                       \
  template void batchnorm_backward<T>(const T*, const T*, const T*, const T*, const T*, T*, T*, T*,          \
                                      std::size_t, std::size_t);
FASTNN_NORM_INSTANTIATE(float)
FASTNN_NORM_INSTANTIATE(double)
#undef FASTNN_NORM_INSTANTIATE

}  // namespace fastnn
