// Bindings of the loss family: fused softmax cross-entropy, BCE with logits, MSE; each
// weighted per sample (one weight per row, loss.h) when given weights.
#include "fastnn/loss/loss.h"

#include <cstdint>
#include <string>

#include "common.h"

namespace fastnn_py {

namespace {

std::pair<std::size_t, std::size_t> logits_shape(const py::array& z) {
  if (z.ndim() != 2)
    throw py::value_error("logits: expected 2 dimensions (batch, classes), got " + std::to_string(z.ndim()));
  const std::size_t m = z.shape(0), C = z.shape(1);
  if (m == 0 || C == 0) throw py::value_error("logits: expected a non-empty (m, C) matrix");
  return {m, C};
}

// The optional sample weights (None: unweighted): a vector of m values of `like`'s dtype,
// overlapping no output; the array into keep, its data returned (null for None).
const void* weights_arg(const py::object& o, const py::array& like, const char* like_name, std::size_t m,
                        const py::array& out, py::array& keep) {
  if (o.is_none()) return nullptr;
  keep = array_arg(o, "weights");
  check_in(keep, like, "weights", like_name);
  require_vector(keep, m, "weights");
  require_no_overlap(keep, out, "weights", "out");
  return keep.data();
}

// The gradient is written while the inputs are read, and the contract says it never
// overlaps them (out=logits is refused, not computed in place).
double xent_ids(py::array logits, py::array labels, py::array dlogits, py::object weights) {
  const DType dt = float_dtype(logits, "logits");
  require_contiguous(logits, "logits");
  const auto [m, C] = logits_shape(logits);
  require_dtype(labels, py::dtype::of<std::int64_t>(), "labels");
  require_size(labels, m, "labels");
  check_out(dlogits, logits, "out", "logits");
  require_size(dlogits, m * C, "out");
  require_no_overlap(logits, dlogits, "logits", "out");
  require_no_overlap(labels, dlogits, "labels", "out");
  py::array wa;
  const void* w = weights_arg(weights, logits, "logits", m, dlogits, wa);
  const auto* lab = static_cast<const std::int64_t*>(labels.data());
  py::gil_scoped_release nogil;
  return visit_float(dt, [&](auto t) {
    using T = decltype(t);
    if (w) return fastnn::softmax_cross_entropy_ids_weighted<T>(cptr<T>(logits), lab, static_cast<const T*>(w),
                                                                mptr<T>(dlogits), m, C);
    return fastnn::softmax_cross_entropy_ids<T>(cptr<T>(logits), lab, mptr<T>(dlogits), m, C);
  });
}

double xent_probs(py::array logits, py::array targets, py::array dlogits, py::object weights) {
  const DType dt = float_dtype(logits, "logits");
  require_contiguous(logits, "logits");
  const auto [m, C] = logits_shape(logits);
  check_in(targets, logits, "labels", "logits");
  require_size(targets, m * C, "labels");
  check_out(dlogits, logits, "out", "logits");
  require_size(dlogits, m * C, "out");
  require_no_overlap(logits, dlogits, "logits", "out");
  require_no_overlap(targets, dlogits, "labels", "out");
  py::array wa;
  const void* w = weights_arg(weights, logits, "logits", m, dlogits, wa);
  py::gil_scoped_release nogil;
  return visit_float(dt, [&](auto t) {
    using T = decltype(t);
    if (w) return fastnn::softmax_cross_entropy_probs_weighted<T>(cptr<T>(logits), cptr<T>(targets),
                                                                  static_cast<const T*>(w), mptr<T>(dlogits), m, C);
    return fastnn::softmax_cross_entropy_probs<T>(cptr<T>(logits), cptr<T>(targets), mptr<T>(dlogits), m, C);
  });
}

// Shared checks of the elementwise losses: a, b and grad of one dtype and size n >= 1,
// grad overlapping neither input.
DType check_elementwise(const py::array& a, const py::array& b, py::array& grad, const char* an, const char* bn) {
  const DType dt = float_dtype(a, an);
  require_contiguous(a, an);
  check_in(b, a, bn, an);
  require_size(b, a.size(), bn);
  check_out(grad, a, "out", an);
  require_size(grad, a.size(), "out");
  if (a.size() == 0) throw py::value_error(std::string(an) + ": expected at least one element, got 0");
  require_no_overlap(a, grad, an, "out");
  require_no_overlap(b, grad, bn, "out");
  return dt;
}

// An elementwise loss: the shared checks, then kernel(a, b, grad, n) for the dtype with
// the GIL released, or with weights (one per row of a, whose first dimension is the
// batch) weighted(a, b, w, grad, rows, n / rows); returns the (weighted) mean loss.
template <class K, class KW>
double elementwise_loss(py::array& a, py::array& b, py::array& grad, const py::object& weights, const char* an,
                        const char* bn, K kernel, KW weighted) {
  const DType dt = check_elementwise(a, b, grad, an, bn);
  const std::size_t n = a.size(), rows = a.ndim() ? a.shape(0) : 1;
  py::array wa;
  const void* w = weights_arg(weights, a, an, rows, grad, wa);
  py::gil_scoped_release nogil;
  return visit_float(dt, [&](auto t) {
    using T = decltype(t);
    if (w) return weighted(cptr<T>(a), cptr<T>(b), static_cast<const T*>(w), mptr<T>(grad), rows, n / rows);
    return kernel(cptr<T>(a), cptr<T>(b), mptr<T>(grad), n);
  });
}

double bce_with_logits(py::array logits, py::array targets, py::array grad, py::object weights) {
  return elementwise_loss(logits, targets, grad, weights, "logits", "targets",
                          [](auto... args) { return fastnn::bce_with_logits(args...); },
                          [](auto... args) { return fastnn::bce_with_logits_weighted(args...); });
}

double mse(py::array pred, py::array target, py::array grad, py::object weights) {
  return elementwise_loss(pred, target, grad, weights, "pred", "target",
                          [](auto... args) { return fastnn::mean_squared_error(args...); },
                          [](auto... args) { return fastnn::mean_squared_error_weighted(args...); });
}

}  // namespace

void bind_loss(py::module_& m) {
  m.def("softmax_cross_entropy_ids", &xent_ids, py::arg("logits"), py::arg("labels"), py::arg("dlogits"),
        py::arg("weights") = py::none(),
        "Mean softmax cross-entropy of (m, C) logits against m int64 class ids (weighted: sum w_i l_i / m, "
        "rows of dlogits times w_i); writes dlogits, returns the loss.");
  m.def("softmax_cross_entropy_probs", &xent_probs, py::arg("logits"), py::arg("targets"), py::arg("dlogits"),
        py::arg("weights") = py::none(),
        "Mean softmax cross-entropy against (m, C) target rows (weighted as the ids' form); writes dlogits, "
        "returns the loss.");
  m.def("binary_cross_entropy_with_logits", &bce_with_logits, py::arg("logits"), py::arg("targets"),
        py::arg("grad"), py::arg("weights") = py::none(),
        "Mean sigmoid cross-entropy (weighted: one weight per row of logits); writes the gradient, returns the loss.");
  m.def("mean_squared_error", &mse, py::arg("pred"), py::arg("target"), py::arg("grad"),
        py::arg("weights") = py::none(),
        "Mean squared error (weighted: one weight per row of pred); writes the gradient, returns the loss.");
}

}  // namespace fastnn_py
