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
//   C = alpha * AB + beta * C (+ bias) then act, where beta == 0 never reads C.
template <class T> struct Epilogue {
  T alpha, beta;
  const T* bias;   // bias of the tile's first column, or null (only on the last KC pass)
  bool apply_act;  // relu / leaky_relu only, on the last KC pass
  Act act;
  T act_alpha;
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
      for (std::size_t p = 0; p < kc; ++p) {
        const T* src = P.a + (pc + p) * P.lda + ic + ir;
        T* d = dst + p * MR;
        for (int i = 0; i < mr; ++i) d[i] = src[i];
        for (int i = mr; i < MR; ++i) d[i] = T(0);
      }
    }
  }
}

// Square transposes for packing a transposed operand with vector stores:
// dst[q * ldd + i] = src[i * lds + q] for an S x S tile (S = kTransposeTile<T>,
// 0 where no vector version exists and packing falls back to scalar moves).
template <class T> constexpr int kTransposeTile = 0;
#if defined(__AVX512F__)
template <> constexpr int kTransposeTile<float> = 16;
inline void transpose_tile(const float* src, std::size_t lds, float* dst, std::size_t ldd) {
  __m512 t[16], u[16];
  for (int i = 0; i < 16; i += 2) {  // pairs of rows interleaved within 128-bit lanes
    const __m512 r0 = _mm512_loadu_ps(src + i * lds), r1 = _mm512_loadu_ps(src + (i + 1) * lds);
    t[i] = _mm512_unpacklo_ps(r0, r1);
    t[i + 1] = _mm512_unpackhi_ps(r0, r1);
  }
  for (int g = 0; g < 16; g += 4) {  // u[g + q], lane L: column 4L + q of rows g..g+3
    u[g + 0] = _mm512_shuffle_ps(t[g + 0], t[g + 2], 0x44);
    u[g + 1] = _mm512_shuffle_ps(t[g + 0], t[g + 2], 0xEE);
    u[g + 2] = _mm512_shuffle_ps(t[g + 1], t[g + 3], 0x44);
    u[g + 3] = _mm512_shuffle_ps(t[g + 1], t[g + 3], 0xEE);
  }
  for (int q = 0; q < 4; ++q) {  // gather the four row groups of each column
    const __m512 v0 = _mm512_shuffle_f32x4(u[q], u[4 + q], 0x88), w0 = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0x88);
    const __m512 v1 = _mm512_shuffle_f32x4(u[q], u[4 + q], 0xDD), w1 = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0xDD);
    _mm512_storeu_ps(dst + q * ldd, _mm512_shuffle_f32x4(v0, w0, 0x88));
    _mm512_storeu_ps(dst + (8 + q) * ldd, _mm512_shuffle_f32x4(v0, w0, 0xDD));
    _mm512_storeu_ps(dst + (4 + q) * ldd, _mm512_shuffle_f32x4(v1, w1, 0x88));
    _mm512_storeu_ps(dst + (12 + q) * ldd, _mm512_shuffle_f32x4(v1, w1, 0xDD));
  }
}
#elif defined(__AVX2__)
template <> constexpr int kTransposeTile<float> = 8;
inline void transpose_tile(const float* src, std::size_t lds, float* dst, std::size_t ldd) {
  __m256 t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    const __m256 r0 = _mm256_loadu_ps(src + i * lds), r1 = _mm256_loadu_ps(src + (i + 1) * lds);
    t[i] = _mm256_unpacklo_ps(r0, r1);
    t[i + 1] = _mm256_unpackhi_ps(r0, r1);
  }
  for (int g = 0; g < 8; g += 4) {  // u[g + q], lane L: column 4L + q of rows g..g+3
    u[g + 0] = _mm256_shuffle_ps(t[g + 0], t[g + 2], 0x44);
    u[g + 1] = _mm256_shuffle_ps(t[g + 0], t[g + 2], 0xEE);
    u[g + 2] = _mm256_shuffle_ps(t[g + 1], t[g + 3], 0x44);
    u[g + 3] = _mm256_shuffle_ps(t[g + 1], t[g + 3], 0xEE);
  }
  for (int q = 0; q < 4; ++q) {
    _mm256_storeu_ps(dst + q * ldd, _mm256_permute2f128_ps(u[q], u[4 + q], 0x20));
    _mm256_storeu_ps(dst + (4 + q) * ldd, _mm256_permute2f128_ps(u[q], u[4 + q], 0x31));
  }
}
#endif

// op(B)[pc:pc+kc, jc:jc+nc] -> Bp (micro-panels of NR columns).
template <class T, int NR>
void pack_b_panel(const GemmProblem<T>& P, std::size_t pc, std::size_t jc, std::size_t kc, std::size_t nc, T* Bp) {
  using V = Vec<T>;
  constexpr int N = V::N;
  for (std::size_t jr = 0; jr < nc; jr += NR) {
    const int nr = static_cast<int>(std::min<std::size_t>(NR, nc - jr));
    T* dst = Bp + jr * kc;
    if (!P.trans_b) {
      // B is k x n row-major: row p of the panel is contiguous in memory
      for (std::size_t p = 0; p < kc; ++p) {
        const T* src = P.b + (pc + p) * P.ldb + jc + jr;
        T* d = dst + p * NR;
        if (nr == NR) {
          for (int j = 0; j < NR; j += N) V::load(src + j).store(d + j);
        } else {
          for (int j = 0; j < nr; ++j) d[j] = src[j];
          for (int j = nr; j < NR; ++j) d[j] = T(0);
        }
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

  // epilogue, row by row while the tile is in registers; relu and leaky_relu
  // are applied here, the others by the caller over the whole block (long rows).
  const V valpha = V::set1(ep.alpha), vbeta = V::set1(ep.beta), vzero = V::zero();
  const V vslope = V::set1(ep.act_alpha);
  const bool read_c = ep.beta != T(0);
  const bool relu = ep.apply_act && ep.act == Act::relu;
  const bool leaky = ep.apply_act && ep.act == Act::leaky_relu;
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
      if (full)
        x.store(c + v * N);
      else
        x.store_partial(c + v * N, cnt);
    }
  }
}

// ---------------------------------------------------------------------------
// the five loops on one thread
// ---------------------------------------------------------------------------
// direct_a: read full MR-row tiles of op(A) in place (no packing of A); edge
// tiles are packed into a small zero-padded panel.
template <class T, class Blk>
void gemm_blocked(const GemmProblem<T>& P, bool direct_a) {
  constexpr int MR = Blk::MR, NR = Blk::NR, MC = Blk::MC, KC = Blk::KC, NC = Blk::NC;
  static_assert(MC % MR == 0 && NC % NR == 0, "MC, NC must be multiples of MR, NR");
  const std::size_t m = P.m, n = P.n, k = P.k;
  if (m == 0 || n == 0) return;

  // k is cut into equal slices of at most KC (784 = 2 x 392, not 512 + 272)
  const std::size_t k_slices = std::max<std::size_t>(1, (k + KC - 1) / KC);
  const std::size_t kc_max = std::max<std::size_t>(1, (k + k_slices - 1) / k_slices);
  const std::size_t mc_max = direct_a ? MR : std::min<std::size_t>(MC, (m + MR - 1) / MR * MR);
  const std::size_t nc_max = std::min<std::size_t>(NC, (n + NR - 1) / NR * NR);
  T* Ap = static_cast<T*>(gemm_thread_buffer(0, sizeof(T) * mc_max * kc_max));
  T* Bp = static_cast<T*>(gemm_thread_buffer(1, sizeof(T) * kc_max * nc_max));
  const bool in_register_act = P.act == Act::relu || P.act == Act::leaky_relu;

  for (std::size_t jc = 0; jc < n; jc += NC) {                  // loop 5: NC columns of C
    const std::size_t nc = std::min<std::size_t>(NC, n - jc);
    for (std::size_t pc = 0; pc == 0 || pc < k; pc += kc_max) {  // loop 4: KC deep slices (once if k == 0)
      const std::size_t kc = std::min<std::size_t>(kc_max, k - pc);
      const bool first = pc == 0, last = pc + kc_max >= k;
      pack_b_panel<T, NR>(P, pc, jc, kc, nc, Bp);
      for (std::size_t ic = 0; ic < m; ic += MC) {              // loop 3: MC rows of C
        const std::size_t mc = std::min<std::size_t>(MC, m - ic);
        if (!direct_a) pack_a_block<T, MR>(P, ic, pc, mc, kc, Ap);
        for (std::size_t jr = 0; jr < nc; jr += NR) {           // loop 2: NR columns
          const int nr = static_cast<int>(std::min<std::size_t>(NR, nc - jr));
          const Epilogue<T> ep{P.alpha, first ? P.beta : T(1),
                               (last && P.bias) ? P.bias + jc + jr : nullptr,
                               last && P.has_act && in_register_act, P.act, P.act_alpha};
          const T* bp = Bp + jr * kc;
          for (std::size_t ir = 0; ir < mc; ir += MR) {         // loop 1: MR rows
            const int mr = static_cast<int>(std::min<std::size_t>(MR, mc - ir));
            T* c = P.c + (ic + ir) * P.ldc + jc + jr;
            const std::size_t i0 = ic + ir;
            if (!direct_a) {
              micro_kernel<T, MR, NR, AMode::packed>(kc, Ap + ir * kc, MR, bp, c, P.ldc, mr, nr, ep);
            } else if (mr < MR) {
              pack_a_block<T, MR>(P, i0, pc, mr, kc, Ap);
              micro_kernel<T, MR, NR, AMode::packed>(kc, Ap, MR, bp, c, P.ldc, mr, nr, ep);
            } else if (P.trans_a) {
              micro_kernel<T, MR, NR, AMode::cols>(kc, P.a + pc * P.lda + i0, P.lda, bp, c, P.ldc, mr, nr, ep);
            } else {
              micro_kernel<T, MR, NR, AMode::rows>(kc, P.a + i0 * P.lda + pc, P.lda, bp, c, P.ldc, mr, nr, ep);
            }
          }
        }
        // other activations: over the mc x nc block just written (in L2),
        // in long rows rather than per micro-tile row
        if (last && P.has_act && !in_register_act)
          for (std::size_t i = 0; i < mc; ++i) {
            T* c = P.c + (ic + i) * P.ldc + jc;
            act_forward_range(P.act, c, c, nc, P.act_alpha);
          }
      }
    }
  }
}

// One thread's whole product: picks the narrow tile for thin C and reads A in
// place when C has few columns (P.direct_a_max_n < 0: this ISA's default).
template <class T>
void gemm_single_thread(const GemmProblem<T>& P) {
  const long max_n = P.direct_a_max_n >= 0 ? P.direct_a_max_n : kDirectAMaxN;
  const bool direct_a = static_cast<long>(P.n) <= max_n;
  if (P.n <= static_cast<std::size_t>(GemmBlockingNarrow<T>::NR))
    gemm_blocked<T, GemmBlockingNarrow<T>>(P, direct_a);
  else
    gemm_blocked<T, GemmBlocking<T>>(P, direct_a);
}

const GemmKernels gemm_kernels = {
    {&gemm_single_thread<float>, GemmBlocking<float>::MR, GemmBlocking<float>::NR},
    {&gemm_single_thread<double>, GemmBlocking<double>::MR, GemmBlocking<double>::NR},
};

}  // namespace FASTNN_ISA_NS
}  // namespace fastnn
