// The native step's mean absolute error (step.h, StepLoss::mae): MeanAbsoluteError.value_and_grad's
// NumPy arithmetic, bitwise: d = pred - y rounded to T, the loss ops.abs_sum(d) / d.size (the
// reduce kernel it calls), then np.sign(d, out=d) and d *= T(1.0 / d.size), each result rounded.
#include "fastnn/no_fp_contract.h"

#include "fastnn/reduce/reduce.h"
#include "fastnn/step/step.h"

namespace fastnn {

template <class T> double mae_loss(const T* pred, const T* y, T* d, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) d[i] = pred[i] - y[i];
  const double loss = abs_sum<T>(d, n) / static_cast<double>(n);
  const T c = static_cast<T>(1.0 / static_cast<double>(n));
  for (std::size_t i = 0; i < n; ++i) {
    const T v = d[i];  // np.sign: 1, -1, 0 for either zero, NaN for NaN
    const T s = v > T(0) ? T(1) : (v < T(0) ? T(-1) : (v == T(0) ? T(0) : v));
    d[i] = s * c;
  }
  return loss;
}

template double mae_loss<float>(const float*, const float*, float*, std::size_t);
template double mae_loss<double>(const double*, const double*, double*, std::size_t);

}  // namespace fastnn
