// Narrow products: C with at most kNarrowMaxN columns (blocking.h), such as the
// 10-class output layer's X·W and its dW = Xᵀ·dY. They are 10^4-10^6
// multiply-adds, so packing B into zero-padded NR-wide panels, edge tiles and
// the KC loop cost as much as the arithmetic. Here nothing is packed (except
// a transposed B of the row kernel, k x n) and k is not sliced:
//
//   op(A) = A (rows of A in place): C row by row, NV = ceil(n / N) vectors per
//     row of which the last is masked, MR rows in flight; the rows of op(B) are
//     loaded in place with masked loads (narrow_rows).
//   op(A) = Aᵀ (A stored k x m: each of its rows runs along m, C's rows):
//     Cᵀ = op(B)ᵀ·A accumulated with vectors along m, so every lane is used:
//     JB rows of Cᵀ x IV vectors in registers, op(B)(p, j) broadcast in place
//     and A's rows read contiguously; each IV*N-row block of C is then
//     transposed into place with the epilogue (store_transposed) (narrow_trans).
//
// Every element of C is one FMA chain over p = 0..k-1, then alpha, beta * C and
// the bias, whichever block or thread band it falls in: results are bitwise
// independent of the thread count. Included by gemm_impl.h inside the ISA's
// namespace (after store_transposed).
#pragma once
#include <type_traits>

namespace fastnn {
namespace FASTNN_ISA_NS {

static_assert(kNarrowMaxVecs >= 1 && kNarrowMaxVecs <= 2, "gemm_narrow instantiates 1 or 2 vectors per row");
template <class V, int R, int C> [[gnu::always_inline]] inline void zero_tile(V (&acc)[R][C]) {
#pragma GCC unroll 32
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < C; ++v) acc[i][v] = V::zero();
}

// True when the narrow path takes this product: the whole product's width
// (tile_n, the same in every thread's band) at most narrow_max_n (tuning; < 0:
// kNarrowMaxN) and at most kNarrowMaxVecs vectors, and k > 0; op(A) = Aᵀ only
// where C's vectors are at most kNarrowTransMaxFill percent full (or as tuned).
template <class T> bool narrow_fits(const GemmProblem<T>& P) {
  const std::size_t w = P.tile_n ? P.tile_n : P.n;
  const long max_n = P.narrow_max_n >= 0 ? P.narrow_max_n : kNarrowMaxN;
  constexpr std::size_t N = Vec<T>::N;
  const std::size_t vecs = (w + N - 1) / N;
  if (P.k == 0 || static_cast<long>(w) > max_n || vecs > static_cast<std::size_t>(kNarrowMaxVecs)) return false;
  // The transposed kernel runs at 0.85-0.95x the blocked loops' speed per lane on the
  // Zen 4 class guest (avx512; 0.7-0.9x avx2): it wins where the blocked loops waste
  // lanes on C's last vector (n = 10 of 16: 1.5x, n = 1: 2-4x), not where they fill
  // more than kNarrowTransMaxFill percent of them. The tuning hook forces it on.
  return !P.trans_a || P.narrow_max_n >= 0 || 100 * w <= static_cast<std::size_t>(kNarrowTransMaxFill) * vecs * N;
}

// The MR x n block of C at rows a (MR rows of op(A), stride lda, read in
// place): acc = a · b over p < k, b the rows of op(B) (stride ldb; the last of
// the NV vectors masked to n), then the tile epilogue.
template <class T, int MR, int NV>
void narrow_rows_block(const T* __restrict a, std::size_t lda, const T* __restrict b, std::size_t ldb,
                       std::size_t k, T* c, std::size_t ldc, int mr, int n, const Epilogue<T>& ep) {
  using V = Vec<T>;
  constexpr int N = V::N;
  V acc[MR][NV];
  zero_tile(acc);
  const int last = n - (NV - 1) * N;  // lanes of the last vector
  // four rows per base pointer: base + {0, 1, 2, 3} * lda stays in the
  // addressing modes, so MR rows need MR / 4 registers, not MR
  constexpr int G = (MR + 3) / 4;
  const T* base[G];
#pragma GCC unroll 8
  for (int g = 0; g < G; ++g) base[g] = a + 4 * g * lda;
  const std::size_t lda2 = 2 * lda, lda3 = 3 * lda;
#pragma GCC unroll 2
  for (std::size_t p = 0; p < k; ++p) {
    V bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV - 1; ++v) bv[v] = V::load(b + v * N);
    bv[NV - 1] = V::load_partial(b + (NV - 1) * N, last);  // all lanes when last == N: no branch in the loop
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const T* r = base[i / 4];
      const V xv = V::set1(i % 4 == 0 ? r[0] : i % 4 == 1 ? r[lda] : i % 4 == 2 ? r[lda2] : r[lda3]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = fmadd(xv, bv[v], acc[i][v]);
    }
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) ++base[g];
    b += ldb;
  }
  tile_epilogue<T, MR, NV * N>(acc, c, ldc, mr, n, ep);
}

// C = epilogue(A · op(B)) for op(A) = A stored m x k (row kernel, see the top).
template <class T, int NV>
void narrow_rows(const GemmProblem<T>& P) {
  constexpr int N = Vec<T>::N;
  constexpr int MR = kNarrowRowsMR<NV>;
  const std::size_t m = P.m, k = P.k;
  const int n = static_cast<int>(P.n);
  const T* b = P.b;
  std::size_t ldb = P.ldb;
  if (P.trans_b) {  // op(B) k x n from B stored n x k: k rows of NV * N (only the first n are read)
    ldb = NV * N;
    T* bp = static_cast<T*>(gemm_thread_buffer(1, sizeof(T) * k * ldb));
    for (std::size_t p = 0; p < k; ++p)
      for (int j = 0; j < n; ++j) bp[p * ldb + j] = P.b[j * P.ldb + p];
    b = bp;
  }
  const bool reg_act = P.has_act && (P.act == Act::relu || P.act == Act::leaky_relu);
  // rows i0 .. i0 + mr through the R-row kernel (R = MR, or 4 for the last rows; the
  // last mr < R rows are copied, zero-padded, so that nothing past A is read)
  auto rows = [&](auto r_tag, std::size_t i0, int mr) {
    constexpr int R = decltype(r_tag)::value;
    const Epilogue<T> ep{P.alpha, P.beta, P.bias, reg_act, P.act, P.act_alpha, P.act_grad,
                         reg_act && P.act_grad ? saved_at(P, i0, 0) : nullptr};
    T* c = P.c + i0 * P.ldc;
    if (mr == R) {
      narrow_rows_block<T, R, NV>(P.a + i0 * P.lda, P.lda, b, ldb, k, c, P.ldc, mr, n, ep);
    } else {
      T* at = static_cast<T*>(gemm_thread_buffer(0, sizeof(T) * R * k));
      std::memset(at, 0, sizeof(T) * R * k);
      for (int i = 0; i < mr; ++i) std::memcpy(at + i * k, P.a + (i0 + i) * P.lda, sizeof(T) * k);
      narrow_rows_block<T, R, NV>(at, k, b, ldb, k, c, P.ldc, mr, n, ep);
    }
    if (P.has_act && !reg_act) block_activation(P, i0, 0, static_cast<std::size_t>(mr), P.n);
  };
  std::size_t i0 = 0;
  for (; i0 + MR <= m; i0 += MR) rows(std::integral_constant<int, MR>(), i0, MR);
  for (; i0 < m; i0 += 4) rows(std::integral_constant<int, 4>(), i0, static_cast<int>(std::min<std::size_t>(4, m - i0)));
}

// s[jj * lds + i] (+)= sum over p < k of op(B)(p, jj) * a[p * lda + i], jj < JB,
// i < IV * N: JB rows of a block of Cᵀ, over one slice of k. op(B)(p, jj) is
// b[p * bsp + jj * bsj]. first: start from 0, else from s (the sum so far:
// the same FMA chain as one pass over all of k); last: times alpha. rem <
// IV * N (TAIL): only the first rem columns of a are read (the others come out 0).
template <class T, int JB, int IV, bool TAIL>
void narrow_trans_block(const T* __restrict a, std::size_t lda, const T* __restrict b, std::size_t bsp,
                        std::size_t bsj, std::size_t k, T alpha, int rem, T* s, std::size_t lds, bool first,
                        bool last) {
  using V = Vec<T>;
  constexpr int N = V::N;
  V acc[JB][IV];
  if (first) {
    zero_tile(acc);
  } else {
#pragma GCC unroll 8
    for (int j = 0; j < JB; ++j)
#pragma GCC unroll 4
      for (int v = 0; v < IV; ++v) acc[j][v] = V::load(s + j * lds + v * N);
  }
  int cnt[IV];
  for (int v = 0; v < IV; ++v) cnt[v] = std::max(0, std::min(N, rem - v * N));
#pragma GCC unroll 2
  for (std::size_t p = 0; p < k; ++p) {
    V x[IV];
#pragma GCC unroll 4
    for (int v = 0; v < IV; ++v) x[v] = TAIL ? V::load_partial(a + v * N, cnt[v]) : V::load(a + v * N);
#pragma GCC unroll 8
    for (int j = 0; j < JB; ++j) {
      const V bj = V::set1(b[j * bsj]);
#pragma GCC unroll 4
      for (int v = 0; v < IV; ++v) acc[j][v] = fmadd(bj, x[v], acc[j][v]);
    }
    a += lda;
    b += bsp;
  }
  const V valpha = V::set1(alpha);
#pragma GCC unroll 8
  for (int j = 0; j < JB; ++j)
#pragma GCC unroll 4
    for (int v = 0; v < IV; ++v) (last ? acc[j][v] * valpha : acc[j][v]).store(s + j * lds + v * N);
}

// The rows jj = j0 .. j0 + jb of the Cᵀ block (jb <= kNarrowTransJB, dispatched to a fixed JB).
template <class T, bool TAIL>
void narrow_trans_rows(int jb, const T* a, std::size_t lda, const T* b, std::size_t bsp, std::size_t bsj,
                       std::size_t k, T alpha, int rem, T* s, std::size_t lds, bool first, bool last) {
  constexpr int IV = kNarrowTransIV;
  static_assert(kNarrowTransJB <= 6, "narrow_trans_rows dispatches JB up to 6");
#define FASTNN_NARROW_JB(JB) \
  return narrow_trans_block<T, JB, IV, TAIL>(a, lda, b, bsp, bsj, k, alpha, rem, s, lds, first, last)
  switch (jb) {
    case 1: FASTNN_NARROW_JB(1);
    case 2: FASTNN_NARROW_JB(2);
    case 3: FASTNN_NARROW_JB(3);
    case 4: FASTNN_NARROW_JB(4);
    case 5: FASTNN_NARROW_JB(5);
    default: FASTNN_NARROW_JB(6);
  }
#undef FASTNN_NARROW_JB
}

// C = epilogue(Aᵀ · op(B)) for A stored k x m (transposed kernel, see the top).
template <class T>
void narrow_trans(const GemmProblem<T>& P) {
  constexpr int N = Vec<T>::N, IV = kNarrowTransIV, W = IV * N;
  const std::size_t m = P.m, n = P.n, k = P.k;
  const std::size_t bsp = P.trans_b ? 1 : P.ldb, bsj = P.trans_b ? P.ldb : 1;
  // n rows of W (padded to whole N x N transposes; the padding rows zeroed)
  const std::size_t rows = (n + N - 1) / N * N;
  T* s = static_cast<T*>(gemm_thread_buffer(3, sizeof(T) * rows * W));
  std::memset(s + n * W, 0, sizeof(T) * (rows - n) * W);
  // n split into near-equal groups of at most kNarrowTransJB rows
  const int groups = static_cast<int>((n + kNarrowTransJB - 1) / kNarrowTransJB);
  // k in slices whose rows of A (W wide) fill half the L1d, so that every group reads them from there
  constexpr std::size_t KS = std::max<std::size_t>(16, (std::size_t(16) << 10) / (W * sizeof(T)));
  for (std::size_t i0 = 0; i0 < m; i0 += W) {
    const int rem = static_cast<int>(std::min<std::size_t>(W, m - i0));
    for (std::size_t pc = 0; pc < k; pc += KS) {
      const std::size_t kc = std::min(KS, k - pc);
      const bool first = pc == 0, last = pc + KS >= k;
      const T* a = P.a + pc * P.lda + i0;
      for (int g = 0, j0 = 0; g < groups; ++g) {
        const int jb = static_cast<int>((n - j0 + (groups - g) - 1) / (groups - g));
        const T* b = P.b + pc * bsp + j0 * bsj;
        if (rem == W)
          narrow_trans_rows<T, false>(jb, a, P.lda, b, bsp, bsj, kc, P.alpha, rem, s + j0 * W, W, first, last);
        else
          narrow_trans_rows<T, true>(jb, a, P.lda, b, bsp, bsj, kc, P.alpha, rem, s + j0 * W, W, first, last);
        j0 += jb;
      }
    }
    GemmProblem<T> Q = P;  // rows i0 .. i0 + rem of C
    Q.m = static_cast<std::size_t>(rem);
    Q.c = P.c + i0 * P.ldc;
    Q.act_x = P.act_x ? P.act_x + i0 * P.ldc : nullptr;
    Q.act_y = P.act_y ? P.act_y + i0 * P.ldc : nullptr;
    store_transposed(Q, s, W, /*padded=*/true);
  }
}

// bias_grad = alpha * the column sums of op(B) + beta * bias_grad, each sum in p order.
template <class T>
void narrow_bias_grad(const GemmProblem<T>& P) {
  using V = Vec<T>;
  constexpr int N = V::N;
  T* sum = static_cast<T*>(gemm_thread_buffer(2, sizeof(T) * P.n));
  if (!P.trans_b) {
    for (std::size_t j0 = 0; j0 < P.n; j0 += N) {
      const int cnt = static_cast<int>(std::min<std::size_t>(N, P.n - j0));
      V acc = V::zero();
      for (std::size_t p = 0; p < P.k; ++p) acc = acc + V::load_partial(P.b + p * P.ldb + j0, cnt);
      acc.store_partial(sum + j0, cnt);
    }
  } else {
    for (std::size_t j = 0; j < P.n; ++j) {
      T acc = T(0);
      for (std::size_t p = 0; p < P.k; ++p) acc += P.b[j * P.ldb + p];
      sum[j] = acc;
    }
  }
  finish_bias_grad(P, sum, P.bias_grad, P.n);
}

// The multiply-adds of P here, counting the padded lanes of the row kernel's
// last vector (the driver's thread grain); 0 when the narrow path does not take P.
template <class T>
std::size_t narrow_work(const GemmProblem<T>& P) {
  constexpr std::size_t N = Vec<T>::N;
  if (P.swap_small_m || !narrow_fits(P)) return 0;
  return P.m * P.k * (P.trans_a ? P.n : (P.n + N - 1) / N * N);
}

// One thread's narrow product (or its band of rows).
template <class T>
void gemm_narrow(const GemmProblem<T>& P) {
  constexpr std::size_t N = Vec<T>::N;
  if (P.bias_grad) narrow_bias_grad(P);
  if (P.trans_a)
    narrow_trans(P);
  else if (P.n <= N)
    narrow_rows<T, 1>(P);
  else
    narrow_rows<T, 2>(P);
}

}  // namespace FASTNN_ISA_NS
}  // namespace fastnn
