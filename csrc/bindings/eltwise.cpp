// Bindings of the eltwise family: activations, their gradients, softmax.
#include "fastnn/eltwise/eltwise.h"

#include "common.h"

namespace fastnn_py {

namespace {

using fastnn::Act;

void activation_forward(const std::string& name, py::array x, py::array y, double alpha) {
  const Act act = fastnn::parse_activation(name);
  const DType dt = float_dtype(x, "x");
  require_contiguous(x, "x");
  check_out(y, x, "out", "x");
  const std::size_t n = x.size();
  require_size(y, n, "out");
  py::gil_scoped_release nogil;
  if (dt == DType::f32)
    fastnn::activation_forward<float>(act, cptr<float>(x), mptr<float>(y), n, static_cast<float>(alpha));
  else
    fastnn::activation_forward<double>(act, cptr<double>(x), mptr<double>(y), n, alpha);
}

void activation_backward(const std::string& name, py::array dy, py::object x_obj, py::object y_obj, py::array dx,
                         double alpha) {
  const Act act = fastnn::parse_activation(name);
  const DType dt = float_dtype(dy, "dy");
  require_contiguous(dy, "dy");
  const std::size_t n = dy.size();
  check_out(dx, dy, "out", "dy");
  require_size(dx, n, "out");
  py::array x, y;
  if (!x_obj.is_none()) {
    x = x_obj.cast<py::array>();
    check_in(x, dy, "x", "dy");
    require_size(x, n, "x");
  }
  if (!y_obj.is_none()) {
    y = y_obj.cast<py::array>();
    check_in(y, dy, "y", "dy");
    require_size(y, n, "y");
  }
  const void* xp = x_obj.is_none() ? nullptr : x.data();
  const void* yp = y_obj.is_none() ? nullptr : y.data();
  if (fastnn::activation_grad_needs(act) == fastnn::GradNeeds::x_only && !xp)
    throw py::value_error(std::string("x: activation '") + name + "' needs the forward input x for its gradient");
  if (fastnn::activation_grad_needs(act) != fastnn::GradNeeds::none && !xp && !yp)
    throw py::value_error("x, y: give the forward input x or output y");
  py::gil_scoped_release nogil;
  if (dt == DType::f32)
    fastnn::activation_backward<float>(act, cptr<float>(dy), static_cast<const float*>(xp),
                                       static_cast<const float*>(yp), mptr<float>(dx), n, static_cast<float>(alpha));
  else
    fastnn::activation_backward<double>(act, cptr<double>(dy), static_cast<const double*>(xp),
                                        static_cast<const double*>(yp), mptr<double>(dx), n, alpha);
}

void softmax(py::array x, py::array y, bool log) {
  const DType dt = float_dtype(x, "x");
  require_contiguous(x, "x");
  check_out(y, x, "out", "x");
  require_size(y, x.size(), "out");
  if (x.ndim() < 1) throw py::value_error("x: expected at least 1 dimension, got 0");
  const std::size_t cols = x.shape(x.ndim() - 1);
  const std::size_t rows = cols == 0 ? 0 : x.size() / cols;
  py::gil_scoped_release nogil;
  if (dt == DType::f32)
    fastnn::softmax_rows<float>(cptr<float>(x), mptr<float>(y), rows, cols, log);
  else
    fastnn::softmax_rows<double>(cptr<double>(x), mptr<double>(y), rows, cols, log);
}

}  // namespace

void bind_eltwise(py::module_& m) {
  m.def("activation_forward", &activation_forward, py::arg("name"), py::arg("x"), py::arg("out"), py::arg("alpha"),
        "out = act(x) elementwise; out may be x.");
  m.def("activation_backward", &activation_backward, py::arg("name"), py::arg("dy"), py::arg("x"), py::arg("y"),
        py::arg("out"), py::arg("alpha"), "out = dy * act'(.) given the forward input x and/or output y.");
  m.def("softmax", &softmax, py::arg("x"), py::arg("out"), py::arg("log"),
        "Row-wise (last axis) softmax, or log-softmax when log is true.");
  m.def("default_activation_alpha",
        [](const std::string& name) { return fastnn::default_activation_alpha(fastnn::parse_activation(name)); });
}

}  // namespace fastnn_py
