// The native step's losses without a fused kernel (step.h, StepLoss::mae and huber): their
// value_and_grad's NumPy arithmetic, bitwise, each result rounded to T as NumPy rounds it (no
// fused multiply-add; the Python scalars cast to T as NEP 50 casts them), and the loss's sum
// by the reduce kernel the Python loss calls (ops.abs_sum: float64, a fixed order).
#include "fastnn/no_fp_contract.h"

#include <cmath>

#include "fastnn/reduce/reduce.h"
#include "fastnn/step/np_sign.h"
#include "fastnn/step/step.h"

namespace fastnn {

// MeanAbsoluteError.value_and_grad: d = pred - y; loss = abs_sum(d) / d.size; np.sign(d, out=d);
// d *= T(1.0 / d.size).
template <class T> double mae_loss(const T* pred, const T* y, T* d, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) d[i] = pred[i] - y[i];
  const double loss = abs_sum<T>(d, n) / static_cast<double>(n);
  const T c = static_cast<T>(1.0 / static_cast<double>(n));
  for (std::size_t i = 0; i < n; ++i) d[i] = np_sign(d[i]) * c;
  return loss;
}

// Huber.value_and_grad: e = pred - y; l = np.where(|e| <= T(delta), (T(0.5) * e) * e,
// T(delta) * |e| - T(0.5 * delta * delta)) into scratch; loss = abs_sum(l) / l.size (l >= 0: its
// sum); np.clip(e, -T(delta), T(delta), out=e) (NaN stays NaN); e *= T(1.0 / e.size).
template <class T> double huber_loss(const T* pred, const T* y, T* e, T* scratch, std::size_t n, double delta) {
  const T d = static_cast<T>(delta), half = static_cast<T>(0.5), c = static_cast<T>(0.5 * delta * delta);
  for (std::size_t i = 0; i < n; ++i) {
    const T v = pred[i] - y[i];
    const T a = std::fabs(v);  // np.abs
    e[i] = v;
    const T h = half * v, p = d * a;  // both sides of np.where, then the choice (no branch)
    const T quad = h * v, lin = p - c;
    scratch[i] = a <= d ? quad : lin;
  }
  const double loss = abs_sum<T>(scratch, n) / static_cast<double>(n);
  const T k = static_cast<T>(1.0 / static_cast<double>(n));
  for (std::size_t i = 0; i < n; ++i) {
    const T v = e[i];
    const T clipped = v < -d ? -d : (v > d ? d : v);
    e[i] = clipped * k;
  }
  return loss;
}

template double mae_loss<float>(const float*, const float*, float*, std::size_t);
template double mae_loss<double>(const double*, const double*, double*, std::size_t);
template double huber_loss<float>(const float*, const float*, float*, float*, std::size_t, double);
template double huber_loss<double>(const double*, const double*, double*, double*, std::size_t, double);

}  // namespace fastnn
