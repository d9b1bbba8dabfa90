// Bindings of the norm family: BatchNorm forward (training / inference) and backward.
#include "fastnn/norm/norm.h"

#include <cmath>
#include <string>

#include "common.h"

namespace fastnn_py {

namespace {

// x must be 2-D (m, n); returns (m, n).
std::pair<std::size_t, std::size_t> matrix_shape(const py::array& x, const char* name) {
  if (x.ndim() != 2)
    throw py::value_error(std::string(name) + ": expected 2 dimensions (batch, features), got " +
                          std::to_string(x.ndim()));
  return {static_cast<std::size_t>(x.shape(0)), static_cast<std::size_t>(x.shape(1))};
}

// Per-feature (n,) and batch (m, n) arrays of x's dtype, exactly that shape.
void vector_in(const py::array& a, const py::array& x, std::size_t n, const char* name) {
  check_in(a, x, name, "x");
  require_vector(a, n, name);
}
void vector_out(py::array& a, const py::array& x, std::size_t n, const char* name) {
  check_out(a, x, name, "x");
  require_vector(a, n, name);
}
void matrix_in(const py::array& a, const py::array& x, std::size_t m, std::size_t n, const char* name) {
  check_in(a, x, name, "x");
  require_matrix(a, m, n, name);
}
void matrix_out(py::array& a, const py::array& x, std::size_t m, std::size_t n, const char* name) {
  check_out(a, x, name, "x");
  require_matrix(a, m, n, name);
}

// NaN is not negative (the inference forward then gives NaN, as it should).
template <class T> bool any_negative(const T* v, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    if (v[i] < T(0)) return true;
  return false;
}

void batchnorm_forward(py::array x, py::array gamma, py::array beta, py::array running_mean,
                       py::array running_var, py::array y, py::array mean_out, py::array invstd_out,
                       double momentum, double eps, bool training) {
  const DType dt = float_dtype(x, "x");
  require_contiguous(x, "x");
  const auto [m, n] = matrix_shape(x, "x");
  vector_in(gamma, x, n, "gamma");
  vector_in(beta, x, n, "beta");
  vector_out(running_mean, x, n, "running_mean");
  vector_out(running_var, x, n, "running_var");
  matrix_out(y, x, m, n, "out");
  vector_out(mean_out, x, n, "out[1] (batch_mean)");
  vector_out(invstd_out, x, n, "out[2] (batch_invstd)");
  if (!(eps > 0) || !std::isfinite(eps))
    throw py::value_error("eps: expected a finite value > 0, got " + num(eps));
  if (dt == DType::f32 && !(static_cast<float>(eps) > 0))
    throw py::value_error("eps: expected a value > 0 in float32, got " + num(eps) + " (rounds to 0)");
  if (!(momentum >= 0 && momentum <= 1))
    throw py::value_error("momentum: expected a value in [0, 1], got " + num(momentum));
  if (training && m < 2)
    throw py::value_error("x: training-mode batch norm needs a batch of at least 2 rows, got " + std::to_string(m) +
                          " (the batch variance is undefined)");
  // Written: the outputs, and in training the running statistics too.
  const std::initializer_list<Named> written = {
      {training ? &running_mean : nullptr, "running_mean"}, {training ? &running_var : nullptr, "running_var"},
      {&y, "out"}, {&mean_out, "out[1] (batch_mean)"}, {&invstd_out, "out[2] (batch_invstd)"}};
  if (!training) require_disjoint(running_mean, running_var, "running_mean", "running_var");
  require_disjoint(written);
  detach_input(x, written, &y);  // out may be x itself
  detach_input(gamma, written);
  detach_input(beta, written);
  if (!training) {
    detach_input(running_mean, written);
    detach_input(running_var, written);
    const bool negative = visit_float(dt, [&](auto t) { return any_negative(cptr<decltype(t)>(running_var), n); });
    if (negative) throw py::value_error("running_var: expected non-negative variances, got a negative value");
  }
  py::gil_scoped_release nogil;
  visit_float(dt, [&](auto t) {
    using T = decltype(t);
    if (training)
      fastnn::batchnorm_forward_train<T>(cptr<T>(x), cptr<T>(gamma), cptr<T>(beta), mptr<T>(running_mean),
                                         mptr<T>(running_var), mptr<T>(y), mptr<T>(mean_out), mptr<T>(invstd_out),
                                         m, n, momentum, eps);
    else
      fastnn::batchnorm_forward_infer<T>(cptr<T>(x), cptr<T>(gamma), cptr<T>(beta), cptr<T>(running_mean),
                                         cptr<T>(running_var), mptr<T>(y), mptr<T>(mean_out), mptr<T>(invstd_out),
                                         m, n, eps);
  });
}

void batchnorm_backward(py::array dy, py::array x, py::array gamma, py::array mean, py::array invstd, py::array dx,
                        py::array dgamma, py::array dbeta) {
  const DType dt = float_dtype(x, "x");
  require_contiguous(x, "x");
  const auto [m, n] = matrix_shape(x, "x");
  if (m < 1) throw py::value_error("x: expected at least 1 row, got 0");
  matrix_in(dy, x, m, n, "dy");
  vector_in(gamma, x, n, "gamma");
  vector_in(mean, x, n, "batch_mean");
  vector_in(invstd, x, n, "batch_invstd");
  matrix_out(dx, x, m, n, "out");
  vector_out(dgamma, x, n, "out[1] (dgamma)");
  vector_out(dbeta, x, n, "out[2] (dbeta)");
  const std::initializer_list<Named> written = {{&dx, "out"}, {&dgamma, "out[1] (dgamma)"},
                                                {&dbeta, "out[2] (dbeta)"}};
  require_disjoint(written);
  detach_input(dy, written, &dx);  // out may be dy itself
  detach_input(x, written);
  detach_input(gamma, written);
  detach_input(mean, written);
  detach_input(invstd, written);
  py::gil_scoped_release nogil;
  visit_float(dt, [&](auto t) {
    using T = decltype(t);
    fastnn::batchnorm_backward<T>(cptr<T>(dy), cptr<T>(x), cptr<T>(gamma), cptr<T>(mean), cptr<T>(invstd),
                                  mptr<T>(dx), mptr<T>(dgamma), mptr<T>(dbeta), m, n);
  });
}

}  // namespace

void bind_norm(py::module_& m) {
  // Arrays are taken as they are (noconvert): a list or an int array is a TypeError here,
  // never a silent copy (ops.py's fast paths rely on _core accepting only what they accept).
  m.def("batchnorm_forward", &batchnorm_forward, py::arg("x").noconvert(), py::arg("gamma").noconvert(),
        py::arg("beta").noconvert(), py::arg("running_mean").noconvert(), py::arg("running_var").noconvert(),
        py::arg("out").noconvert(), py::arg("batch_mean").noconvert(), py::arg("batch_invstd").noconvert(),
        py::arg("momentum"), py::arg("eps"), py::arg("training"),
        "BatchNorm forward of a (m, n) x into out; training mode updates the running statistics in place.");
  m.def("batchnorm_backward", &batchnorm_backward, py::arg("dy").noconvert(), py::arg("x").noconvert(),
        py::arg("gamma").noconvert(), py::arg("batch_mean").noconvert(), py::arg("batch_invstd").noconvert(),
        py::arg("dx").noconvert(), py::arg("dgamma").noconvert(), py::arg("dbeta").noconvert(),
        "BatchNorm backward: dx, dgamma, dbeta of the training-mode forward.");
}

}  // namespace fastnn_py
