// Bindings of the optim family: the fused in-place updates and the denormal switch.
#include "fastnn/optim/denormals.h"
#include "fastnn/optim/optim.h"

#include "common.h"

#include <optional>
#include <pybind11/stl.h>

namespace fastnn_py {

namespace {

// param: writeable, C-contiguous float array; every other array: the same
// dtype and number of elements (state arrays also writeable).
DType check_param(py::array& param) {
  const DType dt = float_dtype(param, "param");
  require_contiguous(param, "param");
  require_writeable(param, "param");
  return dt;
}
void check_grad(const py::array& grad, const py::array& param) {
  check_in(grad, param, "grad", "param");
  require_size(grad, param.size(), "grad");
}
void check_state(py::array& s, const py::array& param, const char* name) {
  check_out(s, param, name, "param");
  require_size(s, param.size(), name);
}

// Written in place: param and the state arrays (null: absent), pairwise disjoint. grad is
// read while they are written: copied first when it shares memory with one of them.
DType check_update(py::array& param, py::array& grad, py::array* s1, const char* n1, py::array* s2 = nullptr,
                   const char* n2 = "", py::array* s3 = nullptr, const char* n3 = "") {
  const DType dt = check_param(param);
  check_grad(grad, param);
  if (s1) check_state(*s1, param, n1);
  if (s2) check_state(*s2, param, n2);
  if (s3) check_state(*s3, param, n3);
  const std::initializer_list<Named> written = {{&param, "param"}, {s1, n1}, {s2, n2}, {s3, n3}};
  require_disjoint(written);
  detach_input(grad, written);
  return dt;
}

// Runs the update kernel f(T{}, n) for param's dtype and size with the GIL released.
template <class F> void run_update(DType dt, const py::array& param, F&& f) {
  const std::size_t n = param.size();
  py::gil_scoped_release nogil;
  visit_float(dt, [&](auto t) { f(t, n); });
}

// The arguments structs are aggregates: their fields in the order optim.h declares them.
void sgd(py::array param, py::array grad, py::object velocity_obj, double lr, double momentum, bool nesterov,
         double weight_decay) {
  py::array velocity;
  const bool has_vel = !velocity_obj.is_none();
  if (has_vel) velocity = velocity_obj.cast<py::array>();
  const DType dt = check_update(param, grad, has_vel ? &velocity : nullptr, "velocity");
  const fastnn::SgdArgs a{lr, momentum, weight_decay, nesterov};
  run_update(dt, param, [&](auto t, std::size_t n) {
    using T = decltype(t);
    fastnn::sgd_update<T>(mptr<T>(param), cptr<T>(grad), has_vel ? mptr<T>(velocity) : nullptr, n, a);
  });
}

void rmsprop(py::array param, py::array grad, py::array sq_avg, double lr, double rho, double eps,
             double weight_decay, double momentum, bool centered, std::optional<py::array> momentum_buffer,
             std::optional<py::array> grad_avg) {
  if (momentum != 0 && !momentum_buffer)
    throw py::value_error("momentum_buffer: expected an array when momentum > 0, got None");
  if (centered && !grad_avg) throw py::value_error("grad_avg: expected an array when centered, got None");
  py::array* mb = momentum != 0 ? &*momentum_buffer : nullptr;
  py::array* ga = centered ? &*grad_avg : nullptr;
  const DType dt = check_update(param, grad, &sq_avg, "sq_avg", mb, "momentum_buffer", ga, "grad_avg");
  fastnn::RmspropArgs a{lr, rho, eps, weight_decay};
  a.momentum = momentum;
  a.centered = centered;
  run_update(dt, param, [&](auto t, std::size_t n) {
    using T = decltype(t);
    fastnn::rmsprop_update<T>(mptr<T>(param), cptr<T>(grad), mptr<T>(sq_avg), n, a, mb ? mptr<T>(*mb) : nullptr,
                              ga ? mptr<T>(*ga) : nullptr);
  });
}

void adagrad(py::array param, py::array grad, py::array accum, double lr, double eps, double weight_decay) {
  const DType dt = check_update(param, grad, &accum, "accum");
  const fastnn::AdagradArgs a{lr, eps, weight_decay};
  run_update(dt, param, [&](auto t, std::size_t n) {
    using T = decltype(t);
    fastnn::adagrad_update<T>(mptr<T>(param), cptr<T>(grad), mptr<T>(accum), n, a);
  });
}

void adam(py::array param, py::array grad, py::array m, py::array v, double lr, double beta1, double beta2,
          double eps, std::int64_t step, double weight_decay, bool decoupled, std::optional<py::array> vmax) {
  const DType dt = check_update(param, grad, &m, "m", &v, "v", vmax ? &*vmax : nullptr, "vmax");
  const fastnn::AdamArgs a{lr, beta1, beta2, eps, weight_decay, step, decoupled};
  run_update(dt, param, [&](auto t, std::size_t n) {
    using T = decltype(t);
    fastnn::adam_update<T>(mptr<T>(param), cptr<T>(grad), mptr<T>(m), mptr<T>(v), n, a,
                           vmax ? mptr<T>(*vmax) : nullptr);
  });
}

}  // namespace

void bind_optim(py::module_& m) {
  m.def("sgd_update", &sgd, py::arg("param"), py::arg("grad"), py::arg("velocity"), py::arg("lr"),
        py::arg("momentum"), py::arg("nesterov"), py::arg("weight_decay"),
        "In place: SGD, momentum or Nesterov (Keras form); velocity may be None when momentum is 0.");
  m.def("rmsprop_update", &rmsprop, py::arg("param"), py::arg("grad"), py::arg("sq_avg"), py::arg("lr"),
        py::arg("rho"), py::arg("eps"), py::arg("weight_decay"), py::arg("momentum") = 0.0,
        py::arg("centered") = false, py::arg("momentum_buffer") = py::none(), py::arg("grad_avg") = py::none(),
        "In place: RMSprop; Keras's momentum (momentum_buffer) and centered form (grad_avg, the mean gradient).");
  m.def("adagrad_update", &adagrad, py::arg("param"), py::arg("grad"), py::arg("accum"), py::arg("lr"),
        py::arg("eps"), py::arg("weight_decay"), "In place: Adagrad.");
  m.def("adam_update", &adam, py::arg("param"), py::arg("grad"), py::arg("m"), py::arg("v"), py::arg("lr"),
        py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::arg("step"), py::arg("weight_decay"),
        py::arg("decoupled"), py::arg("vmax") = py::none(),
        "In place: Adam with bias correction (AdamW when decoupled); AMSGrad when vmax (the running maximum "
        "of v) is given.");
  m.def("set_flush_denormals", &fastnn::set_flush_denormals, py::arg("on"),
        "Whether the optimizer kernels run with FTZ/DAZ set (default True); the caller's MXCSR is restored.");
  m.def("get_flush_denormals", &fastnn::flush_denormals);
}

}  // namespace fastnn_py
