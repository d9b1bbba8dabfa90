// Fused optimizer updates, in place, one pass over flat arrays of n values.
//
// param, grad and the state arrays (velocity, sq_avg, accum, m, v) are all n
// contiguous values of one dtype; grad is read only. Each element is updated
// independently, so results are bitwise identical for any thread count.
// Hyper-parameters are validated here too (std::invalid_argument naming the
// argument), before anything is written.
#pragma once
#include "fastnn/dispatch.h"
#include <cstddef>
#include <cstdint>

namespace fastnn {

struct SgdArgs {
  double lr = 0, momentum = 0, weight_decay = 0;
  bool nesterov = false;
};
struct RmspropArgs {
  double lr = 0, rho = 0.9, eps = 1e-7, weight_decay = 0;
  double momentum = 0;    // > 0: the momentum buffer (Keras's RMSprop momentum)
  bool centered = false;  // the mean gradient's square subtracted in the denominator
};
struct AdagradArgs {
  double lr = 0, eps = 1e-7, weight_decay = 0;
};
struct AdamArgs {
  double lr = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-7, weight_decay = 0;
  std::int64_t step = 1;
  bool decoupled = false;
};

// g = grad + wd*p;  plain: p -= lr*g;  momentum: vel = mu*vel - lr*g, p += vel;
// Nesterov: p += mu*vel - lr*g (after the velocity update). vel may be null when mu == 0.
template <class T> void sgd_update(T* param, const T* grad, T* velocity, std::size_t n, const SgdArgs& a);
// s = rho*s + (1-rho)*g^2;  centered: mg = rho*mg + (1-rho)*g, d = sqrt(max(s - mg^2, 0)) + eps,
// else d = sqrt(s) + eps;  inc = lr*g / d;  momentum (Keras's form): mom = mu*mom + inc, p -= mom;
// else p -= inc. mom may be null when momentum == 0, mg when not centered.
template <class T> void rmsprop_update(T* param, const T* grad, T* sq_avg, std::size_t n, const RmspropArgs& a,
                                      T* mom = nullptr, T* mg = nullptr);
// acc += g^2;  p -= lr*g / (sqrt(acc) + eps)
template <class T> void adagrad_update(T* param, const T* grad, T* accum, std::size_t n, const AdagradArgs& a);
// m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2;
// p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
// (= lr * mhat / (sqrt(vhat) + eps)); L2 decay adds wd*p to g, decoupled (AdamW)
// scales p by (1 - lr*wd) first.
// vmax (AMSGrad, null: plain Adam): the running maximum of v, used in place of v in the denominator
template <class T> void adam_update(T* param, const T* grad, T* m, T* v, std::size_t n, const AdamArgs& a,
                                   T* vmax = nullptr);

// The argument checks of sgd_update / adam_update alone (std::invalid_argument naming the
// argument): for a caller that must refuse a bad step before it writes anything.
// Throws std::invalid_argument naming lr unless it is finite and >= 0 (every optimizer).
void check_lr(double lr);
void check_sgd_args(const SgdArgs& a);
template <class T> void check_adam_args(const AdamArgs& a);
template <class T> void check_rmsprop_args(const RmspropArgs& a);
template <class T> void check_adagrad_args(const AdagradArgs& a);

// Per-call constants in the kernel's dtype, computed once by the dispatcher.
template <class T> struct SgdCoeffs { T lr, mu, wd; bool momentum, nesterov, decay; };
template <class T> struct RmspropCoeffs { T lr, rho, one_minus_rho, eps, wd, mu; bool decay; };
template <class T> struct AdagradCoeffs { T lr, eps, wd; bool decay; };
template <class T> struct AdamCoeffs {
  T step_size;      // lr / (1 - b1^t)
  T inv_sqrt_bc2;   // 1 / sqrt(1 - b2^t)
  T b1, one_minus_b1, b2, one_minus_b2, eps;
  T wd;             // L2: g += wd*p
  T decay_factor;   // decoupled: p *= 1 - lr*wd
  bool l2, decoupled;
};

// Per-ISA single-threaded kernels over the range they are given.
template <class T> struct OptimKernelsT {
  void (*sgd)(T*, const T*, T*, std::size_t, const SgdCoeffs<T>&);
  void (*rmsprop)(T*, const T*, T*, T*, T*, std::size_t, const RmspropCoeffs<T>&);  // ..., sq, mom|null, mg|null
  void (*adagrad)(T*, const T*, T*, std::size_t, const AdagradCoeffs<T>&);
  void (*adam)(T*, const T*, T*, T*, T*, std::size_t, const AdamCoeffs<T>&);  // ..., vmax (or null), n
};
FASTNN_DECLARE_KERNELS(OptimKernels, OptimKernelsT, optim_kernels)

}  // namespace fastnn
