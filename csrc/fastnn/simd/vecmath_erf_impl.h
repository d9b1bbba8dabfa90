// Vector erf, erfc and gelu's normal CDF over Vec<T>, written once and compiled per
// ISA: include after vecmath_impl.h with FASTNN_ISA_NS defined.
//
// float: our own fits (tools/fit_erf.py: minimax-like least squares against scipy's erfcx/erf),
// max error measured by bench/erf_exhaustive.py over every 13th float32 bit pattern, both
// signs, on every ISA path (dense sweeps in tests/test_gelu_erf.py):
//   erf: 2.31 ulp (scalar), 1.41 (avx2, avx512); gelu x Phi(x): 6.74 ulp (scalar), 6.12.
//   erfc(u), u >= 0   exp(-u^2) t Q(t), t = 2/(2+u), Q degree 9 (fit: 1.8e-8 relative),
//                     u^2 split exactly into hi + lo (one FMA) so exp sees no rounding
//                     of u^2 (an error of u^2 eps in the tail)
//   erf(x)            |x| < 1: x (c0 + x^2 R(x^2)), R degree 5; else 1 - erfc(|x|), odd
//   normal_cdf(x)     Phi(x) = erfc(-x/sqrt2)/2 from x^2/2 (split exactly), relative
//                     accuracy in both tails (no 1 + erf cancellation for x < 0)
// Results below FLT_MIN are flushed to 0 (erfc(u) is 0 from u ~ 9.3 on).
// double: lane-wise libm std::erf / std::erfc (~1 ulp).
#pragma once
#include <cmath>
#include <limits>

#ifndef FASTNN_ISA_NS
#error "define FASTNN_ISA_NS before including vecmath_erf_impl.h"
#endif

namespace fastnn {
namespace FASTNN_ISA_NS {

// a * a - fl(a * a), exactly: one FMA (the scalar path has no FMA instruction: std::fma).
template <class V>
[[gnu::always_inline]] inline V square_rounding_error(V a, V sq) {
  if constexpr (V::N == 1) return V{std::fma(a.v, a.v, -sq.v)};
  else return fmadd(a, a, -sq);
}

// erfc(u) = e f for 0 <= u <= 9.5, given u^2 = hi + lo (hi = fl(u^2), lo its rounding
// error): e = exp(-u^2) (which gelu's gradient needs too) and f = t Q(t), t = 2/(2+u),
// Q(t) ~ erfcx(u)/t (minimax-like fit on u in [0, 9.5], relative error 1.8e-8). Kept
// apart so that callers multiply by e last (e alone is below FLT_MIN before e f x is).
[[gnu::always_inline]] inline Vec<float> erfc_factor(Vec<float> u, Vec<float> hi, Vec<float> lo, Vec<float>& e) {
  using V = Vec<float>;
  const V ex = vexp(-hi);          // 0 once hi > 87.3 (below FLT_MIN)
  e = fnmadd(ex, lo, ex);          // exp(-hi - lo) = exp(-hi) (1 - lo), |lo| <= ulp(hi)/2
  const V t = V::set1(2.0f) / (V::set1(2.0f) + u);
  V q = V::set1(0.0138518587f);
  q = fmadd(q, t, V::set1(-0.131615594f));
  q = fmadd(q, t, V::set1(0.448171943f));
  q = fmadd(q, t, V::set1(-0.695047796f));
  q = fmadd(q, t, V::set1(0.441481233f));
  q = fmadd(q, t, V::set1(-0.10879273f));
  q = fmadd(q, t, V::set1(0.22901769f));
  q = fmadd(q, t, V::set1(0.237934947f));
  q = fmadd(q, t, V::set1(0.282937825f));
  q = fmadd(q, t, V::set1(0.282060593f));
  return t * q;
}

// erf(a) for |a| <= 1 given s = a^2: a (c0 + s R(s)), c0 = 2/sqrt(pi) split in two
// floats so that tiny a keep their last bit (R degree 5, relative fit error 1.4e-9).
[[gnu::always_inline]] inline Vec<float> erf_small(Vec<float> a, Vec<float> s) {
  using V = Vec<float>;
  V r = V::set1(7.8980338e-05f);
  r = fmadd(r, s, V::set1(-0.000802463852f));
  r = fmadd(r, s, V::set1(0.00519014429f));
  r = fmadd(r, s, V::set1(-0.0268549081f));
  r = fmadd(r, s, V::set1(0.112836175f));
  r = fmadd(r, s, V::set1(-0.376126289f));
  return fmadd(a, V::set1(1.12837923f), a * fmadd(r, s, V::set1(-5.86353834e-08f)));
}

// erf(x): |x| < 1: erf_small; else sign(x) (1 - erfc(|x|)). erf(+-0) = +-0, NaN gives NaN,
// erf(+-inf) = +-1.
[[gnu::always_inline]] inline Vec<float> verf(Vec<float> x) {
  using V = Vec<float>;
  const V ax = abs(x);
  const V a = min(ax, V::set1(9.5f));  // NaN -> 9.5 (min returns its 2nd operand); restored below
  const V hi = a * a;
  V e;
  const V f = erfc_factor(a, hi, square_rounding_error(a, hi), e);
  const V y = select(lt(a, V::set1(1.0f)), erf_small(a, hi), fnmadd(f, e, V::set1(1.0f)));
  return select(gt(ax, V::zero()), select(lt(x, V::zero()), -y, y), x);
}

// Phi(x) = erfc(-x/sqrt2)/2, the standard normal CDF, as Phi(x) = g c with c = 1 or
// c = e = exp(-x^2/2) (phi(x) = e/sqrt(2 pi)): the caller multiplies by c last, so that
// x Phi(x) stays exact down to FLT_MIN (c alone underflows first). |x| < sqrt2/2:
// 1/2 + erf(x/sqrt2)/2 (no cancellation there), c = 1; else erfc from x^2/2 split exactly
// (x^2 by FMA, halved), not rounded through u = |x|/sqrt2 (an error of 2u^2 eps in the
// tail): x < 0: g = f/2, c = e; x > 0: g = 1 - e f/2, c = 1. |x| is clamped to 13.4
// (Phi(-13.4) < FLT_MIN); NaN gives a number here (callers propagate x's NaN).
[[gnu::always_inline]] inline Vec<float> normal_cdf(Vec<float> x, Vec<float>& e, Vec<float>& c) {
  using V = Vec<float>;
  const V half = V::set1(0.5f), one = V::set1(1.0f);
  const V a = min(abs(x), V::set1(13.4f));
  const V sq = a * a;
  const V hi = sq * half, lo = square_rounding_error(a, sq) * half;  // exact halvings
  const V u = x * V::set1(0.707106781186547524f);
  const V f = half * erfc_factor(abs(u), hi, lo, e);
  const auto small = lt(a, V::set1(0.70710678f));
  const auto neg = lt(x, V::zero());
  c = select(small, one, select(neg, e, one));
  const V mid = fmadd(half, erf_small(u, u * u), half);
  return select(small, mid, select(neg, f, fnmadd(f, e, one)));
}

// ---- double: lane-wise libm --------------------------------------------------

inline Vec<double> verf(Vec<double> x) { return map_lanes(x, [](double v) { return std::erf(v); }); }

}  // namespace FASTNN_ISA_NS
}  // namespace fastnn
