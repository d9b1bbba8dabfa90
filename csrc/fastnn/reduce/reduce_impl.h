// Per-ISA reduction kernels. Included once by reduce_{scalar,avx2,avx512}.cpp,
// which first define `Vec<double> load_wide(const float* p)`: Vec<double>::N
// floats widened to double (sums of squares are accumulated in double).
#pragma once
#include <cmath>
#include <cstddef>

#include "fastnn/reduce/reduce.h"

namespace fastnn {
namespace FASTNN_ISA_NS {

inline Vec<double> load_wide(const double* p) { return Vec<double>::load(p); }

// acc = fold(acc, load(j)) for the vectors j = i, i + VA::N, ... of [i, n), in four
// independent accumulators (0, 1, 2, 3, 0, ...; a last vector short of four in the first),
// combined as (a0 + a1) + (a2 + a3). Leaves i at the first value not read (n - i < VA::N).
template <class VA, class Load, class Fold>
VA fold4(std::size_t n, std::size_t& i, Load load, Fold fold) {
  constexpr std::size_t N = VA::N;
  VA a0 = VA::zero(), a1 = VA::zero(), a2 = VA::zero(), a3 = VA::zero();
  for (; i + 4 * N <= n; i += 4 * N) {
    a0 = fold(a0, load(i));
    a1 = fold(a1, load(i + N));
    a2 = fold(a2, load(i + 2 * N));
    a3 = fold(a3, load(i + 3 * N));
  }
  for (; i + N <= n; i += N) a0 = fold(a0, load(i));
  return (a0 + a1) + (a2 + a3);
}

// sum x_i^2 in double, four independent accumulators.
template <class T>
double sum_squares_kernel(const T* x, std::size_t n) {
  using VD = Vec<double>;
  std::size_t i = 0;
  const VD s = fold4<VD>(n, i, [&](std::size_t j) { return load_wide(x + j); },
                         [](VD a, VD v) { return fmadd(v, v, a); });
  double tail = 0;
  for (; i < n; ++i) tail += double(x[i]) * double(x[i]);
  return reduce_add(s) + tail;
}

// sum |x_i| in double, four independent accumulators (Regularizer's L1 penalty).
template <class T>
double abs_sum_kernel(const T* x, std::size_t n) {
  using VD = Vec<double>;
  std::size_t i = 0;
  const VD s = fold4<VD>(n, i, [&](std::size_t j) { return abs(load_wide(x + j)); },
                         [](VD a, VD v) { return a + v; });
  double tail = 0;
  for (; i < n; ++i) tail += std::fabs(double(x[i]));
  return reduce_add(s) + tail;
}

// Whether every x_i is finite: x - x is +0 for a finite x and NaN for an infinity or a
// NaN, and a NaN stays NaN through any sum, so the sum of x_i - x_i is 0 exactly when
// all are finite (it cannot overflow). Four independent accumulators.
template <class T>
bool all_finite_kernel(const T* x, std::size_t n) {
  using V = Vec<T>;
  std::size_t i = 0;
  V s = fold4<V>(n, i, [&](std::size_t j) { return V::load(x + j); }, [](V a, V v) { return a + (v - v); });
  if (i < n) {
    const V v = V::load_partial(x + i, static_cast<int>(n - i));  // zero-filled lanes add 0
    s = s + (v - v);
  }
  return reduce_add(s) == T(0);
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
     &all_finite_kernel<float>, &abs_sum_kernel<float>},
    {&sum_squares_kernel<double>, &clip_value_kernel<double>, &scale_kernel<double>, &column_sum_kernel<double>,
     &all_finite_kernel<double>, &abs_sum_kernel<double>},
};

}  // namespace FASTNN_ISA_NS
}  // namespace fastnn
