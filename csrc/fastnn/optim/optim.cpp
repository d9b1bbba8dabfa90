// Dispatch, argument checks and threading for the optimizer updates (baseline ISA).
#include "fastnn/optim/optim.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>
#include <string>

#include "fastnn/cpu.h"
#include "fastnn/optim/denormals.h"
#include "fastnn/parallel.h"

namespace fastnn {
namespace {

template <class T> const OptimKernelsT<T>& kernels_for() { return FASTNN_KERNELS(T, optim_kernels); }

// Minimum elements per thread. Measured for Adam, float32, on the 2-core Zen 5
// (best-of-1000 calls, 1 vs 2 threads): 2^14 elements break even (9.5 vs 9.2 us),
// 2^15 gain 1.24x, 2^16 1.48x, 2^18 1.64x. So two threads from 2^15 elements on.
constexpr std::size_t kGrain = 1 << 14;

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}
void require(bool ok, const char* name, const char* expected, double got) {
  if (!ok) throw std::invalid_argument(std::string(name) + ": expected " + expected + ", got " + num(got));
}
void check_unit(double x, const char* name) {
  require(x >= 0 && x < 1, name, "a value in [0, 1)", x);
}
// eps is added under the kernels' flush-to-zero mode: a subnormal eps (in T) would read
// as 0 there and turn 0/0 into NaN, so it must be a normal number of T.
template <class T> void check_eps(double eps) {
  require(std::isfinite(eps) && eps > 0, "eps", "a finite value > 0", eps);
  if (!(static_cast<T>(eps) >= std::numeric_limits<T>::min()))
    throw std::invalid_argument("eps: expected a normal " + std::string(sizeof(T) == 4 ? "float32" : "float64") +
                                " value >= " + num(std::numeric_limits<T>::min()) + ", got " + num(eps) +
                                " (a subnormal epsilon reads as 0 under the optimizer's flush-to-zero mode)");
}
void check_wd(double wd) {
  require(std::isfinite(wd) && wd >= 0, "weight_decay", "a finite value >= 0", wd);
}

bool g_flush_denormals = true;

// fn(begin, count) on chunks of [0, n), each thread under its own DenormalScope.
template <class Fn> void run_parallel(std::size_t n, Fn&& fn) {
  const bool flush = g_flush_denormals;
  parallel_for(n, kGrain, [&](std::size_t b, std::size_t e) {
    DenormalScope scope(flush);
    fn(b, e - b);
  });
}

}  // namespace

void check_lr(double lr) { require(std::isfinite(lr) && lr >= 0, "lr", "a finite value >= 0", lr); }

bool flush_denormals() { return g_flush_denormals; }
void set_flush_denormals(bool on) { g_flush_denormals = on; }

void check_sgd_args(const SgdArgs& a) {
  check_lr(a.lr);
  check_unit(a.momentum, "momentum");
  check_wd(a.weight_decay);
}

template <class T> void check_adam_args(const AdamArgs& a) {
  check_lr(a.lr);
  check_unit(a.beta1, "beta1");
  check_unit(a.beta2, "beta2");
  check_eps<T>(a.eps);
  check_wd(a.weight_decay);
  if (a.step < 1) throw std::invalid_argument("step: expected an integer >= 1, got " + std::to_string(a.step));
}

template <class T> void sgd_update(T* param, const T* grad, T* velocity, std::size_t n, const SgdArgs& a) {
  check_sgd_args(a);
  if (a.momentum != 0 && velocity == nullptr && n > 0)
    throw std::invalid_argument("velocity: expected an array when momentum > 0, got None");
  const SgdCoeffs<T> c{T(a.lr), T(a.momentum), T(a.weight_decay), a.momentum != 0, a.nesterov,
                       a.weight_decay != 0};
  const auto fn = kernels_for<T>().sgd;
  run_parallel(n, [&](std::size_t b, std::size_t k) {
    fn(param + b, grad + b, velocity ? velocity + b : nullptr, k, c);
  });
}

template <class T> void check_rmsprop_args(const RmspropArgs& a) {
  check_lr(a.lr);
  check_unit(a.rho, "rho");
  check_eps<T>(a.eps);
  check_wd(a.weight_decay);
  check_unit(a.momentum, "momentum");
}

template <class T> void check_adagrad_args(const AdagradArgs& a) {
  check_lr(a.lr);
  check_eps<T>(a.eps);
  check_wd(a.weight_decay);
}

template <class T>
void rmsprop_update(T* param, const T* grad, T* sq_avg, std::size_t n, const RmspropArgs& a, T* mom, T* mg) {
  check_rmsprop_args<T>(a);
  if (a.momentum != 0 && mom == nullptr && n > 0)
    throw std::invalid_argument("momentum_buffer: expected an array when momentum > 0, got None");
  if (a.centered && mg == nullptr && n > 0)
    throw std::invalid_argument("grad_avg: expected an array when centered, got None");
  const RmspropCoeffs<T> c{T(a.lr), T(a.rho), T(1 - a.rho), T(a.eps), T(a.weight_decay), T(a.momentum),
                           a.weight_decay != 0};
  T* const mb = a.momentum != 0 ? mom : nullptr;
  T* const ga = a.centered ? mg : nullptr;
  const auto fn = kernels_for<T>().rmsprop;
  run_parallel(n, [&](std::size_t b, std::size_t k) {
    fn(param + b, grad + b, sq_avg + b, mb ? mb + b : nullptr, ga ? ga + b : nullptr, k, c);
  });
}

template <class T> void adagrad_update(T* param, const T* grad, T* accum, std::size_t n, const AdagradArgs& a) {
  check_adagrad_args<T>(a);
  const AdagradCoeffs<T> c{T(a.lr), T(a.eps), T(a.weight_decay), a.weight_decay != 0};
  const auto fn = kernels_for<T>().adagrad;
  run_parallel(n, [&](std::size_t b, std::size_t k) { fn(param + b, grad + b, accum + b, k, c); });
}

template <class T> void adam_update(T* param, const T* grad, T* m, T* v, std::size_t n, const AdamArgs& a, T* vmax) {
  check_adam_args<T>(a);
  // bias corrections once per call, in double
  const double bc1 = 1.0 - std::pow(a.beta1, static_cast<double>(a.step));
  const double bc2 = 1.0 - std::pow(a.beta2, static_cast<double>(a.step));
  AdamCoeffs<T> c{};
  c.step_size = T(a.lr / bc1);
  c.inv_sqrt_bc2 = T(1.0 / std::sqrt(bc2));
  c.b1 = T(a.beta1);
  c.one_minus_b1 = T(1 - a.beta1);
  c.b2 = T(a.beta2);
  c.one_minus_b2 = T(1 - a.beta2);
  c.eps = T(a.eps);
  c.decoupled = a.decoupled && a.weight_decay != 0;
  c.l2 = !a.decoupled && a.weight_decay != 0;
  c.wd = T(a.weight_decay);
  c.decay_factor = T(1 - a.lr * a.weight_decay);
  const auto fn = kernels_for<T>().adam;
  run_parallel(n, [&](std::size_t b, std::size_t k) {
    fn(param + b, grad + b, m + b, v + b, vmax ? vmax + b : nullptr, k, c);
  });
}

#define FASTNN_INSTANTIATE(T)                                                                       \
  template void sgd_update<T>(T*, const T*, T*, std::size_t, const SgdArgs&);                      \
  template void rmsprop_update<T>(T*, const T*, T*, std::size_t, const RmspropArgs&, T*, T*);      \
  template void check_rmsprop_args<T>(const RmspropArgs&);                                         \
  template void check_adagrad_args<T>(const AdagradArgs&);                                         \
  template void adagrad_update<T>(T*, const T*, T*, std::size_t, const AdagradArgs&);              \
  template void adam_update<T>(T*, const T*, T*, T*, std::size_t, const AdamArgs&, T*);                \
  template void check_adam_args<T>(const AdamArgs&);
FASTNN_INSTANTIATE(float)
FASTNN_INSTANTIATE(double)
#undef FASTNN_INSTANTIATE

}  // namespace fastnn
