// Per-ISA optimizer kernels: one fused pass, every array read and written once.
// Included once by optim_{scalar,avx2,avx512}.cpp after the ISA's Vec header.
#pragma once
#include <cstddef>

#include "fastnn/optim/optim.h"

namespace fastnn {
namespace FASTNN_ISA_NS {

// Runs body(i, count) over [0, n) in full vectors, then once on the tail
// (count < N lanes) so the tail uses the same arithmetic as the body.
template <class V, class Body>
inline void for_each_vec(std::size_t n, Body&& body) {
  constexpr std::size_t N = V::N;
  std::size_t i = 0;
  for (; i + N <= n; i += N) body(i, static_cast<int>(N));
  if (i < n) body(i, static_cast<int>(n - i));
}

template <class V, class T> inline V load_n(const T* p, int cnt) {
  return cnt == V::N ? V::load(p) : V::load_partial(p, cnt);
}
template <class V, class T> inline void store_n(V x, T* p, int cnt) {
  if (cnt == V::N) x.store(p); else x.store_partial(p, cnt);
}

// The loop every optimizer shares: for each vector of param and grad, g gets L2
// weight decay folded in (g + wd*p) when l2 is set, then p = update(p, g, i, count)
// (which also updates the optimizer's state at i). l2 is taken by reference: the
// compiler then tests it inside the loop instead of compiling the loop twice.
template <class V, class T, class Update>
inline void update_params(T* param, const T* grad, std::size_t n, const bool& l2, V wd, Update&& update) {
  for_each_vec<V>(n, [&](std::size_t i, int k) {
    const V p = load_n<V>(param + i, k);
    V g = load_n<V>(grad + i, k);
    if (l2) g = fmadd(wd, p, g);
    store_n(update(p, g, i, k), param + i, k);
  });
}

template <class T>
void sgd_kernel(T* param, const T* grad, T* vel, std::size_t n, const SgdCoeffs<T>& c) {
  using V = Vec<T>;
  const V lr = V::set1(c.lr), mu = V::set1(c.mu);
  update_params(param, grad, n, c.decay, V::set1(c.wd), [&](V p, V g, std::size_t i, int k) {
    if (!c.momentum) return fnmadd(lr, g, p);                // p - lr*g
    const V v = fnmadd(lr, g, mu * load_n<V>(vel + i, k));  // mu*v - lr*g
    store_n(v, vel + i, k);
    return c.nesterov ? p + fnmadd(lr, g, mu * v) : p + v;
  });
}

// Mom: Keras's momentum buffer (mom = mu*mom + inc, p -= mom); Centered: the mean gradient
// mg, the denominator sqrt(max(s - mg^2, 0)) + eps (rounding cannot make it NaN).
template <class T, bool Mom, bool Centered>
void rmsprop_loop(T* param, const T* grad, T* sq, T* mom, T* mg, std::size_t n, const RmspropCoeffs<T>& c) {
  using V = Vec<T>;
  const V lr = V::set1(c.lr), rho = V::set1(c.rho), omr = V::set1(c.one_minus_rho), eps = V::set1(c.eps);
  const V mu = V::set1(c.mu), zero = V::set1(T(0));
  update_params(param, grad, n, c.decay, V::set1(c.wd), [&](V p, V g, std::size_t i, int k) {
    const V s = fmadd(rho, load_n<V>(sq + i, k), omr * g * g);  // rho*s + (1-rho)*g^2
    store_n(s, sq + i, k);
    V root = sqrt(s);
    if (Centered) {
      const V a = fmadd(rho, load_n<V>(mg + i, k), omr * g);   // rho*mg + (1-rho)*g
      store_n(a, mg + i, k);
      root = sqrt(max(zero, fnmadd(a, a, s)));                 // sqrt(max(s - mg^2, 0)), NaN kept
    }
    const V inc = lr * g / (root + eps);
    if (!Mom) return p - inc;
    const V b = fmadd(mu, load_n<V>(mom + i, k), inc);         // mu*mom + inc
    store_n(b, mom + i, k);
    return p - b;
  });
}

template <class T>
void rmsprop_kernel(T* param, const T* grad, T* sq, T* mom, T* mg, std::size_t n, const RmspropCoeffs<T>& c) {
  if (mom && mg) rmsprop_loop<T, true, true>(param, grad, sq, mom, mg, n, c);
  else if (mom) rmsprop_loop<T, true, false>(param, grad, sq, mom, mg, n, c);
  else if (mg) rmsprop_loop<T, false, true>(param, grad, sq, mom, mg, n, c);
  else rmsprop_loop<T, false, false>(param, grad, sq, mom, mg, n, c);
}

template <class T>
void adagrad_kernel(T* param, const T* grad, T* acc, std::size_t n, const AdagradCoeffs<T>& c) {
  using V = Vec<T>;
  const V lr = V::set1(c.lr), eps = V::set1(c.eps);
  update_params(param, grad, n, c.decay, V::set1(c.wd), [&](V p, V g, std::size_t i, int k) {
    const V a = fmadd(g, g, load_n<V>(acc + i, k));  // acc + g^2
    store_n(a, acc + i, k);
    return p - lr * g / (sqrt(a) + eps);
  });
}

// L2: Adam's weight decay added to the gradient; Decoupled: AdamW's, applied to p.
// Ams (AMSGrad): vmax = max(vmax, v) and sqrt(vmax) in the denominator (as PyTorch, Keras).
template <class T, bool L2, bool Decoupled, bool Ams>
void adam_loop(T* param, const T* grad, T* mp, T* vp, T* vmaxp, std::size_t n, const AdamCoeffs<T>& c) {
  static_assert(!(L2 && Decoupled), "one kind of weight decay");
  using V = Vec<T>;
  const V step_size = V::set1(c.step_size), inv_sqrt_bc2 = V::set1(c.inv_sqrt_bc2);
  const V b1 = V::set1(c.b1), omb1 = V::set1(c.one_minus_b1);
  const V b2 = V::set1(c.b2), omb2 = V::set1(c.one_minus_b2);
  const V eps = V::set1(c.eps), decay = V::set1(c.decay_factor);
  update_params(param, grad, n, L2, V::set1(c.wd), [=](V p, V g, std::size_t i, int k) {
    if (Decoupled) p = p * decay;                                // AdamW: p *= 1 - lr*wd
    const V m = fmadd(b1, load_n<V>(mp + i, k), omb1 * g);      // b1*m + (1-b1)*g
    const V v = fmadd(b2, load_n<V>(vp + i, k), omb2 * g * g);  // b2*v + (1-b2)*g^2
    V vd = v;
    if (Ams) {
      vd = max(load_n<V>(vmaxp + i, k), v);                      // vmax = max(vmax, v)
      store_n(vd, vmaxp + i, k);
    }
    const V denom = fmadd(sqrt(vd), inv_sqrt_bc2, eps);         // sqrt(vhat) + eps
    p = p - step_size * m / denom;                               // p -= lr*mhat/denom
    store_n(m, mp + i, k);
    store_n(v, vp + i, k);
    return p;
  });
}

template <class T, bool Ams>
void adam_variant(T* param, const T* grad, T* m, T* v, T* vmax, std::size_t n, const AdamCoeffs<T>& c) {
  if (c.decoupled) adam_loop<T, false, true, Ams>(param, grad, m, v, vmax, n, c);
  else if (c.l2) adam_loop<T, true, false, Ams>(param, grad, m, v, vmax, n, c);
  else adam_loop<T, false, false, Ams>(param, grad, m, v, vmax, n, c);
}

template <class T>
void adam_kernel(T* param, const T* grad, T* m, T* v, T* vmax, std::size_t n, const AdamCoeffs<T>& c) {
  if (vmax) adam_variant<T, true>(param, grad, m, v, vmax, n, c);
  else adam_variant<T, false>(param, grad, m, v, vmax, n, c);
}

const OptimKernels optim_kernels = {
    {&sgd_kernel<float>, &rmsprop_kernel<float>, &adagrad_kernel<float>, &adam_kernel<float>},
    {&sgd_kernel<double>, &rmsprop_kernel<double>, &adagrad_kernel<double>, &adam_kernel<double>},
};

}  // namespace FASTNN_ISA_NS
}  // namespace fastnn
