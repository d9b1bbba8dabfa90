// Vector exp, expm1, log1p, sigmoid and tanh over Vec<T>, written once and
// compiled per ISA: include after the ISA's vec_*.h with FASTNN_ISA_NS defined.
//
// float: our own polynomials, tested max error (tests/test_activations.py):
//   exp          range reduction x = n ln2 + r, |r| <= ln2/2, Taylor degree 7:  <= 2 ulp
//   expm1        |x| < 0.5: Taylor degree 8; else exp(x) - 1:                    <= 2 ulp
//   log1p_unit   t in [0, 1]: log(1+t) = e ln2 + 2 atanh(s), s without cancellation: <= 2 ulp
//   tanh         |x| < 0.625: x + x^3 P(x^2) (tools/fit_tanh_poly.py);
//                else 1 - 2/(exp(2|x|)+1):                                      <= 3 ulp
//   sigmoid      1/(1+exp(-x)):                                                 <= 3 ulp
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

inline Vec<float> vexp(Vec<float> x) {
  using V = Vec<float>;
  const V hi = V::set1(88.72283935546875f), lo = V::set1(-87.33654022216797f);
  const V xc = min(max(x, lo), hi);
  const V n = round_even(xc * V::set1(1.44269504088896341f));
  V r = fnmadd(n, V::set1(0.693359375f), xc);  // ln2 split: hi part exact in 9 bits
  r = fnmadd(n, V::set1(-2.12194440e-4f), r);
  V p = V::set1(1.0f / 5040.0f);
  p = fmadd(p, r, V::set1(1.0f / 720.0f));
  p = fmadd(p, r, V::set1(1.0f / 120.0f));
  p = fmadd(p, r, V::set1(1.0f / 24.0f));
  p = fmadd(p, r, V::set1(1.0f / 6.0f));
  p = fmadd(p, r, V::set1(0.5f));
  p = fmadd(p, r, V::set1(1.0f));
  p = fmadd(p, r, V::set1(1.0f));
  // n may reach 128 at the top of the range: scale in two steps there.
  const V n127 = min(n, V::set1(127.0f));
  V y = p * pow2n(n127);
  y = select(gt(n, n127), y * V::set1(2.0f), y);
  y = select(gt(x, hi), V::set1(std::numeric_limits<float>::infinity()), y);
  y = select(lt(x, lo), V::zero(), y);
  return select(is_nan(x), x, y);
}

inline Vec<float> vexpm1(Vec<float> x) {
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
inline Vec<float> vlog1p_unit(Vec<float> t) {
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

inline Vec<float> vsigmoid(Vec<float> x) {
  using V = Vec<float>;
  const V one = V::set1(1.0f);
  return one / (one + vexp(-x));
}

inline Vec<float> vtanh(Vec<float> x) {
  using V = Vec<float>;
  const V a = abs(x);
  const V a2 = a * a;
  V p = V::set1(0.0021432607900351286f);
  p = fmadd(p, a2, V::set1(-0.008177720941603184f));
  p = fmadd(p, a2, V::set1(0.02170083113014698f));
  p = fmadd(p, a2, V::set1(-0.053946785628795624f));
  p = fmadd(p, a2, V::set1(0.1333320587873459f));
  p = fmadd(p, a2, V::set1(-0.3333333134651184f));
  const V small = fmadd(a * a2, p, a);
  const V one = V::set1(1.0f);
  const V big = one - V::set1(2.0f) / (vexp(a + a) + one);
  const V r = select(lt(a, V::set1(0.625f)), small, big);
  return select(lt(x, V::zero()), -r, r);
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
