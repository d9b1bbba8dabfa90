// Bindings of the reduce family: clip by global norm / by value, sums of squares,
// column sums (bias gradients).
#include "fastnn/reduce/reduce.h"

#include <pybind11/stl.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common.h"

namespace fastnn_py {

namespace {

// The arrays are all scaled in place: a repeated or overlapping one would be scaled
// twice (and its norm counted twice), so any shared memory is refused.
void require_disjoint_list(const std::vector<py::array>& arrays) {
  std::vector<std::size_t> order(arrays.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  auto start = [&](std::size_t i) { return static_cast<const char*>(arrays[i].data()); };
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return start(a) < start(b); });
  // sorted by start address: an overlap, if any, is between neighbours among non-empty arrays
  const py::array* prev = nullptr;
  std::size_t prev_i = 0;
  for (std::size_t i : order) {
    if (arrays[i].nbytes() == 0) continue;
    if (prev && overlaps(*prev, arrays[i])) {
      const std::size_t lo = std::min(prev_i, i), hi = std::max(prev_i, i);
      throw py::value_error("grads[" + std::to_string(hi) + "]: must not share memory with grads[" +
                            std::to_string(lo) + "] (each array is scaled in place once)");
    }
    if (!prev || start(i) + arrays[i].nbytes() > start(prev_i) + prev->nbytes()) {
      prev = &arrays[i];
      prev_i = i;
    }
  }
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
  require_disjoint_list(keep);
  if (!(max_norm > 0) || !std::isfinite(max_norm))
    throw py::value_error("max_norm: expected a finite value > 0, got " + num(max_norm));
  py::gil_scoped_release nogil;
  return fastnn::clip_by_global_norm(views, max_norm);
}

double clip_by_value(py::array grad, double limit) {
  const DType dt = float_dtype(grad, "grad");
  require_contiguous(grad, "grad");
  require_writeable(grad, "grad");
  if (!(limit > 0) || !std::isfinite(limit))
    throw py::value_error("limit: expected a finite value > 0, got " + num(limit));
  const std::size_t n = grad.size();
  py::gil_scoped_release nogil;
  return visit_float(dt, [&](auto t) {
    using T = decltype(t);
    return fastnn::clip_by_value<T>(mptr<T>(grad), n, limit);
  });
}

// Runs f(data, n) on x (float32 or float64, C-contiguous) with the GIL released.
template <class F> auto read_float_array(py::array x, F&& f) {
  const DType dt = float_dtype(x, "x");
  require_contiguous(x, "x");
  const std::size_t n = x.size();
  py::gil_scoped_release nogil;
  return visit_float(dt, [&](auto t) {
    using T = decltype(t);
    return f(cptr<T>(x), n);
  });
}

double sum_squares(py::array x) {
  return read_float_array(x, [](const auto* p, std::size_t n) { return fastnn::sum_squares(p, n); });
}

double abs_sum(py::array x) {
  return read_float_array(x, [](const auto* p, std::size_t n) { return fastnn::abs_sum(p, n); });
}

bool all_finite(py::array x) {
  return read_float_array(x, [](const auto* p, std::size_t n) { return fastnn::all_finite(p, n); });
}

void column_sum(py::array x, py::array out) {
  const DType dt = float_dtype(x, "x");
  require_contiguous(x, "x");
  if (x.ndim() != 2) throw py::value_error("x: expected 2 dimensions, got " + std::to_string(x.ndim()));
  const std::size_t rows = x.shape(0), cols = x.shape(1);
  check_out(out, x, "out", "x");
  require_size(out, cols, "out");
  detach_input(x, {{&out, "out"}});  // out is written while x is read
  py::gil_scoped_release nogil;
  visit_float(dt, [&](auto t) {
    using T = decltype(t);
    fastnn::column_sum<T>(cptr<T>(x), mptr<T>(out), rows, cols);
  });
}

}  // namespace

void bind_reduce(py::module_& m) {
  m.def("clip_by_global_norm", &clip_by_global_norm, py::arg("grads"), py::arg("max_norm"),
        "Scales every array in place when the global L2 norm exceeds max_norm; returns the norm before. "
        "The arrays must not share memory.");
  m.def("clip_by_value", &clip_by_value, py::arg("grad"), py::arg("limit"),
        "Clamps in place to [-limit, limit]; returns the L2 norm before.");
  m.def("sum_squares", &sum_squares, py::arg("x"), "sum x^2 accumulated in double (fixed block order).");
  m.def("abs_sum", &abs_sum, py::arg("x"), "sum |x| accumulated in double (fixed block order).");
  m.def("all_finite", &all_finite, py::arg("x"), "Whether no element of x is NaN or infinite.");
  m.def("column_sum", &column_sum, py::arg("x"), py::arg("out"), "out[j] = sum_i x[i, j].");
}

}  // namespace fastnn_py
