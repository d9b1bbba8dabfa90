// Activations (forward and gradient) and row-wise softmax / log-softmax.
//
// Shapes: activations are elementwise over n contiguous values; softmax works
// on a row-major (rows, cols) matrix, one row at a time.
#pragma once
#include "fastnn/dispatch.h"
#include <cstddef>
#include <string>

namespace fastnn {

enum class Act : int {
  identity = 0, relu, leaky_relu, elu, selu, sigmoid, tanh, swish, softplus, gelu,
  relu6, hard_sigmoid, hard_silu, softsign, exponential, mish, log_sigmoid, celu, hard_tanh,
  squareplus, sparse_plus, tanh_shrink, hard_shrink, soft_shrink
};

// What an activation's gradient needs from the forward pass: nothing, the input
// x, or either the input x or the output y (the kernel uses y when given).
enum class GradNeeds : int { none = 0, x, x_or_y };

// The activation registry: one row per name (aliases included). ops.py,
// activations.py and reference.py read it through _core.activations().
struct ActivationInfo {
  const char* name;       // as accepted by ops.activation and Dense(activation=...)
  Act act;
  const char* canonical;  // the Keras name this one is an alias of (itself if none)
  bool takes_alpha;       // leaky_relu's negative slope, elu's alpha, gelu's approximate flag (0 or 1), celu's alpha, squareplus's b,
                          // hard_shrink's and soft_shrink's threshold
  double default_alpha;   // used when alpha is not given (0 when !takes_alpha)
  GradNeeds grad_needs;
};
// All rows, in a fixed order; count in *n.
const ActivationInfo* activation_registry(std::size_t* n);
const char* grad_needs_name(GradNeeds g);  // "none", "x", "x_or_y"

// Parses a registry name; throws std::invalid_argument naming the known ones.
Act parse_activation(const std::string& name);
const char* activation_name(Act act);      // the canonical name
double default_activation_alpha(Act act);  // from the registry
GradNeeds activation_grad_needs(Act act);  // from the registry
// Throws std::invalid_argument naming `argname` when alpha is outside what `act` takes:
// gelu's alpha is its approximate flag, 0 (erf) or 1 (tanh form); celu's is nonzero (it
// divides x); squareplus's (its b) is > 0; other alphas (the shrinks' thresholds too) are any
// real number (the bindings check finiteness).
void check_activation_alpha(Act act, double alpha, const char* argname);

constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSeluScale = 1.0507009873554804934193349852946;

// y = act(x), elementwise, n values. x may equal y (in place).
template <class T> void activation_forward(Act act, const T* x, T* y, std::size_t n, T alpha);
// dx = dy * act'(x), given x (may be null) and/or y = act(x) (may be null), per
// activation_grad_needs(). dx may alias dy.
template <class T>
void activation_backward(Act act, const T* dy, const T* x, const T* y, T* dx, std::size_t n, T alpha);
// y = erf(x), elementwise (the vector erf behind gelu; tests measure its error).
template <class T> void erf_values(const T* x, T* y, std::size_t n);
// Row-wise softmax (log_softmax when `log`) of a (rows, cols) matrix; y may equal x.
template <class T> void softmax_rows(const T* x, T* y, std::size_t rows, std::size_t cols, bool log);

// Per-ISA single-threaded kernels behind the functions above.
template <class T> struct EltwiseKernelsT {
  // last argument: write with non-temporal stores (outputs larger than the cache)
  void (*forward)(Act, const T*, T*, std::size_t, T, bool);
  void (*backward)(Act, const T*, const T*, const T*, T*, std::size_t, T, bool);
  void (*softmax)(const T*, T*, std::size_t, std::size_t, bool);
  void (*erf)(const T*, T*, std::size_t);
};
FASTNN_DECLARE_KERNELS(EltwiseKernels, EltwiseKernelsT, eltwise_kernels)

}  // namespace fastnn
