// Bindings of the gemm family: matmul with the fused epilogue.
#include "fastnn/gemm/gemm.h"

#include <algorithm>
#include <string>
#include <vector>

#include "common.h"

namespace fastnn_py {

namespace {

std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// True when the bytes of x and y overlap.
bool overlaps(const py::array& x, const py::array& y) {
  if (x.nbytes() == 0 || y.nbytes() == 0) return false;
  const char* x0 = static_cast<const char*>(x.data());
  const char* y0 = static_cast<const char*>(y.data());
  return x0 < y0 + y.nbytes() && y0 < x0 + x.nbytes();
}

template <class T>
void run(py::array& a, py::array& b, py::array& out, bool ta, bool tb, double alpha, double beta,
         const py::object& bias, const py::object& activation, double act_alpha) {
  fastnn::GemmProblem<T> P;
  P.trans_a = ta;
  P.trans_b = tb;
  P.m = ta ? a.shape(1) : a.shape(0);
  P.k = ta ? a.shape(0) : a.shape(1);
  P.n = tb ? b.shape(0) : b.shape(1);
  P.a = cptr<T>(a);
  P.lda = a.shape(1);
  P.b = cptr<T>(b);
  P.ldb = b.shape(1);
  P.alpha = static_cast<T>(alpha);
  P.beta = static_cast<T>(beta);
  P.c = mptr<T>(out);
  P.ldc = P.n;
  py::array bias_arr;
  if (!bias.is_none()) {
    bias_arr = bias.cast<py::array>();
    P.bias = cptr<T>(bias_arr);
  }
  // The kernel writes C while it still reads A, B and bias: when out overlaps
  // one of them, compute into a temporary (holding out's old value) instead.
  const bool alias = overlaps(out, a) || overlaps(out, b) || (P.bias && overlaps(out, bias_arr));
  if (!activation.is_none()) {
    P.act = fastnn::parse_activation(activation.cast<std::string>());
    P.has_act = P.act != fastnn::Act::identity;
    P.act_alpha = static_cast<T>(act_alpha);
  }
  py::gil_scoped_release nogil;
  if (!alias) {
    fastnn::gemm<T>(P);
    return;
  }
  const std::size_t size = P.m * P.n;
  std::vector<T> tmp(P.c, P.c + size);
  T* dst = P.c;
  P.c = tmp.data();
  fastnn::gemm<T>(P);
  std::copy(tmp.begin(), tmp.end(), dst);
}

// out = act(alpha * op(a) @ op(b) + beta * out + bias)
void matmul(py::array a, py::array b, py::array out, bool trans_a, bool trans_b, double alpha, double beta,
            py::object bias, py::object activation, double act_alpha) {
  const DType dt = float_dtype(a, "a");
  require_contiguous(a, "a");
  check_in(b, a, "b", "a");
  check_out(out, a, "out", "a");
  if (a.ndim() != 2) throw py::value_error("a: expected 2 dimensions, got " + std::to_string(a.ndim()));
  if (b.ndim() != 2) throw py::value_error("b: expected 2 dimensions, got " + std::to_string(b.ndim()));
  const py::ssize_t m = trans_a ? a.shape(1) : a.shape(0), k = trans_a ? a.shape(0) : a.shape(1);
  const py::ssize_t kb = trans_b ? b.shape(1) : b.shape(0), n = trans_b ? b.shape(0) : b.shape(1);
  if (k != kb)
    throw py::value_error("a, b: inner dimensions differ: op(a) is " + std::to_string(m) + " x " +
                          std::to_string(k) + " (a " + shape_str(a) + "), op(b) is " + std::to_string(kb) + " x " +
                          std::to_string(n) + " (b " + shape_str(b) + ")");
  if (out.ndim() != 2 || out.shape(0) != m || out.shape(1) != n)
    throw py::value_error("out: expected shape (" + std::to_string(m) + ", " + std::to_string(n) + "), got " +
                          shape_str(out));
  if (!bias.is_none()) {
    py::array bv = bias.cast<py::array>();
    check_in(bv, a, "bias", "a");
    if (bv.ndim() != 1 || bv.shape(0) != n)
      throw py::value_error("bias: expected shape (" + std::to_string(n) + ",), got " + shape_str(bv));
  }
  if (dt == DType::f32)
    run<float>(a, b, out, trans_a, trans_b, alpha, beta, bias, activation, act_alpha);
  else
    run<double>(a, b, out, trans_a, trans_b, alpha, beta, bias, activation, act_alpha);
}

}  // namespace

void bind_gemm(py::module_& m) {
  m.def("matmul", &matmul, py::arg("a"), py::arg("b"), py::arg("out"), py::arg("trans_a"), py::arg("trans_b"),
        py::arg("alpha"), py::arg("beta"), py::arg("bias"), py::arg("activation"), py::arg("act_alpha"),
        "out = act(alpha * op(a) @ op(b) + beta * out + bias); beta == 0 never reads out.");
  m.def("_gemm_set_tuning", &fastnn::gemm_set_tuning, py::arg("direct_a_max_n"), py::arg("grain_macs"),
        "Benchmark knobs: read A unpacked when n <= direct_a_max_n; min m*n*k per thread. -1 = default.");
}

}  // namespace fastnn_py
