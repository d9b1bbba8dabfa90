// Weight constraints (constrain.h). Each product and sum is rounded as written.
#include "fastnn/no_fp_contract.h"

#include "fastnn/constrain/constrain.h"

#include <algorithm>
#include <cmath>

#include "fastnn/parallel.h"

namespace fastnn {

namespace {

constexpr double kEps = 1e-7;          // Keras's backend epsilon (constraints._EPS)
constexpr std::size_t kColumns = 64;   // norms computed together (on the stack)
constexpr std::size_t kGrain = 1 << 15;

// np.clip(n, lo, hi) for n >= 0 or NaN (NaN stays NaN).
template <class T> inline T clip(T n, T lo, T hi) {
  T d = n < lo ? lo : n;
  return d > hi ? hi : d;
}

// The columns [c0, c0 + k) of the slab w (r x inner): their norms, then each scaled.
template <class T> void constrain_columns(T* w, const NormConstraint& c, std::size_t c0, std::size_t k) {
  const std::size_t r = c.r, inner = c.inner;
  double acc[kColumns] = {};
  for (std::size_t i = 0; i < r; ++i) {
    const T* row = w + i * inner + c0;
    for (std::size_t j = 0; j < k; ++j) {
      const double v = static_cast<double>(row[j]);
      acc[j] = acc[j] + v * v;
    }
  }
  const T eps = static_cast<T>(kEps), hi = static_cast<T>(c.max_value), lo = static_cast<T>(c.min_value);
  const T rate = static_cast<T>(c.rate), keep = static_cast<T>(1.0 - c.rate);
  T f[kColumns];
  for (std::size_t j = 0; j < k; ++j) {
    const T n = static_cast<T>(std::sqrt(acc[j]));
    const T den = eps + n;
    if (c.rule == NormRule::unit_norm) {
      f[j] = den;
    } else if (c.rule == NormRule::max_norm) {
      f[j] = clip(n, T(0), hi) / den;
    } else {
      const T a = rate * clip(n, lo, hi);
      const T b = keep * n;
      f[j] = (a + b) / den;
    }
  }
  for (std::size_t i = 0; i < r; ++i) {
    T* row = w + i * inner + c0;
    if (c.rule == NormRule::unit_norm)
      for (std::size_t j = 0; j < k; ++j) row[j] = row[j] / f[j];
    else
      for (std::size_t j = 0; j < k; ++j) row[j] = row[j] * f[j];
  }
}

}  // namespace

template <class T> void norm_constrain(T* w, const NormConstraint& c) {
  if (c.outer == 0 || c.r == 0 || c.inner == 0) return;
  const std::size_t chunks = (c.inner + kColumns - 1) / kColumns, items = c.outer * chunks;
  const std::size_t per_item = c.r * std::min(c.inner, kColumns);  // values one item reads (about)
  parallel_for(items, std::max<std::size_t>(1, kGrain / per_item), [&](std::size_t b, std::size_t e) {
    for (std::size_t t = b; t < e; ++t) {
      const std::size_t o = t / chunks, c0 = (t % chunks) * kColumns;
      constrain_columns<T>(w + o * c.r * c.inner, c, c0, std::min(kColumns, c.inner - c0));
    }
  }, 1);
}

template <class T> void non_neg(T* w, std::size_t n) {
  parallel_for(n, kGrain, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) w[i] = (w[i] > T(0) || w[i] != w[i]) ? w[i] : T(0);
  });
}

template void norm_constrain<float>(float*, const NormConstraint&);
template void norm_constrain<double>(double*, const NormConstraint&);
template void non_neg<float>(float*, std::size_t);
template void non_neg<double>(double*, std::size_t);

}  // namespace fastnn
