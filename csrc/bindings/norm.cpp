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

void batchnorm_forward(py::array x, py::array gamma, py::array beta, py::array running_mean,
                       py::array running_var, py::array y, py::array mean_out, py::array invstd_out,
                       double momentum, double eps, bool training) {
  const DType dt = float_dtype(x, "x");
  require_contiguous(x, "x");
  const auto [m, n] = matrix_shape(x, "x");
  check_in(gamma, x, "gamma", "x");
  check_in(beta, x, "beta", "x");
  check_in(running_mean, x, "running_mean", "x");
  check_in(running_var, x, "running_var", "x");
  if (training) {
    require_writeable(running_mean, "running_mean");
    require_writeable(running_var, "running_var");
  }
  check_out(y, x, "out", "x");
  check_out(mean_out, x, "batch_mean", "x");
  check_out(invstd_out, x, "batch_invstd", "x");
  require_size(gamma, n, "gamma");
  require_size(beta, n, "beta");
  require_size(running_mean, n, "running_mean");
  require_size(running_var, n, "running_var");
  require_size(y, m * n, "out");
  require_size(mean_out, n, "batch_mean");
  require_size(invstd_out, n, "batch_invstd");
  if (!(eps > 0) || !std::isfinite(eps))
    throw py::value_error("eps: expected a finite value > 0, got " + std::to_string(eps));
  if (training) {
    if (m < 2)
      throw py::value_error("x: training-mode batch norm needs a batch of at least 2 rows, got " +
                            std::to_string(m));
    if (!(momentum >= 0 && momentum <= 1))
      throw py::value_error("momentum: expected a value in [0, 1], got " + std::to_string(momentum));
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
  check_in(dy, x, "dy", "x");
  check_in(gamma, x, "gamma", "x");
  check_in(mean, x, "batch_mean", "x");
  check_in(invstd, x, "batch_invstd", "x");
  check_out(dx, x, "dx", "x");
  check_out(dgamma, x, "dgamma", "x");
  check_out(dbeta, x, "dbeta", "x");
  require_size(dy, m * n, "dy");
  require_size(gamma, n, "gamma");
  require_size(mean, n, "batch_mean");
  require_size(invstd, n, "batch_invstd");
  require_size(dx, m * n, "dx");
  require_size(dgamma, n, "dgamma");
  require_size(dbeta, n, "dbeta");
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
  m.def("batchnorm_forward", &batchnorm_forward, py::arg("x"), py::arg("gamma"), py::arg("beta"),
        py::arg("running_mean"), py::arg("running_var"), py::arg("out"), py::arg("batch_mean"),
        py::arg("batch_invstd"), py::arg("momentum"), py::arg("eps"), py::arg("training"),
        "BatchNorm forward of a (m, n) x into out; training mode updates the running statistics in place.");
  m.def("batchnorm_backward", &batchnorm_backward, py::arg("dy"), py::arg("x"), py::arg("gamma"),
        py::arg("batch_mean"), py::arg("batch_invstd"), py::arg("dx"), py::arg("dgamma"), py::arg("dbeta"),
        "BatchNorm backward: dx, dgamma, dbeta of the training-mode forward.");
}

}  // namespace fastnn_py
