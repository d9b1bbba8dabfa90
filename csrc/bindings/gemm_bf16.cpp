// Bindings of the bf16 GEMM (fastnn/gemm/bf16): matmul_bf16 with the fused
// epilogue, the bf16 rounding, and the choice of bf16 kernel.
#include "fastnn/gemm/bf16/gemm_bf16.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <string>
#include <vector>

#include "common.h"
#include "fastnn/eltwise/eltwise.h"

namespace fastnn_py {

namespace {

std::string shape_of(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

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
  if (a.ndim() != 2) throw py::value_error("a: expected 2 dimensions, got " + std::to_string(a.ndim()));
  if (b.ndim() != 2) throw py::value_error("b: expected 2 dimensions, got " + std::to_string(b.ndim()));
  const py::ssize_t m = trans_a ? a.shape(1) : a.shape(0), k = trans_a ? a.shape(0) : a.shape(1);
  const py::ssize_t kb = trans_b ? b.shape(1) : b.shape(0), n = trans_b ? b.shape(0) : b.shape(1);
  if (k != kb)
    throw py::value_error("a, b: inner dimensions differ: op(a) is " + std::to_string(m) + " x " + std::to_string(k) +
                          " (a " + shape_of(a) + "), op(b) is " + std::to_string(kb) + " x " + std::to_string(n) +
                          " (b " + shape_of(b) + ")");
  if (out.ndim() != 2 || out.shape(0) != m || out.shape(1) != n)
    throw py::value_error("out: expected shape (" + std::to_string(m) + ", " + std::to_string(n) + "), got " +
                          shape_of(out));
  fastnn::GemmProblem<float> P;
  py::array bias_arr;
  if (!bias.is_none()) {
    bias_arr = bias.cast<py::array>();
    check_f32(bias_arr, "bias");
    if (bias_arr.ndim() != 1 || bias_arr.shape(0) != n)
      throw py::value_error("bias: expected shape (" + std::to_string(n) + ",), got " + shape_of(bias_arr));
    P.bias = cptr<float>(bias_arr);
  }
  if (!activation.is_none()) {
    P.act = fastnn::parse_activation(activation.cast<std::string>());
    P.has_act = P.act != fastnn::Act::identity;
    P.act_alpha = static_cast<float>(act_alpha);
  }
  P.trans_a = trans_a;
  P.trans_b = trans_b;
  P.m = m;
  P.n = n;
  P.k = k;
  P.a = cptr<float>(a);
  P.lda = a.shape(1);
  P.b = cptr<float>(b);
  P.ldb = b.shape(1);
  P.alpha = static_cast<float>(alpha);
  P.beta = static_cast<float>(beta);
  P.c = mptr<float>(out);
  P.ldc = n;
  // C is written while A, B and bias are still read: compute an overlapping
  // out in a temporary (holding out's old value) instead.
  const bool alias = overlap(out, a) || overlap(out, b) || (P.bias && overlap(out, bias_arr));
  py::gil_scoped_release nogil;
  if (!alias) {
    fastnn::gemm_bf16(P);
    return;
  }
  std::vector<float> tmp(P.c, P.c + P.m * P.n);
  float* dst = P.c;
  P.c = tmp.data();
  fastnn::gemm_bf16(P);
  std::copy(tmp.begin(), tmp.end(), dst);
}

// out = round_bf16(x), float32 values exactly representable in bfloat16.
void bf16_round(py::array x, py::array out) {
  check_f32(x, "x");
  check_f32(out, "out");
  require_writeable(out, "out");
  if (out.ndim() != x.ndim() || !std::equal(x.shape(), x.shape() + x.ndim(), out.shape()))
    throw py::value_error("out: expected shape " + shape_of(x) + " (as x), got " + shape_of(out));
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
