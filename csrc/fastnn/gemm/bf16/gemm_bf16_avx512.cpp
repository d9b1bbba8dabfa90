// bf16 GEMM on AVX512-BF16 (compiled with -mavx512bf16 and the avx512 flags, see
// CMakeLists.txt; namespace avx512::bf16 so the ISA checks of tests/test_portability.py apply;
// run only where cpu.cpp detected AVX512-BF16). BLIS loops as gemm_impl.h,
// with both operands packed (the rounding to bf16 happens once per panel):
//
//   a "pair" is two consecutive k (2q, 2q+1); vdpbf16ps multiplies a dword of
//   two bf16 of A with a dword of two bf16 of B and adds both products to the
//   float32 lane. kc is padded to even with zeros.
//   A block (MC x KC): micro-panels of MR rows; panel r holds the dwords
//       Ap[r*MR*kp + q*MR + i] = bf16 pair (op(A)(i, 2q), op(A)(i, 2q+1))
//   B panel (KC x NC): micro-panels of NR columns; panel s holds the dwords
//       Bp[s*NR*kp + q*NR + j] = bf16 pair (op(B)(2q, j), op(B)(2q+1, j))
//   (kp = kc / 2 rounded up; rows/columns past the edge are zero).
// The micro-kernel keeps MR x NR float32 accumulators in MR * NR / 16 zmm.
// No AMX tile kernel: the machine this was written on (AMD Zen 5) has no AMX, so it
// could not be tested; cpu.cpp reports amx_bf16 / amx_tile / os_amx only.
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "fastnn/eltwise/eltwise.h"
#include "fastnn/gemm/bf16/gemm_bf16.h"

namespace fastnn {
namespace avx512 {
namespace bf16 {
namespace {

// Wide tile for most products (12 x 32: 24 zmm accumulators, 2 B vectors, 1 broadcast;
// 12 x 32 measured at least as fast as 8 x 32, single thread, Zen 5); narrow one when
// C has at most 16 columns.
struct Wide { static constexpr int MR = 12, NR = 32, MC = 192, KC = 512, NC = 4096; };
struct Narrow { static constexpr int MR = 16, NR = 16, MC = 256, KC = 512, NC = 4096; };

struct Epilogue {
  float alpha, beta;
  const float* bias;  // bias of the tile's first column, or null (only on the last KC pass)
  bool relu, leaky;   // in-register activations, on the last KC pass
  float act_alpha;
};

// gemm_bf16.h's bf16_bits, with internal linkage: no inline function compiled
// here (with AVX-512 flags) may be merged into baseline callers.
std::uint32_t bits16(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7f800000u) == 0) return (u >> 16) & 0x8000u;
  if ((u & 0x7fffffffu) > 0x7f800000u) return (u >> 16) | 0x40u;
  u += 0x7fffu + ((u >> 16) & 1u);
  return u >> 16;
}

inline std::uint32_t pair_bits(float lo, float hi) { return bits16(lo) | (bits16(hi) << 16); }

// 16 float32 of x and 16 of y -> 16 dwords (bf16(x[j]) | bf16(y[j]) << 16).
inline __m512i interleave_cvt(__m512 x, __m512 y) {
  const __m512i v = (__m512i)_mm512_cvtne2ps_pbh(y, x);  // words: x0..x15, y0..y15
  const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
                                       21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(idx, v);
}

// 32 consecutive float32 -> 16 dwords of consecutive bf16 pairs.
inline __m512i cvt_pairs(const float* p) {
  return (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(p + 16), _mm512_loadu_ps(p));
}

// In-register 16 x 16 transpose of dwords.
inline void transpose16(__m512i r[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int g = 0; g < 16; g += 4) {
    u[g + 0] = _mm512_unpacklo_epi64(t[g + 0], t[g + 2]);
    u[g + 1] = _mm512_unpackhi_epi64(t[g + 0], t[g + 2]);
    u[g + 2] = _mm512_unpacklo_epi64(t[g + 1], t[g + 3]);
    u[g + 3] = _mm512_unpackhi_epi64(t[g + 1], t[g + 3]);
  }
  // u[g + q], 128-bit lane L: column 4L + q of rows g..g+3
  for (int q = 0; q < 4; ++q) {
    const __m512i v0 = _mm512_shuffle_i32x4(u[q], u[4 + q], 0x88), w0 = _mm512_shuffle_i32x4(u[8 + q], u[12 + q], 0x88);
    const __m512i v1 = _mm512_shuffle_i32x4(u[q], u[4 + q], 0xDD), w1 = _mm512_shuffle_i32x4(u[8 + q], u[12 + q], 0xDD);
    r[q] = _mm512_shuffle_i32x4(v0, w0, 0x88);
    r[8 + q] = _mm512_shuffle_i32x4(v0, w0, 0xDD);
    r[4 + q] = _mm512_shuffle_i32x4(v1, w1, 0x88);
    r[12 + q] = _mm512_shuffle_i32x4(v1, w1, 0xDD);
  }
}

// 16 dwords of pairs from 32 consecutive k: float32 converted, bf16 bits copied.
inline __m512i load_pairs(const float* p) { return cvt_pairs(p); }
inline __m512i load_pairs(const std::uint16_t* p) { return _mm512_loadu_si512(p); }
// The pair (s[2q], s[2q+1]), zero past kc.
inline std::uint32_t pair_at(const float* s, std::size_t q, std::size_t kc) {
  return pair_bits(s[2 * q], 2 * q + 1 < kc ? s[2 * q + 1] : 0.0f);
}
inline std::uint32_t pair_at(const std::uint16_t* s, std::size_t q, std::size_t kc) {
  return s[2 * q] | (2 * q + 1 < kc ? std::uint32_t(s[2 * q + 1]) << 16 : 0u);
}

// Dwords of `rows` rows of a matrix stored with contiguous k (row x at
// src + x * ld, k from k0 over kc values) as pairs, written to
// dst[q * ldd + x]: the layout of A micro-panels (rows of op(A), !trans_a) and
// of B micro-panels (columns of op(B), trans_b). rows <= ldd; the caller zeroes
// the rest. T: float (rounded here) or uint16 (bf16 bits, copied).
template <class T>
void pack_k_contiguous(const T* src, std::size_t ld, int rows, std::size_t kc, std::uint32_t* dst, int ldd) {
  std::size_t q0 = 0;
  if (rows >= 4) {
    // 16 rows x 32 k at a time: convert, transpose dwords, store rows of pairs
    for (; 2 * (q0 + 16) <= kc; q0 += 16) {
      for (int x0 = 0; x0 < rows; x0 += 16) {
        const int nx = std::min(16, rows - x0);
        __m512i r[16];
        for (int x = 0; x < 16; ++x)
          r[x] = x < nx ? load_pairs(src + (x0 + x) * ld + 2 * q0) : _mm512_setzero_si512();
        transpose16(r);
        const __mmask16 m = static_cast<__mmask16>((1u << nx) - 1u);
        for (int q = 0; q < 16; ++q) _mm512_mask_storeu_epi32(dst + (q0 + q) * ldd + x0, m, r[q]);
      }
    }
  }
  for (int x = 0; x < rows; ++x)
    for (std::size_t q = q0; 2 * q < kc; ++q) dst[q * ldd + x] = pair_at(src + x * ld, q, kc);
}

// Pairs of `cols` columns of a matrix stored with contiguous columns (row p at
// src + p * ld): dst[q * ldd + x] = (src[2q][x], src[2q+1][x]); layout of B
// micro-panels (!trans_b) and A micro-panels (trans_a). colsum (B only, may be
// null): the float32 rows added to colsum[0:cols] one by one in row order, so a
// column's sum is the one of a plain loop over its rows (column_sum's order).
void pack_n_contiguous(const float* src, std::size_t ld, int cols, std::size_t kc, std::uint32_t* dst, int ldd,
                       float* colsum = nullptr) {
  for (std::size_t q = 0; 2 * q < kc; ++q) {
    const float* r0 = src + 2 * q * ld;
    const float* r1 = r0 + ld;
    const bool has1 = 2 * q + 1 < kc;
    std::uint32_t* d = dst + q * ldd;
    for (int x = 0; x < cols; x += 16) {
      const int cnt = std::min(16, cols - x);
      const __mmask16 m = static_cast<__mmask16>(cnt == 16 ? 0xffffu : (1u << cnt) - 1u);
      const __m512 v0 = _mm512_maskz_loadu_ps(m, r0 + x);
      const __m512 v1 = has1 ? _mm512_maskz_loadu_ps(m, r1 + x) : _mm512_setzero_ps();
      _mm512_mask_storeu_epi32(d + x, m, interleave_cvt(v0, v1));
      if (colsum) {
        __m512 s = _mm512_add_ps(_mm512_maskz_loadu_ps(m, colsum + x), v0);
        if (has1) s = _mm512_add_ps(s, v1);
        _mm512_mask_storeu_ps(colsum + x, m, s);
      }
    }
  }
}

// The n-contiguous layout from bfloat16 bit patterns: the words of rows 2q and 2q+1 interleaved.
void pack_n_contiguous(const std::uint16_t* src, std::size_t ld, int cols, std::size_t kc, std::uint32_t* dst,
                       int ldd) {
  for (std::size_t q = 0; 2 * q < kc; ++q) {
    const std::uint16_t* r0 = src + 2 * q * ld;
    const std::uint16_t* r1 = r0 + ld;
    const bool has1 = 2 * q + 1 < kc;
    std::uint32_t* d = dst + q * ldd;
    for (int x = 0; x < cols; x += 16) {
      const int cnt = std::min(16, cols - x);
      const __mmask16 m = static_cast<__mmask16>(cnt == 16 ? 0xffffu : (1u << cnt) - 1u);
      const __m512i lo = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, r0 + x));
      const __m512i hi = has1 ? _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, r1 + x)) : _mm512_setzero_si512();
      _mm512_mask_storeu_epi32(d + x, m, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
    }
  }
}

// op(A)[ic:ic+mc, pc:pc+kc] -> Ap (micro-panels of MR rows, zero-padded); A is
// P.a (float32, rounded here) or io.a (bf16 bits, copied).
template <int MR>
void pack_a(const GemmProblem<float>& P, const Bf16Io& io, std::size_t ic, std::size_t pc, std::size_t mc,
            std::size_t kc, std::uint32_t* Ap) {
  const std::size_t kp = (kc + 1) / 2;
  for (std::size_t ir = 0; ir < mc; ir += MR) {
    const int mr = static_cast<int>(std::min<std::size_t>(MR, mc - ir));
    std::uint32_t* dst = Ap + ir * kp;
    if (mr < MR) std::memset(dst, 0, sizeof(std::uint32_t) * MR * kp);
    const std::size_t off = P.trans_a ? pc * P.lda + ic + ir : (ic + ir) * P.lda + pc;
    if (!P.trans_a)
      io.a ? pack_k_contiguous(io.a + off, P.lda, mr, kc, dst, MR) : pack_k_contiguous(P.a + off, P.lda, mr, kc, dst, MR);
    else
      io.a ? pack_n_contiguous(io.a + off, P.lda, mr, kc, dst, MR) : pack_n_contiguous(P.a + off, P.lda, mr, kc, dst, MR);
  }
}

// op(B)[pc:pc+kc, jc:jc+nc] -> Bp (micro-panels of NR columns, zero-padded); P.b or io.b.
// colsum (P.bias_grad set; B float32, !trans_b): op(B)'s rows added to colsum[0:nc].
template <int NR>
void pack_b(const GemmProblem<float>& P, const Bf16Io& io, std::size_t pc, std::size_t jc, std::size_t kc,
            std::size_t nc, std::uint32_t* Bp, float* colsum) {
  const std::size_t kp = (kc + 1) / 2;
  for (std::size_t jr = 0; jr < nc; jr += NR) {
    const int nr = static_cast<int>(std::min<std::size_t>(NR, nc - jr));
    std::uint32_t* dst = Bp + jr * kp;
    if (nr < NR) std::memset(dst, 0, sizeof(std::uint32_t) * NR * kp);
    const std::size_t off = P.trans_b ? (jc + jr) * P.ldb + pc : pc * P.ldb + jc + jr;
    if (!P.trans_b)
      io.b ? pack_n_contiguous(io.b + off, P.ldb, nr, kc, dst, NR)
           : pack_n_contiguous(P.b + off, P.ldb, nr, kc, dst, NR, colsum ? colsum + jr : nullptr);
    else
      io.b ? pack_k_contiguous(io.b + off, P.ldb, nr, kc, dst, NR) : pack_k_contiguous(P.b + off, P.ldb, nr, kc, dst, NR);
  }
}

// C[0:mr, 0:nr] (row stride ldc) <- epilogue(Ap micro-panel · Bp micro-panel), kp pairs;
// with C16 the result is rounded to bf16 into C16 instead (same stride; C only read, when beta != 0).
template <int MR, int NR>
void micro_kernel(std::size_t kp, const std::uint32_t* __restrict A, const std::uint32_t* __restrict B, float* C,
                  std::size_t ldc, int mr, int nr, const Epilogue& ep, std::uint16_t* C16) {
  constexpr int NV = NR / 16;
  __m512 acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
  for (int i = 0; i < mr; ++i) {
    if (C16) {
      __builtin_prefetch(C16 + i * ldc);
      __builtin_prefetch(C16 + i * ldc + nr - 1);
    }
    if (!C16 || ep.beta != 0.0f) {  // C is read (an earlier k pass) or written
      __builtin_prefetch(C + i * ldc);
      __builtin_prefetch(C + i * ldc + nr - 1);
    }
  }
#pragma GCC unroll 4
  for (std::size_t q = 0; q < kp; ++q) {
    __m512bh b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) b[v] = (__m512bh)_mm512_load_si512(B + v * 16);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const __m512bh a = (__m512bh)_mm512_set1_epi32(static_cast<int>(A[i]));
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], a, b[v]);
    }
    A += MR;
    B += NR;
  }
  const __m512 valpha = _mm512_set1_ps(ep.alpha), vbeta = _mm512_set1_ps(ep.beta), vzero = _mm512_setzero_ps();
  const __m512 vslope = _mm512_set1_ps(ep.act_alpha);
  const bool read_c = ep.beta != 0.0f;
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
    if (i >= mr) break;
    float* c = C + i * ldc;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const int cnt = nr - v * 16;
      if (cnt <= 0) break;
      const __mmask16 m = cnt >= 16 ? __mmask16(0xffff) : static_cast<__mmask16>((1u << cnt) - 1u);
      __m512 x = _mm512_mul_ps(acc[i][v], valpha);
      if (read_c) x = _mm512_fmadd_ps(vbeta, _mm512_maskz_loadu_ps(m, c + v * 16), x);
      if (ep.bias) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, ep.bias + v * 16));
      if (ep.relu) x = _mm512_max_ps(vzero, x);  // as the fp32 kernels: max(0, NaN) = NaN
      if (ep.leaky) x = _mm512_mask_mul_ps(x, _mm512_cmp_ps_mask(x, vzero, _CMP_LE_OQ), x, vslope);
      if (C16)
        _mm256_mask_storeu_epi16(C16 + i * ldc + v * 16, m, (__m256i)_mm512_cvtneps_pbh(x));
      else
        _mm512_mask_storeu_ps(c + v * 16, m, x);
    }
  }
}

template <class Blk>
void gemm_blocked(const GemmProblem<float>& P, const Bf16Io& io) {
  constexpr int MR = Blk::MR, NR = Blk::NR, MC = Blk::MC, KC = Blk::KC, NC = Blk::NC;
  static_assert(MC % MR == 0 && NC % NR == 0 && KC % 2 == 0, "blocking");
  const std::size_t m = P.m, n = P.n, k = P.k;
  // k in equal slices of at most KC, each even but the last (pairs never straddle)
  const std::size_t k_slices = std::max<std::size_t>(1, (k + KC - 1) / KC);
  std::size_t kc_max = std::max<std::size_t>(2, (k + k_slices - 1) / k_slices);
  kc_max += kc_max & 1;
  const std::size_t kp_max = kc_max / 2;
  const std::size_t mc_max = std::min<std::size_t>(MC, (m + MR - 1) / MR * MR);
  const std::size_t nc_max = std::min<std::size_t>(NC, (n + NR - 1) / NR * NR);
  auto* Ap = static_cast<std::uint32_t*>(gemm_thread_buffer(0, sizeof(std::uint32_t) * mc_max * kp_max));
  auto* Bp = static_cast<std::uint32_t*>(gemm_thread_buffer(1, sizeof(std::uint32_t) * kp_max * nc_max));
  const bool in_register_act = P.act == Act::relu || P.act == Act::leaky_relu;
  // bias_grad: summed while B is packed (the driver sends the other layouts elsewhere)
  float* colsum = P.bias_grad ? static_cast<float*>(gemm_thread_buffer(2, sizeof(float) * nc_max)) : nullptr;

  for (std::size_t jc = 0; jc < n; jc += NC) {
    const std::size_t nc = std::min<std::size_t>(NC, n - jc);
    if (colsum) std::memset(colsum, 0, sizeof(float) * nc_max);
    for (std::size_t pc = 0; pc == 0 || pc < k; pc += kc_max) {  // once if k == 0
      const std::size_t kc = std::min<std::size_t>(kc_max, k - pc), kp = (kc + 1) / 2;
      const bool first = pc == 0, last = pc + kc_max >= k;
      // a bf16 C straight from the registers on the last k pass (earlier passes accumulate in
      // P.c, read back here); activations applied over the block go through P.c instead
      const bool direct16 = io.c && last && (!P.has_act || in_register_act);
      pack_b<NR>(P, io, pc, jc, kc, nc, Bp, colsum);
      for (std::size_t ic = 0; ic < m; ic += MC) {
        const std::size_t mc = std::min<std::size_t>(MC, m - ic);
        pack_a<MR>(P, io, ic, pc, mc, kc, Ap);
        for (std::size_t jr = 0; jr < nc; jr += NR) {
          const int nr = static_cast<int>(std::min<std::size_t>(NR, nc - jr));
          const bool act_here = last && P.has_act && in_register_act;
          const Epilogue ep{P.alpha, first ? P.beta : 1.0f, (last && P.bias) ? P.bias + jc + jr : nullptr,
                            act_here && P.act == Act::relu, act_here && P.act == Act::leaky_relu, P.act_alpha};
          for (std::size_t ir = 0; ir < mc; ir += MR) {
            const int mr = static_cast<int>(std::min<std::size_t>(MR, mc - ir));
            const std::size_t off = (ic + ir) * P.ldc + jc + jr;
            micro_kernel<MR, NR>(kp, Ap + ir * kp, Bp + jr * kp, P.c + off, P.ldc, mr, nr, ep,
                                 direct16 ? io.c + off : nullptr);
          }
        }
        if (last && P.has_act && !in_register_act)  // the block just written is in L2
          for (std::size_t i = 0; i < mc; ++i) {
            float* c = P.c + (ic + i) * P.ldc + jc;
            eltwise_kernels.f32.forward(P.act, c, c, nc, P.act_alpha, false);  // avx512's
          }
        if (last && io.c && !direct16)  // the finished block, still hot, rounded into the bf16 result
          for (std::size_t i = 0; i < mc; ++i) to_bf16(P.c + (ic + i) * P.ldc + jc, io.c + (ic + i) * P.ldc + jc, nc);
      }
    }
    if (colsum)  // gemm_impl.h's finish_bias_grad
      for (std::size_t j = 0; j < nc; ++j)
        P.bias_grad[jc + j] = P.beta != 0.0f ? P.alpha * colsum[j] + P.beta * P.bias_grad[jc + j] : P.alpha * colsum[j];
  }
}

}  // namespace

const int kMR = Wide::MR, kNR = Wide::NR;

void gemm_bf16_single_thread(const GemmProblem<float>& P, const Bf16Io& io) {
  if (P.m == 0 || P.n == 0) return;
  if (P.n <= static_cast<std::size_t>(Narrow::NR))
    gemm_blocked<Narrow>(P, io);
  else
    gemm_blocked<Wide>(P, io);
}

void to_bf16(const float* x, std::uint16_t* y, std::size_t n) {
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32)  // words: x[i..i+16), x[i+16..i+32)
    _mm512_storeu_si512(y + i, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(x + i)));
  for (; i < n; ++i) y[i] = static_cast<std::uint16_t>(bits16(x[i]));
}

void round_array(const float* x, float* y, std::size_t n) {
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512i v = cvt_pairs(x + i);  // words: x[i..i+16), x[i+16..i+32)
    _mm512_storeu_si512(y + i, _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(v)), 16));
    _mm512_storeu_si512(y + i + 16, _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(v, 1)), 16));
  }
  for (; i < n; ++i) {
    const std::uint32_t u = bits16(x[i]) << 16;
    std::memcpy(y + i, &u, sizeof u);
  }
}

}  // namespace bf16
}  // namespace avx512
}  // namespace fastnn
