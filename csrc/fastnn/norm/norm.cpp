// Dispatch and threading for the BatchNorm family and LayerNorm (baseline ISA).
//
// Small batches: threads split the features (columns) into fixed chunks, each
// feature's sums computed by one thread in one order. Large batches: the row
// path (below). Either way results do not depend on the thread count at all.
#include "fastnn/norm/norm.h"
#include "fastnn/norm/layernorm.h"

#include <algorithm>
#include <cassert>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "fastnn/cpu.h"
#include "fastnn/parallel.h"

namespace fastnn {
namespace {

template <class T> const NormKernelsT<T>& kernels_for() { return FASTNN_KERNELS(T, norm_kernels); }
template <class T> const LayerNormKernelsT<T>& ln_kernels_for() { return FASTNN_KERNELS(T, layernorm_kernels); }

// Minimum elements (m*n) per thread: below it a second thread costs more than
// it saves. Measured (wall-clock minima, 1 vs 2 threads, load ~4 on the shared
// 2-core Zen 5): (128,512) fwd 21 -> 12 us, bwd 29 -> 15 us with 2 threads.
// Under heavier load (>= 7 runnable tasks on 2 cores) the second thread often
// waits a scheduler tick for its core and no size gains.
constexpr std::size_t kGrain = 1 << 15;
// Column chunks start at multiples of 16 features (a 64-byte line of floats).
constexpr std::size_t kColAlign = 16;

std::size_t grain_cols(std::size_t m) { return std::max<std::size_t>(1, kGrain / std::max<std::size_t>(m, 1)); }
// LayerNorm: rows of n features per thread, at least kGrain elements.
std::size_t ln_grain_rows(std::size_t n) { return std::max<std::size_t>(1, kGrain / std::max<std::size_t>(n, 1)); }

// The row path (norm_rows_impl.h) from 2 parts of rows on: threads split the
// rows into whole-row bands, which stream sequentially (the column path hands
// each thread short strided slices of every row). The column path stays for
// fewer rows, where a feature split is the only one that can use 2 threads.
// Measured, fwd+bwd float32, row / column path time, AMD Zen 4 (2 cores, shared,
// noisy), both paths in one build, interleaved: 2 threads (128,512) 0.79-0.87,
// (512,512) 0.52-0.56, (256,1024) 0.63-0.85, (2048,512) 0.59-0.63, (4096,512)
// 0.54-0.72; 1 thread (kernels alone, medians) 0.88-1.09 in L2, 0.6-1.03 beyond.
// The rows are summed in parts of at least kPartRows rows, at most kMaxParts
// of them (the most threads the statistics pass can use): the partition is a
// function of m only, and the parts are added in part order, so the sums do not
// depend on the thread count.
constexpr std::size_t kPartRows = 64;
constexpr std::size_t kMaxParts = 32;
// Rows of at most kNarrowRowBytes are streamed one at a time once x exceeds
// kInCacheBytes (L2): 0.6-0.9x the time of groups of 4 at (8192, 256) and
// (4096, 512), 1 thread; in L2 the groups' fewer L1 loads win (1.1-1.5x), and so
// they do for wider rows, whose per-feature arrays crowd L1 ((2048, 1024): 1.15-1.5x).
constexpr std::size_t kNarrowRowBytes = 2048;
constexpr std::size_t kInCacheBytes = std::size_t(1) << 20;

bool use_row_path(std::size_t m) { return m >= 2 * kPartRows; }
template <class T> bool one_row(std::size_t m, std::size_t n) {
  return n * sizeof(T) <= kNarrowRowBytes && m * n * sizeof(T) > kInCacheBytes;
}
std::size_t parts_for(std::size_t m) { return std::min(kMaxParts, m / kPartRows); }
std::size_t part_begin(std::size_t m, std::size_t parts, std::size_t p) { return m * p / parts; }

// The row path's scratch: each part's sums (2 values per feature), then the
// per-feature coefficients (up to 4 per feature), in slots of 64 bytes (at least
// one vector of every ISA, see norm_rows_impl.h). Per calling thread, reused: no
// allocation once grown.
template <class T> struct RowScratch {
  T* acc;
  T* par;
  std::size_t stride;  // values per part in acc
};
template <class T> RowScratch<T> row_scratch(std::size_t parts, std::size_t n) {
  constexpr std::size_t lanes = 64 / sizeof(T);
  thread_local std::vector<T> buf;
  const std::size_t npad = (n + lanes - 1) / lanes * lanes;
  const std::size_t need = (2 * parts + 4) * npad + lanes;
  if (buf.size() < need) buf.resize(need);
  T* base = buf.data();
  while (reinterpret_cast<std::uintptr_t>(base) % 64 != 0) ++base;
  return {base, base + 2 * parts * npad, 2 * npad};
}

// Calls fn(p, i0, i1) for every part p and its rows [i0, i1): threads take
// contiguous runs of parts (each at least kGrain elements); backwards, each run
// goes last part first (for a second pass over the rows: the rows a first pass
// read last are the likeliest still in cache).
template <class Fn> void for_parts(std::size_t m, std::size_t n, std::size_t parts, bool backwards, Fn&& fn) {
  const std::size_t per_part = std::max<std::size_t>(1, m / parts * n);
  parallel_for(parts, std::max<std::size_t>(1, kGrain / per_part), [&](std::size_t p0, std::size_t p1) {
    for (std::size_t q = p0; q < p1; ++q) {
      const std::size_t p = backwards ? p0 + p1 - 1 - q : q;
      fn(p, part_begin(m, parts, p), part_begin(m, parts, p + 1));
    }
  }, 1);
}

// The row path's three steps: sums(i0, i1, one_row, acc) per part into the
// part's slots, stats(acc, parts, stride, par) once, then apply(i0, i1, one_row,
// par) per part.
template <class T, class Sums, class Stats, class Apply>
void row_path(std::size_t m, std::size_t n, Sums&& sums, Stats&& stats, Apply&& apply) {
  const std::size_t parts = parts_for(m);
  const RowScratch<T> s = row_scratch<T>(parts, n);
  const bool one = one_row<T>(m, n);
  for_parts(m, n, parts, false, [&](std::size_t p, std::size_t i0, std::size_t i1) {
    sums(i0, i1, one, s.acc + p * s.stride);
  });
  stats(s.acc, parts, s.stride, s.par);
  for_parts(m, n, parts, true, [&](std::size_t, std::size_t i0, std::size_t i1) { apply(i0, i1, one, s.par); });
}

}  // namespace

template <class T>
void batchnorm_forward_train(const T* x, const T* gamma, const T* beta, T* running_mean, T* running_var, T* y,
                             T* batch_mean, T* batch_invstd, std::size_t m, std::size_t n, double momentum,
                             double eps) {
  // checked by the binding: eps > 0 also in T (1e-50 is 0 in float32: a constant feature
  // would give 0 * inf = NaN), momentum in [0, 1], at least 2 rows
  assert(m >= 2 && static_cast<T>(eps) > 0 && std::isfinite(eps) && momentum >= 0 && momentum <= 1);
  const auto fn = kernels_for<T>().forward_train_cols;
  const T mom = static_cast<T>(momentum), omm = static_cast<T>(1 - momentum);
  const T unbias = static_cast<T>(static_cast<double>(m) / static_cast<double>(m - 1));
  const T e = static_cast<T>(eps);
  if (use_row_path(m)) {
    const auto& k = kernels_for<T>();
    row_path<T>(
        m, n,
        [&](std::size_t i0, std::size_t i1, bool one, T* acc) { k.forward_band_sums(x, n, i0, i1, one, acc); },
        [&](const T* acc, std::size_t parts, std::size_t stride, T* par) {
          k.forward_band_stats(acc, parts, stride, x, gamma, beta, running_mean, running_var, batch_mean,
                               batch_invstd, par, m, n, mom, omm, unbias, e);
        },
        [&](std::size_t i0, std::size_t i1, bool one, const T* par) {
          k.forward_band_apply(x, par, y, n, i0, i1, one);
        });
    return;
  }
  parallel_for(n, grain_cols(m), [&](std::size_t c0, std::size_t c1) {
    fn(x, gamma, beta, running_mean, running_var, y, batch_mean, batch_invstd, m, n, c0, c1, mom, omm, unbias, e);
  }, kColAlign);
}

template <class T>
void batchnorm_forward_infer(const T* x, const T* gamma, const T* beta, const T* running_mean,
                             const T* running_var, T* y, T* mean_out, T* invstd_out, std::size_t m, std::size_t n,
                             double eps) {
  std::vector<T> scale(n), shift(n);
  batchnorm_forward_infer<T>(x, gamma, beta, running_mean, running_var, y, mean_out, invstd_out, m, n, eps,
                             scale.data(), shift.data());
}

template <class T>
void batchnorm_forward_infer(const T* x, const T* gamma, const T* beta, const T* running_mean,
                             const T* running_var, T* y, T* mean_out, T* invstd_out, std::size_t m, std::size_t n,
                             double eps, T* scale, T* shift) {
  assert(static_cast<T>(eps) > 0 && std::isfinite(eps));  // checked by the binding
  // Fold into one scale and shift per feature, then one streaming pass.
  const T e = static_cast<T>(eps);
  for (std::size_t j = 0; j < n; ++j) {
    const T invstd = T(1) / std::sqrt(running_var[j] + e);
    scale[j] = gamma[j] * invstd;
    shift[j] = beta[j] - running_mean[j] * scale[j];
    mean_out[j] = running_mean[j];
    invstd_out[j] = invstd;
  }
  const auto fn = kernels_for<T>().affine_rows;
  const std::size_t grain_rows = std::max<std::size_t>(1, (std::size_t(1) << 16) / std::max<std::size_t>(n, 1));
  parallel_for(m, grain_rows, [&](std::size_t b, std::size_t e2) {
    fn(x + b * n, scale, shift, y + b * n, e2 - b, n);
  }, 1);
}

template <class T>
void batchnorm_backward(const T* dy, const T* x, const T* gamma, const T* mean, const T* invstd, T* dx, T* dgamma,
                        T* dbeta, std::size_t m, std::size_t n) {
  assert(m >= 1);  // checked by the binding
  if (use_row_path(m)) {
    const auto& k = kernels_for<T>();
    row_path<T>(
        m, n,
        [&](std::size_t i0, std::size_t i1, bool one, T* acc) {
          k.backward_band_sums(dy, x, mean, n, i0, i1, one, acc);
        },
        [&](const T* acc, std::size_t parts, std::size_t stride, T* par) {
          k.backward_band_stats(acc, parts, stride, gamma, mean, invstd, dgamma, dbeta, par, m, n);
        },
        [&](std::size_t i0, std::size_t i1, bool one, const T* par) {
          k.backward_band_apply(dy, x, par, dx, n, i0, i1, one);
        });
    return;
  }
  const auto fn = kernels_for<T>().backward_cols;
  parallel_for(n, grain_cols(m), [&](std::size_t c0, std::size_t c1) {
    fn(dy, x, gamma, mean, invstd, dx, dgamma, dbeta, m, n, c0, c1);
  }, kColAlign);
}

// LayerNorm (layernorm.h): threads split the rows (forward, dx) or the features (dgamma,
// dbeta, as the column path above): every value computed by one thread in one order,
// whatever the thread count.
template <class T>
void layernorm_forward(const T* x, const T* gamma, const T* beta, T* y, T* xhat, T* inv, std::size_t m,
                       std::size_t n, double eps) {
  assert(n >= 1 && static_cast<T>(eps) > 0 && std::isfinite(eps));  // checked by the binding
  const auto fn = ln_kernels_for<T>().forward_rows;
  const T e = static_cast<T>(eps);
  parallel_for(m, ln_grain_rows(n), [&](std::size_t i0, std::size_t i1) {
    fn(x, gamma, beta, y, xhat, inv, n, i0, i1, e);
  }, 1);
}

template <class T>
void layernorm_backward(const T* dy, const T* xhat, const T* inv, const T* gamma, T* dx, T* dgamma, T* dbeta,
                        std::size_t m, std::size_t n) {
  const auto& k = ln_kernels_for<T>();
  // the column sums first: dx may be dy itself
  parallel_for(n, grain_cols(m), [&](std::size_t c0, std::size_t c1) {
    k.column_sums(dy, xhat, dgamma, dbeta, m, n, c0, c1);
  }, kColAlign);
  parallel_for(m, ln_grain_rows(n), [&](std::size_t i0, std::size_t i1) {
    k.dx_rows(dy, xhat, inv, gamma, dx, n, i0, i1);
  }, 1);
}

#define FASTNN_NORM_INSTANTIATE(T)                                                                           \
  template void batchnorm_forward_train<T>(const T*, const T*, const T*, T*, T*, T*, T*, T*, std::size_t,    \
                                           std::size_t, double, double);                                    \
  template void batchnorm_forward_infer<T>(const T*, const T*, const T*, const T*, const T*, T*, T*, T*,     \
                                           std::size_t, std::size_t, double);                               \
  template void batchnorm_forward_infer<T>(const T*, const T*, const T*, const T*, const T*, T*, T*, T*,     \
                                           std::size_t, std::size_t, double, T*, T*);                       \
  template void batchnorm_backward<T>(const T*, const T*, const T*, const T*, const T*, T*, T*, T*,          \
                                      std::size_t, std::size_t);                                          \
  template void layernorm_forward<T>(const T*, const T*, const T*, T*, T*, T*, std::size_t, std::size_t,    \
                                     double);                                                                \
  template void layernorm_backward<T>(const T*, const T*, const T*, const T*, T*, T*, T*, std::size_t,       \
                                      std::size_t);
FASTNN_NORM_INSTANTIATE(float)
FASTNN_NORM_INSTANTIATE(double)
#undef FASTNN_NORM_INSTANTIATE

}  // namespace fastnn
