// Vector exp, expm1, log1p, sigmoid and tanh over Vec<T>, written once and
// compiled per ISA: include after the ISA's vec_*.h with FASTNN_ISA_NS defined.
//
// float: our own polynomials, tested max error (tests/test_activations.py):
//   exp          range reduction x = n ln2 + r, |r| <= ln2/2, Taylor degree 7:  <= 2 ulp
//   expm1        |x| < 0.5: Taylor degree 8; else exp(x) - 1:                    <= 2 ulp
//   log1p_unit   t in [0, 1]: log(1+t) = e ln2 + 2 atanh(s), s without cancellation: <= 2 ulp
//   tanh         one expm1 and one division, branch-free (see vtanh):             <= 2 ulp
//                (1.93 ulp max over all 2^32 float32 inputs, every ISA: bench/act_exhaustive.py)
//   sigmoid      1/(1+exp(-x)), exp as above without its special cases:          <= 3 ulp
// Results below FLT_MIN are flushed to 0; exp overflows to +inf above
// ln(FLT_MAX); NaN in gives NaN out.
// double: lane-wise libm (correctly rounded to ~1 ulp); float64 serves gradient
// checks and parity tests, where accuracy matters more than speed.
#pragma once
#include <cmath>
#include <limits>

#ifndef FASTNN_ISA_NS
#error "define FASTNN_ISA_NS before including vecmath_impl.h"
#endif

namespace fastnn {
namespace FASTNN_ISA_NS {

template <class T, class F>
inline Vec<T> map_lanes(Vec<T> x, F f) {
  alignas(64) T buf[Vec<T>::N];
  x.store(buf);
  for (int i = 0; i < Vec<T>::N; ++i) buf[i] = f(buf[i]);
  return Vec<T>::load(buf);
}

// ---- float ---------------------------------------------------------------

// exp(x) = 2^n p for finite x: n = round(x / ln2), p = exp(x - n ln2) by Taylor degree 7.
[[gnu::always_inline]] inline Vec<float> exp_reduced(Vec<float> x, Vec<float>& n) {
  using V = Vec<float>;
  n = round_even(x * V::set1(1.44269504088896341f));
  V r = fnmadd(n, V::set1(0.693359375f), x);  // ln2 split: hi part exact in 9 bits
  r = fnmadd(n, V::set1(-2.12194440e-4f), r);
  V p = V::set1(1.0f / 5040.0f);
  p = fmadd(p, r, V::set1(1.0f / 720.0f));
  p = fmadd(p, r, V::set1(1.0f / 120.0f));
  p = fmadd(p, r, V::set1(1.0f / 24.0f));
  p = fmadd(p, r, V::set1(1.0f / 6.0f));
  p = fmadd(p, r, V::set1(0.5f));
  p = fmadd(p, r, V::set1(1.0f));
  return fmadd(p, r, V::set1(1.0f));
}

[[gnu::always_inline]] inline Vec<float> vexp(Vec<float> x) {
  using V = Vec<float>;
  const V hi = V::set1(88.72283935546875f), lo = V::set1(-87.33654022216797f);
  const V xc = min(max(x, lo), hi);
  V n;
  const V p = exp_reduced(xc, n);
  // n may reach 128 at the top of the range: scale in two steps there.
  const V n127 = min(n, V::set1(127.0f));
  V y = p * pow2n(n127);
  y = select(gt(n, n127), y * V::set1(2.0f), y);
  y = select(gt(x, hi), V::set1(std::numeric_limits<float>::infinity()), y);
  y = select(lt(x, lo), V::zero(), y);
  return select(is_nan(x), x, y);
}

[[gnu::always_inline]] inline Vec<float> vexpm1(Vec<float> x) {
  using V = Vec<float>;
  V p = V::set1(1.0f / 40320.0f);
  p = fmadd(p, x, V::set1(1.0f / 5040.0f));
  p = fmadd(p, x, V::set1(1.0f / 720.0f));
  p = fmadd(p, x, V::set1(1.0f / 120.0f));
  p = fmadd(p, x, V::set1(1.0f / 24.0f));
  p = fmadd(p, x, V::set1(1.0f / 6.0f));
  p = fmadd(p, x, V::set1(0.5f));
  const V small = fmadd(p * x, x, x);
  const V big = vexp(x) - V::set1(1.0f);
  return select(lt(abs(x), V::set1(0.5f)), small, big);
}

// log(1 + t) for t in [0, 1] (what softplus needs: t = exp(-|x|)).
// log(1+t) = e ln2 + 2 atanh(s) with 1+t = m 2^e, m in [1/sqrt2, sqrt2), s = (m-1)/(m+1),
// which is s = t/(t+2) (e = 0) or s = (t-1)/(t+3) (e = 1): no cancellation, |s| <= 0.1716.
[[gnu::always_inline]] inline Vec<float> vlog1p_unit(Vec<float> t) {
  using V = Vec<float>;
  const V one = V::set1(1.0f);
  const auto big = gt(t, V::set1(0.41421356f));
  const V s = select(big, (t - one) / (t + V::set1(3.0f)), t / (t + V::set1(2.0f)));
  const V e = select(big, one, V::zero());
  const V s2 = s * s;
  V p = V::set1(1.0f / 9.0f);
  p = fmadd(p, s2, V::set1(1.0f / 7.0f));
  p = fmadd(p, s2, V::set1(1.0f / 5.0f));
  p = fmadd(p, s2, V::set1(1.0f / 3.0f));
  p = fmadd(p, s2, one);
  return fmadd(e, V::set1(0.693147180559945f), V::set1(2.0f) * s * p);
}

// 1/(1 + exp(-x)) by exp_reduced without vexp's special cases: -x is clamped to
// [-18, 88.9] (beyond: the result rounds to 1, or is below FLT_MIN), where n <= 128 and
// 2^128 builds +inf (exponent field 255), so the result is 0 from x = -88.38 down.
[[gnu::always_inline]] inline Vec<float> vsigmoid(Vec<float> x) {
  using V = Vec<float>;
  const V one = V::set1(1.0f);
  const V u = min(max(-x, V::set1(-18.0f)), V::set1(88.9f));  // NaN -> -18 (2nd operand); restored below
  V n;
  const V p = exp_reduced(u, n);
  const V y = one / fmadd(p, pow2n(n), one);
  return select(is_nan(x), x, y);
}

// tanh from one expm1, e = expm1(z) = 2^n (1 + q) - 1 with z = n ln2 + r, |r| <= ln2/2,
// q = expm1(r) (degree-6 minimax, tools/fit_tanh_expm1.py; ln2 in one float: |n| <= 27),
// and one division:
//   |x| <  0.5625: z = -2|x|, tanh|x| = -e/(e + 2)   (e in (-1, 0]: no cancellation)
//   |x| >= 0.5625: z = +2|x|, tanh|x| = 1 - 2/(e + 2)
// -e and e + 2 are each one rounding of t q + (1 -+ t), t = 2^n exact (|n| <= 1 below
// the split, so 1 - t is exact there). |x| is clamped to 9.1, where e + 2 rounds to
// e and the result is exactly 1. Measured over all 2^32 floats: <= 2 ulp (see the header).
[[gnu::always_inline]] inline Vec<float> vtanh(Vec<float> x) {
  using V = Vec<float>;
  const V one = V::set1(1.0f);
  const V ax = abs(x);
  const V a = min(ax, V::set1(9.1f));  // NaN -> 9.1 (min returns its 2nd operand); restored below
  const auto small = lt(a, V::set1(0.5625f));
  const V z = select(small, -(a + a), a + a);
  const V n = round_even(z * V::set1(1.44269504088896341f));
  const V r = fnmadd(n, V::set1(0.693147182464599609375f), z);  // float(ln2): |n| ln2 error <= 5e-8
  V p = V::set1(1.38824712485075e-3f);
  p = fmadd(p, r, V::set1(8.36650189012289e-3f));
  p = fmadd(p, r, V::set1(4.166720062494278e-2f));
  p = fmadd(p, r, V::set1(0.1666654348373413f));
  p = fmadd(p, r, V::set1(0.4999999701976776f));
  const V q = fmadd(r * r, p, r);  // expm1(r)
  const V t = pow2n(n);
  const V den = fmadd(t, q, t + one);                            // e + 2
  const V num = select(small, fnmadd(t, q, one - t), V::set1(-2.0f));  // -e or -2
  const V y = select(small, V::zero(), one) + num / den;
  // x itself where it is NaN or +-0 (tanh(-0) = -0)
  return select(gt(ax, V::zero()), select(lt(x, V::zero()), -y, y), x);
}

// ---- double: lane-wise libm --------------------------------------------------

inline Vec<double> vexp(Vec<double> x) { return map_lanes(x, [](double v) { return std::exp(v); }); }
inline Vec<double> vexpm1(Vec<double> x) { return map_lanes(x, [](double v) { return std::expm1(v); }); }
inline Vec<double> vlog1p_unit(Vec<double> t) { return map_lanes(t, [](double v) { return std::log1p(v); }); }
inline Vec<double> vtanh(Vec<double> x) { return map_lanes(x, [](double v) { return std::tanh(v); }); }
inline Vec<double> vsigmoid(Vec<double> x) {
  return map_lanes(x, [](double v) {
    // stable on both sides
    if (v >= 0) return 1.0 / (1.0 + std::exp(-v));
    const double e = std::exp(v);
    return e / (1.0 + e);
  });
}

}  // namespace FASTNN_ISA_NS
}  // namespace fastnn
