// Dispatch and threading for the reductions (baseline ISA).
#include "fastnn/reduce/reduce.h"

#include <atomic>
#include <cassert>

#include <cmath>
#include <stdexcept>
#include <string>

#include "fastnn/cpu.h"
#include "fastnn/parallel.h"

namespace fastnn {
namespace {

template <class T> const ReduceKernelsT<T>& kernels_for() { return FASTNN_KERNELS(T, reduce_kernels); }

// Minimum elements per thread for the streaming passes.
constexpr std::size_t kGrain = 1 << 15;

// Sum of per-block values f(block begin, block size) over fixed blocks of
// kNormBlock, blocks computed in parallel, added in block order.
template <class F> double blocked_sum(std::size_t n, F&& f) {
  const std::size_t nb = (n + kNormBlock - 1) / kNormBlock;
  if (nb <= 1) return n ? f(std::size_t(0), n) : 0.0;
  std::vector<double> part(nb);
  parallel_for(nb, kGrain / kNormBlock, [&](std::size_t b0, std::size_t b1) {
    for (std::size_t b = b0; b < b1; ++b) {
      const std::size_t s = b * kNormBlock;
      part[b] = f(s, std::min(kNormBlock, n - s));
    }
  }, 1);
  double total = 0;
  for (double p : part) total += p;
  return total;
}

}  // namespace

template <class T> double sum_squares(const T* x, std::size_t n) {
  const auto fn = kernels_for<T>().sum_squares;
  return blocked_sum(n, [&](std::size_t b, std::size_t k) { return fn(x + b, k); });
}

template <class T> double abs_sum(const T* x, std::size_t n) {
  const auto fn = kernels_for<T>().abs_sum;
  return blocked_sum(n, [&](std::size_t b, std::size_t k) { return fn(x + b, k); });
}

template <class T> void scale_inplace(T* x, std::size_t n, T s) {
  const auto fn = kernels_for<T>().scale;
  parallel_for(n, kGrain, [&](std::size_t b, std::size_t e) { fn(x + b, e - b, s); });
}

template <class T> double clip_by_value(T* x, std::size_t n, double limit) {
  assert(limit > 0 && std::isfinite(limit));  // checked by the binding
  const auto fn = kernels_for<T>().clip_value;
  const T lim = T(limit);
  return std::sqrt(blocked_sum(n, [&](std::size_t b, std::size_t k) { return fn(x + b, k, lim); }));
}

template <class T> void column_sum(const T* x, T* out, std::size_t rows, std::size_t cols) {
  const auto fn = kernels_for<T>().column_sum;
  if (cols == 0) return;
  if (rows == 0) {
    for (std::size_t c = 0; c < cols; ++c) out[c] = T(0);
    return;
  }
  // split the columns (whole SIMD widths) when there is enough work per thread
  const std::size_t grain_cols = std::max<std::size_t>(16, kGrain / rows);
  parallel_for(cols, grain_cols, [&](std::size_t c0, std::size_t c1) { fn(x, out, rows, cols, c0, c1); }, 16);
}

template <class T> bool all_finite(const T* x, std::size_t n) {
  const auto fn = kernels_for<T>().all_finite;
  std::atomic<bool> ok{true};
  parallel_for(n, 4 * kGrain, [&](std::size_t b, std::size_t e) {
    if (ok.load(std::memory_order_relaxed) && !fn(x + b, e - b)) ok.store(false, std::memory_order_relaxed);
  });
  return ok.load();
}

double clip_by_global_norm(const std::vector<GradView>& grads, double max_norm) {
  assert(max_norm > 0 && std::isfinite(max_norm));  // checked by the binding
  double total = 0;  // arrays added in order
  for (const GradView& g : grads)
    total += g.is_f64 ? sum_squares(static_cast<const double*>(g.data), g.n)
                      : sum_squares(static_cast<const float*>(g.data), g.n);
  const double norm = std::sqrt(total);
  if (std::isfinite(norm) && norm > max_norm) {
    const double s = max_norm / norm;
    for (const GradView& g : grads) {
      if (g.is_f64) scale_inplace(static_cast<double*>(g.data), g.n, s);
      else scale_inplace(static_cast<float*>(g.data), g.n, static_cast<float>(s));
    }
  }
  return norm;
}

#define FASTNN_INSTANTIATE(T)                                                   \
  template double sum_squares<T>(const T*, std::size_t);                       \
  template double abs_sum<T>(const T*, std::size_t);                           \
  template void scale_inplace<T>(T*, std::size_t, T);                          \
  template double clip_by_value<T>(T*, std::size_t, double);                   \
  template void column_sum<T>(const T*, T*, std::size_t, std::size_t);        \
  template bool all_finite<T>(const T*, std::size_t);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)
#undef FASTNN_INSTANTIATE

}  // namespace fastnn
