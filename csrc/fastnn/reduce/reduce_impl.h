// Per-ISA reduction kernels. Included once by reduce_{scalar,avx2,avx512}.cpp,
// which first define `Vec<double> load_wide(const float* p)`: Vec<double>::N
// floats widened to double (sums of squares are accumulated in double).
#pragma once
#include <cstddef>

#include "fastnn/reduce/reduce.h"

namespace fastnn {
namespace FASTNN_ISA_NS {

inline Vec<double> load_wide(const double* p) { return Vec<double>::load(p); }

// sum x_i^2 in double, four independent accumulators.
template <class T>
double sum_squares_kernel(const T* x, std::size_t n) {
  using VD = Vec<double>;
  constexpr std::size_t N = VD::N;
  VD a0 = VD::zero(), a1 = VD::zero(), a2 = VD::zero(), a3 = VD::zero();
  std::size_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    const VD x0 = load_wide(x + i), x1 = load_wide(x + i + N);
    const VD x2 = load_wide(x + i + 2 * N), x3 = load_wide(x + i + 3 * N);
    a0 = fmadd(x0, x0, a0);
    a1 = fmadd(x1, x1, a1);
    a2 = fmadd(x2, x2, a2);
    a3 = fmadd(x3, x3, a3);
  }
  for (; i + N <= n; i += N) {
    const VD x0 = load_wide(x + i);
    a0 = fmadd(x0, x0, a0);
  }
  double tail = 0;
  for (; i < n; ++i) tail += double(x[i]) * double(x[i]);
  return reduce_add((a0 + a1) + (a2 + a3)) + tail;
}

// Whether every x_i is finite: x - x is +0 for a finite x and NaN for an infinity or a
// NaN, and a NaN stays NaN through any sum, so the sum of x_i - x_i is 0 exactly when
// all are finite (it cannot overflow). Four independent accumulators.
template <class T>
bool all_finite_kernel(const T* x, std::size_t n) {
  using V = Vec<T>;
  constexpr std::size_t N = V::N;
  V a0 = V::zero(), a1 = V::zero(), a2 = V::zero(), a3 = V::zero();
  std::size_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    const V x0 = V::load(x + i), x1 = V::load(x + i + N), x2 = V::load(x + i + 2 * N), x3 = V::load(x + i + 3 * N);
    a0 = a0 + (x0 - x0);
    a1 = a1 + (x1 - x1);
    a2 = a2 + (x2 - x2);
    a3 = a3 + (x3 - x3);
  }
  for (; i + N <= n; i += N) {
    const V x0 = V::load(x + i);
    a0 = a0 + (x0 - x0);
  }
  if (i < n) {
    const V x0 = V::load_partial(x + i, static_cast<int>(n - i));  // zero-filled lanes add 0
    a1 = a1 + (x0 - x0);
  }
  return reduce_add((a0 + a1) + (a2 + a3)) == T(0);
}

// clamp to [-limit, limit] in place; returns the sum of squares before.
template <class T>
double clip_value_kernel(T* x, std::size_t n, T limit) {
  using V = Vec<T>;
  constexpr std::size_t N = V::N;
  const double s = sum_squares_kernel(x, n);
  const V hi = V::set1(limit), lo = V::set1(-limit);
  std::size_t i = 0;
  // max/min return their second operand when either is NaN: NaN passes through
  for (; i + N <= n; i += N) min(hi, max(lo, V::load(x + i))).store(x + i);
  if (i < n) {
    const int r = static_cast<int>(n - i);
    min(hi, max(lo, V::load_partial(x + i, r))).store_partial(x + i, r);
  }
  return s;
}

template <class T>
void scale_kernel(T* x, std::size_t n, T s) {
  using V = Vec<T>;
  constexpr std::size_t N = V::N;
  const V vs = V::set1(s);
  std::size_t i = 0;
  for (; i + N <= n; i += N) (V::load(x + i) * vs).store(x + i);
  if (i < n) {
    const int r = static_cast<int>(n - i);
    (V::load_partial(x + i, r) * vs).store_partial(x + i, r);
  }
}

// out[c] = sum_r x[r, c] for c in [c0, c1): 4 vectors of columns held in
// registers while the rows stream by, rows added in order 0, 1, ...
template <class T>
void column_sum_kernel(const T* x, T* out, std::size_t rows, std::size_t cols, std::size_t c0, std::size_t c1) {
  using V = Vec<T>;
  constexpr std::size_t N = V::N;
  std::size_t c = c0;
  for (; c + 4 * N <= c1; c += 4 * N) {
    V s0 = V::zero(), s1 = V::zero(), s2 = V::zero(), s3 = V::zero();
    for (std::size_t r = 0; r < rows; ++r) {
      const T* xr = x + r * cols + c;
      s0 = s0 + V::load(xr);
      s1 = s1 + V::load(xr + N);
      s2 = s2 + V::load(xr + 2 * N);
      s3 = s3 + V::load(xr + 3 * N);
    }
    s0.store(out + c);
    s1.store(out + c + N);
    s2.store(out + c + 2 * N);
    s3.store(out + c + 3 * N);
  }
  for (; c + N <= c1; c += N) {
    V s0 = V::zero();
    for (std::size_t r = 0; r < rows; ++r) s0 = s0 + V::load(x + r * cols + c);
    s0.store(out + c);
  }
  if (c < c1) {
    const int k = static_cast<int>(c1 - c);
    V s0 = V::zero();
    for (std::size_t r = 0; r < rows; ++r) s0 = s0 + V::load_partial(x + r * cols + c, k);
    s0.store_partial(out + c, k);
  }
}

const ReduceKernels reduce_kernels = {
    {&sum_squares_kernel<float>, &clip_value_kernel<float>, &scale_kernel<float>, &column_sum_kernel<float>,
     &all_finite_kernel<float>},
    {&sum_squares_kernel<double>, &clip_value_kernel<double>, &scale_kernel<double>, &column_sum_kernel<double>,
     &all_finite_kernel<double>},
};

}  // namespace FASTNN_ISA_NS
}  // namespace fastnn
