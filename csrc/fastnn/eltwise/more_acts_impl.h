// Keras 3 activations beyond the classic set, over Vec<T> (included by act_impl.h,
// per ISA), as keras.activations defines them (JAX backend):
//   relu6(x)        = min(max(x, 0), 6)              d = 1 on (0, 6), else 0
//   hard_sigmoid(x) = relu6(x + 3) / 6               d = 1/6 where 0 < y < 1, else 0
//   hard_silu(x)    = x hard_sigmoid(x)              d = 0 (x <= -3), 1 (x >= 3), (2x + 3)/6
//   softsign(x)     = x / (1 + |x|)                  d = 1 / (1 + |x|)^2
//   exponential(x)  = exp(x)                         d = y
//   mish(x)         = x tanh(softplus(x))            d = t + x sigmoid(x) sech^2(softplus(x))
//   log_sigmoid(x)  = -softplus(-x)                  d = sigmoid(-x)
//   celu(x, a)      = x (x > 0), a expm1(x / a)      d = 1 (x > 0), exp(x / a) = y / a + 1
//   hard_tanh(x)    = min(max(x, -1), 1)             d = 1 on (-1, 1), else 0
//   squareplus(x, b) = (x + s) / 2, s = sqrt(x^2 + b) d = 4y^2 / (4y^2 + b)
//                    (x < 0: b / (2 (s - x)), the same number without cancellation;
//                    |x| > 1e18 (float) or 1e150 (double): s = |x|, no overflow)
//   sparse_plus(x)  = 0 (x <= -1), (x + 1)^2 / 4, x (x >= 1)    d = 0, (x + 1) / 2 = sqrt(y), 1
// The kinks have gradient 0 (relu's convention; JAX's relu6 too). NaN gives NaN; +-inf
// gives the limits (hard_silu(-inf) = 0, softsign(+-inf) = +-1, mish(-inf) = 0).
// mish: with e = exp(x), n = e (e + 2), tanh(softplus(x)) = n / (n + 2) and
// sech^2(softplus(x)) = 4 (n + 1) / (n + 2)^2, no cancellation; x is clamped to
// [-1e4, 20] (float) or [-1e4, 40] (double) inside, where t rounds to 0 or 1 and the
// second term of d is below half an ulp of 1.
#pragma once
#include <limits>

namespace fastnn {
namespace FASTNN_ISA_NS {

constexpr bool is_more_act(Act a) {
  return a == Act::relu6 || a == Act::hard_sigmoid || a == Act::hard_silu || a == Act::softsign ||
         a == Act::exponential || a == Act::mish || a == Act::log_sigmoid || a == Act::celu ||
         a == Act::hard_tanh || a == Act::squareplus || a == Act::sparse_plus;
}

// relu6(x + 3) / 6: the division as Keras (float32: the same bits as JAX's).
template <class T>
[[gnu::always_inline]] inline Vec<T> hard_sigmoid_vec(Vec<T> x) {
  using V = Vec<T>;
  return min(V::set1(T(6)), max(V::zero(), x + V::set1(T(3)))) / V::set1(T(6));  // NaN: 2nd operands
}

// (t, e, n) of mish at the clamped xc: e = exp(xc), n = e (e + 2), t = n / (n + 2).
template <class T>
[[gnu::always_inline]] inline Vec<T> mish_t(Vec<T> xc, Vec<T>& e, Vec<T>& n) {
  using V = Vec<T>;
  e = vexp(xc);
  n = e * (e + V::set1(T(2)));
  return n / (n + V::set1(T(2)));
}

// v where lo < s < hi, 0 elsewhere (the kinks included), NaN where s is NaN: the gradient of
// the clipping activations (relu6, hard_sigmoid, hard_tanh) from their input or output s.
template <class T>
[[gnu::always_inline]] inline Vec<T> inside_open(Vec<T> s, T lo, T hi, Vec<T> v) {
  const Vec<T> zero = Vec<T>::zero();
  return select(gt(s, Vec<T>::set1(lo)), select(lt(s, Vec<T>::set1(hi)), v, zero), select(is_nan(s), s, zero));
}

template <class T> constexpr T kSquareplusBig = sizeof(T) == 4 ? T(1e18) : T(1e150);

template <class T>
[[gnu::always_inline]] inline Vec<T> squareplus_vec(Vec<T> x, T b) {
  using V = Vec<T>;
  const V ax = abs(x), half = V::set1(T(0.5));
  const V s = select(gt(ax, V::set1(kSquareplusBig<T>)), ax, sqrt(fmadd(x, x, V::set1(b))));
  const V neg = V::set1(b) / ((s - x) * V::set1(T(2)));
  return select(lt(x, V::zero()), neg, x * half + s * half);  // NaN: the second
}

template <class T> constexpr T kMishTop = sizeof(T) == 4 ? T(20) : T(40);

template <Act A, class T>
inline Vec<T> more_act_forward(Vec<T> x, T alpha) {
  using V = Vec<T>;
  const V zero = V::zero(), one = V::set1(T(1));
  (void)alpha, (void)one;
  if constexpr (A == Act::relu6) return min(V::set1(T(6)), max(zero, x));
  if constexpr (A == Act::hard_sigmoid) return hard_sigmoid_vec(x);
  if constexpr (A == Act::hard_silu) return select(le(x, V::set1(T(-3))), zero, x * hard_sigmoid_vec(x));
  if constexpr (A == Act::softsign) {
    const V ax = abs(x);
    const V r = x / (one + ax);
    return select(gt(ax, V::set1(std::numeric_limits<T>::max())), select(gt(x, zero), one, -one), r);
  }
  if constexpr (A == Act::exponential) return vexp(x);
  if constexpr (A == Act::mish) {
    const V xl = max(V::set1(T(-1e4)), x);  // NaN stays (2nd operand)
    V e, n;
    const V t = mish_t(min(V::set1(kMishTop<T>), xl), e, n);
    return select(is_nan(x), x, xl * t);
  }
  if constexpr (A == Act::log_sigmoid) {
    const V r = min(zero, x) - vlog1p_unit(vexp(-abs(x)));
    return select(is_nan(x), x, r);
  }
  if constexpr (A == Act::celu) {
    const V a = V::set1(alpha);
    return select(gt(x, zero), x, a * vexpm1(x / a));
  }
  if constexpr (A == Act::hard_tanh) return min(one, max(-one, x));
  if constexpr (A == Act::squareplus) return squareplus_vec(x, alpha);
  if constexpr (A == Act::sparse_plus) {
    const V u = x + one;
    return select(le(x, -one), zero, select(ge(x, one), x, u * u * V::set1(T(0.25))));
  }
}

// act'(.) for one vector; y is used only when have_y (and the registry allows it).
template <Act A, bool have_y, class T>
inline Vec<T> more_act_derivative(Vec<T> x, Vec<T> y, T alpha) {
  using V = Vec<T>;
  const V zero = V::zero(), one = V::set1(T(1));
  const V s = have_y ? y : x;
  (void)alpha, (void)s;
  if constexpr (A == Act::relu6) return inside_open(s, T(0), T(6), one);
  if constexpr (A == Act::hard_sigmoid) {
    const V h = have_y ? y : hard_sigmoid_vec(x);  // the same test from x or y: 0 < y < 1
    return inside_open(h, T(0), T(1), V::set1(T(1.0 / 6.0)));
  }
  if constexpr (A == Act::hard_silu) {
    const V mid = (x + x + V::set1(T(3))) / V::set1(T(6));  // NaN stays
    return select(le(x, V::set1(T(-3))), zero, select(ge(x, V::set1(T(3))), one, mid));
  }
  if constexpr (A == Act::softsign) {
    const V r = one / (one + abs(x));
    return r * r;
  }
  if constexpr (A == Act::exponential) {
    if constexpr (have_y) return y; else return vexp(x);
  }
  if constexpr (A == Act::mish) {
    const V xc = min(V::set1(kMishTop<T>), max(V::set1(T(-1e4)), x));
    V e, n;
    const V t = mish_t(xc, e, n);
    const V n2 = n + V::set1(T(2));
    const V sech2 = V::set1(T(4)) * (n + one) / (n2 * n2);
    const V d = t + xc * (e / (one + e)) * sech2;
    return select(is_nan(x), x, d);
  }
  if constexpr (A == Act::log_sigmoid) return vsigmoid(-x);
  if constexpr (A == Act::celu) {
    const V a = V::set1(alpha);
    V d;
    if constexpr (have_y) d = y / a + one; else d = vexp(x / a);
    return select(gt(s, zero), one, select(is_nan(s), s, d));
  }
  if constexpr (A == Act::hard_tanh) return inside_open(s, T(-1), T(1), one);
  if constexpr (A == Act::squareplus) {
    const V h = min(V::set1(kSquareplusBig<T>), have_y ? y : squareplus_vec(x, alpha));  // NaN stays
    const V h2 = V::set1(T(4)) * h * h;
    return h2 / (h2 + V::set1(alpha));
  }
  if constexpr (A == Act::sparse_plus) {
    if constexpr (have_y) return select(lt(y, one), sqrt(y), select(is_nan(y), y, one));  // y < 0 never
    else return select(le(x, -one), zero, select(ge(x, one), one, (x + one) * V::set1(T(0.5))));
  }
}

}  // namespace FASTNN_ISA_NS
}  // namespace fastnn
