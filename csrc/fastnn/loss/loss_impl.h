// Per-ISA loss kernels (single-threaded over the rows or elements they are
// given) and the ISA's table. Included once by loss_{scalar,avx2,avx512}.cpp.
// The math is in loss.h.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "fastnn/loss/loss.h"
#include "fastnn/simd/vecmath_impl.h"

namespace fastnn {
namespace FASTNN_ISA_NS {

// Fused softmax cross-entropy, one row at a time; the row (C values) stays in
// L1 between its three short walks:
//   1) max of z;
//   2) e = exp(z - max) into dz, s = sum e (with labels as rows, also
//      st = sum t and stz = sum t (z - max));
//   3) dz = e * (scale * st / s) - t * scale   (ids: st = 1, one -scale at the label).
// Row loss: log s * st - stz   (ids: log s - (z_label - max)).
template <class T, bool Ids>
void xent_rows_kernel(const T* z, const std::int64_t* labels, const T* t, T* dz, std::size_t rows, std::size_t C,
                      T scale, double* row_loss) {
  using V = Vec<T>;
  constexpr std::size_t N = V::N;
  const V vscale = V::set1(scale);
  for (std::size_t r = 0; r < rows; ++r) {
    const T* zr = z + r * C;
    const T* tr = Ids ? nullptr : t + r * C;
    T* dr = dz + r * C;
    // 1) max (NaN lanes are skipped here but poison s below)
    V m0 = V::set1(-std::numeric_limits<T>::infinity()), m1 = m0;
    std::size_t i = 0;
    for (; i + 2 * N <= C; i += 2 * N) {
      m0 = max(V::load(zr + i), m0);
      m1 = max(V::load(zr + i + N), m1);
    }
    for (; i + N <= C; i += N) m0 = max(V::load(zr + i), m0);
    T mx = reduce_max(max(m0, m1));
    for (; i < C; ++i) mx = zr[i] > mx ? zr[i] : mx;
    // 2) exponentials and sums
    const V vmx = V::set1(mx);
    V s0 = V::zero(), s1 = V::zero(), st0 = V::zero(), stz0 = V::zero();
    i = 0;
    for (; i + 2 * N <= C; i += 2 * N) {
      const V d0 = V::load(zr + i) - vmx, d1 = V::load(zr + i + N) - vmx;
      const V e0 = vexp(d0), e1 = vexp(d1);
      e0.store(dr + i);
      e1.store(dr + i + N);
      s0 = s0 + e0;
      s1 = s1 + e1;
      if constexpr (!Ids) {
        const V t0 = V::load(tr + i), t1 = V::load(tr + i + N);
        st0 = st0 + (t0 + t1);
        stz0 = fmadd(t0, d0, fmadd(t1, d1, stz0));
      }
    }
    for (; i + N <= C; i += N) {
      const V d0 = V::load(zr + i) - vmx;
      const V e0 = vexp(d0);
      e0.store(dr + i);
      s0 = s0 + e0;
      if constexpr (!Ids) {
        const V t0 = V::load(tr + i);
        st0 = st0 + t0;
        stz0 = fmadd(t0, d0, stz0);
      }
    }
    T s_tail = 0, st_tail = 0, stz_tail = 0;  // the last C % N values, in order
    if (i < C) {
      const int rem = static_cast<int>(C - i);
      const V d0 = V::load_partial(zr + i, rem) - vmx;
      vexp(d0).store_partial(dr + i, rem);
      for (std::size_t j = i; j < C; ++j) {
        s_tail += dr[j];
        if constexpr (!Ids) {
          st_tail += tr[j];
          stz_tail += tr[j] * (zr[j] - mx);
        }
      }
    }
    const T s = reduce_add(s0 + s1) + s_tail;
    const double log_s = std::log(static_cast<double>(s));
    // 3) gradient
    if constexpr (Ids) {
      const std::size_t label = static_cast<std::size_t>(labels[r]);
      row_loss[r] = log_s - static_cast<double>(zr[label] - mx);
      const V c = V::set1(scale / s);
      i = 0;
      for (; i + N <= C; i += N) (V::load(dr + i) * c).store(dr + i);
      if (i < C) {
        const int rem = static_cast<int>(C - i);
        (V::load_partial(dr + i, rem) * c).store_partial(dr + i, rem);
      }
      dr[label] -= scale;
    } else {
      const T st = reduce_add(st0) + st_tail;
      const T stz = reduce_add(stz0) + stz_tail;
      row_loss[r] = log_s * static_cast<double>(st) - static_cast<double>(stz);
      const V c = V::set1(scale * st / s);
      i = 0;
      for (; i + N <= C; i += N) fnmadd(V::load(tr + i), vscale, V::load(dr + i) * c).store(dr + i);
      if (i < C) {
        const int rem = static_cast<int>(C - i);
        fnmadd(V::load_partial(tr + i, rem), vscale, V::load_partial(dr + i, rem) * c).store_partial(dr + i, rem);
      }
    }
  }
}

template <class T>
void xent_ids_kernel(const T* z, const std::int64_t* labels, T* dz, std::size_t rows, std::size_t C, T scale,
                     double* row_loss) {
  xent_rows_kernel<T, true>(z, labels, nullptr, dz, rows, C, scale, row_loss);
}
template <class T>
void xent_probs_kernel(const T* z, const T* t, T* dz, std::size_t rows, std::size_t C, T scale, double* row_loss) {
  xent_rows_kernel<T, false>(z, nullptr, t, dz, rows, C, scale, row_loss);
}

// Elementwise loss over n values: f(a, b, &grad) returns the per-lane loss and
// the unscaled gradient; sums the losses (tail lanes masked out) and writes
// grad * scale.
template <class T, class F>
double elementwise_loss(const T* a, const T* b, T* g, std::size_t n, T scale, F f) {
  using V = Vec<T>;
  constexpr std::size_t N = V::N;
  const V vscale = V::set1(scale);
  V acc0 = V::zero(), acc1 = V::zero();
  std::size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    V g0, g1;
    acc0 = acc0 + f(V::load(a + i), V::load(b + i), g0);
    acc1 = acc1 + f(V::load(a + i + N), V::load(b + i + N), g1);
    (g0 * vscale).store(g + i);
    (g1 * vscale).store(g + i + N);
  }
  for (; i + N <= n; i += N) {
    V g0;
    acc0 = acc0 + f(V::load(a + i), V::load(b + i), g0);
    (g0 * vscale).store(g + i);
  }
  double sum = static_cast<double>(reduce_add(acc0 + acc1));
  if (i < n) {
    const int rem = static_cast<int>(n - i);
    V g0;
    alignas(64) T buf[N];
    f(V::load_partial(a + i, rem), V::load_partial(b + i, rem), g0).store(buf);
    (g0 * vscale).store_partial(g + i, rem);
    for (int j = 0; j < rem; ++j) sum += static_cast<double>(buf[j]);
  }
  return sum;
}

// The elementwise loss over `rows` rows of `width` values (weighted losses, loss.h): the
// gradient exactly as elementwise_loss writes it (the same lanes' math, grad * scale), and
// row_loss[r] = the sum of row r's losses: elementwise_loss's sum over the row for rows of
// at least 2 vectors, else its values (each in T) added in order in double, vectors running
// across rows. Either way a row's sum depends only on the row (not on where the threads'
// chunks start).
template <class T, class F>
void elementwise_rows(const T* a, const T* b, T* g, std::size_t rows, std::size_t width, T scale, double* row_loss,
                      F f) {
  using V = Vec<T>;
  constexpr std::size_t N = V::N;
  if (width >= 2 * N) {
    for (std::size_t r = 0; r < rows; ++r)
      row_loss[r] = elementwise_loss(a + r * width, b + r * width, g + r * width, width, scale, f);
    return;
  }
  const V vscale = V::set1(scale);
  const std::size_t n = rows * width;
  alignas(64) T buf[N];
  std::size_t r = 0, left = width;  // the row being summed, its values still to add
  double sum = 0;
  for (std::size_t i = 0; i < n; i += N) {
    const int len = static_cast<int>(n - i < N ? n - i : N);
    V g0;
    if (len == static_cast<int>(N)) {
      f(V::load(a + i), V::load(b + i), g0).store(buf);
      (g0 * vscale).store(g + i);
    } else {
      f(V::load_partial(a + i, len), V::load_partial(b + i, len), g0).store(buf);
      (g0 * vscale).store_partial(g + i, len);
    }
    for (int j = 0; j < len; ++j) {
      sum += static_cast<double>(buf[j]);
      if (--left == 0) {
        row_loss[r++] = sum;
        sum = 0;
        left = width;
      }
    }
  }
}

// loss = max(z, 0) - z t + log1p(e), e = exp(-|z|) in (0, 1];
// sigmoid(z) = 1/(1+e) for z >= 0, e/(1+e) below (never exp of a positive number).
template <class T> struct BceLanes {
  Vec<T> operator()(Vec<T> zv, Vec<T> tv, Vec<T>& grad) const {
    using V = Vec<T>;
    const V e = vexp(-abs(zv));
    const V r = V::set1(T(1)) / (V::set1(T(1)) + e);
    const V sig = select(ge(zv, V::zero()), r, e * r);
    grad = sig - tv;
    return fnmadd(zv, tv, max(V::zero(), zv)) + vlog1p_unit(e);  // max(0, NaN) = NaN
  }
};

template <class T> struct MseLanes {
  Vec<T> operator()(Vec<T> pv, Vec<T> tv, Vec<T>& grad) const {
    const Vec<T> d = pv - tv;
    grad = d + d;
    return d * d;
  }
};

template <class T>
double bce_kernel(const T* z, const T* t, T* dz, std::size_t n, T scale) {
  return elementwise_loss(z, t, dz, n, scale, BceLanes<T>{});
}

template <class T>
double mse_kernel(const T* p, const T* t, T* dp, std::size_t n, T scale) {
  return elementwise_loss(p, t, dp, n, scale, MseLanes<T>{});
}

template <class T>
void bce_rows_kernel(const T* z, const T* t, T* dz, std::size_t rows, std::size_t width, T scale, double* row_loss) {
  elementwise_rows(z, t, dz, rows, width, scale, row_loss, BceLanes<T>{});
}

template <class T>
void mse_rows_kernel(const T* p, const T* t, T* dp, std::size_t rows, std::size_t width, T scale, double* row_loss) {
  elementwise_rows(p, t, dp, rows, width, scale, row_loss, MseLanes<T>{});
}

const LossKernels loss_kernels = {
    {&xent_ids_kernel<float>, &xent_probs_kernel<float>, &bce_kernel<float>, &mse_kernel<float>,
     &bce_rows_kernel<float>, &mse_rows_kernel<float>},
    {&xent_ids_kernel<double>, &xent_probs_kernel<double>, &bce_kernel<double>, &mse_kernel<double>,
     &bce_rows_kernel<double>, &mse_rows_kernel<double>},
};

}  // namespace FASTNN_ISA_NS
}  // namespace fastnn
