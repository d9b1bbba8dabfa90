// Bindings of the bf16 GEMM (fastnn/gemm/bf16): matmul_bf16 with the fused
// epilogue, the bf16 rounding, and the choice of bf16 kernel.
#include "fastnn/gemm/bf16/gemm_bf16.h"
#include "fastnn/gemm/bf16/dense_bf16.h"

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

// float32, or uint16 (bfloat16 bit patterns) where `bits` is allowed; true for uint16.
bool check_f32_or_bf16(const py::array& a, const char* name) {
  if (!same_dtype(a.dtype(), py::dtype::of<std::uint16_t>())) {
    check_f32(a, name);
    return false;
  }
  require_contiguous(a, name);
  return true;
}

// out = act(alpha * bf16(op(a)) @ bf16(op(b)) + beta * out + bias); a, b and
// out may be bfloat16 bit patterns (uint16): see gemm_bf16.h's Bf16Io.
void matmul_bf16(py::array a, py::array b, py::array out, bool trans_a, bool trans_b, double alpha, double beta,
                 py::object bias, py::object activation, double act_alpha) {
  const bool a16 = check_f32_or_bf16(a, "a"), b16 = check_f32_or_bf16(b, "b"), c16 = check_f32_or_bf16(out, "out");
  require_writeable(out, "out");
  if (c16 && beta != 0.0)
    throw py::value_error("beta: a bfloat16 (uint16) out is only written, so beta must be 0, got " + std::to_string(beta));
  const ProductShape s = product_shape(a, b, out, trans_a, trans_b);
  const py::ssize_t n = s.n;
  fastnn::GemmProblem<float> P = product_problem<float>(a, b, out, s, trans_a, trans_b, alpha, beta);
  fastnn::Bf16Io io;  // bf16 bits stand in for P's float32 pointers
  if (a16) io.a = static_cast<const std::uint16_t*>(a.data()), P.a = nullptr;
  if (b16) io.b = static_cast<const std::uint16_t*>(b.data()), P.b = nullptr;
  if (c16) io.c = static_cast<std::uint16_t*>(out.mutable_data()), P.c = nullptr;
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
  if (!c16) {
    run_product(P, alias, [&io](const fastnn::GemmProblem<float>& p) { fastnn::gemm_bf16(p, io); });
    return;
  }
  py::gil_scoped_release nogil;
  if (!alias) {
    fastnn::gemm_bf16(P, io);
    return;
  }
  std::vector<std::uint16_t> tmp(P.m * P.n);  // beta is 0: out's old value is not needed
  std::uint16_t* dst = io.c;
  io.c = tmp.data();
  fastnn::gemm_bf16(P, io);
  std::copy(tmp.begin(), tmp.end(), dst);
}

// Conversions between float32 and bfloat16 bit patterns (uint16), same shapes.
void bf16_pack(py::array x, py::array out, bool to_bits) {
  const bool x16 = check_f32_or_bf16(x, "x"), o16 = check_f32_or_bf16(out, "out");
  if (x16 == to_bits || o16 != to_bits)
    throw py::type_error(std::string("x, out: expected ") + (to_bits ? "float32 and uint16" : "uint16 and float32") +
                         ", got " + dtype_str(x) + " and " + dtype_str(out));
  require_writeable(out, "out");
  if (out.ndim() != x.ndim() || !std::equal(x.shape(), x.shape() + x.ndim(), out.shape()))
    throw py::value_error("out: expected shape " + shape_str(x) + " (as x), got " + shape_str(out));
  if (overlap(x, out)) throw py::value_error("out: overlaps x (a conversion cannot run in place)");
  const std::size_t n = static_cast<std::size_t>(x.size());
  const void* px = x.data();
  void* po = out.mutable_data();
  py::gil_scoped_release nogil;
  if (to_bits)
    fastnn::to_bf16_array(static_cast<const float*>(px), static_cast<std::uint16_t*>(po), n);
  else
    fastnn::from_bf16_array(static_cast<const std::uint16_t*>(px), static_cast<float*>(po), n);
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

// A float32 (or, with bits, uint16) (rows, cols) C-contiguous array, or None where
// optional; written ones writeable. Null when None.
const py::array* dense_arg(const py::object& o, py::array& keep, std::size_t rows, std::size_t cols, const char* name,
                           bool bits, bool write, bool optional, bool* is16 = nullptr) {
  if (optional && o.is_none()) return nullptr;
  keep = array_arg(o, name);
  const bool b16 = bits ? check_f32_or_bf16(keep, name) : (check_f32(keep, name), false);
  if (is16) *is16 = b16;
  if (cols == 0) require_vector(keep, rows, name);
  else require_matrix(keep, rows, cols, name);
  if (write) require_writeable(keep, name);
  return &keep;
}

// A mixed Dense layer's backward (dense_bf16.h): dy *= act'(y) in place, then
// dW = x^T dz with db = its column sums, and dx = dz W^T, each when given.
// x and y float32 or bfloat16 bits; every written array disjoint from the rest.
void dense_bf16_backward(py::object x, py::object y, py::object W, py::object dy, const std::string& activation,
                         double act_alpha, py::object dW, py::object db, py::object dx) {
  py::array xa, ya, dWa, dba, dxa;
  py::array Wa = array_arg(W, "W"), dya = array_arg(dy, "dy");
  check_f32(Wa, "W");
  if (Wa.ndim() != 2) throw py::value_error("W: expected 2 dimensions, got shape " + shape_str(Wa));
  const std::size_t in = Wa.shape(0), out = Wa.shape(1);
  check_f32(dya, "dy");
  if (dya.ndim() != 2 || static_cast<std::size_t>(dya.shape(1)) != out)
    throw py::value_error("dy: expected shape (m, " + std::to_string(out) + "), got " + shape_str(dya));
  require_writeable(dya, "dy");
  const std::size_t m = dya.shape(0);
  bool x16 = false, y16 = false;
  dense_arg(x, xa, m, in, "x", true, false, false, &x16);
  dense_arg(y, ya, m, out, "y", true, false, false, &y16);
  const fastnn::Act act = fastnn::parse_activation(activation);
  fastnn::check_activation_alpha(act, act_alpha, "act_alpha");
  if (fastnn::activation_grad_needs(act) == fastnn::GradNeeds::x)
    throw py::value_error("activation: expected one whose gradient needs only y, got '" + activation + "'");
  const py::array* pdW = dense_arg(dW, dWa, in, out, "dW", false, true, true);
  const py::array* pdb = dense_arg(db, dba, out, 0, "db", false, true, true);
  const py::array* pdx = dense_arg(dx, dxa, m, in, "dx", false, true, true);
  if (pdb && !pdW) throw py::value_error("db: given without dW (the bias gradient is summed with dW)");
  require_disjoint({Named(&dya, "dy"), Named(pdW, "dW"), Named(pdb, "db"), Named(pdx, "dx")});
  for (const py::array* o : std::initializer_list<const py::array*>{&dya, pdW, pdb, pdx}) {
    if (!o) continue;
    require_no_overlap(xa, *o, "x", "dy, dW, db, dx");
    require_no_overlap(ya, *o, "y", "dy, dW, db, dx");
    require_no_overlap(Wa, *o, "W", "dy, dW, db, dx");
  }
  fastnn::DenseBf16 L;
  L.m = m;
  L.in = in;
  L.out = out;
  if (x16) L.x16 = static_cast<const std::uint16_t*>(xa.data()); else L.x = cptr<float>(xa);
  if (y16) L.y16 = static_cast<std::uint16_t*>(const_cast<void*>(ya.data()));  // only read here
  else L.y = const_cast<float*>(cptr<float>(ya));
  L.W = cptr<float>(Wa);
  L.act = act;
  L.alpha = static_cast<float>(act_alpha);
  L.dW = pdW ? mptr<float>(dWa) : nullptr;
  L.db = pdb ? mptr<float>(dba) : nullptr;
  L.dx = pdx ? mptr<float>(dxa) : nullptr;
  float* pdy = mptr<float>(dya);
  py::gil_scoped_release nogil;
  fastnn::dense_bf16_backward(L, pdy);
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
        "out = act(alpha * bf16(op(a)) @ bf16(op(b)) + beta * out + bias), float32 accumulation; float32 arrays, "
        "or uint16 bfloat16 bit patterns for a, b, out (out: rounded, beta 0).");
  m.def("dense_bf16_backward", &dense_bf16_backward, py::arg("x"), py::arg("y"), py::arg("W"), py::arg("dy"),
        py::arg("activation"), py::arg("act_alpha"), py::arg("dW"), py::arg("db"), py::arg("dx"),
        "A mixed_bfloat16 Dense layer's backward: dy *= act'(y) in place; dW = bf16(x)^T bf16(dz) with db = "
        "column sums of dz (float32); dx = bf16(dz) bf16(W)^T (dW, db, dx: None to skip). x, y: float32 or "
        "bfloat16 bits (uint16).");
  m.def("bf16_round", &bf16_round, py::arg("x"), py::arg("out"),
        "out = x rounded to bfloat16 (nearest even; NaN kept; subnormals to signed zero), as float32.");
  m.def("bf16_pack", &bf16_pack, py::arg("x"), py::arg("out"), py::arg("to_bits"),
        "to_bits: out (uint16) = bfloat16 bits of x (float32, nearest even); else out (float32) = x (uint16 bits).");
  m.def("select_bf16_kernel", &fastnn::select_bf16_kernel, py::arg("name"),
        "The bf16 GEMM's implementation: 'auto', 'avx512_bf16' or 'fallback' (round, then the float32 GEMM).");
  m.def("bf16_kernel", []() { return std::string(fastnn::bf16_kernel_name()); },
        "The bf16 implementation a call would use now: 'avx512_bf16' or 'fallback'.");
  m.def("bf16_kernel_available", &fastnn::bf16_kernel_available, "AVX512-BF16 in the CPU, the OS and this build.");
  apply_env();
}

}  // namespace fastnn_py
