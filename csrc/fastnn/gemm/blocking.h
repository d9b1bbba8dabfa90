// GEMM blocking parameters, all ISAs and dtypes in one place (BLIS naming).
//
//   MR x NR  micro-tile of C kept in registers (NR a multiple of the vector width)
//   KC       depth of one packed panel: a KC x NR micro-panel of B stays in L1
//   MC       rows of the packed A block (MC x KC) kept in L2; a multiple of MR
//   NC       columns of the packed B panel (KC x NC) kept in L3; a multiple of NR
//
// GemmBlockingNarrow is used when n <= its NR (e.g. the 10-class output layer):
// one vector per row and more rows, so no FMA is spent on padding columns.
// kDirectAMaxN: up to this many columns of C, A is read in place by the
// micro-kernel instead of being packed. Measured on the AMD guest below, single
// thread, on every MLP training product and square 512-2048: avx512 in place
// was 0-16% faster for wide C and up to 2x for thin C (n = 10); avx2 within
// -5%..+4% for wide C (median 1%) and 1.4-1.8x faster for n = 10. So it is
// always on; B is always packed (its micro-panel is the one kept in L1). A
// transposed A (dW = Xᵀ·dY) follows GemmCacheBlocking::pack_trans_a instead
// (blocking.cpp: in place with this table, packed where the blocking is derived).
// kNarrow*: products with at most kNarrowMaxN columns of C (and at most
// kNarrowMaxVecs vectors per row) take the narrow path (narrow_impl.h): no
// packing, no k slicing; the row kernel keeps kNarrowRowsMR<NV> rows of NV
// vectors in flight, the transposed one (op(A) = Aᵀ) kNarrowTransJB rows of Cᵀ
// by kNarrowTransIV vectors, and only where the blocked loops would fill at
// most kNarrowTransMaxFill percent of C's vectors (measured, 1 thread,
// bench-style interleaved p10 against the blocked loops).
// kSwapMaxM: products with at most this many rows of C (small batches) run as
// their transpose, so that the weights are read in place (gemm_impl.h
// gemm_swapped; 0: never, e.g. the scalar path, which packs A anyway).
//
// Only constants here (no code), so baseline code may include it. MR and NR
// are the micro-tiles of every CPU; MC, KC and NC are the measured table that
// blocking.cpp uses on AMD Zen 4/5 class CPUs (it derives them from the cache
// sizes elsewhere). Numbers for avx2 follow BLIS's Haswell/Zen configuration;
// avx512 ones were measured with bench/compare_gemm.py on an AMD EPYC KVM guest
// whose CPUID reports family 19h model 11h, 32 KiB L1d, 1 MiB L2, 32 MiB L3
// (the project's notes call it Zen 5; CPUID says Zen 4 Genoa).
#pragma once

namespace fastnn {

namespace scalar {
template <class T> struct GemmBlocking {
  static constexpr int MR = 4, NR = 4, MC = 64, KC = 256, NC = 1024;
};
template <class T> using GemmBlockingNarrow = GemmBlocking<T>;
constexpr int kDirectAMaxN = 0;
constexpr int kSwapMaxM = 0;
constexpr int kNarrowMaxN = 0;  // one lane: the narrow path has nothing to win (the tuning knob can force it)
constexpr int kNarrowMaxVecs = 2;
template <int NV> constexpr int kNarrowRowsMR = 4;
constexpr int kNarrowTransIV = 1, kNarrowTransJB = 4;
constexpr int kNarrowTransMaxFill = 0;
}  // namespace scalar

namespace avx2 {
template <class T> struct GemmBlocking;
template <> struct GemmBlocking<float> {   // 6 x 16: 12 ymm accumulators
  static constexpr int MR = 6, NR = 16, MC = 168, KC = 256, NC = 4080;
};
template <> struct GemmBlocking<double> {  // 6 x 8: 12 ymm accumulators
  static constexpr int MR = 6, NR = 8, MC = 72, KC = 256, NC = 4080;
};
template <class T> struct GemmBlockingNarrow;
template <> struct GemmBlockingNarrow<float> {   // 12 x 8: 12 ymm accumulators
  static constexpr int MR = 12, NR = 8, MC = 168, KC = 256, NC = 4080;
};
template <> struct GemmBlockingNarrow<double> {  // 12 x 4
  static constexpr int MR = 12, NR = 4, MC = 72, KC = 256, NC = 4080;
};
constexpr int kDirectAMaxN = 1 << 30;
constexpr int kSwapMaxM = 64;
constexpr int kNarrowMaxN = 16;
constexpr int kNarrowMaxVecs = 2;
template <int NV> constexpr int kNarrowRowsMR = NV == 1 ? 12 : 6;  // 12 accumulators of 16 ymm
constexpr int kNarrowTransIV = 2, kNarrowTransJB = 5;             // 10 accumulators, 2 rows of A
constexpr int kNarrowTransMaxFill = 70;  // n = 10 of 16: 1.4x the blocked loops; 12 of 16: 0.94x
}  // namespace avx2

namespace avx512 {
template <class T> struct GemmBlocking;
template <> struct GemmBlocking<float> {   // 8 x 32: 16 zmm accumulators; batch sizes 64..256 tile exactly
  static constexpr int MR = 8, NR = 32, MC = 128, KC = 512, NC = 4096;
};
template <> struct GemmBlocking<double> {  // 8 x 16: 16 zmm accumulators
  static constexpr int MR = 8, NR = 16, MC = 128, KC = 384, NC = 2048;
};
template <class T> struct GemmBlockingNarrow;
template <> struct GemmBlockingNarrow<float> {   // 16 x 16: 16 zmm accumulators
  static constexpr int MR = 16, NR = 16, MC = 256, KC = 256, NC = 4096;
};
template <> struct GemmBlockingNarrow<double> {  // 12 x 8
  static constexpr int MR = 12, NR = 8, MC = 120, KC = 256, NC = 2048;
};
constexpr int kDirectAMaxN = 1 << 30;
constexpr int kSwapMaxM = 64;
constexpr int kNarrowMaxN = 16;
constexpr int kNarrowMaxVecs = 2;
template <int NV> constexpr int kNarrowRowsMR = NV == 1 ? 16 : 12;  // 16 / 24 accumulators of 32 zmm
constexpr int kNarrowTransIV = 4, kNarrowTransJB = 6;               // 24 accumulators, 4 rows of A
constexpr int kNarrowTransMaxFill = 80;  // n = 12 of 16: 1.17x the blocked loops; 15 of 16: 1.0x, 16: 0.9x
}  // namespace avx512

}  // namespace fastnn
