// The native step's weight penalties (step.h, StepReg): trainer.regularization's penalty
// and gradient, bitwise. The penalty sums are the kernels Regularizer.__call__ calls
// (ops.abs_sum, ops.sum_squares); the gradient is Regularizer.add_gradient's NumPy
// arithmetic: a product rounded to T, then a sum rounded to T (no fused multiply-add).
#include "fastnn/no_fp_contract.h"

#include "fastnn/reduce/reduce.h"
#include "fastnn/step/np_sign.h"
#include "fastnn/step/step.h"

namespace fastnn {

namespace {


// np.multiply(w, c, out=scratch); grad += scratch, element by element.
template <class T> void add_scaled(T* g, const T* w, std::size_t n, T c) {
  for (std::size_t i = 0; i < n; ++i) {
    const T s = w[i] * c;
    g[i] = g[i] + s;
  }
}

// np.sign(w, out=scratch); scratch *= c; grad += scratch.
template <class T> void add_sign_scaled(T* g, const T* w, std::size_t n, T c) {
  for (std::size_t i = 0; i < n; ++i) {
    const T s = np_sign(w[i]) * c;
    g[i] = g[i] + s;
  }
}

}  // namespace

template <class T> double regularize(const StepPlan<T>& plan, double total) {
  for (std::size_t k = 0; k < plan.regs.size(); ++k) {
    const StepReg<T>& r = plan.regs[k];
    const double l1 = plan.reg_coefs[2 * k], l2 = plan.reg_coefs[2 * k + 1];
    double p = 0.0;  // Regularizer.__call__ (a zero coefficient is skipped, as Python's `if`)
    if (l1 != 0.0) p += l1 * abs_sum<T>(r.w, r.n);
    if (l2 != 0.0) p += l2 * sum_squares<T>(r.w, r.n);
    total += p;
    if (!r.g) continue;
    if (l2 != 0.0) add_scaled<T>(r.g, r.w, r.n, static_cast<T>(2 * l2));
    if (l1 != 0.0) add_sign_scaled<T>(r.g, r.w, r.n, static_cast<T>(l1));
  }
  return total;
}

template double regularize<float>(const StepPlan<float>&, double);
template double regularize<double>(const StepPlan<double>&, double);

}  // namespace fastnn
