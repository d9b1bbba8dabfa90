// Bindings of LayerNorm over the last axis of a (m, n) matrix: forward and backward
// (fastnn/norm/layernorm.h). Every argument is checked before anything is written.
#include "fastnn/norm/layernorm.h"

#include <cmath>
#include <string>
#include <vector>

#include "common.h"

namespace fastnn_py {

namespace {

struct Rows {
  DType dt;
  std::size_t m, n;
};
// The (m, n) matrix every other argument is checked against: C-contiguous float, n >= 1.
Rows rows_of(const py::array& a, const char* name) {
  const DType dt = float_dtype(a, name);
  require_contiguous(a, name);
  if (a.ndim() != 2)
    throw py::value_error(std::string(name) + ": expected 2 dimensions (batch, features), got " +
                          std::to_string(a.ndim()));
  if (a.shape(1) < 1) throw py::value_error(std::string(name) + ": expected at least 1 feature, got 0");
  return {dt, static_cast<std::size_t>(a.shape(0)), static_cast<std::size_t>(a.shape(1))};
}

// An optional per-feature parameter: None (an empty array, absent), or an (n,) array of like's dtype
// (n >= 1, so never empty).
py::array optional_vector(const py::object& o, const py::array& like, std::size_t n, const char* name) {
  if (o.is_none()) return py::array(like.dtype(), std::vector<py::ssize_t>{0});
  py::array a = array_arg(o, name);
  check_in(a, like, name, "x");
  require_vector(a, n, name);
  return a;
}
bool present(const py::array& a) { return a.size() > 0; }

void layernorm_forward(py::array x, py::object gamma_obj, py::object beta_obj, py::object y_obj,
                       py::object xhat_obj, py::object inv_obj, double eps) {
  const Rows r = rows_of(x, "x");
  py::array gamma = optional_vector(gamma_obj, x, r.n, "gamma"), beta = optional_vector(beta_obj, x, r.n, "beta");
  if (!(eps > 0) || !std::isfinite(eps))
    throw py::value_error("eps: expected a finite value > 0, got " + num(eps));
  if (r.dt == DType::f32 && !(static_cast<float>(eps) > 0))
    throw py::value_error("eps: expected a value > 0 in float32, got " + num(eps) + " (rounds to 0)");
  py::array y = array_arg(y_obj, "out"), xhat = array_arg(xhat_obj, "out[1] (xhat)"),
            inv = array_arg(inv_obj, "out[2] (inv)");
  check_out(y, x, "out", "x");
  require_matrix(y, r.m, r.n, "out");
  check_out(xhat, x, "out[1] (xhat)", "x");
  require_matrix(xhat, r.m, r.n, "out[1] (xhat)");
  check_out(inv, x, "out[2] (inv)", "x");
  require_vector(inv, r.m, "out[2] (inv)");
  const std::initializer_list<Named> written = {{&y, "out"}, {&xhat, "out[1] (xhat)"}, {&inv, "out[2] (inv)"}};
  require_disjoint(written);
  detach_input(x, written, &y);  // out may be x itself
  if (present(gamma)) detach_input(gamma, written);
  if (present(beta)) detach_input(beta, written);
  const std::size_t m = r.m, n = r.n;
  const bool has_g = present(gamma), has_b = present(beta);
  py::gil_scoped_release nogil;
  visit_float(r.dt, [&](auto t) {
    using T = decltype(t);
    fastnn::layernorm_forward<T>(cptr<T>(x), has_g ? cptr<T>(gamma) : nullptr, has_b ? cptr<T>(beta) : nullptr,
                                 mptr<T>(y), mptr<T>(xhat), mptr<T>(inv), m, n, eps);
  });
}

void layernorm_backward(py::array dy, py::array xhat, py::array inv, py::object gamma_obj, py::object dx_obj,
                        py::object dgamma_obj, py::object dbeta_obj) {
  const Rows r = rows_of(xhat, "xhat");
  check_in(dy, xhat, "dy", "xhat");
  require_matrix(dy, r.m, r.n, "dy");
  check_in(inv, xhat, "inv", "xhat");
  require_vector(inv, r.m, "inv");
  py::array gamma = optional_vector(gamma_obj, xhat, r.n, "gamma");
  py::array dx = array_arg(dx_obj, "out"), dgamma = array_arg(dgamma_obj, "out[1] (dgamma)"),
            dbeta = array_arg(dbeta_obj, "out[2] (dbeta)");
  check_out(dx, xhat, "out", "xhat");
  require_matrix(dx, r.m, r.n, "out");
  check_out(dgamma, xhat, "out[1] (dgamma)", "xhat");
  require_vector(dgamma, r.n, "out[1] (dgamma)");
  check_out(dbeta, xhat, "out[2] (dbeta)", "xhat");
  require_vector(dbeta, r.n, "out[2] (dbeta)");
  const std::initializer_list<Named> written = {{&dx, "out"}, {&dgamma, "out[1] (dgamma)"},
                                                {&dbeta, "out[2] (dbeta)"}};
  require_disjoint(written);
  detach_input(dy, written, &dx);  // out may be dy itself
  detach_input(xhat, written);
  detach_input(inv, written);
  if (present(gamma)) detach_input(gamma, written);
  const std::size_t m = r.m, n = r.n;
  const bool has_g = present(gamma);
  py::gil_scoped_release nogil;
  visit_float(r.dt, [&](auto t) {
    using T = decltype(t);
    fastnn::layernorm_backward<T>(cptr<T>(dy), cptr<T>(xhat), cptr<T>(inv), has_g ? cptr<T>(gamma) : nullptr,
                                  mptr<T>(dx), mptr<T>(dgamma), mptr<T>(dbeta), m, n);
  });
}

}  // namespace

void bind_layernorm(py::module_& m) {
  m.def("layernorm_forward", &layernorm_forward, py::arg("x").noconvert(), py::arg("gamma"), py::arg("beta"),
        py::arg("out"), py::arg("xhat"), py::arg("inv"), py::arg("eps"),
        "LayerNorm over the last axis of a (m, n) x: y, xhat, per-row inv std (gamma / beta may be None).");
  m.def("layernorm_backward", &layernorm_backward, py::arg("dy").noconvert(), py::arg("xhat").noconvert(),
        py::arg("inv").noconvert(), py::arg("gamma"), py::arg("dx"), py::arg("dgamma"), py::arg("dbeta"),
        "LayerNorm backward: dx, dgamma, dbeta from the forward's xhat and inv.");
}

}  // namespace fastnn_py
