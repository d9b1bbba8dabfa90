// Nadam, Adamax and Lion in the native step: python/fastnn/_optimizers_more.py's NumPy updates,
// operation by operation, each elementwise result rounded to T in NumPy's order (the scalars
// cast to T as p.dtype.type casts them; no contraction into fused multiply-adds), so the plan's
// update is bitwise the Python step's.
#include "fastnn/no_fp_contract.h"
#include "fastnn/step/np_sign.h"
#include "fastnn/step/step.h"

#include <cmath>

namespace fastnn {

namespace {

// np.maximum: NaN when either is NaN; b when equal (np.maximum(0.0, -0.0) is -0.0).
template <class T> T np_maximum(T a, T b) { return a != a ? a : b != b ? b : (a > b ? a : b); }

// Adamax._update.
template <class T> void adamax(const StepRange<T>& r, const MoreOptArgs& a, double lr, std::int64_t t) {
  const T c1 = T(1 - a.beta1), b2 = T(a.beta2), eps = T(a.eps);
  const T bc = T(1 - std::pow(a.beta1, static_cast<double>(t))), rate = T(lr);
  T *p = r.p, *m = r.s0, *u = r.s1;
  for (std::size_t i = 0; i < r.n; ++i) {
    T s = r.g[i] - m[i];
    s = s * c1;
    m[i] = m[i] + s;
    u[i] = u[i] * b2;
    u[i] = np_maximum(u[i], std::abs(r.g[i]));
    s = u[i] + eps;
    s = s * bc;
    s = m[i] / s;
    s = s * rate;
    p[i] = p[i] - s;
  }
}

// Nadam._mu.
double nadam_mu(double b1, std::int64_t t) { return b1 * (1.0 - 0.5 * std::pow(0.96, static_cast<double>(t))); }

// Nadam._product: u_1 ... u_t, continued from the cached (k, product) as Nadam does.
double nadam_product(MoreOptArgs& a, std::int64_t t) {
  if (a.u_k > t) a.u_k = 0, a.u_prod = 1.0;
  while (a.u_k < t) a.u_prod *= nadam_mu(a.beta1, ++a.u_k);
  return a.u_prod;
}

// Nadam._update, its coefficients (double, as Python computes them) given.
template <class T> void nadam(const StepRange<T>& r, const MoreOptArgs& a, const T cm, const T cg, const T vb) {
  const T c1 = T(1 - a.beta1), c2 = T(1 - a.beta2), eps = T(a.eps);
  T *p = r.p, *m = r.s0, *v = r.s1;
  for (std::size_t i = 0; i < r.n; ++i) {
    const T g = r.g[i];
    T s = g - m[i];
    s = s * c1;
    m[i] = m[i] + s;
    s = g * g;
    s = s - v[i];
    s = s * c2;
    v[i] = v[i] + s;
    s = v[i] * vb;
    s = std::sqrt(s);
    s = s + eps;
    const T x = cm * m[i], y = cg * g;
    const T num = x + y;
    p[i] = p[i] - num / s;
  }
}

// Lion._update.
template <class T> void lion(const StepRange<T>& r, const MoreOptArgs& a, double lr) {
  const T b1 = T(a.beta1), c1 = T(1 - a.beta1), b2 = T(a.beta2), c2 = T(1 - a.beta2), rate = T(lr);
  T *p = r.p, *m = r.s0;
  for (std::size_t i = 0; i < r.n; ++i) {
    const T g = r.g[i];
    T s = m[i] * b1;
    const T cg = c1 * g;
    s = s + cg;
    s = np_sign(s);
    s = s * rate;
    p[i] = p[i] - s;
    m[i] = m[i] * b2;
    const T dg = c2 * g;
    m[i] = m[i] + dg;
  }
}

}  // namespace

template <class T> void more_optimizer_step(const StepPlan<T>& plan, double lr, std::int64_t step) {
  check_lr(lr);
  MoreOptArgs& a = plan.more;
  T cm = 0, cg = 0, vb = 0;
  if (plan.optimizer == StepOptimizer::nadam) {
    const double u_t = nadam_mu(a.beta1, step), u_next = nadam_mu(a.beta1, step + 1);
    const double prod = nadam_product(a, step);
    cm = T(lr * u_next / (1.0 - prod * u_next));
    cg = T(lr * (1.0 - u_t) / (1.0 - prod));
    vb = T(1.0 / (1.0 - std::pow(a.beta2, static_cast<double>(step))));
  }
  for (const StepRange<T>& r : plan.ranges) {
    decay_range(r, lr, plan.decay);
    if (plan.optimizer == StepOptimizer::nadam)
      nadam(r, a, cm, cg, vb);
    else if (plan.optimizer == StepOptimizer::adamax)
      adamax(r, a, lr, step);
    else
      lion(r, a, lr);
  }
}

template void more_optimizer_step<float>(const StepPlan<float>&, double, std::int64_t);
template void more_optimizer_step<double>(const StepPlan<double>&, double, std::int64_t);

}  // namespace fastnn
