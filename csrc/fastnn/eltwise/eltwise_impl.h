// Per-ISA eltwise kernels (single-threaded over the range they are given) and
// the ISA's table. Included once by eltwise_{scalar,avx2,avx512}.cpp.
#pragma once
#include <cmath>
#include <cstddef>
#include <limits>

#include "fastnn/eltwise/act_impl.h"

namespace fastnn {
namespace FASTNN_ISA_NS {

template <class T>
inline void fill_nan(T* y, std::size_t n) {
  for (std::size_t j = 0; j < n; ++j) y[j] = std::numeric_limits<T>::quiet_NaN();
}

// Row-wise softmax: y = exp(x - max) / sum; log_softmax: y = x - max - log(sum).
template <class T>
void softmax_rows_kernel(const T* x, T* y, std::size_t rows, std::size_t cols, bool log) {
  using V = Vec<T>;
  constexpr std::size_t N = V::N;
  for (std::size_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    // 1) max (NaN anywhere in the row makes the whole row NaN below)
    V vmax = V::set1(-std::numeric_limits<T>::infinity());
    std::size_t i = 0;
    for (; i + N <= cols; i += N) vmax = max(V::load(xr + i), vmax);
    T m = reduce_max(vmax);
    for (; i < cols; ++i) m = xr[i] > m ? xr[i] : m;
    // A row with a NaN, or whose max is +-inf, has no defined softmax: the whole
    // row is NaN (as in NumPy). An infinite max is caught here, a NaN by the sum below.
    if (std::isinf(m)) {
      fill_nan(yr, cols);
      continue;
    }
    // 2) exp(x - max) and its sum (kept in y for softmax)
    const V vm = V::set1(m);
    V acc0 = V::zero(), acc1 = V::zero();
    i = 0;
    for (; i + 2 * N <= cols; i += 2 * N) {
      const V e0 = vexp(V::load(xr + i) - vm);
      const V e1 = vexp(V::load(xr + i + N) - vm);
      acc0 = acc0 + e0;
      acc1 = acc1 + e1;
      if (!log) { e0.store(yr + i); e1.store(yr + i + N); }
    }
    for (; i + N <= cols; i += N) {
      const V e0 = vexp(V::load(xr + i) - vm);
      acc0 = acc0 + e0;
      if (!log) e0.store(yr + i);
    }
    T tail = 0;  // the last cols % N values, summed in order
    if (i < cols) {
      const int rem = static_cast<int>(cols - i);
      alignas(64) T buf[N];
      vexp(V::load_partial(xr + i, rem) - vm).store(buf);
      for (int j = 0; j < rem; ++j) {
        tail += buf[j];
        if (!log) yr[i + j] = buf[j];
      }
    }
    const T s = reduce_add(acc0 + acc1) + tail;
    if (std::isnan(s)) {  // exp(NaN - m) reached the sum
      fill_nan(yr, cols);
      continue;
    }
    // 3) normalise
    if (log) {
      const V shift = V::set1(m + std::log(s));
      i = 0;
      for (; i + N <= cols; i += N) (V::load(xr + i) - shift).store(yr + i);
      if (i < cols) {
        const int rem = static_cast<int>(cols - i);
        (V::load_partial(xr + i, rem) - shift).store_partial(yr + i, rem);
      }
    } else {
      const V inv = V::set1(T(1) / s);
      i = 0;
      for (; i + N <= cols; i += N) (V::load(yr + i) * inv).store(yr + i);
      if (i < cols) {
        const int rem = static_cast<int>(cols - i);
        (V::load_partial(yr + i, rem) * inv).store_partial(yr + i, rem);
      }
    }
  }
}

template <class T>
void forward_kernel(Act act, const T* x, T* y, std::size_t n, T alpha, bool streaming) {
  act_forward_range(act, x, y, n, alpha, streaming);
}
template <class T>
void backward_kernel(Act act, const T* dy, const T* x, const T* y, T* dx, std::size_t n, T alpha,
                     bool streaming) {
  act_backward_range(act, dy, x, y, dx, n, alpha, streaming);
}

template <class T>
void erf_kernel(const T* x, T* y, std::size_t n) {
  using V = Vec<T>;
  std::size_t i = 0;
  for (; i + V::N <= n; i += V::N) verf(V::load(x + i)).store(y + i);
  if (i < n) verf(V::load_partial(x + i, int(n - i))).store_partial(y + i, int(n - i));
}

const EltwiseKernels eltwise_kernels = {
    {&forward_kernel<float>, &backward_kernel<float>, &softmax_rows_kernel<float>, &erf_kernel<float>},
    {&forward_kernel<double>, &backward_kernel<double>, &softmax_rows_kernel<double>, &erf_kernel<double>},
};

}  // namespace FASTNN_ISA_NS
}  // namespace fastnn
