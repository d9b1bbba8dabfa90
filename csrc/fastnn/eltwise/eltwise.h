// Activations (forward and gradient) and row-wise softmax / log-softmax.
//
// Shapes: activations are elementwise over n contiguous values; softmax works
// on a row-major (rows, cols) matrix, one row at a time.
#pragma once
#include <cstddef>
#include <string>

namespace fastnn {

enum class Act : int {
  identity = 0, relu, leaky_relu, elu, selu, sigmoid, tanh, swish, softplus
};

// Parses "relu", "silu" (= swish), ...; throws std::invalid_argument naming the known ones.
Act parse_activation(const std::string& name);
const char* activation_name(Act act);
double default_activation_alpha(Act act);  // leaky_relu 0.01, elu 1.0, others 0
// Which forward value the gradient needs: x (input), y (output), or either.
enum class GradNeeds : int { none = 0, x_only, y_only_or_x, x_or_y };
GradNeeds activation_grad_needs(Act act);

constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSeluScale = 1.0507009873554804934193349852946;

// y = act(x), elementwise, n values. x may equal y (in place).
template <class T> void activation_forward(Act act, const T* x, T* y, std::size_t n, T alpha);
// dx = dy * act'(x), given x (may be null) and/or y = act(x) (may be null), per
// activation_grad_needs(). dx may alias dy.
template <class T>
void activation_backward(Act act, const T* dy, const T* x, const T* y, T* dx, std::size_t n, T alpha);
// Row-wise softmax (log_softmax when `log`) of a (rows, cols) matrix; y may equal x.
template <class T> void softmax_rows(const T* x, T* y, std::size_t rows, std::size_t cols, bool log);

// Per-ISA single-threaded kernels behind the functions above.
template <class T> struct EltwiseKernelsT {
  // last argument: write with non-temporal stores (outputs larger than the cache)
  void (*forward)(Act, const T*, T*, std::size_t, T, bool);
  void (*backward)(Act, const T*, const T*, const T*, T*, std::size_t, T, bool);
  void (*softmax)(const T*, T*, std::size_t, std::size_t, bool);
};
struct EltwiseKernels {
  EltwiseKernelsT<float> f32;
  EltwiseKernelsT<double> f64;
};

namespace scalar { extern const EltwiseKernels eltwise_kernels; }
namespace avx2 { extern const EltwiseKernels eltwise_kernels; }
namespace avx512 { extern const EltwiseKernels eltwise_kernels; }

}  // namespace fastnn
