// Per-ISA LayerNorm kernels (layernorm.h) and the ISA's table. Included by
// norm_impl.h, so compiled once per ISA with the norm family.
#pragma once
#include <cmath>
#include <cstddef>

#include "fastnn/norm/layernorm.h"

namespace fastnn {
namespace FASTNN_ISA_NS {
namespace ln {

// The vectors of a row: norm_impl.h's for_each_vector, ld and st (Tail: the partial last one).
template <class T>
void forward_rows(const T* x, const T* gamma, const T* beta, T* y, T* xhat, T* inv, std::size_t n, std::size_t i0,
                  std::size_t i1, T eps) {
  using V = Vec<T>;
  for (std::size_t i = i0; i < i1; ++i) {
    const T* xr = x + i * n;
    V s = V::zero();
    for_each_vector<T>(n, [&](std::size_t j, auto tail, int l) {
      constexpr bool t = decltype(tail)::value; s = s + ld<t>(xr + j, l); });  // partial lanes load 0
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
    for_each_vector<T>(n, [&](std::size_t j, auto tail, int l) {
      constexpr bool t = decltype(tail)::value;
      const V h = (ld<t>(xr + j, l) - mean) * r;
      st<t>(h, hr + j, l);
      V o = gamma ? h * ld<t>(gamma + j, l) : h;
      if (beta) o = o + ld<t>(beta + j, l);
      st<t>(o, yr + j, l);
    });
  }
}

template <class T>
void column_sums(const T* dy, const T* xhat, T* dgamma, T* dbeta, std::size_t m, std::size_t n, std::size_t c0,
                 std::size_t c1) {
  using V = Vec<T>;
  const std::size_t w = c1 - c0;
  for_each_vector<T>(w, [&](std::size_t j, auto tail, int l) {
      constexpr bool t = decltype(tail)::value; st<t>(V::zero(), dgamma + c0 + j, l); st<t>(V::zero(), dbeta + c0 + j, l); });
  for (std::size_t i = 0; i < m; ++i) {
    const T* d = dy + i * n + c0;
    const T* h = xhat + i * n + c0;
    for_each_vector<T>(w, [&](std::size_t j, auto tail, int l) {
      constexpr bool t = decltype(tail)::value;
      const V g = ld<t>(d + j, l);
      st<t>(ld<t>(dbeta + c0 + j, l) + g, dbeta + c0 + j, l);
      st<t>(fmadd(g, ld<t>(h + j, l), ld<t>(dgamma + c0 + j, l)), dgamma + c0 + j, l);
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
    for_each_vector<T>(n, [&](std::size_t j, auto tail, int l) {
      constexpr bool t = decltype(tail)::value;
      const V g = gamma ? ld<t>(d + j, l) * ld<t>(gamma + j, l) : ld<t>(d + j, l);
      s1 = s1 + g;
      s2 = fmadd(g, ld<t>(h + j, l), s2);
    });
    const V mg = V::set1(reduce_add(s1)) / vn, mgh = V::set1(reduce_add(s2)) / vn, r = V::set1(inv[i]);
    T* o = dx + i * n;
    for_each_vector<T>(n, [&](std::size_t j, auto tail, int l) {
      constexpr bool t = decltype(tail)::value;
      const V g = gamma ? ld<t>(d + j, l) * ld<t>(gamma + j, l) : ld<t>(d + j, l);
      st<t>(r * ((g - mg) - ld<t>(h + j, l) * mgh), o + j, l);
    });
  }
}

}  // namespace ln

template <class T>
constexpr LayerNormKernelsT<T> layernorm_kernels_of = {&ln::forward_rows<T>, &ln::column_sums<T>, &ln::dx_rows<T>};
const LayerNormKernels layernorm_kernels = {layernorm_kernels_of<float>, layernorm_kernels_of<double>};

}  // namespace FASTNN_ISA_NS
}  // namespace fastnn
