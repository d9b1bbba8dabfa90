// Keras 3's shrink activations over Vec<T> (included by act_impl.h, per ISA), as
// keras.activations defines them (JAX backend); t is the activation's alpha (Keras's
// threshold, any real number):
//   tanh_shrink(x)    = x - tanh(x)                                 d = tanh(x)^2 (from x)
//   hard_shrink(x, t) = x where |x| > t, else 0                     d = 1 where |x| > t, else 0
//   soft_shrink(x, t) = x - t where x > t, x + t where x < -t, else 0
//                                                                   d = 1 where x > t or x < -t, else 0
// The shrinks' gradient follows the forward's strict inequalities: 0 at |x| = t. From y:
// soft_shrink's y is 0 exactly where its d is 0 (x - t != 0 for x > t, in IEEE arithmetic),
// hard_shrink's too when t >= 0 (for t < 0 it is the identity: d = 1 everywhere). NaN gives
// NaN (Keras's where() gives 0 there: NaN > t is false); +-inf gives +-inf, d = 1.
//
// tanh_shrink cancels near 0 (x - tanh x = x^3/3 - 2x^5/15 + ...). With a = |x|, u = a^2:
//   a <  1.25: a^3 (1/3 + u Q(u)), Q fitted by tools/fit_tanh_shrink.py (float: degree 9,
//              float64: degree 19; the fit's error <= 0.32 (float) / 0.27 (float64) of half
//              an ulp of the result). 1/3 is split in two numbers, and a^3 carries its rounding
//              error (exact with fused multiply-adds; the scalar path's fmadd is not fused and
//              the corrections are 0 there, a few tenths of an ulp more);
//   a >= 1.25: (a - 1) + 2 / (exp(2a) + 1), a sum of two positive terms (no cancellation;
//              exp(2a) = inf above ~44 (float) gives a - 1);
// then the sign of x (tanh_shrink(-0) = +0, as x - tanh(x)). Measured float32 error:
// tests/test_acts_shrink.py.
#pragma once

namespace fastnn {
namespace FASTNN_ISA_NS {

constexpr bool is_shrink_act(Act a) {
  return a == Act::tanh_shrink || a == Act::hard_shrink || a == Act::soft_shrink;
}

template <class T, int K>
[[gnu::always_inline]] inline Vec<T> horner(Vec<T> u, const T (&c)[K]) {
  Vec<T> p = Vec<T>::set1(c[K - 1]);
  for (int k = K - 2; k >= 0; --k) p = fmadd(p, u, Vec<T>::set1(c[k]));
  return p;
}

// Q(u) of the header (constant term first).
template <class T>
[[gnu::always_inline]] inline Vec<T> tanh_shrink_q(Vec<T> u) {
  if constexpr (sizeof(T) == 4) {
    static constexpr float c[] = {
        -0.13333332538604736f, 0.05396805703639984f, -0.021867331117391586f, 0.008851268328726292f,
        -0.003553276415914297f, 0.0013756408588960767f, -0.00047945676487870514f, 0.00013375593698583543f,
        -2.5100891434703954e-05f, 2.2786443878430873e-06f};
    return horner(u, c);
  } else {
    static constexpr double c[] = {
        -0.13333333333333333, 0.053968253968253894, -0.021869488536148948, 0.008863235529689288,
        -0.0035921280327259057, 0.001455834344420006, -0.0005900271249597358, 0.0002391274567941973,
        -9.690898181250651e-05, 3.925963524620867e-05, -1.587674029209472e-05, 6.377099287940119e-06,
        -2.5101394561458526e-06, 9.423061406138856e-07, -3.2322384511290714e-07, 9.577443373341681e-08,
        -2.2908638807237765e-08, 4.058087866208194e-09, -4.659958182219769e-10, 2.5756438608635665e-11};
    return horner(u, c);
  }
}

// 1/3 = kThirdHi + kThirdLo (kThirdLo: the next 24 / 53 bits)
template <class T> constexpr T kThirdHi = sizeof(T) == 4 ? T(0.3333333432674408) : T(0.3333333333333333);
template <class T> constexpr T kThirdLo = sizeof(T) == 4 ? T(-9.934107758624577e-09) : T(1.850371707708594e-17);
template <class T> constexpr T kTanhShrinkSplit = T(1.25);

template <class T>
[[gnu::always_inline]] inline Vec<T> tanh_shrink_vec(Vec<T> x) {
  using V = Vec<T>;
  const V one = V::set1(T(1)), a = abs(x);
  // small: a^3 (1/3 + u Q(u)); u = a^2 + ue and a^3 = a3 + a3e exactly (up to a3e's own rounding)
  const V u = a * a;
  const V ue = fmadd(a, a, -u);
  const V a3 = a * u;
  const V a3e = fmadd(a, u, -a3) + a * ue;
  const V rest = fmadd(u, tanh_shrink_q(u), V::set1(kThirdLo<T>));  // 1/3 + u Q - kThirdHi
  const V p = V::set1(kThirdHi<T>) + rest;
  const V small = fmadd(a3, V::set1(kThirdHi<T>), fmadd(a3, rest, a3e * p));
  // large: (a - 1) + (1 - tanh a); NaN stays NaN here
  const V big = (a - one) + V::set1(T(2)) / (vexp(a + a) + one);
  const V r = select(lt(a, V::set1(kTanhShrinkSplit<T>)), small, big);
  return select(lt(x, V::zero()), -r, r);
}

template <Act A, class T>
inline Vec<T> shrink_act_forward(Vec<T> x, T alpha) {
  using V = Vec<T>;
  const V zero = V::zero(), t = V::set1(alpha);
  const V nan_or_zero = select(is_nan(x), x, zero);
  (void)t, (void)nan_or_zero;
  if constexpr (A == Act::tanh_shrink) return tanh_shrink_vec(x);
  if constexpr (A == Act::hard_shrink) return select(gt(abs(x), t), x, nan_or_zero);
  if constexpr (A == Act::soft_shrink) return select(gt(x, t), x - t, select(lt(x, -t), x + t, nan_or_zero));
}

// act'(.) for one vector; y is used only when have_y (hard_shrink and soft_shrink).
template <Act A, bool have_y, class T>
inline Vec<T> shrink_act_derivative(Vec<T> x, Vec<T> y, T alpha) {
  using V = Vec<T>;
  const V zero = V::zero(), one = V::set1(T(1)), t = V::set1(alpha);
  (void)y, (void)t;
  if constexpr (A == Act::tanh_shrink) {
    const V th = vtanh(x);
    return th * th;
  }
  if constexpr (A == Act::hard_shrink || A == Act::soft_shrink) {
    if constexpr (have_y) {
      // y == 0 exactly where d = 0, except hard_shrink with t < 0 (the identity)
      const V at_zero = A == Act::hard_shrink && alpha < T(0) ? one : zero;
      return select(is_nan(y), y, select(eq(y, zero), at_zero, one));
    } else {
      const V nan_or_zero = select(is_nan(x), x, zero);
      if constexpr (A == Act::hard_shrink) return select(gt(abs(x), t), one, nan_or_zero);
      else return select(gt(x, t), one, select(lt(x, -t), one, nan_or_zero));
    }
  }
}

}  // namespace FASTNN_ISA_NS
}  // namespace fastnn
