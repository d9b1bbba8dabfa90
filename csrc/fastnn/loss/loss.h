// Losses fused with their gradients. Each returns the mean loss (as double)
// and writes the gradient of that mean with respect to its input.
//
// Softmax cross-entropy over a row-major (m, C) matrix of logits z, targets t
// given as class ids (t = one-hot) or as rows of weights (one-hot/probabilities):
//   p = softmax(z row-wise),  loss = -1/m sum_i sum_j t_ij log p_ij
//   dz = (p * sum_j t_ij - t) / m
// per row computed as max, s = sum exp(z - max), log p = z - max - log s.
// Binary cross-entropy with logits, elementwise over n values, mean over n:
//   loss = max(z, 0) - z t + log1p(exp(-|z|)),  dz = (sigmoid(z) - t) / n
// Mean squared error: loss = mean (p - t)^2,  dp = 2 (p - t) / n.
//
// Sums are reproducible independently of the thread count: per-row (or
// per-fixed-block) partial sums are added in order on one thread.
#pragma once
#include "fastnn/dispatch.h"
#include <cstddef>
#include <cstdint>

namespace fastnn {

// labels: m class ids; throws std::invalid_argument naming the first id outside [0, C).
template <class T>
double softmax_cross_entropy_ids(const T* logits, const std::int64_t* labels, T* dlogits, std::size_t m,
                                 std::size_t C);
// targets: (m, C) rows of non-negative weights (one-hot or probabilities).
template <class T>
double softmax_cross_entropy_probs(const T* logits, const T* targets, T* dlogits, std::size_t m, std::size_t C);
template <class T> double bce_with_logits(const T* logits, const T* targets, T* grad, std::size_t n);
template <class T> double mean_squared_error(const T* pred, const T* target, T* grad, std::size_t n);

// Weighted per sample (fit's sample_weight and class_weight; Keras's sum_over_batch_size
// reduction): with one weight w_i per row of an (m, width) batch,
//   loss = sum_i w_i l_i / m,   gradient row i = T(w_i) * (the unweighted gradient's row i)
// where l_i is row i's loss: the softmax cross-entropy row loss above, or the mean over the
// row's `width` values of the elementwise BCE-with-logits or squared error (their sum as
// the unweighted kernel sums a row, or, for rows narrower than two vectors, in double in
// order over the values rounded to T). The unweighted
// gradient is the functions' above, bitwise (the same per-ISA kernels and scale, 1/m or
// 1/(m width)), then multiplied by w_i: one rounding, as NumPy's grad *= w[:, None]. The
// weights are taken as given (fit checks them finite and >= 0; a NaN gives NaN). The
// w_i l_i are summed in row order on one thread: the loss does not depend on the thread count.
template <class T>
double softmax_cross_entropy_ids_weighted(const T* logits, const std::int64_t* labels, const T* w, T* dlogits,
                                          std::size_t m, std::size_t C);
template <class T>
double softmax_cross_entropy_probs_weighted(const T* logits, const T* targets, const T* w, T* dlogits,
                                            std::size_t m, std::size_t C);
template <class T>
double bce_with_logits_weighted(const T* logits, const T* targets, const T* w, T* grad, std::size_t m,
                                std::size_t width);
template <class T>
double mean_squared_error_weighted(const T* pred, const T* target, const T* w, T* grad, std::size_t m,
                                   std::size_t width);

// Per-ISA single-threaded kernels. The row kernels write each row's loss
// (not yet divided by m) into row_loss; the elementwise ones return the sum
// of their n losses and write grad scaled by `scale` (1/size); their _rows forms
// (weighted losses) write the same gradient and each row's sum of its `width`
// losses into row_loss (loss_impl.h: elementwise_rows).
template <class T> struct LossKernelsT {
  void (*xent_ids)(const T* z, const std::int64_t* labels, T* dz, std::size_t rows, std::size_t C, T scale,
                   double* row_loss);
  void (*xent_probs)(const T* z, const T* t, T* dz, std::size_t rows, std::size_t C, T scale, double* row_loss);
  double (*bce)(const T* z, const T* t, T* dz, std::size_t n, T scale);
  double (*mse)(const T* p, const T* t, T* dp, std::size_t n, T scale);
  void (*bce_rows)(const T* z, const T* t, T* dz, std::size_t rows, std::size_t width, T scale, double* row_loss);
  void (*mse_rows)(const T* p, const T* t, T* dp, std::size_t rows, std::size_t width, T scale, double* row_loss);
};
FASTNN_DECLARE_KERNELS(LossKernels, LossKernelsT, loss_kernels)

}  // namespace fastnn
