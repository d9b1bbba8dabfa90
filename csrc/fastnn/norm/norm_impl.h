// Per-ISA BatchNorm kernels (single-threaded over the features or rows they
// are given) and the ISA's table. Included once by norm_{scalar,avx2,avx512}.cpp.
//
// Layout: x is (m, n) row-major, features contiguous. A "strip" is W vectors
// of adjacent features; its per-feature sums stay in registers while the
// kernel walks down the m rows (row stride n), then a second walk over the
// same strip (still in L1/L2) writes the output. The math is in norm.h.
#pragma once
#include <cstddef>

#include "fastnn/norm/norm.h"

namespace fastnn {
namespace FASTNN_ISA_NS {

// Strip width in vectors: 2 keeps all accumulators in registers on AVX2 (16
// registers) and AVX-512; the scalar path takes 4 features for some ILP.
template <class T> constexpr int strip_vectors() { return Vec<T>::N == 1 ? 4 : 2; }
// Rows summed into an inner accumulator before it is added to the outer one:
// float sums over thousands of rows then err like (B + m/B)*eps, not m*eps.
constexpr std::size_t kRowBlock = 32;

// Load of a full vector, or of the first `lanes` lanes when Tail.
template <bool Tail, class T> inline Vec<T> ld(const T* p, int lanes) {
  if constexpr (Tail) return Vec<T>::load_partial(p, lanes); else return Vec<T>::load(p);
}
template <bool Tail, class T> inline void st(Vec<T> v, T* p, int lanes) {
  if constexpr (Tail) v.store_partial(p, lanes); else v.store(p);
}

// Training forward over features [c, c + W*N) (Tail: W == 1 and `lanes` features).
// Pass 1 sums d = x - K and d^2 with K = the first row (shifted data: the
// variance (S2 - S1^2/m)/m loses nothing to cancellation when K is near the
// mean, as one sample of the column is); pass 2 writes y.
template <class T, int W, bool Tail>
void forward_train_strip(const T* x, const T* gamma, const T* beta, T* run_mean, T* run_var, T* y, T* batch_mean,
                         T* batch_invstd, std::size_t m, std::size_t n, std::size_t c, int lanes, T momentum,
                         T one_minus_momentum, T unbias, T eps) {
  using V = Vec<T>;
  constexpr int N = V::N;
  V K[W], s1[W], s2[W];
  for (int k = 0; k < W; ++k) {
    K[k] = ld<Tail>(x + c + k * N, lanes);
    s1[k] = V::zero();
    s2[k] = V::zero();
  }
  for (std::size_t i0 = 0; i0 < m; i0 += kRowBlock) {
    const std::size_t i1 = i0 + kRowBlock < m ? i0 + kRowBlock : m;
    V b1[W], b2[W];
    for (int k = 0; k < W; ++k) { b1[k] = V::zero(); b2[k] = V::zero(); }
    for (std::size_t i = i0; i < i1; ++i) {
      const T* xr = x + i * n + c;
      for (int k = 0; k < W; ++k) {
        const V d = ld<Tail>(xr + k * N, lanes) - K[k];
        b1[k] = b1[k] + d;
        b2[k] = fmadd(d, d, b2[k]);
      }
    }
    for (int k = 0; k < W; ++k) { s1[k] = s1[k] + b1[k]; s2[k] = s2[k] + b2[k]; }
  }
  const V vm = V::set1(static_cast<T>(m)), one = V::set1(T(1)), veps = V::set1(eps);
  const V mom = V::set1(momentum), omm = V::set1(one_minus_momentum), unb = V::set1(unbias);
  V mean[W], scale[W], shift[W];
  for (int k = 0; k < W; ++k) {
    const std::size_t j = c + k * N;
    const V s1m = s1[k] / vm;
    mean[k] = K[k] + s1m;
    const V var = max(V::zero(), (s2[k] - s1[k] * s1m) / vm);  // max(0, NaN) = NaN
    const V invstd = one / sqrt(var + veps);
    scale[k] = ld<Tail>(gamma + j, lanes) * invstd;
    shift[k] = ld<Tail>(beta + j, lanes);
    st<Tail>(mean[k], batch_mean + j, lanes);
    st<Tail>(invstd, batch_invstd + j, lanes);
    st<Tail>(mom * ld<Tail>(run_mean + j, lanes) + omm * mean[k], run_mean + j, lanes);
    st<Tail>(mom * ld<Tail>(run_var + j, lanes) + (omm * var) * unb, run_var + j, lanes);
  }
  for (std::size_t i = 0; i < m; ++i) {
    const T* xr = x + i * n + c;
    T* yr = y + i * n + c;
    for (int k = 0; k < W; ++k)
      st<Tail>(fmadd(ld<Tail>(xr + k * N, lanes) - mean[k], scale[k], shift[k]), yr + k * N, lanes);
  }
}

// Backward over features [c, c + W*N): pass 1 sums dy and dy*(x - mean),
// pass 2 writes dx = k1*dy + k2*(x - mean) + k0 (see norm.h).
template <class T, int W, bool Tail>
void backward_strip(const T* dy, const T* x, const T* gamma, const T* mean_p, const T* invstd_p, T* dx, T* dgamma,
                    T* dbeta, std::size_t m, std::size_t n, std::size_t c, int lanes) {
  using V = Vec<T>;
  constexpr int N = V::N;
  V mean[W], sdy[W], sdyt[W];
  for (int k = 0; k < W; ++k) {
    mean[k] = ld<Tail>(mean_p + c + k * N, lanes);
    sdy[k] = V::zero();
    sdyt[k] = V::zero();
  }
  for (std::size_t i0 = 0; i0 < m; i0 += kRowBlock) {
    const std::size_t i1 = i0 + kRowBlock < m ? i0 + kRowBlock : m;
    V b1[W], b2[W];
    for (int k = 0; k < W; ++k) { b1[k] = V::zero(); b2[k] = V::zero(); }
    for (std::size_t i = i0; i < i1; ++i) {
      const T* xr = x + i * n + c;
      const T* dyr = dy + i * n + c;
      for (int k = 0; k < W; ++k) {
        const V g = ld<Tail>(dyr + k * N, lanes);
        b1[k] = b1[k] + g;
        b2[k] = fmadd(g, ld<Tail>(xr + k * N, lanes) - mean[k], b2[k]);
      }
    }
    for (int k = 0; k < W; ++k) { sdy[k] = sdy[k] + b1[k]; sdyt[k] = sdyt[k] + b2[k]; }
  }
  const V vm = V::set1(static_cast<T>(m));
  V k0[W], k1[W], k2[W];
  for (int k = 0; k < W; ++k) {
    const std::size_t j = c + k * N;
    const V invstd = ld<Tail>(invstd_p + j, lanes);
    const V dg = sdyt[k] * invstd;
    st<Tail>(sdy[k], dbeta + j, lanes);
    st<Tail>(dg, dgamma + j, lanes);
    k1[k] = ld<Tail>(gamma + j, lanes) * invstd;
    k2[k] = -((k1[k] * invstd * dg) / vm);
    k0[k] = -((k1[k] * sdy[k]) / vm);
  }
  for (std::size_t i = 0; i < m; ++i) {
    const T* xr = x + i * n + c;
    const T* dyr = dy + i * n + c;
    T* dxr = dx + i * n + c;
    for (int k = 0; k < W; ++k) {
      const V t = ld<Tail>(xr + k * N, lanes) - mean[k];
      st<Tail>(fmadd(k1[k], ld<Tail>(dyr + k * N, lanes), fmadd(k2[k], t, k0[k])), dxr + k * N, lanes);
    }
  }
}

// Walks features [c0, c1) in strips of W vectors, then single vectors, then
// the partial last vector.
template <class T, class Strip, class One, class Tail>
inline void for_strips(std::size_t c0, std::size_t c1, Strip strip, One one, Tail tail) {
  constexpr std::size_t N = Vec<T>::N, SW = strip_vectors<T>() * Vec<T>::N;
  std::size_t c = c0;
  for (; c + SW <= c1; c += SW) strip(c);
  for (; c + N <= c1; c += N) one(c);
  if (c < c1) tail(c, static_cast<int>(c1 - c));
}

template <class T>
void forward_train_cols(const T* x, const T* gamma, const T* beta, T* rm, T* rv, T* y, T* bm, T* bi,
                        std::size_t m, std::size_t n, std::size_t c0, std::size_t c1, T mom, T omm, T unb, T eps) {
  constexpr int W = strip_vectors<T>();
  for_strips<T>(
      c0, c1,
      [&](std::size_t c) { forward_train_strip<T, W, false>(x, gamma, beta, rm, rv, y, bm, bi, m, n, c, Vec<T>::N, mom, omm, unb, eps); },
      [&](std::size_t c) { forward_train_strip<T, 1, false>(x, gamma, beta, rm, rv, y, bm, bi, m, n, c, Vec<T>::N, mom, omm, unb, eps); },
      [&](std::size_t c, int lanes) { forward_train_strip<T, 1, true>(x, gamma, beta, rm, rv, y, bm, bi, m, n, c, lanes, mom, omm, unb, eps); });
}

template <class T>
void backward_cols(const T* dy, const T* x, const T* gamma, const T* mean, const T* invstd, T* dx, T* dgamma,
                   T* dbeta, std::size_t m, std::size_t n, std::size_t c0, std::size_t c1) {
  constexpr int W = strip_vectors<T>();
  for_strips<T>(
      c0, c1,
      [&](std::size_t c) { backward_strip<T, W, false>(dy, x, gamma, mean, invstd, dx, dgamma, dbeta, m, n, c, Vec<T>::N); },
      [&](std::size_t c) { backward_strip<T, 1, false>(dy, x, gamma, mean, invstd, dx, dgamma, dbeta, m, n, c, Vec<T>::N); },
      [&](std::size_t c, int lanes) { backward_strip<T, 1, true>(dy, x, gamma, mean, invstd, dx, dgamma, dbeta, m, n, c, lanes); });
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

const NormKernels norm_kernels = {
    {&forward_train_cols<float>, &backward_cols<float>, &affine_rows<float>},
    {&forward_train_cols<double>, &backward_cols<double>, &affine_rows<double>},
};

}  // namespace FASTNN_ISA_NS
}  // namespace fastnn
