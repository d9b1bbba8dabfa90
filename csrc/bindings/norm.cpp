// Bindings of the norm family: BatchNorm forward (training / inference) and backward.
#include "fastnn/norm/norm.h"

#include <cmath>
#include <string>

#include "common.h"

namespace fastnn_py {

namespace {

// x, the batch every other argument is checked against: a C-contiguous float (m, n) matrix.
struct Batch {
  DType dt;
  std::size_t m, n;
};
Batch batch_of(const py::array& x) {
  const DType dt = float_dtype(x, "x");
  require_contiguous(x, "x");
  if (x.ndim() != 2)
    throw py::value_error("x: expected 2 dimensions (batch, features), got " + std::to_string(x.ndim()));
  return {dt, static_cast<std::size_t>(x.shape(0)), static_cast<std::size_t>(x.shape(1))};
}

// An argument of x's dtype, C-contiguous, exactly of shape (n,) (per feature) or (m, n) (batch).
struct Operand {
  py::array* a;
  const char* name;
  bool batch = false;
};
// Checks operands in order; `written` ones (outputs, state updated in place) must be writeable.
void check_operands(const py::array& x, const Batch& b, bool written, std::initializer_list<Operand> args) {
  for (const Operand& o : args) {
    check_in(*o.a, x, o.name, "x");
    if (written) require_writeable(*o.a, o.name);
    if (o.batch)
      require_matrix(*o.a, b.m, b.n, o.name);
    else
      require_vector(*o.a, b.n, o.name);
  }
}

// NaN is not negative (the inference forward then gives NaN, as it should).
template <class T> bool any_negative(const T* v, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    if (v[i] < T(0)) return true;
  return false;
}

// Both ops check in the order the ops contract promises (and ops.py's rejection path
// follows): the inputs, the hyperparameters, the batch size, then the outputs -- a batch
// too small is named as x even when an output is wrong too, a wrong dy before it.
void batchnorm_forward(py::array x, py::array gamma, py::array beta, py::array running_mean,
                       py::array running_var, py::object y_obj, py::object mean_obj, py::object invstd_obj,
                       double momentum, double eps, bool training) {
  const Batch b = batch_of(x);
  check_operands(x, b, false, {{&gamma, "gamma"}, {&beta, "beta"}});
  check_operands(x, b, true, {{&running_mean, "running_mean"}, {&running_var, "running_var"}});
  if (!(eps > 0) || !std::isfinite(eps))
    throw py::value_error("eps: expected a finite value > 0, got " + num(eps));
  if (b.dt == DType::f32 && !(static_cast<float>(eps) > 0))
    throw py::value_error("eps: expected a value > 0 in float32, got " + num(eps) + " (rounds to 0)");
  if (!(momentum >= 0 && momentum <= 1))
    throw py::value_error("momentum: expected a value in [0, 1], got " + num(momentum));
  if (training && b.m < 2)
    throw py::value_error("x: training-mode batch norm needs a batch of at least 2 rows, got " +
                          std::to_string(b.m) + " (the batch variance is undefined)");
  py::array y = array_arg(y_obj, "out"), mean_out = array_arg(mean_obj, "out[1] (batch_mean)"),
            invstd_out = array_arg(invstd_obj, "out[2] (batch_invstd)");
  check_operands(x, b, true, {{&y, "out", true}, {&mean_out, "out[1] (batch_mean)"},
                              {&invstd_out, "out[2] (batch_invstd)"}});
  // Written: the outputs, and in training the running statistics too.
  const std::initializer_list<Named> written = {
      {training ? &running_mean : nullptr, "running_mean"}, {training ? &running_var : nullptr, "running_var"},
      {&y, "out"}, {&mean_out, "out[1] (batch_mean)"}, {&invstd_out, "out[2] (batch_invstd)"}};
  if (!training) require_disjoint(running_mean, running_var, "running_mean", "running_var");
  require_disjoint(written);
  detach_input(x, written, &y);  // out may be x itself
  detach_input(gamma, written);
  detach_input(beta, written);
  const std::size_t m = b.m, n = b.n;
  if (!training) {
    detach_input(running_mean, written);
    detach_input(running_var, written);
    const bool negative = visit_float(b.dt, [&](auto t) { return any_negative(cptr<decltype(t)>(running_var), n); });
    if (negative) throw py::value_error("running_var: expected non-negative variances, got a negative value");
  }
  py::gil_scoped_release nogil;
  visit_float(b.dt, [&](auto t) {
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

void batchnorm_backward(py::array dy, py::array x, py::array gamma, py::array mean, py::array invstd,
                        py::object dx_obj, py::object dgamma_obj, py::object dbeta_obj) {
  const Batch b = batch_of(x);
  check_operands(x, b, false, {{&dy, "dy", true}, {&gamma, "gamma"}, {&mean, "batch_mean"},
                               {&invstd, "batch_invstd"}});
  if (b.m < 1) throw py::value_error("x: expected at least 1 row, got 0");
  py::array dx = array_arg(dx_obj, "out"), dgamma = array_arg(dgamma_obj, "out[1] (dgamma)"),
            dbeta = array_arg(dbeta_obj, "out[2] (dbeta)");
  check_operands(x, b, true, {{&dx, "out", true}, {&dgamma, "out[1] (dgamma)"}, {&dbeta, "out[2] (dbeta)"}});
  const std::initializer_list<Named> written = {{&dx, "out"}, {&dgamma, "out[1] (dgamma)"},
                                                {&dbeta, "out[2] (dbeta)"}};
  require_disjoint(written);
  detach_input(dy, written, &dx);  // out may be dy itself
  for (py::array* in : {&x, &gamma, &mean, &invstd}) detach_input(*in, written);
  const std::size_t m = b.m, n = b.n;
  py::gil_scoped_release nogil;
  visit_float(b.dt, [&](auto t) {
    using T = decltype(t);
    fastnn::batchnorm_backward<T>(cptr<T>(dy), cptr<T>(x), cptr<T>(gamma), cptr<T>(mean), cptr<T>(invstd),
                                  mptr<T>(dx), mptr<T>(dgamma), mptr<T>(dbeta), m, n);
  });
}

}  // namespace

void bind_norm(py::module_& m) {
  // Arrays are taken as they are (noconvert; outputs as objects, named by array_arg): a list
  // or an int array is a TypeError here, never a silent copy (ops.py's fast paths rely on
  // _core accepting only what they accept).
  m.def("batchnorm_forward", &batchnorm_forward, py::arg("x").noconvert(), py::arg("gamma").noconvert(),
        py::arg("beta").noconvert(), py::arg("running_mean").noconvert(), py::arg("running_var").noconvert(),
        py::arg("out"), py::arg("batch_mean"), py::arg("batch_invstd"),
        py::arg("momentum"), py::arg("eps"), py::arg("training"),
        "BatchNorm forward of a (m, n) x into out; training mode updates the running statistics in place.");
  m.def("batchnorm_backward", &batchnorm_backward, py::arg("dy").noconvert(), py::arg("x").noconvert(),
        py::arg("gamma").noconvert(), py::arg("batch_mean").noconvert(), py::arg("batch_invstd").noconvert(),
        py::arg("dx"), py::arg("dgamma"), py::arg("dbeta"),
        "BatchNorm backward: dx, dgamma, dbeta of the training-mode forward.");
}

}  // namespace fastnn_py
