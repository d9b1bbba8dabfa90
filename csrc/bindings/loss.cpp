// Bindings of the loss family: fused softmax cross-entropy, BCE with logits, MSE.
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

double xent_ids(py::array logits, py::array labels, py::array dlogits) {
  const DType dt = float_dtype(logits, "logits");
  require_contiguous(logits, "logits");
  const auto [m, C] = logits_shape(logits);
  if (!same_dtype(labels.dtype(), py::dtype::of<std::int64_t>()))
    throw py::type_error("labels: expected dtype int64, got " + dtype_str(labels));
  require_contiguous(labels, "labels");
  require_size(labels, m, "labels");
  check_out(dlogits, logits, "dlogits", "logits");
  require_size(dlogits, m * C, "dlogits");
  const auto* lab = static_cast<const std::int64_t*>(labels.data());
  py::gil_scoped_release nogil;
  if (dt == DType::f32)
    return fastnn::softmax_cross_entropy_ids<float>(cptr<float>(logits), lab, mptr<float>(dlogits), m, C);
  return fastnn::softmax_cross_entropy_ids<double>(cptr<double>(logits), lab, mptr<double>(dlogits), m, C);
}

double xent_probs(py::array logits, py::array targets, py::array dlogits) {
  const DType dt = float_dtype(logits, "logits");
  require_contiguous(logits, "logits");
  const auto [m, C] = logits_shape(logits);
  check_in(targets, logits, "labels", "logits");
  require_size(targets, m * C, "labels");
  check_out(dlogits, logits, "dlogits", "logits");
  require_size(dlogits, m * C, "dlogits");
  py::gil_scoped_release nogil;
  if (dt == DType::f32)
    return fastnn::softmax_cross_entropy_probs<float>(cptr<float>(logits), cptr<float>(targets),
                                                      mptr<float>(dlogits), m, C);
  return fastnn::softmax_cross_entropy_probs<double>(cptr<double>(logits), cptr<double>(targets),
                                                     mptr<double>(dlogits), m, C);
}

// Shared checks of the elementwise losses: a, b and grad of one dtype and size n >= 1.
void check_elementwise(const py::array& a, const py::array& b, py::array& grad, const char* an, const char* bn) {
  float_dtype(a, an);
  require_contiguous(a, an);
  check_in(b, a, bn, an);
  require_size(b, a.size(), bn);
  check_out(grad, a, "grad", an);
  require_size(grad, a.size(), "grad");
  if (a.size() == 0) throw py::value_error(std::string(an) + ": expected at least one element, got 0");
}

double bce_with_logits(py::array logits, py::array targets, py::array grad) {
  check_elementwise(logits, targets, grad, "logits", "targets");
  const std::size_t n = logits.size();
  const bool f32 = float_dtype(logits, "logits") == DType::f32;
  py::gil_scoped_release nogil;
  if (f32)
    return fastnn::bce_with_logits<float>(cptr<float>(logits), cptr<float>(targets), mptr<float>(grad), n);
  return fastnn::bce_with_logits<double>(cptr<double>(logits), cptr<double>(targets), mptr<double>(grad), n);
}

double mse(py::array pred, py::array target, py::array grad) {
  check_elementwise(pred, target, grad, "pred", "target");
  const std::size_t n = pred.size();
  const bool f32 = float_dtype(pred, "pred") == DType::f32;
  py::gil_scoped_release nogil;
  if (f32)
    return fastnn::mean_squared_error<float>(cptr<float>(pred), cptr<float>(target), mptr<float>(grad), n);
  return fastnn::mean_squared_error<double>(cptr<double>(pred), cptr<double>(target), mptr<double>(grad), n);
}

}  // namespace

void bind_loss(py::module_& m) {
  m.def("softmax_cross_entropy_ids", &xent_ids, py::arg("logits"), py::arg("labels"), py::arg("dlogits"),
        "Mean softmax cross-entropy of (m, C) logits against m int64 class ids; writes dlogits, returns the loss.");
  m.def("softmax_cross_entropy_probs", &xent_probs, py::arg("logits"), py::arg("targets"), py::arg("dlogits"),
        "Mean softmax cross-entropy against (m, C) target rows; writes dlogits, returns the loss.");
  m.def("binary_cross_entropy_with_logits", &bce_with_logits, py::arg("logits"), py::arg("targets"),
        py::arg("grad"), "Mean sigmoid cross-entropy; writes the gradient, returns the loss.");
  m.def("mean_squared_error", &mse, py::arg("pred"), py::arg("target"), py::arg("grad"),
        "Mean squared error; writes the gradient, returns the loss.");
}

}  // namespace fastnn_py
