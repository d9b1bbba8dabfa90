// Activation math over Vec<T>, compiled per ISA (include with FASTNN_ISA_NS
// defined, after the ISA's vec_*.h). Also used by the GEMM epilogue, which
// applies act_forward_range to a tile row while it is still in cache.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "fastnn/eltwise/eltwise.h"
#include "fastnn/simd/vecmath_impl.h"
#include "fastnn/eltwise/gelu_impl.h"
#include "fastnn/eltwise/more_acts_impl.h"
#include "fastnn/eltwise/shrink_acts_impl.h"

namespace fastnn {
namespace FASTNN_ISA_NS {

template <Act A, class T>
inline Vec<T> act_forward_vec(Vec<T> x, T alpha) {
  using V = Vec<T>;
  const V zero = V::zero();
  if constexpr (A == Act::identity) return x;
  if constexpr (A == Act::relu) return max(zero, x);  // max(0, NaN) = NaN
  if constexpr (A == Act::leaky_relu) return select(gt(x, zero), x, x * V::set1(alpha));
  if constexpr (A == Act::elu) return select(gt(x, zero), x, V::set1(alpha) * vexpm1(x));
  if constexpr (A == Act::selu) {
    const V neg = V::set1(T(kSeluScale * kSeluAlpha)) * vexpm1(x);
    return select(gt(x, zero), V::set1(T(kSeluScale)) * x, neg);
  }
  if constexpr (A == Act::sigmoid) return vsigmoid(x);
  if constexpr (A == Act::tanh) return vtanh(x);
  if constexpr (A == Act::swish) return x * vsigmoid(x);
  if constexpr (A == Act::softplus) {
    // max(x, 0) + log1p(exp(-|x|)): no overflow for large |x|
    const V r = max(zero, x) + vlog1p_unit(vexp(-abs(x)));
    return select(is_nan(x), x, r);
  }
  if constexpr (A == Act::gelu) return gelu_forward(x, alpha != T(0));  // alpha: approximate (gelu_impl.h)
  if constexpr (is_more_act(A)) return more_act_forward<A>(x, alpha);  // more_acts_impl.h
  if constexpr (is_shrink_act(A)) return shrink_act_forward<A>(x, alpha);  // shrink_acts_impl.h
}

// dL/dx for one vector; x or y may be unused (see activation_grad_needs).
template <Act A, bool have_y, class T>
inline Vec<T> act_backward_vec(Vec<T> dy, Vec<T> x, Vec<T> y, T alpha) {
  using V = Vec<T>;
  const V zero = V::zero(), one = V::set1(T(1));
  // for the piecewise ones, sign(x) == sign(y); `s` is whichever we have
  const V s = have_y ? y : x;
  (void)one;
  if constexpr (A == Act::identity) return dy;
  if constexpr (A == Act::relu) return select(gt(s, zero), dy, select(is_nan(s), s, zero));
  if constexpr (A == Act::leaky_relu) return select(gt(s, zero), dy, select(is_nan(s), s, dy * V::set1(alpha)));
  if constexpr (A == Act::elu) {
    // x <= 0: alpha * exp(x) = y + alpha
    V d;
    if constexpr (have_y) d = y + V::set1(alpha); else d = V::set1(alpha) * vexp(x);
    return select(gt(s, zero), dy, select(is_nan(s), s, dy * d));
  }
  if constexpr (A == Act::selu) {
    const V sa = V::set1(T(kSeluScale * kSeluAlpha));
    V d;
    if constexpr (have_y) d = y + sa; else d = sa * vexp(x);
    return select(gt(s, zero), dy * V::set1(T(kSeluScale)), select(is_nan(s), s, dy * d));
  }
  if constexpr (A == Act::sigmoid) {
    V sg;
    if constexpr (have_y) sg = y; else sg = vsigmoid(x);
    return dy * sg * (one - sg);
  }
  if constexpr (A == Act::tanh) {
    V t;
    if constexpr (have_y) t = y; else t = vtanh(x);
    return dy * fnmadd(t, t, one);
  }
  if constexpr (A == Act::swish) {
    const V sg = vsigmoid(x);  // d/dx x*s(x) = s * (1 + x * (1 - s))
    return dy * sg * fmadd(x, one - sg, one);
  }
  if constexpr (A == Act::softplus) return dy * vsigmoid(x);
  if constexpr (A == Act::gelu) return dy * gelu_derivative(x, alpha != T(0));
  if constexpr (is_more_act(A)) return dy * more_act_derivative<A, have_y>(x, y, alpha);
  if constexpr (is_shrink_act(A)) return dy * shrink_act_derivative<A, have_y>(x, y, alpha);
}

// Elements before y + i is aligned to a whole vector (for non-temporal stores).
template <class T>
inline std::size_t head_to_alignment(const T* y, std::size_t n) {
  constexpr std::size_t bytes = sizeof(Vec<T>);
  const std::size_t mis = reinterpret_cast<std::uintptr_t>(y) % bytes;
  if (mis == 0 || mis % sizeof(T) != 0) return mis == 0 ? 0 : n;  // unaligned element: no streaming
  return std::min(n, (bytes - mis) / sizeof(T));
}

template <bool NT, class V, class T>
inline void put(V v, T* p) {
  if constexpr (NT) v.stream(p); else v.store(p);
}

// NT: outputs larger than the last-level cache are written with non-temporal
// stores (no read-for-ownership: 2 memory streams instead of 3 for y = f(x)).
template <Act A, bool NT, class T>
inline void act_forward_loop(const T* x, T* y, std::size_t n, T alpha) {
  using V = Vec<T>;
  constexpr std::size_t N = V::N;
  std::size_t i = 0;
  if constexpr (NT) {
    const std::size_t h = head_to_alignment(y, n);
    if (h == n) return act_forward_loop<A, false>(x, y, n, alpha);
    if (h) act_forward_vec<A>(V::load_partial(x, int(h)), alpha).store_partial(y, int(h));
    i = h;
  }
  for (; i + 2 * N <= n; i += 2 * N) {  // two independent vectors in flight
    const V a = act_forward_vec<A>(V::load(x + i), alpha);
    const V b = act_forward_vec<A>(V::load(x + i + N), alpha);
    put<NT>(a, y + i);
    put<NT>(b, y + i + N);
  }
  for (; i + N <= n; i += N) put<NT>(act_forward_vec<A>(V::load(x + i), alpha), y + i);
  if (i < n) {
    const int r = static_cast<int>(n - i);
    act_forward_vec<A>(V::load_partial(x + i, r), alpha).store_partial(y + i, r);
  }
  if constexpr (NT) stream_fence();
}

template <Act A, bool have_y, bool NT, class T>
inline void act_backward_loop(const T* dy, const T* x, const T* y, T* dx, std::size_t n, T alpha) {
  using V = Vec<T>;
  constexpr std::size_t N = V::N;
  const V zero = V::zero();
  std::size_t i = 0;
  if constexpr (NT) {
    const std::size_t h = head_to_alignment(dx, n);
    if (h == n) return act_backward_loop<A, have_y, false>(dy, x, y, dx, n, alpha);
    if (h) {
      const int r = static_cast<int>(h);
      const V xv = have_y ? zero : V::load_partial(x, r);
      const V yv = have_y ? V::load_partial(y, r) : zero;
      act_backward_vec<A, have_y>(V::load_partial(dy, r), xv, yv, alpha).store_partial(dx, r);
    }
    i = h;
  }
  for (; i + N <= n; i += N) {
    const V xv = have_y ? zero : V::load(x + i);
    const V yv = have_y ? V::load(y + i) : zero;
    put<NT>(act_backward_vec<A, have_y>(V::load(dy + i), xv, yv, alpha), dx + i);
  }
  if (i < n) {
    const int r = static_cast<int>(n - i);
    const V xv = have_y ? zero : V::load_partial(x + i, r);
    const V yv = have_y ? V::load_partial(y + i, r) : zero;
    act_backward_vec<A, have_y>(V::load_partial(dy + i, r), xv, yv, alpha).store_partial(dx + i, r);
  }
  if constexpr (NT) stream_fence();
}

#define FASTNN_ACT_SWITCH(act, CALL)                   \
  switch (act) {                                       \
    case Act::identity: CALL(Act::identity); break;     \
    case Act::relu: CALL(Act::relu); break;             \
    case Act::leaky_relu: CALL(Act::leaky_relu); break; \
    case Act::elu: CALL(Act::elu); break;               \
    case Act::selu: CALL(Act::selu); break;             \
    case Act::sigmoid: CALL(Act::sigmoid); break;       \
    case Act::tanh: CALL(Act::tanh); break;             \
    case Act::swish: CALL(Act::swish); break;           \
    case Act::softplus: CALL(Act::softplus); break;     \
    case Act::gelu: CALL(Act::gelu); break;             \
    case Act::relu6: CALL(Act::relu6); break;           \
    case Act::hard_sigmoid: CALL(Act::hard_sigmoid); break; \
    case Act::hard_silu: CALL(Act::hard_silu); break;   \
    case Act::softsign: CALL(Act::softsign); break;     \
    case Act::exponential: CALL(Act::exponential); break; \
    case Act::mish: CALL(Act::mish); break;             \
    case Act::log_sigmoid: CALL(Act::log_sigmoid); break; \
    case Act::celu: CALL(Act::celu); break;             \
    case Act::hard_tanh: CALL(Act::hard_tanh); break;   \
    case Act::squareplus: CALL(Act::squareplus); break; \
    case Act::sparse_plus: CALL(Act::sparse_plus); break; \
    case Act::tanh_shrink: CALL(Act::tanh_shrink); break; \
    case Act::hard_shrink: CALL(Act::hard_shrink); break; \
    case Act::soft_shrink: CALL(Act::soft_shrink); break; \
  }

// y = act(x) over n values (y may equal x); `streaming`: non-temporal stores.
template <class T>
inline void act_forward_range(Act act, const T* x, T* y, std::size_t n, T alpha, bool streaming = false) {
#define FASTNN_CALL(A) \
  (streaming ? act_forward_loop<A, true>(x, y, n, alpha) : act_forward_loop<A, false>(x, y, n, alpha))
  FASTNN_ACT_SWITCH(act, FASTNN_CALL)
#undef FASTNN_CALL
}

// dx = dy * act'(.) using y when given (uses_y), else x.
template <class T>
inline void act_backward_range(Act act, const T* dy, const T* x, const T* y, T* dx, std::size_t n, T alpha,
                               bool streaming = false) {
  const bool use_y = y != nullptr && activation_grad_needs(act) != GradNeeds::x;
#define FASTNN_CALL(A)                                                                         \
  (use_y ? (streaming ? act_backward_loop<A, true, true>(dy, x, y, dx, n, alpha)             \
                      : act_backward_loop<A, true, false>(dy, x, y, dx, n, alpha))           \
         : (streaming ? act_backward_loop<A, false, true>(dy, x, y, dx, n, alpha)            \
                      : act_backward_loop<A, false, false>(dy, x, y, dx, n, alpha)))
  FASTNN_ACT_SWITCH(act, FASTNN_CALL)
#undef FASTNN_CALL
}

}  // namespace FASTNN_ISA_NS
}  // namespace fastnn
