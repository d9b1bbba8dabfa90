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
  require_disjoint(running_mean, running_var, "running_var", "running_mean");
  matrix_out(y, x, m, n, "out");
  vector_out(mean_out, x, n, "batch_mean");
  vector_out(invstd_out, x, n, "batch_invstd");
  require_disjoint(mean_out, invstd_out, "batch_invstd", "batch_mean");
  if (!(eps > 0) || !std::isfinite(eps))
    throw py::value_error("eps: expected a finite value > 0, got " + std::to_string(eps));
  if (!(momentum >= 0 && momentum <= 1))
    throw py::value_error("momentum: expected a value in [0, 1], got " + std::to_string(momentum));
  if (training && m < 2)
    throw py::value_error("x: training-mode batch norm needs a batch of at least 2 rows, got " + std::to_string(m));
  if (!training) {
    const bool negative = dt == DType::f32 ? any_negative(cptr<float>(running_var), n)
                                           : any_negative(cptr<double>(running_var), n);
    if (negative) throw py::value_error("running_var: expected non-negative variances, got a negative value");
  }
  py::gil_scoped_release nogil;
  if (dt == DType::f32) {
    if (training)
      fastnn::batchnorm_forward_train<float>(cptr<float>(x), cptr<float>(gamma), cptr<float>(beta),
                                             mptr<float>(running_mean), mptr<float>(running_var), mptr<float>(y),
                                             mptr<float>(mean_out), mptr<float>(invstd_out), m, n, momentum, eps);
    else
      fastnn::batchnorm_forward_infer<float>(cptr<float>(x), cptr<float>(gamma), cptr<float>(beta),
                                             cptr<float>(running_mean), cptr<float>(running_var), mptr<float>(y),
                                             mptr<float>(mean_out), mptr<float>(invstd_out), m, n, eps);
  } else {
    if (training)
      fastnn::batchnorm_forward_train<double>(cptr<double>(x), cptr<double>(gamma), cptr<double>(beta),
                                              mptr<double>(running_mean), mptr<double>(running_var),
                                              mptr<double>(y), mptr<double>(mean_out), mptr<double>(invstd_out), m,
                                              n, momentum, eps);
    else
      fastnn::batchnorm_forward_infer<double>(cptr<double>(x), cptr<double>(gamma), cptr<double>(beta),
                                              cptr<double>(running_mean), cptr<double>(running_var),
                                              mptr<double>(y), mptr<double>(mean_out), mptr<double>(invstd_out), m,
                                              n, eps);
  }
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
  matrix_out(dx, x, m, n, "dx");
  vector_out(dgamma, x, n, "dgamma");
  vector_out(dbeta, x, n, "dbeta");
  require_disjoint(dgamma, dbeta, "dbeta", "dgamma");
  py::gil_scoped_release nogil;
  if (dt == DType::f32)
    fastnn::batchnorm_backward<float>(cptr<float>(dy), cptr<float>(x), cptr<float>(gamma), cptr<float>(mean),
                                      cptr<float>(invstd), mptr<float>(dx), mptr<float>(dgamma),
                                      mptr<float>(dbeta), m, n);
  else
    fastnn::batchnorm_backward<double>(cptr<double>(dy), cptr<double>(x), cptr<double>(gamma),
                                       cptr<double>(mean), cptr<double>(invstd), mptr<double>(dx),
                                       mptr<double>(dgamma), mptr<double>(dbeta), m, n);
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
