// Dispatch and threading for the eltwise family (baseline ISA).
#include "fastnn/eltwise/eltwise.h"

#include <cassert>
#include <stdexcept>

#include "fastnn/cpu.h"
#include "fastnn/parallel.h"

namespace fastnn {
namespace {

// The registry. leaky_relu's default negative slope is Keras 3's
// keras.activations.leaky_relu (negative_slope=0.2), which is what the string
// "leaky_relu" means in Keras; the LeakyReLU *layer* has its own default
// (0.3 in Keras 3), a layer hyperparameter, not this table's.
constexpr ActivationInfo kRegistry[] = {
    {"linear", Act::identity, "linear", false, 0.0, GradNeeds::none},
    {"identity", Act::identity, "linear", false, 0.0, GradNeeds::none},
    {"sigmoid", Act::sigmoid, "sigmoid", false, 0.0, GradNeeds::x_or_y},
    {"tanh", Act::tanh, "tanh", false, 0.0, GradNeeds::x_or_y},
    {"relu", Act::relu, "relu", false, 0.0, GradNeeds::x_or_y},
    {"leaky_relu", Act::leaky_relu, "leaky_relu", true, 0.2, GradNeeds::x_or_y},
    {"elu", Act::elu, "elu", true, 1.0, GradNeeds::x_or_y},
    {"selu", Act::selu, "selu", false, 0.0, GradNeeds::x_or_y},
    {"swish", Act::swish, "swish", false, 0.0, GradNeeds::x},
    {"silu", Act::swish, "swish", false, 0.0, GradNeeds::x},
    {"softplus", Act::softplus, "softplus", false, 0.0, GradNeeds::x},
    // alpha: keras.activations.gelu's approximate flag, 0 (erf, Keras's default) or 1 (tanh form)
    {"gelu", Act::gelu, "gelu", true, 0.0, GradNeeds::x},
    // Keras 3 (keras.activations, JAX backend); the piecewise ones have gradient 0 at their kinks
    {"relu6", Act::relu6, "relu6", false, 0.0, GradNeeds::x_or_y},
    {"hard_sigmoid", Act::hard_sigmoid, "hard_sigmoid", false, 0.0, GradNeeds::x_or_y},  // relu6(x + 3) / 6
    {"hard_silu", Act::hard_silu, "hard_silu", false, 0.0, GradNeeds::x},
    {"hard_swish", Act::hard_silu, "hard_silu", false, 0.0, GradNeeds::x},
    {"softsign", Act::softsign, "softsign", false, 0.0, GradNeeds::x},  // (1 - |y|)^2 would cancel
    {"exponential", Act::exponential, "exponential", false, 0.0, GradNeeds::x_or_y},
    {"mish", Act::mish, "mish", false, 0.0, GradNeeds::x},
    {"log_sigmoid", Act::log_sigmoid, "log_sigmoid", false, 0.0, GradNeeds::x},  // 1 - exp(y) would cancel
    {"celu", Act::celu, "celu", true, 1.0, GradNeeds::x_or_y},  // alpha: keras.activations.celu's
    {"hard_tanh", Act::hard_tanh, "hard_tanh", false, 0.0, GradNeeds::x_or_y},
    {"squareplus", Act::squareplus, "squareplus", true, 4.0, GradNeeds::x_or_y},  // alpha: Keras's b
    {"sparse_plus", Act::sparse_plus, "sparse_plus", false, 0.0, GradNeeds::x_or_y},
    // x - tanh(x): d = tanh(x)^2 from x (from y, tanh(x) = x - y would cancel for large x)
    {"tanh_shrink", Act::tanh_shrink, "tanh_shrink", false, 0.0, GradNeeds::x},
    // alpha: Keras's threshold (default 0.5); d = 1 or 0, from x or y (shrink_acts_impl.h)
    {"hard_shrink", Act::hard_shrink, "hard_shrink", true, 0.5, GradNeeds::x_or_y},
    {"soft_shrink", Act::soft_shrink, "soft_shrink", true, 0.5, GradNeeds::x_or_y},
};

const ActivationInfo& info(Act act) {
  for (const auto& a : kRegistry)
    if (a.act == act) return a;
  return kRegistry[0];  // unreachable: every Act has a row (checked by the tests through _core.activations())
}

template <class T> const EltwiseKernelsT<T>& kernels_for() { return FASTNN_KERNELS(T, eltwise_kernels); }

// Minimum elements per thread, measured with bench/compare.py (eltwise section):
// below these a second thread costs more than it saves.
constexpr std::size_t kGrainCheap = 1 << 16;      // relu family, identity
constexpr std::size_t kGrainTranscendental = 1 << 14;

// Outputs at least this large bypass the cache (non-temporal stores): they
// cannot stay in a typical last-level cache anyway, and skipping the
// read-for-ownership saves a third of the memory traffic (bench/compare.py eltwise, 16M).
constexpr std::size_t kStreamingBytes = std::size_t(16) << 20;

std::size_t grain(Act act) {
  switch (act) {
    case Act::identity: case Act::relu: case Act::leaky_relu: case Act::relu6: case Act::hard_sigmoid:
    case Act::hard_silu: case Act::hard_tanh: case Act::sparse_plus: case Act::hard_shrink:
    case Act::soft_shrink: return kGrainCheap;
    default: return kGrainTranscendental;
  }
}

}  // namespace

const ActivationInfo* activation_registry(std::size_t* n) {
  *n = sizeof(kRegistry) / sizeof(kRegistry[0]);
  return kRegistry;
}

const char* grad_needs_name(GradNeeds g) {
  constexpr const char* kNames[] = {"none", "x", "x_or_y"};  // in the order of enum GradNeeds
  return kNames[static_cast<int>(g)];
}

Act parse_activation(const std::string& name) {
  for (const auto& a : kRegistry)
    if (name == a.name) return a.act;
  std::string known;
  for (const auto& a : kRegistry) known += std::string(known.empty() ? "" : ", ") + a.name;
  throw std::invalid_argument("activation: unknown name '" + name + "'; known: " + known);
}

const char* activation_name(Act act) { return info(act).canonical; }
double default_activation_alpha(Act act) { return info(act).default_alpha; }
GradNeeds activation_grad_needs(Act act) { return info(act).grad_needs; }

void check_activation_alpha(Act act, double alpha, const char* argname) {
  if (act == Act::gelu && alpha != 0.0 && alpha != 1.0)
    throw std::invalid_argument(std::string(argname) + ": gelu's alpha is its approximate flag, 0 (exact, erf) or "
                                "1 (tanh form), got " + std::to_string(alpha));
  if (act == Act::celu && alpha == 0.0)
    throw std::invalid_argument(std::string(argname) + ": celu's alpha divides x, expected a nonzero number, got 0");
  if (act == Act::squareplus && !(alpha > 0.0))
    throw std::invalid_argument(std::string(argname) + ": squareplus's alpha is its b, expected b > 0, got " +
                                std::to_string(alpha));
}

template <class T>
void activation_forward(Act act, const T* x, T* y, std::size_t n, T alpha) {
  const auto fn = kernels_for<T>().forward;
  const bool streaming = n * sizeof(T) >= kStreamingBytes;
  parallel_for(n, grain(act), [&](std::size_t b, std::size_t e) { fn(act, x + b, y + b, e - b, alpha, streaming); });
}

template <class T>
void activation_backward(Act act, const T* dy, const T* x, const T* y, T* dx, std::size_t n, T alpha) {
  // the bindings checked the inputs; this is an internal invariant
  assert(!(activation_grad_needs(act) == GradNeeds::x && x == nullptr));
  assert(!(activation_grad_needs(act) != GradNeeds::none && x == nullptr && y == nullptr));
  const auto fn = kernels_for<T>().backward;
  const bool streaming = n * sizeof(T) >= kStreamingBytes;
  parallel_for(n, grain(act), [&](std::size_t b, std::size_t e) {
    fn(act, dy + b, x ? x + b : nullptr, y ? y + b : nullptr, dx + b, e - b, alpha, streaming);
  });
}

template <class T>
void erf_values(const T* x, T* y, std::size_t n) {
  const auto fn = kernels_for<T>().erf;
  parallel_for(n, kGrainTranscendental, [&](std::size_t b, std::size_t e) { fn(x + b, y + b, e - b); });
}

template <class T>
void softmax_rows(const T* x, T* y, std::size_t rows, std::size_t cols, bool log) {
  const auto fn = kernels_for<T>().softmax;
  const std::size_t grain_rows = std::max<std::size_t>(1, kGrainTranscendental / std::max<std::size_t>(cols, 1));
  parallel_for(rows, grain_rows, [&](std::size_t b, std::size_t e) {
    fn(x + b * cols, y + b * cols, e - b, cols, log);
  }, 1);
}

template void activation_forward<float>(Act, const float*, float*, std::size_t, float);
template void activation_forward<double>(Act, const double*, double*, std::size_t, double);
template void activation_backward<float>(Act, const float*, const float*, const float*, float*, std::size_t, float);
template void activation_backward<double>(Act, const double*, const double*, const double*, double*, std::size_t, double);
template void erf_values<float>(const float*, float*, std::size_t);
template void erf_values<double>(const double*, double*, std::size_t);
template void softmax_rows<float>(const float*, float*, std::size_t, std::size_t, bool);
template void softmax_rows<double>(const double*, double*, std::size_t, std::size_t, bool);

}  // namespace fastnn
