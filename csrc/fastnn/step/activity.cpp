// The native step's ActivityRegularization node (step.h): layers/regularization_more.py's
// forward penalty (the kernels it calls: ops.abs_sum, ops.sum_squares, in double, a zero
// factor skipped, divided by the batch size) and its backward's NumPy arithmetic on dy, in
// place: np.sign(x) * T(l1 / m) added, then x * T(2 l2 / m) added, each product rounded to T,
// then each sum (no fused multiply-add).
#include "fastnn/no_fp_contract.h"

#include "fastnn/reduce/reduce.h"
#include "fastnn/step/np_sign.h"
#include "fastnn/step/step.h"

namespace fastnn {

template <class T> double activity_penalty(const T* x, std::size_t m, std::size_t n, double l1, double l2) {
  double pen = 0.0;
  if (l1 != 0.0) pen += l1 * abs_sum<T>(x, m * n);
  if (l2 != 0.0) pen += l2 * sum_squares<T>(x, m * n);
  return pen / static_cast<double>(m);
}

template <class T> void activity_backward(const T* x, T* dy, std::size_t m, std::size_t n, double l1, double l2) {
  const std::size_t size = m * n;
  const double rows = static_cast<double>(m);
  const T c1 = static_cast<T>(l1 / rows), c2 = static_cast<T>(2.0 * l2 / rows);
  if (l1 != 0.0 && l2 != 0.0) {  // both terms in one pass: each element's two sums in the same order
    for (std::size_t i = 0; i < size; ++i) {
      const T g1 = np_sign(x[i]) * c1;
      const T d = dy[i] + g1;
      const T g2 = x[i] * c2;
      dy[i] = d + g2;
    }
  } else if (l1 != 0.0) {
    for (std::size_t i = 0; i < size; ++i) {
      const T g = np_sign(x[i]) * c1;
      dy[i] = dy[i] + g;
    }
  } else if (l2 != 0.0) {
    for (std::size_t i = 0; i < size; ++i) {
      const T g = x[i] * c2;
      dy[i] = dy[i] + g;
    }
  }
}

template double activity_penalty<float>(const float*, std::size_t, std::size_t, double, double);
template double activity_penalty<double>(const double*, std::size_t, std::size_t, double, double);
template void activity_backward<float>(const float*, float*, std::size_t, std::size_t, double, double);
template void activity_backward<double>(const double*, double*, std::size_t, std::size_t, double, double);

}  // namespace fastnn
