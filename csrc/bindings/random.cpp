// Bindings of the random family: Philox4x32-10 and dropout.
#include "fastnn/random/random.h"

#include <pybind11/stl.h>

#include "common.h"

namespace fastnn_py {

namespace {

void dropout(py::array x, double rate, std::uint64_t seed, py::array y, py::object mask_obj) {
  const DType dt = float_dtype(x, "x");
  require_contiguous(x, "x");
  check_out(y, x, "out", "x");
  const std::size_t n = x.size();
  require_size(y, n, "out");
  if (!(rate >= 0.0 && rate < 1.0))
    throw py::value_error("rate: expected a value in [0, 1), got " + num(rate));
  py::array mask;
  const bool has_mask = !mask_obj.is_none();
  if (has_mask) {
    mask = mask_obj.cast<py::array>();
    check_out(mask, x, "out[1] (mask)", "x");
    require_size(mask, n, "out[1] (mask)");
    require_disjoint(y, mask, "y", "out[1] (mask)");
    if (overlaps(mask, x)) throw py::value_error("out[1] (mask): must not share memory with x or y");
  }
  detach_input(x, {{&y, "out"}}, &y);  // out may be x itself
  py::gil_scoped_release nogil;
  visit_float(dt, [&](auto t) {
    using T = decltype(t);
    fastnn::dropout_forward<T>(cptr<T>(x), mptr<T>(y), has_mask ? mptr<T>(mask) : nullptr, n, rate, seed);
  });
}

}  // namespace

void bind_random(py::module_& m) {
  m.def("philox4x32", [](std::array<std::uint32_t, 4> ctr, std::array<std::uint32_t, 2> key) {
    return fastnn::philox4x32_10(ctr, key);
  }, py::arg("counter"), py::arg("key"), "One Philox4x32-10 block: 4 counter words, 2 key words -> 4 words.");
  m.def("dropout", &dropout, py::arg("x"), py::arg("rate"), py::arg("seed"), py::arg("out"), py::arg("mask"),
        "Inverted dropout with a Philox mask: out = x * mask, mask = (u >= rate) / (1 - rate).");
}

}  // namespace fastnn_py
