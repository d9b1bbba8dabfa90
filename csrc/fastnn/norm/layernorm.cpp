// Dispatch and threading for LayerNorm (layernorm.h; baseline ISA). Threads
// split the rows (forward, dx) or the features (dgamma, dbeta): every value is
// computed by one thread in one order, whatever the thread count.
#include "fastnn/norm/layernorm.h"

#include <algorithm>
#include <cassert>
#include <cmath>

#include "fastnn/cpu.h"
#include "fastnn/parallel.h"

namespace fastnn {
namespace {

template <class T> const LayerNormKernelsT<T>& kernels_for() { return FASTNN_KERNELS(T, layernorm_kernels); }

// Minimum elements per thread (as the BatchNorm kernels: norm.cpp's kGrain).
constexpr std::size_t kGrain = 1 << 15;
// Feature chunks of the column sums start at multiples of 16 (a 64-byte line of floats).
constexpr std::size_t kColAlign = 16;

std::size_t grain_rows(std::size_t n) { return std::max<std::size_t>(1, kGrain / std::max<std::size_t>(n, 1)); }

}  // namespace

template <class T>
void layernorm_forward(const T* x, const T* gamma, const T* beta, T* y, T* xhat, T* inv, std::size_t m,
                       std::size_t n, double eps) {
  assert(n >= 1 && static_cast<T>(eps) > 0 && std::isfinite(eps));  // checked by the binding
  const auto fn = kernels_for<T>().forward_rows;
  const T e = static_cast<T>(eps);
  parallel_for(m, grain_rows(n), [&](std::size_t i0, std::size_t i1) { fn(x, gamma, beta, y, xhat, inv, n, i0, i1, e); },
               1);
}

template <class T>
void layernorm_backward(const T* dy, const T* xhat, const T* inv, const T* gamma, T* dx, T* dgamma, T* dbeta,
                        std::size_t m, std::size_t n) {
  const auto& k = kernels_for<T>();
  // the column sums first: dx may be dy itself
  parallel_for(n, std::max<std::size_t>(1, kGrain / std::max<std::size_t>(m, 1)),
               [&](std::size_t c0, std::size_t c1) { k.column_sums(dy, xhat, dgamma, dbeta, m, n, c0, c1); },
               kColAlign);
  parallel_for(m, grain_rows(n), [&](std::size_t i0, std::size_t i1) { k.dx_rows(dy, xhat, inv, gamma, dx, n, i0, i1); },
               1);
}

#define FASTNN_LAYERNORM_INSTANTIATE(T)                                                                   \
  template void layernorm_forward<T>(const T*, const T*, const T*, T*, T*, T*, std::size_t, std::size_t, \
                                     double);                                                             \
  template void layernorm_backward<T>(const T*, const T*, const T*, const T*, T*, T*, T*, std::size_t,    \
                                      std::size_t);
FASTNN_LAYERNORM_INSTANTIATE(float)
FASTNN_LAYERNORM_INSTANTIATE(double)
#undef FASTNN_LAYERNORM_INSTANTIATE

}  // namespace fastnn
