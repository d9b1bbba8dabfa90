// Per-ISA BatchNorm kernels of the row path (batches of 128 rows and more;
// norm.cpp): threads split the rows, not the features. Included by norm_impl.h.
//
// Why: a column split hands each thread a slice of every row (1 KiB of a 2 KiB
// row at (4096, 512) on 2 threads), so each thread streams short, strided
// segments the hardware prefetchers follow badly once the tensors leave L2.
// Here every kernel walks whole rows of a band of consecutive rows, one row
// after the other: one sequential stream per tensor.
//
// The statistics become a two-step reduction: each part (a fixed band of rows,
// norm.cpp: set by the shape alone) sums its rows into its own slot of a
// scratch array, then one thread adds the parts in part order. Partition and
// order depend on the shape only, so results stay bitwise independent of the
// thread count.
//
// Per-feature arrays are interleaved by vector ("slots"): slot v holds K
// vectors of N lanes for features [v*N, v*N + N), e.g. (mean, scale, beta) for
// K = 3. Separate arrays 4 KiB apart (the column kernels' layout) put each
// vector's loads and stores at the same address bits 0-11, which the core takes
// for a possible store-to-load dependency (4K aliasing): streaming (2048, 1024)
// one row at a time took 2.5x the column kernel's time with separate arrays,
// 1.15-1.5x with interleaved ones (so wide rows go in groups of 4, norm.cpp).
#pragma once
#include <cstddef>

namespace fastnn {
namespace FASTNN_ISA_NS {

// Calls f(i, rows) over rows [i0, i1): one row at a time (rows = 1) when
// one_row, else in groups of 4 (for_row_groups), which load the per-feature
// values once per 4 rows. norm.cpp chooses (by the shape): one row at a time
// pays when the rows come from beyond L2 and are narrow enough that the
// per-feature arrays stay in L1 beside the streams.
template <class F> inline void for_band_rows(std::size_t i0, std::size_t i1, bool one_row, F f) {
  if (one_row) {
    for (std::size_t i = i0; i < i1; ++i) f(i, std::integral_constant<int, 1>{});
  } else {
    for_row_groups(i0, i1, f);
  }
}

// Sums over rows [i0, i1) of features [0, n), whole rows, into acc (slots of 2:
// S1 += a, S2 += b with row(i, f, lanes, tail, a, b)). Column blocks of
// col_block<T>() features keep the block accumulators in L1 (one block when
// n <= col_block); kRowBlock rows are summed before they are added to acc.
template <class T, class Row>
inline void band_sums(std::size_t i0, std::size_t i1, std::size_t n, bool one_row, T* acc, Row row) {
  using V = Vec<T>;
  constexpr std::size_t N = V::N, CB = col_block<T>();
  alignas(64) T blk[2 * CB];
  const auto zero_slots = [&](T* a, std::size_t w) {
    for_each_vector<T>(w, [&](std::size_t j, auto, int) {
      V::zero().store(a + 2 * j);
      V::zero().store(a + 2 * j + N);
    });
  };
  zero_slots(acc, n);
  for (std::size_t c = 0; c < n; c += CB) {
    const std::size_t w = n - c < CB ? n - c : CB;
    T* s = acc + 2 * c;
    for (std::size_t ib = i0; ib < i1; ib += kRowBlock) {
      const std::size_t ie = ib + kRowBlock < i1 ? ib + kRowBlock : i1;
      zero_slots(blk, w);
      for_band_rows(ib, ie, one_row, [&](std::size_t i, auto rows) {
        for_each_vector<T>(w, [&](std::size_t j, auto tail, int lanes) {
          V sa, sb;
          row(i, c + j, lanes, tail, sa, sb);
          for (int r = 1; r < decltype(rows)::value; ++r) {
            V a, b;
            row(i + r, c + j, lanes, tail, a, b);
            sa = sa + a;
            sb = sb + b;
          }
          (V::load(blk + 2 * j) + sa).store(blk + 2 * j);
          (V::load(blk + 2 * j + N) + sb).store(blk + 2 * j + N);
        });
      });
      for_each_vector<T>(w, [&](std::size_t j, auto, int) {
        (V::load(s + 2 * j) + V::load(blk + 2 * j)).store(s + 2 * j);
        (V::load(s + 2 * j + N) + V::load(blk + 2 * j + N)).store(s + 2 * j + N);
      });
    }
  }
}

// Forward statistics of one part: S1 = sum (x - K), S2 = sum (x - K)^2 over
// rows [i0, i1), K = row 0 of x (the shift of forward_train_cols).
template <class T>
void forward_band_sums(const T* x, std::size_t n, std::size_t i0, std::size_t i1, bool one_row, T* acc) {
  using V = Vec<T>;
  band_sums<T>(i0, i1, n, one_row, acc, [&](std::size_t i, std::size_t f, int lanes, auto tail, V& a, V& b) {
    constexpr bool Tail = decltype(tail)::value;
    a = ld<Tail>(x + i * n + f, lanes) - ld<Tail>(x + f, lanes);
    b = a * a;
  });
}

// Backward sums of one part: S1 = sum dy, S2 = sum dy * (x - mean).
template <class T>
void backward_band_sums(const T* dy, const T* x, const T* mean, std::size_t n, std::size_t i0, std::size_t i1,
                        bool one_row, T* acc) {
  using V = Vec<T>;
  band_sums<T>(i0, i1, n, one_row, acc, [&](std::size_t i, std::size_t f, int lanes, auto tail, V& a, V& b) {
    constexpr bool Tail = decltype(tail)::value;
    a = ld<Tail>(dy + i * n + f, lanes);
    b = a * (ld<Tail>(x + i * n + f, lanes) - ld<Tail>(mean + f, lanes));
  });
}

// Adds the parts (slots of 2, `stride` values apart) in part order into S1, S2.
template <class T>
inline void add_parts(const T* acc, std::size_t parts, std::size_t stride, std::size_t j, Vec<T>& S1, Vec<T>& S2) {
  constexpr std::size_t N = Vec<T>::N;
  S1 = Vec<T>::load(acc + 2 * j);
  S2 = Vec<T>::load(acc + 2 * j + N);
  for (std::size_t p = 1; p < parts; ++p) {
    S1 = S1 + Vec<T>::load(acc + p * stride + 2 * j);
    S2 = S2 + Vec<T>::load(acc + p * stride + 2 * j + N);
  }
}

// Forward statistics from the parts' sums (forward_stats, as forward_train_cols):
// writes batch_mean, batch_invstd, the running statistics, and par (slots of 3:
// mean, scale = gamma * invstd, beta) for forward_band_apply.
template <class T>
void forward_band_stats(const T* acc, std::size_t parts, std::size_t stride, const T* x, const T* gamma,
                        const T* beta, T* run_mean, T* run_var, T* batch_mean, T* batch_invstd, T* par,
                        std::size_t m, std::size_t n, T momentum, T one_minus_momentum, T unbias, T eps) {
  using V = Vec<T>;
  constexpr std::size_t N = V::N;
  for_each_vector<T>(n, [&](std::size_t j, auto tail, int lanes) {
    constexpr bool Tail = decltype(tail)::value;
    V S1, S2, mean, scale;
    add_parts(acc, parts, stride, j, S1, S2);
    forward_stats<Tail>(S1, S2, ld<Tail>(x + j, lanes), j, lanes, gamma, run_mean, run_var, batch_mean,
                        batch_invstd, static_cast<T>(m), momentum, one_minus_momentum, unbias, eps, mean, scale);
    mean.store(par + 3 * j);
    scale.store(par + 3 * j + N);
    ld<Tail>(beta + j, lanes).store(par + 3 * j + 2 * N);
  });
}

// Backward coefficients from the parts' sums (backward_coefficients, as backward_cols):
// writes dgamma, dbeta and par (slots of 4: mean, k1, k2, k0; norm.h).
template <class T>
void backward_band_stats(const T* acc, std::size_t parts, std::size_t stride, const T* gamma, const T* mean,
                         const T* invstd_p, T* dgamma, T* dbeta, T* par, std::size_t m, std::size_t n) {
  using V = Vec<T>;
  constexpr std::size_t N = V::N;
  for_each_vector<T>(n, [&](std::size_t j, auto tail, int lanes) {
    constexpr bool Tail = decltype(tail)::value;
    V sdy, sdt, k1, k2, k0;
    add_parts(acc, parts, stride, j, sdy, sdt);
    backward_coefficients<Tail>(sdy, sdt, j, lanes, gamma, invstd_p, dgamma, dbeta, static_cast<T>(m), k1, k2, k0);
    ld<Tail>(mean + j, lanes).store(par + 4 * j);
    k1.store(par + 4 * j + N);
    k2.store(par + 4 * j + 2 * N);
    k0.store(par + 4 * j + 3 * N);
  });
}

// y = (x - mean) * scale + beta over rows [i0, i1), par from forward_band_stats.
template <class T>
void forward_band_apply(const T* x, const T* par, T* y, std::size_t n, std::size_t i0, std::size_t i1,
                        bool one_row) {
  using V = Vec<T>;
  constexpr std::size_t N = V::N;
  for_band_rows(i0, i1, one_row, [&](std::size_t i, auto rows) {
    for_each_vector<T>(n, [&](std::size_t j, auto tail, int lanes) {
      constexpr bool Tail = decltype(tail)::value;
      const V mean = V::load(par + 3 * j), scale = V::load(par + 3 * j + N), shift = V::load(par + 3 * j + 2 * N);
      for (int r = 0; r < decltype(rows)::value; ++r) {
        const std::size_t o = (i + r) * n + j;
        st<Tail>(fmadd(ld<Tail>(x + o, lanes) - mean, scale, shift), y + o, lanes);
      }
    });
  });
}

// dx = k1*dy + k2*(x - mean) + k0 over rows [i0, i1), par from backward_band_stats.
template <class T>
void backward_band_apply(const T* dy, const T* x, const T* par, T* dx, std::size_t n, std::size_t i0,
                         std::size_t i1, bool one_row) {
  using V = Vec<T>;
  constexpr std::size_t N = V::N;
  for_band_rows(i0, i1, one_row, [&](std::size_t i, auto rows) {
    for_each_vector<T>(n, [&](std::size_t j, auto tail, int lanes) {
      constexpr bool Tail = decltype(tail)::value;
      const T* p = par + 4 * j;
      const V mu = V::load(p), k1 = V::load(p + N), k2 = V::load(p + 2 * N), k0 = V::load(p + 3 * N);
      for (int r = 0; r < decltype(rows)::value; ++r) {
        const std::size_t o = (i + r) * n + j;
        st<Tail>(fmadd(k1, ld<Tail>(dy + o, lanes), fmadd(k2, ld<Tail>(x + o, lanes) - mu, k0)), dx + o, lanes);
      }
    });
  });
}

}  // namespace FASTNN_ISA_NS
}  // namespace fastnn
