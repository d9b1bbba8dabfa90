// Bindings of the eltwise family: activations, their gradients, softmax.
#include "fastnn/eltwise/eltwise.h"

#include "common.h"

namespace fastnn_py {

namespace {

using fastnn::Act;

void activation_forward(const std::string& name, py::array x, py::array y, double alpha) {
  const Act act = fastnn::parse_activation(name);
  fastnn::check_activation_alpha(act, alpha, "alpha");
  const DType dt = float_dtype(x, "x");
  require_contiguous(x, "x");
  check_out(y, x, "out", "x");
  const std::size_t n = x.size();
  require_size(y, n, "out");
  detach_input(x, {{&y, "out"}}, &y);  // out may be x itself
  py::gil_scoped_release nogil;
  visit_float(dt, [&](auto t) {
    using T = decltype(t);
    fastnn::activation_forward<T>(act, cptr<T>(x), mptr<T>(y), n, static_cast<T>(alpha));
  });
}

void activation_backward(const std::string& name, py::array dy, py::object x_obj, py::object y_obj, py::array dx,
                         double alpha) {
  const Act act = fastnn::parse_activation(name);
  fastnn::check_activation_alpha(act, alpha, "alpha");
  const DType dt = float_dtype(dy, "dy");
  require_contiguous(dy, "dy");
  const std::size_t n = dy.size();
  check_out(dx, dy, "out", "dy");
  require_size(dx, n, "out");
  py::array x, y;
  const bool has_x = !x_obj.is_none(), has_y = !y_obj.is_none();
  if (has_x) {
    x = x_obj.cast<py::array>();
    check_in(x, dy, "x", "dy");
    require_size(x, n, "x");
  }
  if (has_y) {
    y = y_obj.cast<py::array>();
    check_in(y, dy, "y", "dy");
    require_size(y, n, "y");
  }
  const fastnn::GradNeeds needs = fastnn::activation_grad_needs(act);
  if (needs == fastnn::GradNeeds::x && !has_x)
    throw py::value_error(std::string("x: activation '") + name +
                          "' needs the forward input x for its gradient, got None");
  if (needs != fastnn::GradNeeds::none && !has_x && !has_y)
    throw py::value_error("x, y: give the forward input x or the forward output y, got neither");
  detach_input(dy, {{&dx, "out"}}, &dx);  // out may be dy itself
  if (has_x) detach_input(x, {{&dx, "out"}});
  if (has_y) detach_input(y, {{&dx, "out"}});
  py::gil_scoped_release nogil;
  visit_float(dt, [&](auto t) {
    using T = decltype(t);
    fastnn::activation_backward<T>(act, cptr<T>(dy), has_x ? cptr<T>(x) : nullptr, has_y ? cptr<T>(y) : nullptr,
                                   mptr<T>(dx), n, static_cast<T>(alpha));
  });
}

// y = erf(x) (the vector erf behind gelu), for the tests of its error.
void erf_values(py::array x, py::array y) {
  const DType dt = float_dtype(x, "x");
  require_contiguous(x, "x");
  check_out(y, x, "out", "x");
  require_size(y, x.size(), "out");
  detach_input(x, {{&y, "out"}}, &y);
  py::gil_scoped_release nogil;
  visit_float(dt, [&](auto t) {
    using T = decltype(t);
    fastnn::erf_values<T>(cptr<T>(x), mptr<T>(y), x.size());
  });
}

void softmax(py::array x, py::array y, bool log) {
  const DType dt = float_dtype(x, "x");
  require_contiguous(x, "x");
  check_out(y, x, "out", "x");
  require_size(y, x.size(), "out");
  if (x.ndim() < 1) throw py::value_error("x: expected at least 1 dimension, got 0");
  const std::size_t cols = x.shape(x.ndim() - 1);
  const std::size_t rows = cols == 0 ? 0 : x.size() / cols;
  detach_input(x, {{&y, "out"}}, &y);  // out may be x itself
  py::gil_scoped_release nogil;
  visit_float(dt, [&](auto t) {
    using T = decltype(t);
    fastnn::softmax_rows<T>(cptr<T>(x), mptr<T>(y), rows, cols, log);
  });
}

}  // namespace

void bind_eltwise(py::module_& m) {
  m.def("activation_forward", &activation_forward, py::arg("name"), py::arg("x"), py::arg("out"), py::arg("alpha"),
        "out = act(x) elementwise; out may be x.");
  m.def("activation_backward", &activation_backward, py::arg("name"), py::arg("dy"), py::arg("x"), py::arg("y"),
        py::arg("out"), py::arg("alpha"), "out = dy * act'(.) given the forward input x and/or output y.");
  m.def("erf", &erf_values, py::arg("x"), py::arg("out"),
        "out = erf(x) elementwise, the vector erf behind gelu (float32: our own polynomial; float64: libm).");
  m.def("softmax", &softmax, py::arg("x"), py::arg("out"), py::arg("log"),
        "Row-wise (last axis) softmax, or log-softmax when log is true.");
  m.def("default_activation_alpha",
        [](const std::string& name) { return fastnn::default_activation_alpha(fastnn::parse_activation(name)); },
        py::arg("name"), "The registry's default alpha of an activation (0 when it takes none).");
  m.def("activations", []() {
    std::size_t n = 0;
    const fastnn::ActivationInfo* rows = fastnn::activation_registry(&n);
    py::dict d;
    for (std::size_t i = 0; i < n; ++i) {
      py::dict row;
      row["canonical"] = rows[i].canonical;
      row["alpha"] = rows[i].takes_alpha ? py::object(py::float_(rows[i].default_alpha)) : py::object(py::none());
      row["grad_needs"] = fastnn::grad_needs_name(rows[i].grad_needs);
      d[rows[i].name] = row;
    }
    return d;
  }, "The activation registry: name -> {canonical, alpha (default, None when it takes none), grad_needs "
     "('none', 'x' or 'x_or_y')}, aliases included.");
}

}  // namespace fastnn_py
