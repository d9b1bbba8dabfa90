// The native training step: a plan of Dense (float32, float64 or mixed_bfloat16), Dropout,
// Activation and BatchNormalization layers, a fused loss and an optimizer, built once per (batch size, trainable layout) by
// python/fastnn/native_step.py and run as one call. It calls exactly the kernels the Python step (trainer.train_step) calls,
// in the same order with the same arguments, so its result is bitwise the same.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "fastnn/constrain/constrain.h"
#include "fastnn/eltwise/eltwise.h"
#include "fastnn/optim/optim.h"
#include "fastnn/reduce/reduce.h"

namespace fastnn {

enum class StepNode { dense, dropout, batchnorm, activation, layernorm, activity };

// One layer. Dense: y = act(x @ W + b) into y (m x out); backward from dy (the next
// layer's dx buffer, or the loss gradient) in place, then dW, db and dx. Dropout (in ==
// out): y = x * mask with the Philox seed seeds[seed_index]; backward dy *= mask in place.
// Activation (in == out): y = act(x); backward dy *= act'(x or y) in place.
// BatchNormalization (in == out), training: batch statistics into mean and invstd, the
// running ones updated, y; backward into dx, dgamma and dbeta. Frozen (not training): the
// running statistics (scale, shift: scratch), backward dy *= gamma * invstd in place.
// LayerNormalization (in == out; 2-D, last axis): y, xhat and inv (per row) by
// layernorm_forward; backward into dx, dgamma and dbeta (training: trainable), skipped
// when frozen and dx is not needed (LayerNormalization.backward).
// ActivityRegularization (in == out, y the layer below's y: the identity): its penalty
// (l1 * abs_sum(x) + l2 * sum_squares(x)) / m into StepPlan::activity[seed_index] in the
// forward; backward dy += sign(x) * T(l1 / m), then dy += x * T(2 l2 / m) in place when dx
// is needed (step/activity.cpp).
template <class T> struct DenseStep {
  StepNode kind = StepNode::dense;
  std::size_t in = 0, out = 0;
  T* mask = nullptr;           // dropout: m x out
  double rate = 0;             // dropout
  std::size_t seed_index = 0;  // dropout: its seed in StepPlan::seeds; activity: its penalty's index
  double l1 = 0, l2 = 0;       // activity: ActivityRegularization's factors
  const T* W = nullptr;
  const T* b = nullptr;        // null: no bias
  T* dW = nullptr;             // null: not trainable (no parameter gradients)
  T* db = nullptr;             // null: not trainable or no bias
  T* y = nullptr;              // m x out
  T* dx = nullptr;             // m x in, null when the backward stops here (or runs in place)
  Act act = Act::identity;     // identity: linear (or logits for a fused loss)
  T alpha = T(0);              // the activation's alpha, forward and backward
  bool act_needs_x = false;    // activation: its gradient from the input x, not from y
  const T* gamma = nullptr;    // batchnorm: n = out values each (ones / zeros when not learned)
  const T* beta = nullptr;
  T* running_mean = nullptr;
  T* running_var = nullptr;
  T* mean = nullptr;           // the forward's batch (frozen: running) mean and invstd
  T* invstd = nullptr;
  T* dgamma = nullptr;         // training: arena grads, or scratch when not learned
  T* dbeta = nullptr;
  T* scale = nullptr;          // frozen: scratch for the folded scale and shift
  T* shift = nullptr;
  double momentum = 0, eps = 0;
  bool training = true;        // batchnorm, layernorm: false when frozen (trainable = False)
  T* xhat = nullptr;           // layernorm: m x out, and inv (m); gamma / beta null when not learned
  T* inv = nullptr;
  // Dense under mixed_bfloat16 (float plans only): the three products through
  // dense_bf16_forward/backward (gemm/bf16/dense_bf16.h), as the Python step's
  // Dense.forward and _mixed.dense_backward call them. y16: the output stored as
  // bfloat16 bits (then y is null; read only by mixed Dense layers); x16: the input
  // as bits (the layer below's y16).
  bool bf16 = false;
  const std::uint16_t* x16 = nullptr;
  std::uint16_t* y16 = nullptr;
};

enum class StepLoss { xent_ids, xent_probs, mse, bce_logits, mae, huber };
enum class StepOptimizer { adam, sgd, rmsprop, adagrad, nadam, adamax, lion };

// Nadam, Adamax, Lion (_optimizers_more.py, NumPy): their hyperparameters, and Nadam's running
// product of its momentum schedule (Nadam._u_product: (step k, u_1 ... u_k)).
struct MoreOptArgs {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-7;
  std::int64_t u_k = 0;
  double u_prod = 1.0;
};

// SGD(momentum_form="ema")'s state across steps (SGD._update's _ema_lr, _ema_step): lr, the last
// step's rate (0: none yet); at each step the velocity is first scaled by T(rate / lr) when lr is
// set and differs from the rate (factor, else 1), then the update runs at (1 - momentum) * rate.
// steps counts the steps run since the caller last set lr (Python reads lr and factor back).
struct SgdEma {
  bool on = false;  // the ema form with a velocity slot (SGD._update's ema branch)
  double lr = 0, factor = 1;
  std::int64_t steps = 0;
};

// One contiguous trainable range of the arena: param, grad and up to three state slots.
template <class T> struct StepRange {
  T* p = nullptr;
  const T* g = nullptr;
  T* s0 = nullptr;  // adam m, sgd velocity (null without momentum), rmsprop sq_avg, adagrad accum,
                    // nadam, adamax, lion m
  T* s1 = nullptr;  // adam v, rmsprop momentum (null without), nadam v, adamax u
  T* s2 = nullptr;  // adam vhat (AMSGrad's running maximum of v; null: plain Adam), rmsprop
                    // average_gradient (null: not centered)
  std::size_t n = 0;
};

// One regularized variable of trainer.regularization (its _reg_list order): its penalty
// l1 * abs_sum(w) + l2 * sum_squares(w) (Regularizer.__call__'s kernels and order), then,
// when its layer is trainable (g not null), Regularizer.add_gradient: g += w * T(2 l2), then
// g += sign(w) * T(l1), each a rounded product then a rounded sum (no fused multiply-add).
// (l1, l2) are read at every step from StepPlan::reg_coefs[2 * k], [2 * k + 1].
template <class T> struct StepReg {
  const T* w = nullptr;
  T* g = nullptr;  // null: a frozen layer (penalty only)
  std::size_t n = 0;
};

// Optimizer.apply's gradient clipping, before the update: norm (global_clipnorm: one group, every
// trainable range; clipnorm: one group per trainable variable), each group scaled by
// clip_by_global_norm(group, value), or value (clipvalue): each array by clip_by_value(array, value).
enum class StepClipMode { none, norm, value };
template <class T> struct StepClip {
  StepClipMode mode = StepClipMode::none;
  double value = 0.0;
  std::vector<std::vector<GradView>> groups;
};

// trainer.apply_constraints, after the update: one constrained variable of a trainable layer
// (arena order), projected in place: NonNeg, or a norm constraint (constrain.h).
template <class T> struct StepConstraint {
  T* w = nullptr;
  std::size_t n = 0;
  bool non_neg = false;
  NormConstraint norm;  // when not non_neg
};

template <class T> struct StepPlan {
  std::size_t m = 0;                 // batch size
  std::vector<DenseStep<T>> layers;  // forward order
  std::size_t first = 0;             // backward runs from the last layer down to this one
  StepLoss loss = StepLoss::mse;
  T* dlogits = nullptr;              // m x out of the last layer
  const T* weights = nullptr;        // m sample weights (loss.h's weighted losses), or null; set per call
  const std::uint64_t* seeds = nullptr;  // one per dropout layer, written by the caller per step
  StepOptimizer optimizer = StepOptimizer::adam;
  AdamArgs adam;                     // lr and step set per call
  SgdArgs sgd;                       // lr set per call
  RmspropArgs rmsprop;               // lr set per call (weight_decay 0: decay below)
  AdagradArgs adagrad;               // lr set per call (weight_decay 0: decay below)
  double decay = 0;                  // sgd, rmsprop, adagrad: Optimizer._decay's weight_decay, p *= T(1 - lr * decay)
  mutable SgdEma ema;                // sgd: the ema form's state (written by each step)
  mutable MoreOptArgs more;          // nadam, adamax, lion (u_k, u_prod written by each Nadam step)
  std::vector<StepRange<T>> ranges;  // empty: nothing trainable
  std::vector<StepReg<T>> regs;      // the regularized variables, in trainer._reg_list's order
  const double* reg_coefs = nullptr; // (l1, l2) per reg, written by the caller before each call
  StepClip<T> clip;                  // none: no clipping
  std::vector<StepConstraint<T>> constraints;  // empty: none
  mutable std::vector<double> activity;  // the last forward's penalty of each activity node, in chain order
  double huber_delta = 1.0;              // huber: Huber.delta
  mutable std::vector<T> loss_scratch;   // huber: m x out, its elementwise losses
};

// Nadam._update, Adamax._update, Lion._update per range (step/optim_more.cpp): each NumPy
// operation of theirs in order, each result rounded to T (Optimizer._decay first).
template <class T> void more_optimizer_step(const StepPlan<T>& plan, double lr, std::int64_t step);
// Optimizer._decay (SGD, RMSprop, Adagrad, Nadam, Adamax, Lion), per range before the update:
// p *= T(1 - lr * weight_decay), a rounded product as NumPy's; nothing when weight_decay is 0.
template <class T> void decay_range(const StepRange<T>& r, double lr, double wd) {
  if (wd == 0.0) return;
  scale_inplace(r.p, r.n, static_cast<T>(1.0 - lr * wd));
}

// The plan's clipping (before the optimizer) and constraints (after it): step/clip.cpp.
template <class T> void clip_gradients(const StepPlan<T>& plan);
template <class T> void apply_constraints(const StepPlan<T>& plan);

// trainer.regularization on the plan's regs (after the backward, before the optimizer):
// their penalties added in order to total (the activity penalties' sum), their gradients
// added. Returns the penalty.
template <class T> double regularize(const StepPlan<T>& plan, double total);

// MeanAbsoluteError.value_and_grad (unweighted) into d (n values): d = pred - y, the loss
// abs_sum(d) / n, then d = sign(d) * T(1 / n) (step/losses_more.cpp: NumPy's roundings).
template <class T> double mae_loss(const T* pred, const T* y, T* d, std::size_t n);
// Huber.value_and_grad (unweighted) into e (n values), its elementwise losses into scratch (n):
// the loss abs_sum(scratch) / n, e = clip(pred - y, -delta, delta) * T(1 / n) (step/losses_more.cpp).
template <class T> double huber_loss(const T* pred, const T* y, T* e, T* scratch, std::size_t n, double delta);

// ActivityRegularization.forward's penalty of x (m x n): (l1 * abs_sum + l2 * sum_squares) / m,
// a zero factor skipped; and its backward, in place on dy (step/activity.cpp).
template <class T> double activity_penalty(const T* x, std::size_t m, std::size_t n, double l1, double l2);
template <class T> void activity_backward(const T* x, T* dy, std::size_t m, std::size_t n, double l1, double l2);

// One step on the batch x (m x in of the first layer) with labels (int64 ids for
// xent_ids, else T rows like the output: probabilities for xent_probs, targets for mse,
// 0/1 (or probability) targets of the sigmoids for bce_logits). Returns the loss; the
// penalty of the regularizers (0 without) into *penalty when not null. Called with the GIL released.
template <class T>
double run_step(const StepPlan<T>& plan, const T* x, const void* labels, double lr, std::int64_t step,
                double* penalty = nullptr);

// The time run_step spends in each part, summed over the steps since the last reset, when
// switched on (bench/compare_train.py's breakdown of the native step; off by default, then
// a step reads no clock). Parts: Dense layers' products (forward, and backward with their
// fused epilogues and act' passes), the other layers (Dropout, Activation,
// BatchNormalization), the loss, the optimizer.
struct StepProfile {
  double dense_forward = 0, dense_backward = 0, other_layers = 0, loss = 0, optimizer = 0;
  long steps = 0;
};
void set_step_profiling(bool on);  // on: reset the sums and start
StepProfile step_profile();

// Throws what run_step would throw for (lr, step) before writing anything (the
// optimizer's arguments): run_batches checks every step of a call before the first runs.
template <class T> void check_step(const StepPlan<T>& plan, double lr, std::int64_t step);

}  // namespace fastnn
