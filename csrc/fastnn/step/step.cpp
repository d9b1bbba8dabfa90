// The native training step (step.h): the kernels of the Python step, in its order.
#include "fastnn/step/step.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <type_traits>

#include "fastnn/gemm/bf16/dense_bf16.h"
#include "fastnn/gemm/gemm.h"
#include "fastnn/gemm/problem.h"
#include "fastnn/loss/loss.h"
#include "fastnn/norm/layernorm.h"
#include "fastnn/norm/norm.h"
#include "fastnn/random/random.h"

namespace fastnn {

namespace {

// A mixed Dense layer's arguments for dense_bf16.h (x: the input as float32, or null
// when the layer below stored it as bits).
inline DenseBf16 bf16_layer(const DenseStep<float>& L, const float* x, std::size_t m) {
  DenseBf16 D;
  D.m = m;
  D.in = L.in;
  D.out = L.out;
  D.x = L.x16 ? nullptr : x;
  D.x16 = L.x16;
  D.W = L.W;
  D.b = L.b;
  D.y = L.y16 ? nullptr : L.y;
  D.y16 = L.y16;
  D.act = L.act;
  D.alpha = L.alpha;
  D.dW = L.dW;
  D.db = L.db;
  D.dx = L.dx;
  return D;
}

// y = act(x @ W + b): ops.matmul(x, W, bias=b, out=y, activation=...) in Dense.forward
// (mixed: ops.matmul_bf16, the same problem through gemm_bf16).
template <class T> void dense_forward(const DenseStep<T>& L, const T* x, std::size_t m) {
  if constexpr (std::is_same_v<T, float>) {
    if (L.bf16) {
      dense_bf16_forward(bf16_layer(L, x, m));
      return;
    }
  }
  gemm<T>(dense_forward_problem<T>(m, L.in, L.out, x, L.W, L.b, L.y, L.act, L.alpha));
}

// Whether the dx product of the layer above may apply L's activation gradient in its
// epilogue (ops.matmul_act_grad with y = L.y): a float Dense layer with an activation.
// The epilogue runs the separate pass's act_backward on the same values, so dz has the
// same bits either way (tests/test_native_step.py), one pass over m x L.out fewer.
template <class T> bool act_grad_fusable(const DenseStep<T>& L) {
  return L.kind == StepNode::dense && L.act != Act::identity && !L.bf16;
}

// Dense.backward + affine_backward: dz = dy * act'(y) in place (unless the layer above
// did it: act_done), dW = x^T dz with db = column sums of dz in the same call, dx = dz W^T
// (times below's act'(y) when below is not null: act_grad_fusable).
template <class T>
void dense_backward(const DenseStep<T>& L, const T* x, T* dy, std::size_t m, bool act_done,
                    const DenseStep<T>* below) {
  if constexpr (std::is_same_v<T, float>) {
    if (L.bf16) {  // _mixed.dense_backward: one call, as the Python step makes it
      dense_bf16_backward(bf16_layer(L, x, m), dy);
      return;
    }
  }
  if (L.act != Act::identity && !act_done) activation_backward<T>(L.act, dy, nullptr, L.y, dy, m * L.out, L.alpha);
  if (L.dW) {
    GemmProblem<T> P = gemm_problem<T>(true, false, L.in, m, L.out, x, L.in, dy, L.out, L.dW, L.out);
    P.bias_grad = L.db;  // ops.matmul_bias_grad: db summed while dz is packed (null: no bias)
    gemm<T>(P);
  }
  if (L.dx) {
    GemmProblem<T> P = gemm_problem<T>(false, true, m, L.out, L.in, dy, L.out, L.W, L.out, L.dx, L.in);
    if (below) {
      P.has_act = true;
      P.act = below->act;
      P.act_alpha = below->alpha;
      P.act_grad = true;
      P.act_y = below->y;
    }
    gemm<T>(P);
  }
}

// BatchNormalization.forward: ops.batchnorm_forward, training or on the running statistics.
template <class T> void bn_forward(const DenseStep<T>& L, const T* x, std::size_t m) {
  if (L.training)
    batchnorm_forward_train<T>(x, L.gamma, L.beta, L.running_mean, L.running_var, L.y, L.mean, L.invstd, m, L.out,
                               L.momentum, L.eps);
  else
    batchnorm_forward_infer<T>(x, L.gamma, L.beta, L.running_mean, L.running_var, L.y, L.mean, L.invstd, m, L.out,
                               L.eps, L.scale, L.shift);
}

// BatchNormalization.backward: ops.batchnorm_backward into dx, dgamma, dbeta (training; it
// runs also when dx is not needed, for dgamma and dbeta), or in place
// np.multiply(dy, gamma * invstd, out=dy) (frozen, only when dx is needed). The new dy.
template <class T> T* bn_backward(const DenseStep<T>& L, const T* x, T* dy, std::size_t m, bool need_dx) {
  const std::size_t n = L.out;
  if (L.training) {
    batchnorm_backward<T>(dy, x, L.gamma, L.mean, L.invstd, L.dx, L.dgamma, L.dbeta, m, n);
    return L.dx;
  }
  if (need_dx) {
    for (std::size_t j = 0; j < n; ++j) L.scale[j] = L.gamma[j] * L.invstd[j];
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < n; ++j) dy[i * n + j] = dy[i * n + j] * L.scale[j];
  }
  return dy;
}

// LayerNormalization.forward / backward: ops.layernorm_forward, ops.layernorm_backward
// (dgamma, dbeta into the arena or the layer's scratch; nothing when frozen and dx is
// not needed). The new dy.
template <class T> T* ln_backward(const DenseStep<T>& L, T* dy, std::size_t m, bool need_dx) {
  if (!need_dx && !L.training) return dy;
  layernorm_backward<T>(dy, L.xhat, L.inv, L.gamma, L.dx, L.dgamma, L.dbeta, m, L.out);
  return L.dx;
}

// One layer forward from its input x.
template <class T> void node_forward(const StepPlan<T>& plan, const DenseStep<T>& L, const T* x) {
  const std::size_t m = plan.m;
  switch (L.kind) {
    case StepNode::dropout:
      dropout_forward<T>(x, L.y, L.mask, m * L.out, L.rate, plan.seeds[L.seed_index]);
      break;
    case StepNode::activation:  // Activation.forward: ops.activation(kernel, x, out=y)
      activation_forward<T>(L.act, x, L.y, m * L.out, L.alpha);
      break;
    case StepNode::batchnorm:
      bn_forward<T>(L, x, m);
      break;
    case StepNode::layernorm:
      layernorm_forward<T>(x, L.gamma, L.beta, L.y, L.xhat, L.inv, m, L.out, L.eps);
      break;
    case StepNode::activity:  // ActivityRegularization.forward: the penalty; y is x
      plan.activity[L.seed_index] = activity_penalty<T>(x, m, L.out, L.l1, L.l2);
      break;
    case StepNode::dense:
    default:
      dense_forward<T>(L, x, m);
  }
}

// One layer backward from dy (its input x); need_dx as Sequential._backward passes it
// (false for the last layer the backward reaches). Returns the gradient for the layer below.
// act_done / below: dense_backward's (the activation-gradient fusion between two Dense layers).
template <class T>
T* node_backward(const DenseStep<T>& L, const T* x, T* dy, std::size_t m, bool need_dx, bool act_done,
                 const DenseStep<T>* below) {
  switch (L.kind) {
    case StepNode::dropout:  // Dropout.backward: dy *= mask in place (np.multiply)
      if (need_dx)
        for (std::size_t i = 0, n = m * L.out; i < n; ++i) dy[i] = dy[i] * L.mask[i];
      return dy;
    case StepNode::activation:  // Activation.backward: act.backward(dy, x, y, out=dy)
      if (need_dx)
        activation_backward<T>(L.act, dy, L.act_needs_x ? x : nullptr, L.act_needs_x ? nullptr : L.y, dy, m * L.out,
                               L.alpha);
      return dy;
    case StepNode::batchnorm:
      return bn_backward<T>(L, x, dy, m, need_dx);
    case StepNode::layernorm:
      return ln_backward<T>(L, dy, m, need_dx);
    case StepNode::activity:  // ActivityRegularization.backward: its gradient added to dy in place
      if (need_dx) activity_backward<T>(x, dy, m, L.out, L.l1, L.l2);
      return dy;
    case StepNode::dense:
    default:
      dense_backward<T>(L, x, dy, m, act_done, below);
      return L.dx;
  }
}

// The fused loss into dlogits: loss.h's kernel, or its weighted form when the plan has
// sample weights (the kernels _weights.weighted_value_and_grad calls).
template <class T> double loss_step(const StepPlan<T>& plan, const void* labels) {
  const DenseStep<T>& last = plan.layers.back();
  const std::size_t m = plan.m, C = last.out;
  const T* w = plan.weights;
  const T* t = static_cast<const T*>(labels);
  switch (plan.loss) {
    case StepLoss::xent_ids: {
      const auto* ids = static_cast<const std::int64_t*>(labels);
      return w ? softmax_cross_entropy_ids_weighted<T>(last.y, ids, w, plan.dlogits, m, C)
               : softmax_cross_entropy_ids<T>(last.y, ids, plan.dlogits, m, C);
    }
    case StepLoss::xent_probs:
      return w ? softmax_cross_entropy_probs_weighted<T>(last.y, t, w, plan.dlogits, m, C)
               : softmax_cross_entropy_probs<T>(last.y, t, plan.dlogits, m, C);
    case StepLoss::bce_logits:  // ops.binary_cross_entropy_with_logits' kernel, over all m * C values
      return w ? bce_with_logits_weighted<T>(last.y, t, w, plan.dlogits, m, C)
               : bce_with_logits<T>(last.y, t, plan.dlogits, m * C);
    case StepLoss::mae:  // MeanAbsoluteError.value_and_grad (the plan takes no weights with it)
      return mae_loss<T>(last.y, t, plan.dlogits, m * C);
    case StepLoss::huber:  // Huber.value_and_grad (no weights either)
      return huber_loss<T>(last.y, t, plan.dlogits, plan.loss_scratch.data(), m * C, plan.huber_delta);
    case StepLoss::mse:
    default:
      return w ? mean_squared_error_weighted<T>(last.y, t, w, plan.dlogits, m, C)
               : mean_squared_error<T>(last.y, t, plan.dlogits, m * C);
  }
}

template <class T> AdamArgs adam_args(const StepPlan<T>& plan, double lr, std::int64_t step) {
  AdamArgs a = plan.adam;
  a.lr = lr;
  a.step = step;
  return a;
}
template <class T> SgdArgs sgd_args(const StepPlan<T>& plan, double lr) {
  SgdArgs a = plan.sgd;
  a.lr = lr;
  return a;
}

// The plan's arguments with this step's learning rate (RmspropArgs, AdagradArgs).
template <class Args> Args with_lr(Args a, double lr) {
  a.lr = lr;
  return a;
}

// SGD's rate this step: (1 - momentum) * lr in the ema form (SGD._update), else lr.
template <class T> double sgd_rate(const StepPlan<T>& plan, double lr) {
  return plan.ema.on ? (1.0 - plan.sgd.momentum) * lr : lr;
}

// One step's arguments for update_range (SGD, RMSprop, Adagrad, Adam), checked before any
// update writes.
struct StepUpdate {
  double lr = 0;
  AdamArgs adam;
  SgdArgs sgd;
  RmspropArgs rmsprop;
  AdagradArgs adagrad;
  double ema_factor = 1;  // SGD's ema form: this step's velocity rescale
};

// The step's arguments, checked (what the update would refuse, before anything is written).
template <class T> StepUpdate update_args(const StepPlan<T>& plan, double lr, std::int64_t step) {
  StepUpdate u;
  u.lr = lr;
  if (plan.optimizer == StepOptimizer::adam) {
    u.adam = adam_args(plan, lr, step);
    check_adam_args<T>(u.adam);
  } else if (plan.optimizer == StepOptimizer::rmsprop) {
    u.rmsprop = with_lr(plan.rmsprop, lr);
    check_rmsprop_args<T>(u.rmsprop);
  } else if (plan.optimizer == StepOptimizer::adagrad) {
    u.adagrad = with_lr(plan.adagrad, lr);
    check_adagrad_args<T>(u.adagrad);
  } else {  // sgd
    u.sgd = sgd_args(plan, sgd_rate(plan, lr));
    check_sgd_args(u.sgd);
  }
  return u;
}

// update_args, and for SGD's ema form its state, as SGD._update's _ema_step: the rate's change
// since the last step becomes this step's velocity rescale.
template <class T> StepUpdate begin_update(const StepPlan<T>& plan, double lr, std::int64_t step) {
  StepUpdate u = update_args(plan, lr, step);
  SgdEma& e = plan.ema;
  if (plan.optimizer == StepOptimizer::sgd && e.on) {
    e.factor = e.lr != 0.0 && e.lr != lr ? lr / e.lr : 1.0;
    e.lr = lr;
    ++e.steps;
    u.ema_factor = e.factor;
  }
  return u;
}

// Optimizer._update of one range: Optimizer._decay, then the kernel (SGD's ema form rescales
// its velocity first).
template <class T> void update_range(const StepPlan<T>& plan, const StepUpdate& u, const StepRange<T>& r) {
  if (plan.optimizer == StepOptimizer::adam) {
    adam_update<T>(r.p, r.g, r.s0, r.s1, r.n, u.adam, r.s2);
    return;
  }
  decay_range(r, u.lr, plan.decay);
  if (plan.optimizer == StepOptimizer::rmsprop) {
    rmsprop_update<T>(r.p, r.g, r.s0, r.n, u.rmsprop, r.s1, r.s2);
  } else if (plan.optimizer == StepOptimizer::adagrad) {
    adagrad_update<T>(r.p, r.g, r.s0, r.n, u.adagrad);
  } else {  // sgd
    if (u.ema_factor != 1.0) scale_inplace(r.s0, r.n, static_cast<T>(u.ema_factor));  // ema: always a velocity
    sgd_update<T>(r.p, r.g, u.sgd.momentum != 0.0 ? r.s0 : nullptr, r.n, u.sgd);
  }
}

// Optimizer.apply: one update per contiguous trainable range.
template <class T> void optimizer_step(const StepPlan<T>& plan, double lr, std::int64_t step) {
  if (plan.optimizer >= StepOptimizer::nadam) {
    more_optimizer_step<T>(plan, lr, step);
    return;
  }
  const StepUpdate u = begin_update(plan, lr, step);
  for (const StepRange<T>& r : plan.ranges) update_range<T>(plan, u, r);
}

std::atomic<bool> g_profiling{false};
std::mutex g_profile_mutex;
StepProfile g_profile;

// Seconds since the last lap (on the clock only while profiling).
class Laps {
 public:
  explicit Laps(bool on) : on_(on) {
    if (on_) t_ = std::chrono::steady_clock::now();
  }
  void add(double& into) {
    if (!on_) return;
    const auto now = std::chrono::steady_clock::now();
    into += std::chrono::duration<double>(now - t_).count();
    t_ = now;
  }

 private:
  bool on_;
  std::chrono::steady_clock::time_point t_;
};

}  // namespace

void set_step_profiling(bool on) {
  std::lock_guard<std::mutex> lock(g_profile_mutex);
  if (on) g_profile = StepProfile{};
  g_profiling.store(on);
}

StepProfile step_profile() {
  std::lock_guard<std::mutex> lock(g_profile_mutex);
  return g_profile;
}

template <class T>
double run_step(const StepPlan<T>& plan, const T* x, const void* labels, double lr, std::int64_t step,
                double* penalty) {
  const std::size_t n_layers = plan.layers.size(), m = plan.m;
  const bool profiling = g_profiling.load(std::memory_order_relaxed);
  StepProfile t;
  Laps lap(profiling);
  const T* in = x;
  for (const DenseStep<T>& L : plan.layers) {
    node_forward<T>(plan, L, in);
    in = L.y;
    lap.add(L.kind == StepNode::dense ? t.dense_forward : t.other_layers);
  }
  const double loss = loss_step<T>(plan, labels);
  lap.add(t.loss);
  T* d = plan.dlogits;
  bool act_done = false;  // d already holds dy * act'(y) of layer k
  for (std::size_t k = n_layers; k-- > plan.first;) {
    const DenseStep<T>& L = plan.layers[k];
    const T* xk = k == 0 ? x : plan.layers[k - 1].y;
    const bool need_dx = k > plan.first;
    const DenseStep<T>* below = nullptr;
    if (need_dx && L.kind == StepNode::dense && !L.bf16 && L.dx && act_grad_fusable(plan.layers[k - 1]))
      below = &plan.layers[k - 1];
    d = node_backward<T>(L, xk, d, m, need_dx, act_done, below);
    act_done = below != nullptr;
    lap.add(L.kind == StepNode::dense ? t.dense_backward : t.other_layers);
  }
  double pen = 0.0;  // trainer.regularization: activity_penalty's sum of the activity nodes' penalties, then
  for (const double a : plan.activity) pen += a;  // the weight penalties (on the weights before the update)
  if (!plan.regs.empty()) pen = regularize<T>(plan, pen);
  if (penalty) *penalty = pen;
  if (!plan.ranges.empty()) {
    clip_gradients<T>(plan);  // Optimizer.apply clips before its update
    optimizer_step<T>(plan, lr, step);
    apply_constraints<T>(plan);  // trainer.apply_constraints, after it
  }
  lap.add(t.optimizer);
  if (profiling) {
    std::lock_guard<std::mutex> lock(g_profile_mutex);
    g_profile.dense_forward += t.dense_forward;
    g_profile.dense_backward += t.dense_backward;
    g_profile.other_layers += t.other_layers;
    g_profile.loss += t.loss;
    g_profile.optimizer += t.optimizer;
    g_profile.steps += 1;
  }
  return loss;
}

template <class T> void check_step(const StepPlan<T>& plan, double lr, std::int64_t step) {
  if (plan.ranges.empty()) return;
  if (plan.optimizer >= StepOptimizer::nadam)
    check_lr(lr);
  else
    update_args(plan, lr, step);
}

template double run_step<float>(const StepPlan<float>&, const float*, const void*, double, std::int64_t, double*);
template double run_step<double>(const StepPlan<double>&, const double*, const void*, double, std::int64_t,
                                 double*);
template void check_step<float>(const StepPlan<float>&, double, std::int64_t);
template void check_step<double>(const StepPlan<double>&, double, std::int64_t);

}  // namespace fastnn
