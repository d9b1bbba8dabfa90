// Bindings of the gemm family: matmul with the fused epilogue.
#include "fastnn/gemm/gemm.h"

#include "fastnn/cpu_cache.h"

#include <string>

#include "product.h"

namespace fastnn_py {

namespace {

// The optional parts of a product: bias, activation (forward or gradient),
// the saved forward values of the gradient and the bias gradient output.
struct Extras {
  py::object bias = py::none(), activation = py::none();
  double act_alpha = 0;
  bool act_grad = false;
  py::object act_x = py::none(), act_y = py::none(), bias_grad = py::none();
};

// True when the optional array o (None: no) overlaps x.
bool overlaps_opt(const py::array& x, const py::object& o) { return !o.is_none() && overlaps(x, o.cast<py::array>()); }
template <class T> const T* opt_cptr(const py::object& o) { return o.is_none() ? nullptr : cptr<T>(o.cast<py::array>()); }

template <class T>
void run(py::array& a, py::array& b, py::array& out, const ProductShape& s, bool ta, bool tb, double alpha,
         double beta, const Extras& e) {
  fastnn::GemmProblem<T> P = product_problem<T>(a, b, out, s, ta, tb, alpha, beta);
  P.bias = opt_cptr<T>(e.bias);
  P.act_x = opt_cptr<T>(e.act_x);
  P.act_y = opt_cptr<T>(e.act_y);
  if (!e.bias_grad.is_none()) {
    py::array bg = e.bias_grad.cast<py::array>();
    P.bias_grad = mptr<T>(bg);
  }
  set_activation(P, e.activation, e.act_alpha);
  P.act_grad = e.act_grad;
  const bool alias = overlaps(out, a) || overlaps(out, b) || overlaps_opt(out, e.bias) ||
                     overlaps_opt(out, e.act_x) || overlaps_opt(out, e.act_y);
  run_product(P, alias, [](const fastnn::GemmProblem<T>& p) { fastnn::gemm<T>(p); });
}

// Dtypes and layouts of a product's operands (product_shape checks their shapes); returns the dtype.
DType check_product(py::array& a, py::array& b, py::array& out) {
  const DType dt = float_dtype(a, "a");
  require_contiguous(a, "a");
  check_in(b, a, "b", "a");
  check_out(out, a, "out", "a");
  return dt;
}

void dispatch(DType dt, py::array& a, py::array& b, py::array& out, const ProductShape& s, bool ta, bool tb,
              double alpha, double beta, const Extras& e) {
  visit_float(dt, [&](auto t) { run<decltype(t)>(a, b, out, s, ta, tb, alpha, beta, e); });
}

// out = act(alpha * op(a) @ op(b) + beta * out + bias)
void matmul(py::array a, py::array b, py::array out, bool trans_a, bool trans_b, double alpha, double beta,
            py::object bias, py::object activation, double act_alpha) {
  const DType dt = check_product(a, b, out);
  const ProductShape s = product_shape(a, b, out, trans_a, trans_b);
  if (!bias.is_none()) {
    py::array bv = bias.cast<py::array>();
    check_in(bv, a, "bias", "a");
    if (bv.ndim() != 1 || bv.shape(0) != s.n)
      throw py::value_error("bias: expected shape (" + std::to_string(s.n) + ",), got " + shape_str(bv));
  }
  dispatch(dt, a, b, out, s, trans_a, trans_b, alpha, beta, Extras{bias, activation, act_alpha});
}

// The backward products of a Dense layer:
//   out = (alpha * op(a) @ op(b) + beta * out) * act'(x or y)   (activation given)
//   bias_grad = alpha * op(b).sum(0) + beta * bias_grad           (bias_grad given)
void matmul_grad(py::array a, py::array b, py::array out, bool trans_a, bool trans_b, double alpha, double beta,
                 py::object activation, double act_alpha, py::object x, py::object y, py::object bias_grad) {
  const DType dt = check_product(a, b, out);
  const ProductShape s = product_shape(a, b, out, trans_a, trans_b);
  const py::ssize_t m = s.m, n = s.n;
  const char* names[2] = {"x", "y"};
  const py::object* saved[2] = {&x, &y};
  for (int i = 0; i < 2; ++i) {
    if (saved[i]->is_none()) continue;
    py::array sv = saved[i]->cast<py::array>();
    check_in(sv, a, names[i], "a");
    if (sv.ndim() != 2 || sv.shape(0) != m || sv.shape(1) != n)
      throw py::value_error(std::string(names[i]) + ": expected shape (" + std::to_string(m) + ", " +
                            std::to_string(n) + ") (as out), got " + shape_str(sv));
  }
  if (!activation.is_none()) {
    const fastnn::Act act = fastnn::parse_activation(activation.cast<std::string>());
    const fastnn::GradNeeds needs = fastnn::activation_grad_needs(act);
    if (needs == fastnn::GradNeeds::x && x.is_none())
      throw py::value_error(std::string("x: activation '") + fastnn::activation_name(act) +
                            "' needs the forward input x for its gradient, got None");
    if (needs != fastnn::GradNeeds::none && x.is_none() && y.is_none())
      throw py::value_error("x, y: give the forward input x or the forward output y, got neither");
  }
  if (!bias_grad.is_none()) {
    py::array bg = bias_grad.cast<py::array>();
    check_out(bg, a, "bias_grad", "a");
    if (bg.ndim() != 1 || bg.shape(0) != n)
      throw py::value_error("bias_grad: expected shape (" + std::to_string(n) + ",), got " + shape_str(bg));
    const py::array others[3] = {a, b, out};
    const char* other_names[3] = {"a", "b", "out"};
    for (int i = 0; i < 3; ++i)
      if (overlaps(bg, others[i])) throw py::value_error(std::string("bias_grad: must not share memory with ") + other_names[i]);
    for (int i = 0; i < 2; ++i)
      if (!saved[i]->is_none() && overlaps(bg, saved[i]->cast<py::array>()))
        throw py::value_error(std::string("bias_grad: must not share memory with ") + names[i]);
  }
  dispatch(dt, a, b, out, s, trans_a, trans_b, alpha, beta,
           Extras{py::none(), activation, act_alpha, true, x, y, bias_grad});
}

py::dict blocking_sizes(const fastnn::GemmBlockSizes& s) {
  py::dict d;
  d["mr"] = s.mr; d["nr"] = s.nr; d["mc"] = s.mc; d["kc"] = s.kc; d["nc"] = s.nc;
  return d;
}

fastnn::Isa isa_from_name(const std::string& name) {
  if (name == "scalar") return fastnn::Isa::scalar;
  if (name == "avx2") return fastnn::Isa::avx2;
  if (name == "avx512") return fastnn::Isa::avx512;
  throw py::value_error("isa: expected 'scalar', 'avx2' or 'avx512', got '" + name + "'");
}

// The blocking of every ISA and dtype, the cache sizes it came from and how it was chosen.
py::dict gemm_blocking() {
  const fastnn::CpuCaches& c = fastnn::cpu_caches();
  py::dict caches;
  caches["l1d"] = c.l1d; caches["l2"] = c.l2; caches["l3"] = c.l3;
  caches["l2_sharing"] = c.l2_sharing; caches["l3_sharing"] = c.l3_sharing;
  caches["family"] = c.family; caches["model"] = c.model; caches["cpuid_leaf"] = c.source;
  py::dict d;
  d["caches"] = caches;
  d["uarch"] = fastnn::cpu_uarch();
  d["source"] = fastnn::gemm_blocking_source();
  for (const char* isa : {"scalar", "avx2", "avx512"}) {
    py::dict per;
    const fastnn::GemmCacheBlocking& f = fastnn::gemm_blocking<float>(isa_from_name(isa));
    const fastnn::GemmCacheBlocking& g = fastnn::gemm_blocking<double>(isa_from_name(isa));
    per["float32"] = blocking_sizes(f.wide);
    per["float32_narrow"] = blocking_sizes(f.narrow);
    per["float64"] = blocking_sizes(g.wide);
    per["float64_narrow"] = blocking_sizes(g.narrow);
    per["pack_trans_a"] = f.pack_trans_a;
    d[isa] = per;
  }
  return d;
}

// What the derivation gives for the given cache sizes (bytes), micro-tile and element size.
py::dict derived_blocking(int mr, int nr, int elem, std::size_t l1d, std::size_t l2, std::size_t l3, int l3_sharing) {
  if (mr < 1 || nr < 1 || (elem != 4 && elem != 8) || l1d == 0 || l2 == 0)
    throw py::value_error("derived_blocking: expected mr, nr >= 1, elem 4 or 8 and nonzero l1d, l2");
  fastnn::CpuCaches c;
  c.l1d = l1d; c.l2 = l2; c.l3 = l3; c.l3_sharing = l3_sharing;
  return blocking_sizes(fastnn::gemm_derive_blocking(mr, nr, static_cast<std::size_t>(elem), c));
}

void set_blocking(const std::string& isa, const std::string& dtype, bool narrow, int mc, int kc, int nc) {
  if (dtype == "float32") fastnn::gemm_set_blocking<float>(isa_from_name(isa), narrow, mc, kc, nc);
  else if (dtype == "float64") fastnn::gemm_set_blocking<double>(isa_from_name(isa), narrow, mc, kc, nc);
  else throw py::value_error("dtype: expected 'float32' or 'float64', got '" + dtype + "'");
}

}  // namespace

void bind_gemm(py::module_& m) {
  m.def("matmul", &matmul, py::arg("a"), py::arg("b"), py::arg("out"), py::arg("trans_a"), py::arg("trans_b"),
        py::arg("alpha"), py::arg("beta"), py::arg("bias"), py::arg("activation"), py::arg("act_alpha"),
        "out = act(alpha * op(a) @ op(b) + beta * out + bias); beta == 0 never reads out.");
  m.def("matmul_grad", &matmul_grad, py::arg("a"), py::arg("b"), py::arg("out"), py::arg("trans_a"),
        py::arg("trans_b"), py::arg("alpha"), py::arg("beta"), py::arg("activation"), py::arg("act_alpha"),
        py::arg("x"), py::arg("y"), py::arg("bias_grad"),
        "out = (alpha * op(a) @ op(b) + beta * out) * act'(x or y); bias_grad = alpha * op(b).sum(0) + "
        "beta * bias_grad (each part optional).");
  m.def("gemm_blocking", &gemm_blocking, "The GEMM cache blocking per ISA and dtype, and where it came from.");
  m.def("_gemm_derived_blocking", &derived_blocking, py::arg("mr"), py::arg("nr"), py::arg("elem"), py::arg("l1d"),
        py::arg("l2"), py::arg("l3"), py::arg("l3_sharing"),
        "The blocking derived from these cache sizes (the rule for CPUs without a measured table).");
  m.def("_gemm_set_blocking", &set_blocking, py::arg("isa"), py::arg("dtype"), py::arg("narrow"), py::arg("mc"),
        py::arg("kc"), py::arg("nc"), "Benchmark/test hook: override mc, kc, nc (<= 0: the chosen value).");
  m.def("_gemm_set_tuning", &fastnn::gemm_set_tuning, py::arg("direct_a_max_n"), py::arg("grain_macs"),
        py::arg("direct_trans_a") = -1, py::arg("swap_max_m") = -1, py::arg("narrow_max_n") = -1,
        "Benchmark knobs: read A unpacked when n <= direct_a_max_n; min m*n*k per thread; 1: a transposed "
        "A may be read in place too; products with m <= swap_max_m run as their transpose (0: never); "
        "C with n <= narrow_max_n columns takes the narrow path (0: never). -1 = default.");
}

}  // namespace fastnn_py
