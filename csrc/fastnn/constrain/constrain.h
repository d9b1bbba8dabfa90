// Weight constraints (python/fastnn/constraints.py; the native step's trainer.apply_constraints):
// the norm constraints of Keras (MaxNorm, UnitNorm, MinMaxNorm) and NonNeg, in place. The
// Python step and the native step both call these, so their results are bitwise the same.
//
// A variable is viewed as (outer, r, inner), C order: the norms are over r (the constraint's
// axes, adjacent), one per (outer, inner) pair. Each norm: the squares widened to double,
// added in the order of r (row after row), then n = T(sqrt(sum)) rounded to the variable's
// dtype; the scale then in T, as the NumPy formulas of constraints.py round it:
//   max_norm:      w *= min(max(n, 0), T(max_value)) / (T(1e-7) + n)
//   unit_norm:     w /= (T(1e-7) + n)
//   min_max_norm:  w *= (T(rate) * min(max(n, T(min)), T(max)) + T(1 - rate) * n) / (T(1e-7) + n)
// (each product and sum rounded, no fused multiply-add). The sum is not NumPy's (pairwise along a
// contiguous axis, in T): within 2e-6 (float32) / 1e-14 (float64) relative of
// fastnn._reference_constraints. Bitwise the same for any thread count (each norm's order is fixed).
#pragma once

#include <cstddef>

namespace fastnn {

enum class NormRule { max_norm, unit_norm, min_max_norm };

struct NormConstraint {
  NormRule rule = NormRule::max_norm;
  double min_value = 0.0, max_value = 0.0, rate = 1.0;  // min_value and rate: min_max_norm only
  std::size_t outer = 1, r = 1, inner = 1;              // the variable as (outer, r, inner)
};

// The variable w (outer * r * inner values) projected in place.
template <class T> void norm_constrain(T* w, const NormConstraint& c);

// NonNeg: w = np.maximum(w, 0) in place (NaN stays NaN, -0.0 becomes +0.0, as NumPy).
template <class T> void non_neg(T* w, std::size_t n);

}  // namespace fastnn
