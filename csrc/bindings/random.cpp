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
  py::array mask;
  const bool has_mask = !mask_obj.is_none();
  if (has_mask) {
    mask = mask_obj.cast<py::array>();
    check_out(mask, x, "mask", "x");
    require_size(mask, n, "mask");
  }
  py::gil_scoped_release nogil;
  if (dt == DType::f32)
    fastnn::dropout_forward<float>(cptr<float>(x), mptr<float>(y), has_mask ? mptr<float>(mask) : nullptr, n, rate,
                                   seed);
  else
    fastnn::dropout_forward<double>(cptr<double>(x), mptr<double>(y), has_mask ? mptr<double>(mask) : nullptr, n,
                                    rate, seed);
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
