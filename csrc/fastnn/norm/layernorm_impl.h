// Per-ISA LayerNorm kernels (layernorm.h) and the ISA's table. Included by
// norm_impl.h, so compiled once per ISA with the norm family.
#pragma once
#include <cmath>
#include <cstddef>

#include "fastnn/norm/layernorm.h"

namespace fastnn {
namespace FASTNN_ISA_NS {
namespace ln {

// Calls f(j, lanes) for the vectors covering [0, n): full ones (lanes = N), then the partial last one.
template <class T, class F> inline void each_vec(std::size_t n, F f) {
  constexpr std::size_t N = Vec<T>::N;
  std::size_t j = 0;
  for (; j + N <= n; j += N) f(j, static_cast<int>(N));
  if (j < n) f(j, static_cast<int>(n - j));
}
template <class T> inline Vec<T> ldv(const T* p, int lanes) {
  return lanes == Vec<T>::N ? Vec<T>::load(p) : Vec<T>::load_partial(p, lanes);
}
template <class T> inline void stv(Vec<T> v, T* p, int lanes) {
  if (lanes == Vec<T>::N) v.store(p); else v.store_partial(p, lanes);
}

template <class T>
void forward_rows(const T* x, const T* gamma, const T* beta, T* y, T* xhat, T* inv, std::size_t n, std::size_t i0,
                  std::size_t i1, T eps) {
  using V = Vec<T>;
  for (std::size_t i = i0; i < i1; ++i) {
    const T* xr = x + i * n;
    V s = V::zero();
    each_vec<T>(n, [&](std::size_t j, int l) { s = s + ldv(xr + j, l); });  // partial lanes load 0
    // variance: full vectors in lanes, the tail (x - mean)^2 in a scalar (padding lanes would add mean^2)
    const T mu = reduce_add(s) / static_cast<T>(n);
    const V mean = V::set1(mu);
    const std::size_t nfull = n / V::N * V::N;
    V q = V::zero();
    for (std::size_t j = 0; j < nfull; j += V::N) {
      const V d = V::load(xr + j) - mean;
      q = fmadd(d, d, q);
    }
    T sq = reduce_add(q);
    for (std::size_t j = nfull; j < n; ++j) sq += (xr[j] - mu) * (xr[j] - mu);
    const T rs = T(1) / std::sqrt(sq / static_cast<T>(n) + eps);
    const V r = V::set1(rs);
    inv[i] = rs;
    T* hr = xhat + i * n;
    T* yr = y + i * n;
    each_vec<T>(n, [&](std::size_t j, int l) {
      const V h = (ldv(xr + j, l) - mean) * r;
      stv(h, hr + j, l);
      V o = gamma ? h * ldv(gamma + j, l) : h;
      if (beta) o = o + ldv(beta + j, l);
      stv(o, yr + j, l);
    });
  }
}

template <class T>
void column_sums(const T* dy, const T* xhat, T* dgamma, T* dbeta, std::size_t m, std::size_t n, std::size_t c0,
                 std::size_t c1) {
  using V = Vec<T>;
  const std::size_t w = c1 - c0;
  each_vec<T>(w, [&](std::size_t j, int l) { stv(V::zero(), dgamma + c0 + j, l); stv(V::zero(), dbeta + c0 + j, l); });
  for (std::size_t i = 0; i < m; ++i) {
    const T* d = dy + i * n + c0;
    const T* h = xhat + i * n + c0;
    each_vec<T>(w, [&](std::size_t j, int l) {
      const V g = ldv(d + j, l);
      stv(ldv(dbeta + c0 + j, l) + g, dbeta + c0 + j, l);
      stv(fmadd(g, ldv(h + j, l), ldv(dgamma + c0 + j, l)), dgamma + c0 + j, l);
    });
  }
}

template <class T>
void dx_rows(const T* dy, const T* xhat, const T* inv, const T* gamma, T* dx, std::size_t n, std::size_t i0,
             std::size_t i1) {
  using V = Vec<T>;
  const V vn = V::set1(static_cast<T>(n));
  for (std::size_t i = i0; i < i1; ++i) {
    const T* d = dy + i * n;
    const T* h = xhat + i * n;
    V s1 = V::zero(), s2 = V::zero();
    each_vec<T>(n, [&](std::size_t j, int l) {
      const V g = gamma ? ldv(d + j, l) * ldv(gamma + j, l) : ldv(d + j, l);
      s1 = s1 + g;
      s2 = fmadd(g, ldv(h + j, l), s2);
    });
    const V mg = V::set1(reduce_add(s1)) / vn, mgh = V::set1(reduce_add(s2)) / vn, r = V::set1(inv[i]);
    T* o = dx + i * n;
    each_vec<T>(n, [&](std::size_t j, int l) {
      const V g = gamma ? ldv(d + j, l) * ldv(gamma + j, l) : ldv(d + j, l);
      stv(r * ((g - mg) - ldv(h + j, l) * mgh), o + j, l);
    });
  }
}

}  // namespace ln

template <class T>
constexpr LayerNormKernelsT<T> layernorm_kernels_of = {&ln::forward_rows<T>, &ln::column_sums<T>, &ln::dx_rows<T>};
const LayerNormKernels layernorm_kernels = {layernorm_kernels_of<float>, layernorm_kernels_of<double>};

}  // namespace FASTNN_ISA_NS
}  // namespace fastnn
