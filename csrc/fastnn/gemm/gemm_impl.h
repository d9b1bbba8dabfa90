// Per-ISA GEMM: packing, the register-tiled micro-kernel and the five BLIS
// loops on one thread. Included once by gemm_{scalar,avx2,avx512}.cpp after
// the ISA's vec_*.h, with FASTNN_ISA_NS defined.
//
// B is always packed; A is packed, or read in place by the micro-kernel
// (full MR-row tiles; blocking.h kDirectAMaxN says when). Packed layouts
// (zero-padded to whole micro-tiles, so the micro-kernel never branches on
// edges while it multiplies):
//   A block (MC x KC): micro-panels of MR rows; panel r holds
//       Ap[r*MR*kc + p*MR + i] = op(A)(ic + r*MR + i, pc + p)
//   B panel (KC x NC): micro-panels of NR columns; panel s holds
//       Bp[s*NR*kc + p*NR + j] = op(B)(pc + p, jc + s*NR + j)
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstring>

#include "fastnn/eltwise/act_impl.h"
#include "fastnn/gemm/blocking.h"
#include "fastnn/gemm/gemm.h"

namespace fastnn {
namespace FASTNN_ISA_NS {

// What to do with the MR x NR product of one micro-kernel call:
//   t = alpha * AB + beta * C (+ bias), where beta == 0 never reads C; then
//   C = act(t), or C = t * act'(saved) when grad (the backward epilogue).
template <class T> struct Epilogue {
  T alpha, beta;
  const T* bias;   // bias of the tile's first column, or null (only on the last KC pass)
  bool apply_act;  // relu / leaky_relu only, on the last KC pass
  Act act;
  T act_alpha;
  bool grad;       // apply_act means: multiply by act'(saved)
  const T* saved;  // grad: the saved forward x or y at the tile's origin (row stride ldc)
};

// ---------------------------------------------------------------------------
// packing
// ---------------------------------------------------------------------------

// op(A)[ic:ic+mc, pc:pc+kc] -> Ap (micro-panels of MR rows).
template <class T, int MR>
void pack_a_block(const GemmProblem<T>& P, std::size_t ic, std::size_t pc, std::size_t mc, std::size_t kc, T* Ap) {
  for (std::size_t ir = 0; ir < mc; ir += MR) {
    const int mr = static_cast<int>(std::min<std::size_t>(MR, mc - ir));
    T* dst = Ap + ir * kc;
    if (!P.trans_a) {
      // A is m x k row-major: row i of the panel is contiguous in memory
      if (mr < MR) std::memset(dst, 0, sizeof(T) * MR * kc);
      for (int i = 0; i < mr; ++i) {
        const T* src = P.a + (ic + ir + i) * P.lda + pc;
        for (std::size_t p = 0; p < kc; ++p) dst[p * MR + i] = src[p];
      }
    } else {
      // A is k x m row-major: column p of the panel is contiguous in memory
      const T* src = P.a + pc * P.lda + ic + ir;
      if (mr == MR) {
        for (std::size_t p = 0; p < kc; ++p) std::memcpy(dst + p * MR, src + p * P.lda, sizeof(T) * MR);
      } else {
        for (std::size_t p = 0; p < kc; ++p) {
          T* d = dst + p * MR;
          for (int i = 0; i < mr; ++i) d[i] = src[p * P.lda + i];
          for (int i = mr; i < MR; ++i) d[i] = T(0);
        }
      }
    }
  }
}

// Column sums of a packed kc x NR micro-panel, added to sum[0:nr].
template <class T, int NR>
void add_column_sums(const T* panel, std::size_t kc, int nr, T* sum) {
  using V = Vec<T>;
  constexpr int N = V::N, NV = NR / N;
  V acc[NV];
  for (int v = 0; v < NV; ++v) acc[v] = V::zero();
  for (std::size_t p = 0; p < kc; ++p)
    for (int v = 0; v < NV; ++v) acc[v] = acc[v] + V::load(panel + p * NR + v * N);
  for (int v = 0; v < NV && v * N < nr; ++v) {
    const int cnt = std::min(N, nr - v * N);
    (V::load_partial(sum + v * N, cnt) + acc[v]).store_partial(sum + v * N, cnt);
  }
}

// op(B)[pc:pc+kc, jc:jc+nc] -> Bp (micro-panels of NR columns). colsum (or
// null): colsum[0:nc] += the column sums of that block, summed over p in order
// (taken while packing when B is read by rows).
template <class T, int NR>
void pack_b_panel(const GemmProblem<T>& P, std::size_t pc, std::size_t jc, std::size_t kc, std::size_t nc, T* Bp,
                  T* colsum) {
  using V = Vec<T>;
  constexpr int N = V::N, NV = NR / N;
  for (std::size_t jr = 0; jr < nc; jr += NR) {
    const int nr = static_cast<int>(std::min<std::size_t>(NR, nc - jr));
    T* dst = Bp + jr * kc;
    if (!P.trans_b && nr == NR) {
      // B is k x n row-major: row p of the panel is contiguous in memory
      V acc[NV];
      for (int v = 0; v < NV; ++v) acc[v] = V::zero();
      for (std::size_t p = 0; p < kc; ++p) {
        const T* src = P.b + (pc + p) * P.ldb + jc + jr;
        T* d = dst + p * NR;
        for (int v = 0; v < NV; ++v) {
          const V x = V::load(src + v * N);
          x.store(d + v * N);
          if (colsum) acc[v] = acc[v] + x;
        }
      }
      if (colsum)
        for (int v = 0; v < NV; ++v) (V::load(colsum + jr + v * N) + acc[v]).store(colsum + jr + v * N);
      continue;
    }
    if (!P.trans_b) {
      for (std::size_t p = 0; p < kc; ++p) {
        const T* src = P.b + (pc + p) * P.ldb + jc + jr;
        T* d = dst + p * NR;
        for (int j = 0; j < nr; ++j) d[j] = src[j];
        for (int j = nr; j < NR; ++j) d[j] = T(0);
      }
    } else {
      // B is n x k row-major: column j of the panel is contiguous in memory
      const T* src = P.b + (jc + jr) * P.ldb + pc;
      if (nr < NR) std::memset(dst, 0, sizeof(T) * NR * kc);
      std::size_t p0 = 0;
      if constexpr (kTransposeTile<T> > 0 && NR % kTransposeTile<T> == 0) {
        constexpr int S = kTransposeTile<T>;
        if (nr == NR) {
          for (; p0 + S <= kc; p0 += S)
            for (int j = 0; j < NR; j += S) transpose_tile(src + j * P.ldb + p0, P.ldb, dst + p0 * NR + j, NR);
        }
      }
      for (int j = 0; j < nr; ++j)
        for (std::size_t p = p0; p < kc; ++p) dst[p * NR + j] = src[j * P.ldb + p];
    }
    if (colsum) add_column_sums<T, NR>(dst, kc, nr, colsum + jr);
  }
}

// The epilogue of an MR x NR accumulator tile (NR / N vectors per row), row by
// row while it is in registers: C[0:mr, 0:nr] <- ep(acc). relu and leaky_relu
// (or their gradients) are applied here, the others by the caller over the
// whole block (long rows).
template <class T, int MR, int NR>
[[gnu::always_inline]] inline void tile_epilogue(const Vec<T> (&acc)[MR][NR / Vec<T>::N], T* C, std::size_t ldc, int mr,
                                                 int nr, const Epilogue<T>& ep) {
  using V = Vec<T>;
  constexpr int N = V::N;
  constexpr int NV = NR / N;
  const V valpha = V::set1(ep.alpha), vbeta = V::set1(ep.beta), vzero = V::zero();
  if (mr == MR && nr == NR && ep.beta == T(0) && !ep.bias && !ep.apply_act) {
    // the common whole tile with nothing to add: straight stores (x * 1 == x:
    // the same values as below). Short-k products (dW = Xᵀ·dY, k = the batch
    // size) spend a tenth of their time out of the loop.
    const bool scale = ep.alpha != T(1);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) (scale ? acc[i][v] * valpha : acc[i][v]).store(C + i * ldc + v * N);
    return;
  }
  const V vslope = V::set1(ep.act_alpha);
  const bool read_c = ep.beta != T(0);
  const bool relu = ep.apply_act && !ep.grad && ep.act == Act::relu;
  const bool leaky = ep.apply_act && !ep.grad && ep.act == Act::leaky_relu;
  const bool relu_grad = ep.apply_act && ep.grad && ep.act == Act::relu;
  const bool leaky_grad = ep.apply_act && ep.grad && ep.act == Act::leaky_relu;
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
    if (i >= mr) break;
    T* c = C + i * ldc;
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      const int cnt = nr - v * N;  // valid lanes of this vector
      if (cnt <= 0) break;
      V x = acc[i][v] * valpha;
      const bool full = cnt >= N;
      if (read_c) x = fmadd(vbeta, full ? V::load(c + v * N) : V::load_partial(c + v * N, cnt), x);
      if (ep.bias) x = x + (full ? V::load(ep.bias + v * N) : V::load_partial(ep.bias + v * N, cnt));
      if (relu) x = max(vzero, x);  // as act_forward_vec: max(0, NaN) = NaN
      if (leaky) x = select(gt(x, vzero), x, x * vslope);
      if (relu_grad || leaky_grad) {  // as act_backward_vec: the sign of the saved x or y decides
        const T* sp = ep.saved + i * ldc + v * N;
        const V sv = full ? V::load(sp) : V::load_partial(sp, cnt);
        x = relu_grad ? act_backward_vec<Act::relu, true>(x, sv, sv, ep.act_alpha)
                      : act_backward_vec<Act::leaky_relu, true>(x, sv, sv, ep.act_alpha);
      }
      if (full)
        x.store(c + v * N);
      else
        x.store_partial(c + v * N, cnt);
    }
  }
}

// ---------------------------------------------------------------------------
// micro-kernel: C[0:mr, 0:nr] (row stride ldc) <- epilogue(op(A) tile · Bp)
//   Bp: kc x NR packed micro-panel; mr <= MR, nr <= NR (edge tiles: only the
//   valid part of C is touched). The MR x kc tile of op(A) is read as
//     AMode::packed  A[p*MR + i]        (a packed micro-panel)
//     AMode::cols    A[p*as + i]        (A stored k x m, trans_a: read in place)
//     AMode::rows    A[i*as + p]        (A stored m x k: read in place)
//   in place only for full tiles (mr == MR), so nothing past A is read.
// The MR x NR accumulator tile lives in MR * NR / N vector registers.
// ---------------------------------------------------------------------------
enum class AMode { packed, cols, rows };

template <class T, int MR, int NR, AMode AM>
void micro_kernel(std::size_t kc, const T* __restrict A, std::size_t as, const T* __restrict Bp, T* C,
                  std::size_t ldc, int mr, int nr, const Epilogue<T>& ep) {
  using V = Vec<T>;
  constexpr int N = V::N;
  constexpr int NV = NR / N;
  static_assert(NR % N == 0, "NR must be a multiple of the vector width");
  V acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[i][v] = V::zero();

  // C is read (beta != 0 or a later KC slice) and written after the loop:
  // start fetching its rows now.
  for (int i = 0; i < mr; ++i) {
    __builtin_prefetch(C + i * ldc);
    __builtin_prefetch(C + i * ldc + nr - 1);
  }
  if (ep.saved && ep.apply_act)  // the backward epilogue's saved x or y: cold, read after the loop
    for (int i = 0; i < mr; ++i) {
      __builtin_prefetch(ep.saved + i * ldc);
      __builtin_prefetch(ep.saved + i * ldc + nr - 1);
    }
  const std::size_t a_step = AM == AMode::packed ? MR : AM == AMode::cols ? as : 1;
#pragma GCC unroll 4
  for (std::size_t p = 0; p < kc; ++p) {
    V b[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) b[v] = V::load(Bp + v * N);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const V a = V::set1(AM == AMode::rows ? A[i * as] : A[i]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[i][v] = fmadd(a, b[v], acc[i][v]);
    }
    A += a_step;
    Bp += NR;
  }

  tile_epilogue<T, MR, NR>(acc, C, ldc, mr, nr, ep);
}

// ---------------------------------------------------------------------------
// the five loops on one thread
// ---------------------------------------------------------------------------
// The saved forward value (x or y) of the backward epilogue, row i, column j.
template <class T>
const T* saved_at(const GemmProblem<T>& P, std::size_t i, std::size_t j) {
  const T* s = P.act_y ? P.act_y : P.act_x;
  return s ? s + i * P.ldc + j : nullptr;
}

// The activation (or its gradient) over the mc x nc block of C just written
// (still in L2), in long rows, for the activations the micro-kernel leaves.
template <class T>
void block_activation(const GemmProblem<T>& P, std::size_t ic, std::size_t jc, std::size_t mc, std::size_t nc) {
  for (std::size_t i = ic; i < ic + mc; ++i) {
    T* c = P.c + i * P.ldc + jc;
    if (!P.act_grad) {
      act_forward_range(P.act, c, c, nc, P.act_alpha);
    } else {
      const T* x = P.act_x ? P.act_x + i * P.ldc + jc : nullptr;
      const T* y = P.act_y ? P.act_y + i * P.ldc + jc : nullptr;
      act_backward_range(P.act, c, x, y, c, nc, P.act_alpha);
    }
  }
}

// bias_grad[0:nc] = alpha * colsum[0:nc] + beta * bias_grad (beta == 0 never reads it)
template <class T>
void finish_bias_grad(const GemmProblem<T>& P, const T* colsum, T* bias_grad, std::size_t nc) {
  for (std::size_t j = 0; j < nc; ++j)
    bias_grad[j] = P.beta != T(0) ? P.alpha * colsum[j] + P.beta * bias_grad[j] : P.alpha * colsum[j];
}

// The mr x nr micro-tile of C at (i0, j0) for the KC slice at pc (first and
// last: which slice; bp its packed B micro-panel). op(A) comes from Ap, the
// tile's packed micro-panel, or with direct_a in place (an edge tile, mr < MR,
// is packed into the scratch panel Ap first).
template <class T, int MR, int NR>
void block_tile(const GemmProblem<T>& P, bool direct_a, std::size_t pc, std::size_t kc, bool first, bool last,
                std::size_t i0, std::size_t j0, int mr, int nr, T* Ap, const T* bp) {
  const bool reg_act = last && P.has_act && (P.act == Act::relu || P.act == Act::leaky_relu);
  const Epilogue<T> ep{P.alpha, first ? P.beta : T(1), (last && P.bias) ? P.bias + j0 : nullptr, reg_act, P.act,
                       P.act_alpha, P.act_grad, reg_act && P.act_grad ? saved_at(P, i0, j0) : nullptr};
  T* c = P.c + i0 * P.ldc + j0;
  if (!direct_a) {
    micro_kernel<T, MR, NR, AMode::packed>(kc, Ap, MR, bp, c, P.ldc, mr, nr, ep);
  } else if (mr < MR) {
    pack_a_block<T, MR>(P, i0, pc, mr, kc, Ap);
    micro_kernel<T, MR, NR, AMode::packed>(kc, Ap, MR, bp, c, P.ldc, mr, nr, ep);
  } else if (P.trans_a) {
    micro_kernel<T, MR, NR, AMode::cols>(kc, P.a + pc * P.lda + i0, P.lda, bp, c, P.ldc, mr, nr, ep);
  } else {
    micro_kernel<T, MR, NR, AMode::rows>(kc, P.a + i0 * P.lda + pc, P.lda, bp, c, P.ldc, mr, nr, ep);
  }
}

// direct_a: read full MR-row tiles of op(A) in place (no packing of A); edge
// tiles are packed into a small zero-padded panel. bs: MC, KC, NC (blocking.cpp).
// a_outer: loop 1 (MR rows) outside loop 2 (NR columns), so that an in-place
// tile of A stays in L1 while the packed B micro-panels (in L2) pass by: for
// a big A and a packed B of few columns (the swapped small-m product).
template <class T, int MR, int NR>
void gemm_blocked(const GemmProblem<T>& P, bool direct_a, const GemmBlockSizes& bs, bool a_outer = false) {
  const std::size_t MC = static_cast<std::size_t>(bs.mc), KC = static_cast<std::size_t>(bs.kc),
                    NC = static_cast<std::size_t>(bs.nc);
  const std::size_t m = P.m, n = P.n, k = P.k;
  if (m == 0 || n == 0) return;

  // k is cut into equal slices of at most KC (784 = 2 x 392, not 512 + 272)
  const std::size_t k_slices = std::max<std::size_t>(1, (k + KC - 1) / KC);
  const std::size_t kc_max = std::max<std::size_t>(1, (k + k_slices - 1) / k_slices);
  const std::size_t mc_max = direct_a ? MR : std::min<std::size_t>(MC, (m + MR - 1) / MR * MR);
  const std::size_t nc_max = std::min<std::size_t>(NC, (n + NR - 1) / NR * NR);
  T* Ap = static_cast<T*>(gemm_thread_buffer(0, sizeof(T) * mc_max * kc_max));
  T* Bp = static_cast<T*>(gemm_thread_buffer(1, sizeof(T) * kc_max * nc_max));
  T* colsum = P.bias_grad ? static_cast<T*>(gemm_thread_buffer(2, sizeof(T) * nc_max)) : nullptr;
  const bool in_register_act = P.act == Act::relu || P.act == Act::leaky_relu;

  for (std::size_t jc = 0; jc < n; jc += NC) {                  // loop 5: NC columns of C
    const std::size_t nc = std::min<std::size_t>(NC, n - jc);
    if (colsum) std::memset(colsum, 0, sizeof(T) * nc_max);
    for (std::size_t pc = 0; pc == 0 || pc < k; pc += kc_max) {  // loop 4: KC deep slices (once if k == 0)
      const std::size_t kc = std::min<std::size_t>(kc_max, k - pc);
      const bool first = pc == 0, last = pc + kc_max >= k;
      pack_b_panel<T, NR>(P, pc, jc, kc, nc, Bp, colsum);
      for (std::size_t ic = 0; ic < m; ic += MC) {              // loop 3: MC rows of C
        const std::size_t mc = std::min<std::size_t>(MC, m - ic);
        if (!direct_a) pack_a_block<T, MR>(P, ic, pc, mc, kc, Ap);
        auto tile = [&](std::size_t ir, std::size_t jr) {
          const int mr = static_cast<int>(std::min<std::size_t>(MR, mc - ir));
          const int nr = static_cast<int>(std::min<std::size_t>(NR, nc - jr));
          block_tile<T, MR, NR>(P, direct_a, pc, kc, first, last, ic + ir, jc + jr, mr, nr,
                                direct_a ? Ap : Ap + ir * kc, Bp + jr * kc);
        };
        if (a_outer) {
          for (std::size_t ir = 0; ir < mc; ir += MR)            // loop 1: MR rows
            for (std::size_t jr = 0; jr < nc; jr += NR) tile(ir, jr);  // loop 2: NR columns
        } else {
          for (std::size_t jr = 0; jr < nc; jr += NR)            // loop 2: NR columns
            for (std::size_t ir = 0; ir < mc; ir += MR) tile(ir, jr);  // loop 1: MR rows
        }
        if (last && P.has_act && !in_register_act) block_activation(P, ic, jc, mc, nc);
      }
    }
    if (colsum) finish_bias_grad(P, colsum, P.bias_grad + jc, nc);
  }
}

// One thread's whole product, unswapped: picks the narrow tile for thin C (by
// the whole product's width, P.tile_n, so that every thread slices k alike)
// and reads A in place when C has few columns and A is not transposed, or as tuned.
template <class T>
void gemm_unswapped(const GemmProblem<T>& P, bool a_outer = false) {
  const long max_n = P.direct_a_max_n >= 0 ? P.direct_a_max_n : kDirectAMaxN;
  const bool direct_a = static_cast<long>(P.n) <= max_n && (!P.trans_a || P.direct_trans_a);
  const std::size_t tile_n = P.tile_n ? P.tile_n : P.n;
  using Wide = GemmBlocking<T>;
  using Narrow = GemmBlockingNarrow<T>;
  const GemmBlockSizes wide{Wide::MR, Wide::NR, Wide::MC, Wide::KC, Wide::NC};
  const GemmBlockSizes narrow{Narrow::MR, Narrow::NR, Narrow::MC, Narrow::KC, Narrow::NC};
  if (tile_n <= static_cast<std::size_t>(Narrow::NR))
    gemm_blocked<T, Narrow::MR, Narrow::NR>(P, direct_a, P.blocking ? P.blocking->narrow : narrow, a_outer);
  else
    gemm_blocked<T, Wide::MR, Wide::NR>(P, direct_a, P.blocking ? P.blocking->wide : wide, a_outer);
}

// C = epilogue(S^T): S is the n x m transposed product (row stride lds, alpha
// already applied); then C = S^T + beta * C + bias and the activation (or its
// gradient) over each block of rows, as the micro-kernel and block_activation
// do for an unswapped product. beta == 0 never reads C. padded: S can be
// read in whole N x N tiles (its rows padded to a multiple of N, lds and the
// columns read past m up to a multiple of N), so edge tiles transpose in registers too.
template <class T>
void store_transposed(const GemmProblem<T>& P, const T* S, std::size_t lds, bool padded = false) {
  using V = Vec<T>;
  constexpr int N = V::N;
  constexpr int TT = kTransposeTile<T>;
  T tile[N * N];  // row r: C(i0 + r, j0 : j0 + N)
  const V vbeta = V::set1(P.beta);
  for (std::size_t i0 = 0; i0 < P.m; i0 += N) {
    const int mi = static_cast<int>(std::min<std::size_t>(N, P.m - i0));
    for (std::size_t j0 = 0; j0 < P.n; j0 += N) {
      const int nj = static_cast<int>(std::min<std::size_t>(N, P.n - j0));
      const T* s = S + j0 * lds + i0;
      bool done = false;
      if constexpr (TT == N) {
        if (padded || (mi == N && nj == N)) {
          transpose_tile(s, lds, tile, N);
          done = true;
        }
      }
      if (!done)
        for (int r = 0; r < mi; ++r)
          for (int q = 0; q < nj; ++q) tile[r * N + q] = s[q * lds + r];
      for (int r = 0; r < mi; ++r) {
        T* c = P.c + (i0 + r) * P.ldc + j0;
        V x = nj == N ? V::load(tile + r * N) : V::load_partial(tile + r * N, nj);
        if (P.beta != T(0)) x = fmadd(vbeta, nj == N ? V::load(c) : V::load_partial(c, nj), x);
        if (P.bias) x = x + (nj == N ? V::load(P.bias + j0) : V::load_partial(P.bias + j0, nj));
        if (nj == N)
          x.store(c);
        else
          x.store_partial(c, nj);
      }
    }
    if (P.has_act) block_activation(P, i0, 0, static_cast<std::size_t>(mi), P.n);
  }
}

// A small-m product (GemmProblem::swap_small_m, the driver's choice) as its
// transpose S = op(B)^T · op(A)^T (n x m, this thread's scratch): the big
// operand op(B) -- the weights, k x n, which the unswapped product packs on
// every call while using each panel only m / MR times -- becomes the swapped
// product's A, read in place by the micro-kernel (rows of W for dY·W^T,
// columns for X·W), and only the small op(A) (m x k) is packed. S is then
// transposed into C with the epilogue (store_transposed). Tiles are chosen by
// m (the swapped width), the same in every thread's band.
template <class T>
void gemm_swapped(const GemmProblem<T>& P) {
  const std::size_t lds = P.m;
  GemmProblem<T> Q;  // alpha only: beta, bias and the activation come in store_transposed
  Q.trans_a = !P.trans_b, Q.trans_b = !P.trans_a;
  Q.m = P.n, Q.n = P.m, Q.k = P.k, Q.alpha = P.alpha;
  Q.a = P.b, Q.lda = P.ldb, Q.b = P.a, Q.ldb = P.lda;
  Q.c = static_cast<T*>(gemm_thread_buffer(3, sizeof(T) * P.n * lds)), Q.ldc = lds;
  Q.direct_a_max_n = P.direct_a_max_n, Q.direct_trans_a = P.direct_trans_a, Q.blocking = P.blocking;
  Q.tile_n = P.m;  // the tile and the k slices follow the whole product's m, the same in every band
  gemm_unswapped(Q, /*a_outer=*/true);
  store_transposed(P, Q.c, lds);
}

}  // namespace FASTNN_ISA_NS
}  // namespace fastnn

#include "fastnn/gemm/narrow_impl.h"

namespace fastnn {
namespace FASTNN_ISA_NS {

// One thread's whole product (or its band of columns or rows, gemm.cpp).
template <class T>
void gemm_single_thread(const GemmProblem<T>& P) {
  if (P.swap_small_m)
    gemm_swapped(P);
  else if (narrow_fits(P))
    gemm_narrow(P);
  else
    gemm_unswapped(P);
}

const GemmKernels gemm_kernels = {
    {&gemm_single_thread<float>, GemmBlocking<float>::MR, GemmBlocking<float>::NR,
     GemmBlockingNarrow<float>::MR, GemmBlockingNarrow<float>::NR, kSwapMaxM, &narrow_work<float>},
    {&gemm_single_thread<double>, GemmBlocking<double>::MR, GemmBlocking<double>::NR,
     GemmBlockingNarrow<double>::MR, GemmBlockingNarrow<double>::NR, kSwapMaxM, &narrow_work<double>},
};

}  // namespace FASTNN_ISA_NS
}  // namespace fastnn
