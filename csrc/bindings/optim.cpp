// Bindings of the optim family (fused updates) and of the reductions used
// around it (clip by global norm / by value, column sums).
#include "fastnn/optim/denormals.h"
#include "fastnn/optim/optim.h"
#include "fastnn/parallel.h"
#include "fastnn/reduce/reduce.h"

#include <pybind11/stl.h>

#include <vector>

#include "common.h"

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

void sgd(py::array param, py::array grad, py::object velocity_obj, double lr, double momentum, bool nesterov,
         double weight_decay) {
  const DType dt = check_param(param);
  check_grad(grad, param);
  py::array velocity;
  const bool has_vel = !velocity_obj.is_none();
  if (has_vel) {
    velocity = velocity_obj.cast<py::array>();
    check_state(velocity, param, "velocity");
  }
  fastnn::SgdArgs a;
  a.lr = lr;
  a.momentum = momentum;
  a.nesterov = nesterov;
  a.weight_decay = weight_decay;
  const std::size_t n = param.size();
  py::gil_scoped_release nogil;
  if (dt == DType::f32)
    fastnn::sgd_update<float>(mptr<float>(param), cptr<float>(grad), has_vel ? mptr<float>(velocity) : nullptr, n, a);
  else
    fastnn::sgd_update<double>(mptr<double>(param), cptr<double>(grad), has_vel ? mptr<double>(velocity) : nullptr,
                               n, a);
}

void rmsprop(py::array param, py::array grad, py::array sq_avg, double lr, double rho, double eps,
             double weight_decay) {
  const DType dt = check_param(param);
  check_grad(grad, param);
  check_state(sq_avg, param, "sq_avg");
  fastnn::RmspropArgs a;
  a.lr = lr;
  a.rho = rho;
  a.eps = eps;
  a.weight_decay = weight_decay;
  const std::size_t n = param.size();
  py::gil_scoped_release nogil;
  if (dt == DType::f32)
    fastnn::rmsprop_update<float>(mptr<float>(param), cptr<float>(grad), mptr<float>(sq_avg), n, a);
  else
    fastnn::rmsprop_update<double>(mptr<double>(param), cptr<double>(grad), mptr<double>(sq_avg), n, a);
}

void adagrad(py::array param, py::array grad, py::array accum, double lr, double eps, double weight_decay) {
  const DType dt = check_param(param);
  check_grad(grad, param);
  check_state(accum, param, "accum");
  fastnn::AdagradArgs a;
  a.lr = lr;
  a.eps = eps;
  a.weight_decay = weight_decay;
  const std::size_t n = param.size();
  py::gil_scoped_release nogil;
  if (dt == DType::f32)
    fastnn::adagrad_update<float>(mptr<float>(param), cptr<float>(grad), mptr<float>(accum), n, a);
  else
    fastnn::adagrad_update<double>(mptr<double>(param), cptr<double>(grad), mptr<double>(accum), n, a);
}

void adam(py::array param, py::array grad, py::array m, py::array v, double lr, double beta1, double beta2,
          double eps, std::int64_t step, double weight_decay, bool decoupled) {
  const DType dt = check_param(param);
  check_grad(grad, param);
  check_state(m, param, "m");
  check_state(v, param, "v");
  fastnn::AdamArgs a;
  a.lr = lr;
  a.beta1 = beta1;
  a.beta2 = beta2;
  a.eps = eps;
  a.step = step;
  a.weight_decay = weight_decay;
  a.decoupled = decoupled;
  const std::size_t n = param.size();
  py::gil_scoped_release nogil;
  if (dt == DType::f32)
    fastnn::adam_update<float>(mptr<float>(param), cptr<float>(grad), mptr<float>(m), mptr<float>(v), n, a);
  else
    fastnn::adam_update<double>(mptr<double>(param), cptr<double>(grad), mptr<double>(m), mptr<double>(v), n, a);
}

double clip_by_global_norm(py::list grads, double max_norm) {
  std::vector<py::array> keep;  // holds references while the GIL is released
  std::vector<fastnn::GradView> views;
  for (std::size_t i = 0; i < grads.size(); ++i) {
    const std::string name = "grads[" + std::to_string(i) + "]";
    if (!py::isinstance<py::array>(grads[i])) throw py::type_error(name + ": expected a numpy.ndarray");
    py::array g = grads[i].cast<py::array>();
    const DType dt = float_dtype(g, name.c_str());
    require_contiguous(g, name.c_str());
    require_writeable(g, name.c_str());
    views.push_back({g.mutable_data(), static_cast<std::size_t>(g.size()), dt == DType::f64});
    keep.push_back(std::move(g));
  }
  py::gil_scoped_release nogil;
  return fastnn::clip_by_global_norm(views, max_norm);
}

double clip_by_value(py::array grad, double limit) {
  const DType dt = float_dtype(grad, "grad");
  require_contiguous(grad, "grad");
  require_writeable(grad, "grad");
  const std::size_t n = grad.size();
  py::gil_scoped_release nogil;
  if (dt == DType::f32) return fastnn::clip_by_value<float>(mptr<float>(grad), n, limit);
  return fastnn::clip_by_value<double>(mptr<double>(grad), n, limit);
}

double sum_squares(py::array x) {
  const DType dt = float_dtype(x, "x");
  require_contiguous(x, "x");
  const std::size_t n = x.size();
  py::gil_scoped_release nogil;
  if (dt == DType::f32) return fastnn::sum_squares<float>(cptr<float>(x), n);
  return fastnn::sum_squares<double>(cptr<double>(x), n);
}

void column_sum(py::array x, py::array out) {
  const DType dt = float_dtype(x, "x");
  require_contiguous(x, "x");
  if (x.ndim() != 2) throw py::value_error("x: expected 2 dimensions, got " + std::to_string(x.ndim()));
  const std::size_t rows = x.shape(0), cols = x.shape(1);
  check_out(out, x, "out", "x");
  require_size(out, cols, "out");
  py::gil_scoped_release nogil;
  if (dt == DType::f32) fastnn::column_sum<float>(cptr<float>(x), mptr<float>(out), rows, cols);
  else fastnn::column_sum<double>(cptr<double>(x), mptr<double>(out), rows, cols);
}

}  // namespace

void bind_optim(py::module_& m) {
  m.def("sgd_update", &sgd, py::arg("param"), py::arg("grad"), py::arg("velocity"), py::arg("lr"),
        py::arg("momentum"), py::arg("nesterov"), py::arg("weight_decay"),
        "In place: SGD, momentum or Nesterov (Keras form); velocity may be None when momentum is 0.");
  m.def("rmsprop_update", &rmsprop, py::arg("param"), py::arg("grad"), py::arg("sq_avg"), py::arg("lr"),
        py::arg("rho"), py::arg("eps"), py::arg("weight_decay"), "In place: RMSProp.");
  m.def("adagrad_update", &adagrad, py::arg("param"), py::arg("grad"), py::arg("accum"), py::arg("lr"),
        py::arg("eps"), py::arg("weight_decay"), "In place: Adagrad.");
  m.def("adam_update", &adam, py::arg("param"), py::arg("grad"), py::arg("m"), py::arg("v"), py::arg("lr"),
        py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::arg("step"), py::arg("weight_decay"),
        py::arg("decoupled"), "In place: Adam with bias correction (AdamW when decoupled).");
  m.def("set_flush_denormals", &fastnn::set_flush_denormals, py::arg("on"),
        "Whether the optimizer kernels run with FTZ/DAZ set (default True); the caller's MXCSR is restored.");
  m.def("get_flush_denormals", &fastnn::flush_denormals);
  m.def("mxcsr_of_threads", [](int n) {
    // MXCSR seen by each thread of an OpenMP team of n (tests: nothing leaks out of a kernel call)
    if (n < 1 || n > 1024) throw py::value_error("n: expected 1..1024, got " + std::to_string(n));
    std::vector<unsigned> out(n, 0);
    {
      py::gil_scoped_release nogil;
#pragma omp parallel num_threads(n)
      out[omp_get_thread_num()] = fastnn::current_mxcsr();
    }
    return out;
  }, py::arg("n"), "MXCSR of each thread of an OpenMP team of n threads (0 on non-x86).");
  m.def("clip_by_global_norm", &clip_by_global_norm, py::arg("grads"), py::arg("max_norm"),
        "Scales every array in place when the global L2 norm exceeds max_norm; returns the norm before.");
  m.def("clip_by_value", &clip_by_value, py::arg("grad"), py::arg("limit"),
        "Clamps in place to [-limit, limit]; returns the L2 norm before.");
  m.def("sum_squares", &sum_squares, py::arg("x"), "sum x^2 accumulated in double (fixed block order).");
  m.def("column_sum", &column_sum, py::arg("x"), py::arg("out"), "out[j] = sum_i x[i, j].");
}

}  // namespace fastnn_py
