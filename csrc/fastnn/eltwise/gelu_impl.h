// gelu over Vec<T> (included by act_impl.h, per ISA), as Keras 3's
// keras.activations.gelu(x, approximate):
//   exact (alpha = 0)        gelu(x) = x Phi(x) = 0.5 x (1 + erf(x/sqrt2))
//                            gelu'(x) = Phi(x) + x phi(x),  phi(x) = exp(-x^2/2)/sqrt(2 pi)
//   approximate (alpha = 1)  gelu(x) = 0.5 x (1 + tanh(v)),  v = sqrt(2/pi) (x + 0.044715 x^3)
//                                    = x sigmoid(2v)  (the same function, without the
//                                      cancellation of 1 + tanh(v) for v < 0)
//                            gelu'(x) = s + x s (1 - s) 2v',  s = sigmoid(2v),
//                                       v' = sqrt(2/pi) (1 + 3 0.044715 x^2)
// The registry's alpha of gelu is the approximate flag: 0 or 1, nothing else
// (check_activation_alpha refuses the rest before any kernel runs).
// gelu(-inf) = -0 and gelu'(+-inf) = 1 or 0 (the limits, not inf * 0); NaN gives NaN.
#pragma once
#include <cmath>
#include <limits>
#include <type_traits>

#include "fastnn/simd/vecmath_erf_impl.h"

namespace fastnn {
namespace FASTNN_ISA_NS {

constexpr double kGeluTanhCoef = 0.044715;
constexpr double kSqrt2OverPi = 0.79788456080286535587989211986876;   // sqrt(2/pi)
constexpr double kInvSqrt2Pi = 0.39894228040143267793994605993438;    // 1/sqrt(2 pi)

// x with +-inf replaced by +-max (NaN kept: max/min return their 2nd operand on NaN), so
// that x * 0 is 0 where the factor underflowed.
template <class T>
[[gnu::always_inline]] inline Vec<T> finite_or_max(Vec<T> x) {
  const Vec<T> big = Vec<T>::set1(std::numeric_limits<T>::max());
  return min(big, max(-big, x));
}

// sigmoid(2v) = scale / den, 2v = 2 sqrt(2/pi) x (1 + 0.044715 x^2) with x clamped to
// +-1e4 into xc: den = scale (1 + exp(-2v)), scale = 1, or 1/4 where exp(-2v) > e^80, so
// that den stays finite as long as x / (1 + exp(-2v)) can be >= FLT_MIN (x ~ -10: exp(-2v)
// up to 2^129.4); beyond (-2v > 89.7) den is +inf: gelu = x scale / den = -0. As vsigmoid,
// exp_reduced of -2v clamped to [-18, 89.7]. gelu = x scale / den, not x * sigmoid: the
// sigmoid is below FLT_MIN before x times it is.
template <class T>
[[gnu::always_inline]] inline Vec<T> gelu_tanh_den(Vec<T> x, Vec<T>& xc, Vec<T>& scale) {
  using V = Vec<T>;
  xc = min(V::set1(T(1e4)), max(V::set1(T(-1e4)), x));
  const V w = xc * V::set1(T(2 * kSqrt2OverPi)) * fmadd(xc * xc, V::set1(T(kGeluTanhCoef)), V::set1(T(1)));
  if constexpr (std::is_same_v<T, float>) {
    const V mw = -w;
    V n;
    const V p = exp_reduced(min(max(mw, V::set1(-18.0f)), V::set1(89.7f)), n);
    const V k = select(gt(mw, V::set1(80.0f)), V::set1(-2.0f), V::zero());
    scale = pow2n(k);
    const V den = fmadd(p, pow2n(n + k), scale);
    return select(gt(mw, V::set1(89.7f)), V::set1(std::numeric_limits<float>::infinity()), den);
  } else {
    scale = V::set1(1.0);
    return V::set1(1.0) + vexp(-w);
  }
}

[[gnu::always_inline]] inline Vec<float> gelu_forward(Vec<float> x, bool approximate) {
  using V = Vec<float>;
  const V xm = max(V::set1(-std::numeric_limits<float>::max()), x);  // -inf -> -max (x * 0 = -0), NaN kept
  V unused, c;
  if (approximate) {
    V scale;
    const V den = gelu_tanh_den(x, unused, scale);
    return select(is_nan(x), x, (xm * scale) / den);
  }
  return (xm * normal_cdf(x, unused, c)) * c;  // x Phi(x), the small factor last
}

[[gnu::always_inline]] inline Vec<float> gelu_derivative(Vec<float> x, bool approximate) {
  using V = Vec<float>;
  const V one = V::set1(1.0f);
  if (approximate) {
    V xc, scale;
    const V den = gelu_tanh_den(x, xc, scale);
    const V s = scale / den;
    const V dw = V::set1(float(2 * kSqrt2OverPi)) * fmadd(xc * xc, V::set1(float(3 * kGeluTanhCoef)), one);
    return fmadd(xc * s * (one - s), dw, s);
  }
  V e, c;
  const V cdf = normal_cdf(x, e, c) * c;
  return fmadd(finite_or_max(x) * V::set1(float(kInvSqrt2Pi)), e, cdf);
}

// double: lane-wise libm, Phi(x) = erfc(-x/sqrt2)/2 (accurate in both tails).
// sigmoid(2v) of the tanh form at xc (clamped to +-1e4), without overflow of exp.
inline double gelu_tanh_sigmoid(double xc) {
  const double w = 2 * kSqrt2OverPi * xc * (1 + kGeluTanhCoef * xc * xc);
  return w >= 0 ? 1 / (1 + std::exp(-w)) : std::exp(w) / (1 + std::exp(w));
}

inline double gelu_scalar(double x, bool approximate) {
  const double big = std::numeric_limits<double>::max();
  const double xm = x < -big ? -big : x;  // gelu(-inf) = -0
  if (approximate) {
    return xm * gelu_tanh_sigmoid(std::fmin(std::fmax(x, -1e4), 1e4));
  }
  return xm * 0.5 * std::erfc(-x * 0.70710678118654752440);
}

inline double gelu_derivative_scalar(double x, bool approximate) {
  if (std::isnan(x)) return x;
  const double xc = std::fmin(std::fmax(x, -1e4), 1e4);  // +-inf: the limits 1 and 0
  if (approximate) {
    const double s = gelu_tanh_sigmoid(xc);
    return s + xc * s * (1 - s) * 2 * kSqrt2OverPi * (1 + 3 * kGeluTanhCoef * xc * xc);
  }
  return 0.5 * std::erfc(-xc * 0.70710678118654752440) + xc * std::exp(-0.5 * xc * xc) * kInvSqrt2Pi;
}

inline Vec<double> gelu_forward(Vec<double> x, bool approximate) {
  return map_lanes(x, [approximate](double v) { return gelu_scalar(v, approximate); });
}
inline Vec<double> gelu_derivative(Vec<double> x, bool approximate) {
  return map_lanes(x, [approximate](double v) { return gelu_derivative_scalar(v, approximate); });
}

}  // namespace FASTNN_ISA_NS
}  // namespace fastnn
