// Bindings of the bf16 GEMM (fastnn/gemm/bf16): matmul_bf16 with the fused
// epilogue, the bf16 rounding, and the choice of bf16 kernel.
#include "fastnn/gemm/bf16/gemm_bf16.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <string>
#include <vector>

#include "product.h"
#include "fastnn/eltwise/eltwise.h"

namespace fastnn_py {

namespace {

bool overlap(const py::array& x, const py::array& y) {
  if (x.nbytes() == 0 || y.nbytes() == 0) return false;
  const char* x0 = static_cast<const char*>(x.data());
  const char* y0 = static_cast<const char*>(y.data());
  return x0 < y0 + y.nbytes() && y0 < x0 + x.nbytes();
}

// float32, C-contiguous, aligned (the bf16 GEMM takes float32 arrays only).
void check_f32(const py::array& a, const char* name) {
  if (!same_dtype(a.dtype(), py::dtype::of<float>()))
    throw py::type_error(std::string(name) + ": expected dtype float32 (bfloat16 operations take float32 arrays), got " +
                         dtype_str(a));
  require_contiguous(a, name);
}

// out = act(alpha * bf16(op(a)) @ bf16(op(b)) + beta * out + bias)
void matmul_bf16(py::array a, py::array b, py::array out, bool trans_a, bool trans_b, double alpha, double beta,
                 py::object bias, py::object activation, double act_alpha) {
  check_f32(a, "a");
  check_f32(b, "b");
  check_f32(out, "out");
  require_writeable(out, "out");
  const ProductShape s = product_shape(a, b, out, trans_a, trans_b);
  const py::ssize_t n = s.n;
  fastnn::GemmProblem<float> P = product_problem<float>(a, b, out, s, trans_a, trans_b, alpha, beta);
  py::array bias_arr;
  if (!bias.is_none()) {
    bias_arr = bias.cast<py::array>();
    check_f32(bias_arr, "bias");
    if (bias_arr.ndim() != 1 || bias_arr.shape(0) != n)
      throw py::value_error("bias: expected shape (" + std::to_string(n) + ",), got " + shape_str(bias_arr));
    P.bias = cptr<float>(bias_arr);
  }
  set_activation(P, activation, act_alpha);
  const bool alias = overlap(out, a) || overlap(out, b) || (P.bias && overlap(out, bias_arr));
  run_product(P, alias, [](const fastnn::GemmProblem<float>& p) { fastnn::gemm_bf16(p); });
}

// out = round_bf16(x), float32 values exactly representable in bfloat16.
void bf16_round(py::array x, py::array out) {
  check_f32(x, "x");
  check_f32(out, "out");
  require_writeable(out, "out");
  if (out.ndim() != x.ndim() || !std::equal(x.shape(), x.shape() + x.ndim(), out.shape()))
    throw py::value_error("out: expected shape " + shape_str(x) + " (as x), got " + shape_str(out));
  if (overlap(x, out) && x.data() != out.data())
    throw py::value_error("out: overlaps x partially (only out is x is allowed)");
  const float* px = cptr<float>(x);
  float* po = mptr<float>(out);
  const std::size_t n = static_cast<std::size_t>(x.size());
  py::gil_scoped_release nogil;
  fastnn::round_bf16_array(px, po, n);
}

// FASTNN_ISA naming an explicit path below avx512_bf16 forces the bf16
// fallback from import on (as __init__.py reads it for select_isa); switching
// ISAs later with select_isa leaves the bf16 choice alone.
void apply_env() {
  const char* env = std::getenv("FASTNN_ISA");
  if (!env) return;
  std::string s(env);
  s.erase(0, s.find_first_not_of(" \t\n\r\f\v"));
  s.erase(s.find_last_not_of(" \t\n\r\f\v") + 1);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (s == "scalar" || s == "avx2" || s == "avx512") fastnn::select_bf16_kernel("fallback");
}

}  // namespace

void bind_gemm_bf16(py::module_& m) {
  m.def("matmul_bf16", &matmul_bf16, py::arg("a"), py::arg("b"), py::arg("out"), py::arg("trans_a"),
        py::arg("trans_b"), py::arg("alpha"), py::arg("beta"), py::arg("bias"), py::arg("activation"),
        py::arg("act_alpha"),
        "out = act(alpha * bf16(op(a)) @ bf16(op(b)) + beta * out + bias), float32 accumulation; float32 arrays.");
  m.def("bf16_round", &bf16_round, py::arg("x"), py::arg("out"),
        "out = x rounded to bfloat16 (nearest even; NaN kept; subnormals to signed zero), as float32.");
  m.def("select_bf16_kernel", &fastnn::select_bf16_kernel, py::arg("name"),
        "The bf16 GEMM's implementation: 'auto', 'avx512_bf16' or 'fallback' (round, then the float32 GEMM).");
  m.def("bf16_kernel", []() { return std::string(fastnn::bf16_kernel_name()); },
        "The bf16 implementation a call would use now: 'avx512_bf16' or 'fallback'.");
  m.def("bf16_kernel_available", &fastnn::bf16_kernel_available, "AVX512-BF16 in the CPU, the OS and this build.");
  apply_env();
}

}  // namespace fastnn_py
