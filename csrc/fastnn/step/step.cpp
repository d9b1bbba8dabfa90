// The native training step (step.h): the kernels of the Python step, in its order.
#include "fastnn/step/step.h"

#include "fastnn/gemm/gemm.h"
#include "fastnn/loss/loss.h"
#include "fastnn/random/random.h"

namespace fastnn {

namespace {

// y = act(x @ W + b): ops.matmul(x, W, bias=b, out=y, activation=...) in Dense.forward.
template <class T> void dense_forward(const DenseStep<T>& L, const T* x, std::size_t m) {
  GemmProblem<T> P;
  P.m = m;
  P.k = L.in;
  P.n = L.out;
  P.a = x;
  P.lda = L.in;
  P.b = L.W;
  P.ldb = L.out;
  P.c = L.y;
  P.ldc = L.out;
  P.bias = L.b;
  if (L.act != Act::identity) {
    P.act = L.act;
    P.has_act = true;
    P.act_alpha = L.alpha;
  }
  gemm<T>(P);
}

// Dense.backward + affine_backward: dz = dy * act'(y) in place, dW = x^T dz with
// db = column sums of dz in the same call, dx = dz W^T.
template <class T> void dense_backward(const DenseStep<T>& L, const T* x, T* dy, std::size_t m) {
  if (L.act != Act::identity) activation_backward<T>(L.act, dy, nullptr, L.y, dy, m * L.out, L.alpha);
  if (L.dW) {
    GemmProblem<T> P;
    P.trans_a = true;
    P.m = L.in;
    P.k = m;
    P.n = L.out;
    P.a = x;
    P.lda = L.in;
    P.b = dy;
    P.ldb = L.out;
    P.c = L.dW;
    P.ldc = L.out;
    P.bias_grad = L.db;  // ops.matmul_bias_grad: db summed while dz is packed (null: no bias)
    gemm<T>(P);
  }
  if (L.dx) {
    GemmProblem<T> P;
    P.trans_b = true;
    P.m = m;
    P.k = L.out;
    P.n = L.in;
    P.a = dy;
    P.lda = L.out;
    P.b = L.W;
    P.ldb = L.out;
    P.c = L.dx;
    P.ldc = L.in;
    gemm<T>(P);
  }
}

template <class T> double loss_step(const StepPlan<T>& plan, const void* labels) {
  const DenseStep<T>& last = plan.layers.back();
  const std::size_t m = plan.m, C = last.out;
  switch (plan.loss) {
    case StepLoss::xent_ids:
      return softmax_cross_entropy_ids<T>(last.y, static_cast<const std::int64_t*>(labels), plan.dlogits, m, C);
    case StepLoss::xent_probs:
      return softmax_cross_entropy_probs<T>(last.y, static_cast<const T*>(labels), plan.dlogits, m, C);
    case StepLoss::mse:
    default:
      return mean_squared_error<T>(last.y, static_cast<const T*>(labels), plan.dlogits, m * C);
  }
}

// Optimizer.apply: one update per contiguous trainable range.
template <class T> void optimizer_step(const StepPlan<T>& plan, double lr, std::int64_t step) {
  if (plan.optimizer == StepOptimizer::adam) {
    AdamArgs a = plan.adam;
    a.lr = lr;
    a.step = step;
    for (const StepRange<T>& r : plan.ranges) adam_update<T>(r.p, r.g, r.s0, r.s1, r.n, a);
  } else {
    SgdArgs a = plan.sgd;
    a.lr = lr;
    for (const StepRange<T>& r : plan.ranges) sgd_update<T>(r.p, r.g, a.momentum != 0.0 ? r.s0 : nullptr, r.n, a);
  }
}

}  // namespace

template <class T>
double run_step(const StepPlan<T>& plan, const T* x, const void* labels, double lr, std::int64_t step) {
  const std::size_t n_layers = plan.layers.size(), m = plan.m;
  const T* in = x;
  for (const DenseStep<T>& L : plan.layers) {
    if (L.kind == StepNode::dropout)
      dropout_forward<T>(in, L.y, L.mask, m * L.out, L.rate, plan.seeds[L.seed_index]);
    else
      dense_forward<T>(L, in, m);
    in = L.y;
  }
  const double loss = loss_step<T>(plan, labels);
  T* d = plan.dlogits;
  for (std::size_t k = n_layers; k-- > plan.first;) {
    const DenseStep<T>& L = plan.layers[k];
    if (L.kind == StepNode::dropout) {  // Dropout.backward: dy *= mask in place (np.multiply)
      if (k > plan.first)
        for (std::size_t i = 0, n = m * L.out; i < n; ++i) d[i] = d[i] * L.mask[i];
      continue;
    }
    const T* xk = k == 0 ? x : plan.layers[k - 1].y;
    dense_backward<T>(L, xk, d, m);
    d = L.dx;
  }
  if (!plan.ranges.empty()) optimizer_step<T>(plan, lr, step);
  return loss;
}

template double run_step<float>(const StepPlan<float>&, const float*, const void*, double, std::int64_t);
template double run_step<double>(const StepPlan<double>&, const double*, const void*, double, std::int64_t);

}  // namespace fastnn
