// Dispatch and threading for the eltwise family (baseline ISA).
#include "fastnn/eltwise/eltwise.h"

#include <stdexcept>

#include "fastnn/cpu.h"
#include "fastnn/parallel.h"

namespace fastnn {
namespace {

struct ActInfo { const char* name; Act act; };
constexpr ActInfo kActs[] = {
    {"identity", Act::identity}, {"linear", Act::identity}, {"relu", Act::relu},
    {"leaky_relu", Act::leaky_relu}, {"elu", Act::elu}, {"selu", Act::selu},
    {"sigmoid", Act::sigmoid}, {"tanh", Act::tanh}, {"swish", Act::swish},
    {"silu", Act::swish}, {"softplus", Act::softplus},
};

template <class T> const EltwiseKernelsT<T>& kernels_for() { return dtype_half<T>(FASTNN_ACTIVE_TABLE(eltwise_kernels)); }

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
    case Act::identity: case Act::relu: case Act::leaky_relu: return kGrainCheap;
    default: return kGrainTranscendental;
  }
}

}  // namespace

Act parse_activation(const std::string& name) {
  for (const auto& a : kActs)
    if (name == a.name) return a.act;
  std::string known;
  for (const auto& a : kActs) known += std::string(known.empty() ? "" : ", ") + a.name;
  throw std::invalid_argument("activation: unknown name '" + name + "'; known: " + known);
}

const char* activation_name(Act act) {
  for (const auto& a : kActs)
    if (a.act == act) return a.name;
  return "?";
}

double default_activation_alpha(Act act) {
  if (act == Act::leaky_relu) return 0.01;
  if (act == Act::elu) return 1.0;
  return 0.0;
}

GradNeeds activation_grad_needs(Act act) {
  switch (act) {
    case Act::identity: return GradNeeds::none;
    case Act::swish: case Act::softplus: return GradNeeds::x_only;
    case Act::sigmoid: case Act::tanh: return GradNeeds::y_only_or_x;
    default: return GradNeeds::x_or_y;
  }
}

template <class T>
void activation_forward(Act act, const T* x, T* y, std::size_t n, T alpha) {
  const auto fn = kernels_for<T>().forward;
  const bool streaming = n * sizeof(T) >= kStreamingBytes;
  parallel_for(n, grain(act), [&](std::size_t b, std::size_t e) { fn(act, x + b, y + b, e - b, alpha, streaming); });
}

template <class T>
void activation_backward(Act act, const T* dy, const T* x, const T* y, T* dx, std::size_t n, T alpha) {
  const GradNeeds needs = activation_grad_needs(act);
  if (needs == GradNeeds::x_only && x == nullptr)
    throw std::invalid_argument(std::string("activation_grad: '") + activation_name(act) +
                                "' needs the forward input x");
  if (needs != GradNeeds::none && x == nullptr && y == nullptr)
    throw std::invalid_argument("activation_grad: give x or y");
  const auto fn = kernels_for<T>().backward;
  const bool streaming = n * sizeof(T) >= kStreamingBytes;
  parallel_for(n, grain(act), [&](std::size_t b, std::size_t e) {
    fn(act, dy + b, x ? x + b : nullptr, y ? y + b : nullptr, dx + b, e - b, alpha, streaming);
  });
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
template void softmax_rows<float>(const float*, float*, std::size_t, std::size_t, bool);
template void softmax_rows<double>(const double*, double*, std::size_t, std::size_t, bool);

}  // namespace fastnn
