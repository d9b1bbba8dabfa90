// Per-ISA BatchNorm kernels (single-threaded over the features or rows they
// are given) and the ISA's table. Included once by norm_{scalar,avx2,avx512}.cpp.
//
// Layout: x is (m, n) row-major, features contiguous. The kernels stream
// whole row segments (contiguous, prefetch-friendly) and keep per-feature
// sums in small arrays in L1; walking down a column instead strides by the row
// length, which for power-of-two n lands every row in the same few cache sets.
// The math is in norm.h.
#pragma once
#include <cstddef>
#include <type_traits>

#include "fastnn/norm/norm.h"

namespace fastnn {
namespace FASTNN_ISA_NS {

// Features per column block: the per-feature work arrays of a block (4 of
// them, 16 KiB) stay in L1 while the kernel streams the block's rows.
template <class T> constexpr std::size_t col_block() { return 4096 / sizeof(T); }
// Rows summed into the block accumulators before they are added to the
// totals: float sums over thousands of rows then err like (B + m/B)*eps.
constexpr std::size_t kRowBlock = 32;

// Load of a full vector, or of the first `lanes` lanes when Tail.
template <bool Tail, class T> inline Vec<T> ld(const T* p, int lanes) {
  if constexpr (Tail) return Vec<T>::load_partial(p, lanes); else return Vec<T>::load(p);
}
template <bool Tail, class T> inline void st(Vec<T> v, T* p, int lanes) {
  if constexpr (Tail) v.store_partial(p, lanes); else v.store(p);
}

// Calls f(j, tail, lanes) for the vectors covering features [0, w): full ones
// with tail = std::false_type, then the partial last one with std::true_type.
template <class T, class F> inline void for_each_vector(std::size_t w, F f) {
  constexpr std::size_t N = Vec<T>::N;
  std::size_t j = 0;
  for (; j + N <= w; j += N) f(j, std::false_type{}, static_cast<int>(N));
  if (j < w) f(j, std::true_type{}, static_cast<int>(w - j));
}

// Calls f(i, rows) for rows [i0, i1) in groups of 4 (then single rows), rows
// a std::integral_constant: the per-feature values loaded once serve 4 rows.
template <class F> inline void for_row_groups(std::size_t i0, std::size_t i1, F f) {
  std::size_t i = i0;
  for (; i + 4 <= i1; i += 4) f(i, std::integral_constant<int, 4>{});
  for (; i < i1; ++i) f(i, std::integral_constant<int, 1>{});
}

// Sums over the m rows of features [c, c + w) (w <= col_block), streaming
// whole row segments: s1 += a(i, j), s2 += b(i, j) where row(i, j, lanes, tail)
// returns the pair for row i. Block accumulators b1, b2 are folded into s1, s2
// every kRowBlock rows. All arrays hold col_block() values.
template <class T, class Row>
inline void column_sums(std::size_t m, std::size_t w, T* s1, T* s2, T* b1, T* b2, Row row) {
  using V = Vec<T>;
  for_each_vector<T>(w, [&](std::size_t j, auto, int) { V::zero().store(s1 + j); V::zero().store(s2 + j); });
  for (std::size_t i0 = 0; i0 < m; i0 += kRowBlock) {
    const std::size_t i1 = i0 + kRowBlock < m ? i0 + kRowBlock : m;
    for_each_vector<T>(w, [&](std::size_t j, auto, int) { V::zero().store(b1 + j); V::zero().store(b2 + j); });
    for_row_groups(i0, i1, [&](std::size_t i, auto rows) {
      for_each_vector<T>(w, [&](std::size_t j, auto tail, int lanes) {
        V sa, sb;
        row(i, j, lanes, tail, sa, sb);
        for (int r = 1; r < decltype(rows)::value; ++r) {
          V a, b;
          row(i + r, j, lanes, tail, a, b);
          sa = sa + a;
          sb = sb + b;
        }
        (V::load(b1 + j) + sa).store(b1 + j);
        (V::load(b2 + j) + sb).store(b2 + j);
      });
    });
    for_each_vector<T>(w, [&](std::size_t j, auto, int) {
      (V::load(s1 + j) + V::load(b1 + j)).store(s1 + j);
      (V::load(s2 + j) + V::load(b2 + j)).store(s2 + j);
    });
  }
}

// The forward statistics of the vector of features at f from the sums of
// d = x - K and d^2 over m rows (both paths: forward_train_cols, forward_band_stats):
// stores batch_mean, batch_invstd and the running statistics; returns the mean and
// the folded scale gamma * invstd.
template <bool Tail, class T>
inline void forward_stats(Vec<T> S1, Vec<T> S2, Vec<T> K, std::size_t f, int lanes, const T* gamma, T* run_mean,
                          T* run_var, T* batch_mean, T* batch_invstd, T m, T momentum, T one_minus_momentum,
                          T unbias, T eps, Vec<T>& mean, Vec<T>& scale) {
  using V = Vec<T>;
  const V vm = V::set1(m);
  const V s1m = S1 / vm;
  mean = K + s1m;
  const V var = max(V::zero(), (S2 - S1 * s1m) / vm);  // max(0, NaN) = NaN
  const V invstd = V::set1(T(1)) / sqrt(var + V::set1(eps));
  scale = ld<Tail>(gamma + f, lanes) * invstd;
  st<Tail>(mean, batch_mean + f, lanes);
  st<Tail>(invstd, batch_invstd + f, lanes);
  st<Tail>(V::set1(momentum) * ld<Tail>(run_mean + f, lanes) + V::set1(one_minus_momentum) * mean, run_mean + f,
           lanes);
  st<Tail>(V::set1(momentum) * ld<Tail>(run_var + f, lanes) + (V::set1(one_minus_momentum) * var) * V::set1(unbias),
           run_var + f, lanes);
}

// The backward coefficients of the vector of features at f from the sums of dy
// and dy * (x - mean) over m rows (both paths: backward_cols, backward_band_stats):
// stores dbeta and dgamma; returns k1, k2, k0 of dx = k1*dy + k2*(x - mean) + k0.
template <bool Tail, class T>
inline void backward_coefficients(Vec<T> sdy, Vec<T> sdt, std::size_t f, int lanes, const T* gamma,
                                  const T* invstd_p, T* dgamma, T* dbeta, T m, Vec<T>& k1, Vec<T>& k2, Vec<T>& k0) {
  using V = Vec<T>;
  const V vm = V::set1(m);
  const V invstd = ld<Tail>(invstd_p + f, lanes), dg = sdt * invstd;
  st<Tail>(sdy, dbeta + f, lanes);
  st<Tail>(dg, dgamma + f, lanes);
  k1 = ld<Tail>(gamma + f, lanes) * invstd;
  k2 = -((k1 * invstd * dg) / vm);
  k0 = -((k1 * sdy) / vm);
}

// Training forward over features [c0, c1), one column block at a time.
// Pass 1 sums d = x - K and d^2 with K = the first row (shifted data: the
// variance (S2 - S1^2/m)/m loses nothing to cancellation when K is near the
// mean, as one sample of the column is); pass 2 writes y.
template <class T>
void forward_train_cols(const T* x, const T* gamma, const T* beta, T* run_mean, T* run_var, T* y, T* batch_mean,
                        T* batch_invstd, std::size_t m, std::size_t n, std::size_t c0, std::size_t c1, T momentum,
                        T one_minus_momentum, T unbias, T eps) {
  using V = Vec<T>;
  constexpr std::size_t CB = col_block<T>();
  alignas(64) T s1[CB], s2[CB], b1[CB], b2[CB];
  for (std::size_t c = c0; c < c1; c += CB) {
    const std::size_t w = c1 - c < CB ? c1 - c : CB;
    const T* K = x + c;
    column_sums<T>(m, w, s1, s2, b1, b2, [&](std::size_t i, std::size_t j, int lanes, auto tail, V& a, V& b) {
      constexpr bool Tail = decltype(tail)::value;
      a = ld<Tail>(x + i * n + c + j, lanes) - ld<Tail>(K + j, lanes);
      b = a * a;
    });
    // statistics and the folded scale (kept in s2) and mean (in s1)
    for_each_vector<T>(w, [&](std::size_t j, auto tail, int lanes) {
      constexpr bool Tail = decltype(tail)::value;
      V mean, scale;
      forward_stats<Tail>(V::load(s1 + j), V::load(s2 + j), ld<Tail>(K + j, lanes), c + j, lanes, gamma, run_mean,
                          run_var, batch_mean, batch_invstd, static_cast<T>(m), momentum, one_minus_momentum,
                          unbias, eps, mean, scale);
      mean.store(s1 + j);
      scale.store(s2 + j);
    });
    // y = (x - mean) * scale + beta
    for_row_groups(0, m, [&](std::size_t i, auto rows) {
      for_each_vector<T>(w, [&](std::size_t j, auto tail, int lanes) {
        constexpr bool Tail = decltype(tail)::value;
        const V mean = V::load(s1 + j), scale = V::load(s2 + j), shift = ld<Tail>(beta + c + j, lanes);
        for (int r = 0; r < decltype(rows)::value; ++r) {
          const std::size_t o = (i + r) * n + c + j;
          st<Tail>(fmadd(ld<Tail>(x + o, lanes) - mean, scale, shift), y + o, lanes);
        }
      });
    });
  }
}

// Backward over features [c0, c1), one column block at a time: pass 1 sums
// dy and dy*(x - mean), pass 2 writes dx = k1*dy + k2*(x - mean) + k0 (norm.h).
template <class T>
void backward_cols(const T* dy, const T* x, const T* gamma, const T* mean_p, const T* invstd_p, T* dx, T* dgamma,
                   T* dbeta, std::size_t m, std::size_t n, std::size_t c0, std::size_t c1) {
  using V = Vec<T>;
  constexpr std::size_t CB = col_block<T>();
  alignas(64) T s1[CB], s2[CB], b1[CB], b2[CB];
  for (std::size_t c = c0; c < c1; c += CB) {
    const std::size_t w = c1 - c < CB ? c1 - c : CB;
    const T* mean = mean_p + c;
    column_sums<T>(m, w, s1, s2, b1, b2, [&](std::size_t i, std::size_t j, int lanes, auto tail, V& a, V& b) {
      constexpr bool Tail = decltype(tail)::value;
      a = ld<Tail>(dy + i * n + c + j, lanes);
      b = a * (ld<Tail>(x + i * n + c + j, lanes) - ld<Tail>(mean + j, lanes));
    });
    // coefficients: k0 -> b1, k1 -> s1 (after dbeta is stored), k2 -> b2
    for_each_vector<T>(w, [&](std::size_t j, auto tail, int lanes) {
      constexpr bool Tail = decltype(tail)::value;
      V k1, k2, k0;
      backward_coefficients<Tail>(V::load(s1 + j), V::load(s2 + j), c + j, lanes, gamma, invstd_p, dgamma, dbeta,
                                  static_cast<T>(m), k1, k2, k0);
      k1.store(s1 + j);
      k2.store(b2 + j);
      k0.store(b1 + j);
    });
    for_row_groups(0, m, [&](std::size_t i, auto rows) {
      for_each_vector<T>(w, [&](std::size_t j, auto tail, int lanes) {
        constexpr bool Tail = decltype(tail)::value;
        const V mu = ld<Tail>(mean + j, lanes), k1 = V::load(s1 + j), k2 = V::load(b2 + j), k0 = V::load(b1 + j);
        for (int r = 0; r < decltype(rows)::value; ++r) {
          const std::size_t o = (i + r) * n + c + j;
          const V t = ld<Tail>(x + o, lanes) - mu;
          st<Tail>(fmadd(k1, ld<Tail>(dy + o, lanes), fmadd(k2, t, k0)), dx + o, lanes);
        }
      });
    });
  }
}

// y = x * scale + shift, row by row (inference mode).
template <class T>
void affine_rows(const T* x, const T* scale, const T* shift, T* y, std::size_t rows, std::size_t n) {
  using V = Vec<T>;
  constexpr std::size_t N = V::N;
  for (std::size_t i = 0; i < rows; ++i) {
    const T* xr = x + i * n;
    T* yr = y + i * n;
    std::size_t j = 0;
    for (; j + N <= n; j += N) fmadd(V::load(xr + j), V::load(scale + j), V::load(shift + j)).store(yr + j);
    if (j < n) {
      const int r = static_cast<int>(n - j);
      fmadd(V::load_partial(xr + j, r), V::load_partial(scale + j, r), V::load_partial(shift + j, r))
          .store_partial(yr + j, r);
    }
  }
}

}  // namespace FASTNN_ISA_NS
}  // namespace fastnn

#include "fastnn/norm/norm_rows_impl.h"

namespace fastnn {
namespace FASTNN_ISA_NS {

template <class T>
constexpr NormKernelsT<T> norm_kernels_of = {
    &forward_train_cols<T>, &backward_cols<T>,  &affine_rows<T>,        &forward_band_sums<T>,
    &forward_band_stats<T>, &forward_band_apply<T>, &backward_band_sums<T>, &backward_band_stats<T>,
    &backward_band_apply<T>,
};
const NormKernels norm_kernels = {norm_kernels_of<float>, norm_kernels_of<double>};

}  // namespace FASTNN_ISA_NS
}  // namespace fastnn

#include "fastnn/norm/layernorm_impl.h"
