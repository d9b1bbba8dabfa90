// Dispatch and threading for the loss family (baseline ISA).
#include "fastnn/loss/loss.h"

#include <cassert>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "fastnn/cpu.h"
#include "fastnn/parallel.h"

namespace fastnn {
namespace {

template <class T> const LossKernelsT<T>& kernels_for() { return FASTNN_KERNELS(T, loss_kernels); }

// Minimum elements per thread, measured with bench/compare.py (loss section).
// (Wall-clock minima, 1 vs 2 threads, on the shared 2-core Zen 5: BCE gains
// from 65536 values, MSE from 131072, cross-entropy from about 32000 logits.)
constexpr std::size_t kGrainRows = 1 << 14;   // softmax cross-entropy (an exp per element)
constexpr std::size_t kGrainBce = 1 << 14;    // an exp and a log1p per element
constexpr std::size_t kGrainMse = 1 << 16;    // memory-bound
// Elementwise losses are summed per block of this many values, blocks in
// order: the sum does not depend on the thread count.
constexpr std::size_t kBlock = 1 << 13;

// Row i of dz (width values) times T(w_i), rows [b, e): NumPy's dz *= w[:, None].
template <class T> void scale_rows(T* dz, const T* w, std::size_t b, std::size_t e, std::size_t width) {
  for (std::size_t i = b; i < e; ++i) {
    const T wi = w[i];
    T* r = dz + i * width;
    for (std::size_t j = 0; j < width; ++j) r[j] = r[j] * wi;
  }
}

// sum_i w_i l_i / m (w null: sum_i l_i / m), the rows in order.
template <class T> double row_mean(const std::vector<double>& row_loss, const T* w) {
  double sum = 0;
  if (w) {
    for (std::size_t i = 0; i < row_loss.size(); ++i) sum += static_cast<double>(w[i]) * row_loss[i];
  } else {
    for (double l : row_loss) sum += l;
  }
  return sum / static_cast<double>(row_loss.size());
}

// w (and dz, the gradient fn writes): the weighted loss (loss.h).
template <class T, class Fn>
double xent_driver(std::size_t m, std::size_t C, Fn fn, const T* w = nullptr, T* dz = nullptr) {
  assert(m > 0 && C > 0);  // checked by the binding
  std::vector<double> row_loss(m);
  const T scale = T(1) / static_cast<T>(m);
  parallel_for(m, std::max<std::size_t>(1, kGrainRows / C), [&](std::size_t b, std::size_t e) {
    fn(b, e, scale, row_loss.data());
    if (w) scale_rows(dz, w, b, e, C);
  }, 1);
  return row_mean(row_loss, w);
}

template <class T, class Kernel>
double elementwise_driver(const T* a, const T* b, T* g, std::size_t n, std::size_t grain, Kernel kernel) {
  assert(n > 0);  // checked by the binding
  const T scale = T(1) / static_cast<T>(n);
  const std::size_t blocks = (n + kBlock - 1) / kBlock;
  if (blocks == 1) return kernel(a, b, g, n, scale) / static_cast<double>(n);
  std::vector<double> part(blocks);
  parallel_for(blocks, std::max<std::size_t>(1, grain / kBlock), [&](std::size_t b0, std::size_t b1) {
    for (std::size_t k = b0; k < b1; ++k) {
      const std::size_t i = k * kBlock, len = std::min(kBlock, n - i);
      part[k] = kernel(a + i, b + i, g + i, len, scale);
    }
  }, 1);
  double sum = 0;
  for (double p : part) sum += p;
  return sum / static_cast<double>(n);
}

// Softmax cross-entropy on class ids, weighted when w is not null.
template <class T>
double xent_ids(const T* logits, const std::int64_t* labels, const T* w, T* dlogits, std::size_t m, std::size_t C) {
  for (std::size_t i = 0; i < m; ++i)
    if (labels[i] < 0 || static_cast<std::uint64_t>(labels[i]) >= C)
      throw std::invalid_argument("labels: class id " + std::to_string(labels[i]) + " at index " +
                                  std::to_string(i) + " is out of range [0, " + std::to_string(C) + ")");
  const auto fn = kernels_for<T>().xent_ids;
  return xent_driver<T>(m, C, [&](std::size_t b, std::size_t e, T scale, double* rl) {
    fn(logits + b * C, labels + b, dlogits + b * C, e - b, C, scale, rl + b);
  }, w, dlogits);
}

// Softmax cross-entropy on target rows, weighted when w is not null.
template <class T>
double xent_probs(const T* logits, const T* targets, const T* w, T* dlogits, std::size_t m, std::size_t C) {
  const auto fn = kernels_for<T>().xent_probs;
  return xent_driver<T>(m, C, [&](std::size_t b, std::size_t e, T scale, double* rl) {
    fn(logits + b * C, targets + b * C, dlogits + b * C, e - b, C, scale, rl + b);
  }, w, dlogits);
}

// An elementwise loss weighted per row of an (m, width) batch: the rows kernel (the
// unweighted gradient, scale 1/(m width); each row's sum), row loss = its sum / width,
// rows times w_i.
template <class T, class Kernel>
double weighted_rows_driver(const T* a, const T* b, const T* w, T* g, std::size_t m, std::size_t width,
                            std::size_t grain, Kernel kernel) {
  assert(m > 0 && width > 0);  // checked by the binding
  const T scale = T(1) / static_cast<T>(m * width);
  std::vector<double> row_loss(m);
  parallel_for(m, std::max<std::size_t>(1, grain / width), [&](std::size_t r0, std::size_t r1) {
    const std::size_t o = r0 * width;
    kernel(a + o, b + o, g + o, r1 - r0, width, scale, row_loss.data() + r0);
    for (std::size_t r = r0; r < r1; ++r) row_loss[r] /= static_cast<double>(width);
    scale_rows(g, w, r0, r1, width);
  }, 1);
  return row_mean(row_loss, w);
}

}  // namespace

template <class T>
double softmax_cross_entropy_ids(const T* logits, const std::int64_t* labels, T* dlogits, std::size_t m,
                                 std::size_t C) {
  return xent_ids<T>(logits, labels, nullptr, dlogits, m, C);
}

template <class T>
double softmax_cross_entropy_probs(const T* logits, const T* targets, T* dlogits, std::size_t m, std::size_t C) {
  return xent_probs<T>(logits, targets, nullptr, dlogits, m, C);
}

template <class T>
double softmax_cross_entropy_ids_weighted(const T* logits, const std::int64_t* labels, const T* w, T* dlogits,
                                          std::size_t m, std::size_t C) {
  return xent_ids<T>(logits, labels, w, dlogits, m, C);
}

template <class T>
double softmax_cross_entropy_probs_weighted(const T* logits, const T* targets, const T* w, T* dlogits,
                                            std::size_t m, std::size_t C) {
  return xent_probs<T>(logits, targets, w, dlogits, m, C);
}

template <class T>
double bce_with_logits_weighted(const T* logits, const T* targets, const T* w, T* grad, std::size_t m,
                                std::size_t width) {
  return weighted_rows_driver<T>(logits, targets, w, grad, m, width, kGrainBce, kernels_for<T>().bce_rows);
}

template <class T>
double mean_squared_error_weighted(const T* pred, const T* target, const T* w, T* grad, std::size_t m,
                                   std::size_t width) {
  return weighted_rows_driver<T>(pred, target, w, grad, m, width, kGrainMse, kernels_for<T>().mse_rows);
}

template <class T> double bce_with_logits(const T* logits, const T* targets, T* grad, std::size_t n) {
  return elementwise_driver<T>(logits, targets, grad, n, kGrainBce, kernels_for<T>().bce);
}

template <class T> double mean_squared_error(const T* pred, const T* target, T* grad, std::size_t n) {
  return elementwise_driver<T>(pred, target, grad, n, kGrainMse, kernels_for<T>().mse);
}

#define FASTNN_LOSS_INSTANTIATE(T)                                                                            \
  template double softmax_cross_entropy_ids<T>(const T*, const std::int64_t*, T*, std::size_t, std::size_t); \
  template double softmax_cross_entropy_probs<T>(const T*, const T*, T*, std::size_t, std::size_t);          \
  template double bce_with_logits<T>(const T*, const T*, T*, std::size_t);                                   \
  template double mean_squared_error<T>(const T*, const T*, T*, std::size_t);                               \
  template double softmax_cross_entropy_ids_weighted<T>(const T*, const std::int64_t*, const T*, T*, std::size_t, \
                                                        std::size_t);                                         \
  template double softmax_cross_entropy_probs_weighted<T>(const T*, const T*, const T*, T*, std::size_t,       \
                                                          std::size_t);                                       \
  template double bce_with_logits_weighted<T>(const T*, const T*, const T*, T*, std::size_t, std::size_t);    \
  template double mean_squared_error_weighted<T>(const T*, const T*, const T*, T*, std::size_t, std::size_t);
FASTNN_LOSS_INSTANTIATE(float)
FASTNN_LOSS_INSTANTIATE(double)
#undef FASTNN_LOSS_INSTANTIATE

}  // namespace fastnn
