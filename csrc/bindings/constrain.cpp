// Bindings of the weight constraints (csrc/fastnn/constrain): the norm constraints and NonNeg,
// in place, with the GIL released.
#include "constrain.h"

#include <cmath>

#include "common.h"

namespace fastnn_py {

fastnn::NormConstraint norm_constraint_args(const std::string& rule, std::size_t outer, std::size_t r,
                                            std::size_t inner, double min_value, double max_value, double rate,
                                            std::size_t size) {
  fastnn::NormRule kind = fastnn::NormRule::max_norm;
  if (rule == "max_norm") kind = fastnn::NormRule::max_norm;
  else if (rule == "unit_norm") kind = fastnn::NormRule::unit_norm;
  else if (rule == "min_max_norm") kind = fastnn::NormRule::min_max_norm;
  else throw py::value_error("rule: expected 'max_norm', 'unit_norm' or 'min_max_norm', got '" + rule + "'");
  std::size_t prod = 0;  // outer * r * inner, or a value other than size when it overflows
  const bool overflow = __builtin_mul_overflow(outer, r, &prod) || __builtin_mul_overflow(prod, inner, &prod);
  if (overflow || prod != size)
    throw py::value_error("shape: expected outer * r * inner = " + std::to_string(size) + " (the values of w), got " +
                          std::to_string(outer) + " * " + std::to_string(r) + " * " + std::to_string(inner));
  if (kind != fastnn::NormRule::unit_norm && !(max_value > 0 && std::isfinite(max_value)))
    throw py::value_error("max_value: expected a finite value > 0, got " + num(max_value));
  if (kind == fastnn::NormRule::min_max_norm) {
    if (!(min_value >= 0 && min_value <= max_value))
      throw py::value_error("min_value: expected a value in [0, max_value = " + num(max_value) + "], got " +
                            num(min_value));
    if (!(rate >= 0 && rate <= 1)) throw py::value_error("rate: expected a value in [0, 1], got " + num(rate));
  }
  return {kind, min_value, max_value, rate, outer, r, inner};
}

namespace {

// w: float32 or float64, C-contiguous, writeable (the variable projected in place).
DType checked_w(const py::array& w) {
  const DType dt = float_dtype(w, "w");
  require_contiguous(w, "w");
  require_writeable(w, "w");
  return dt;
}

void norm_constraint(py::array w, const std::string& rule, std::size_t outer, std::size_t r, std::size_t inner,
                     double min_value, double max_value, double rate) {
  const DType dt = checked_w(w);
  const fastnn::NormConstraint c =
      norm_constraint_args(rule, outer, r, inner, min_value, max_value, rate, static_cast<std::size_t>(w.size()));
  py::gil_scoped_release nogil;
  visit_float(dt, [&](auto t) {
    using T = decltype(t);
    fastnn::norm_constrain<T>(mptr<T>(w), c);
  });
}

void non_neg(py::array w) {
  const DType dt = checked_w(w);
  const std::size_t n = w.size();
  py::gil_scoped_release nogil;
  visit_float(dt, [&](auto t) {
    using T = decltype(t);
    fastnn::non_neg<T>(mptr<T>(w), n);
  });
}

}  // namespace

void bind_constrain(py::module_& m) {
  m.def("norm_constraint", &norm_constraint, py::arg("w"), py::arg("rule"), py::arg("outer"), py::arg("r"),
        py::arg("inner"), py::arg("min_value") = 0.0, py::arg("max_value") = 1.0, py::arg("rate") = 1.0,
        "w (outer x r x inner) projected in place by the norms over r: rule 'max_norm', 'unit_norm' or "
        "'min_max_norm' (Keras's constraints; csrc/fastnn/constrain/constrain.h).");
  m.def("non_neg", &non_neg, py::arg("w"), "w = max(w, 0) in place (NaN stays NaN).");
}

}  // namespace fastnn_py
