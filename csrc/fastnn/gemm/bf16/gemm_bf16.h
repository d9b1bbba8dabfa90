// bfloat16 GEMM: the same product and fused epilogue as gemm<float>
// (gemm.h), with both operands rounded to bfloat16 and the products
// accumulated in float32:
//
//   C = act(alpha * bf16(op(A)) · bf16(op(B)) + beta * C + bias)
//
// A, B, C and bias are float32 arrays; only the operands are rounded, each
// once, while they are packed (C, bias and the epilogue stay float32).
//
// Rounding (round_bf16): round to nearest even on the upper 16 bits of the
// float32; NaN stays NaN (quiet, sign kept); +-inf stay; a finite value that
// rounds past the largest bfloat16 becomes +-inf; float32 subnormals become
// signed zeros. That is exactly what vcvtne2ps2bf16 does, so the scalar and
// the vector rounding give the same bits.
//
// Two implementations, chosen at run time:
//   avx512_bf16  packing converts fp32 -> bf16 with vcvtne2ps2bf16 (pairs of k
//                interleaved), the micro-kernel multiplies with vdpbf16ps
//                (float32 accumulators). Used when the CPU and OS have
//                AVX512-BF16, the active ISA is avx512 and select_bf16_kernel
//                did not ask for the fallback.
//   fallback     rounds copies of both operands to bf16 (the same bits), then
//                runs the active ISA's float32 GEMM. Correct, not fast: on a
//                CPU without bf16 instructions mixed precision still computes
//                what it would with them (to float32 accumulation order).
// Both are multithreaded and bitwise reproducible for a fixed thread count; the
// two differ from each other by the float32 accumulation order only.
//
// bfloat16 storage (Bf16Io): A and/or B may be given as bfloat16 bit patterns
// (uint16, same strides as P's float pointers): packing then copies the bits,
// so the result is bitwise the one of float32 operands holding the same
// values. C may be written as bfloat16 too: the float32 result (after alpha,
// bias and the activation) is rounded to nearest even (bf16_bits) into io.c,
// row stride P.ldc; that needs beta == 0 (C is never read).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "fastnn/gemm/gemm.h"

namespace fastnn {

void gemm_bf16(const GemmProblem<float>& p);

// Operands and result stored as bfloat16 bit patterns; a null pointer keeps
// P's float32 array for that operand (P.a / P.b / P.c are then ignored).
struct Bf16Io {
  const std::uint16_t* a = nullptr;
  const std::uint16_t* b = nullptr;
  std::uint16_t* c = nullptr;  // needs P.beta == 0
};
void gemm_bf16(const GemmProblem<float>& p, const Bf16Io& io);

// y[i] = bf16_bits(x[i]), and back (exact), multithreaded, vector code where
// the avx512_bf16 kernel is in use.
void to_bf16_array(const float* x, std::uint16_t* y, std::size_t n);
void from_bf16_array(const std::uint16_t* x, float* y, std::size_t n);

// float32 -> bfloat16 bits (see the header comment).
inline std::uint16_t bf16_bits(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7f800000u) == 0) return static_cast<std::uint16_t>((u >> 16) & 0x8000u);  // zero, subnormal
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40u);  // NaN
  u += 0x7fffu + ((u >> 16) & 1u);  // inf: the mantissa is 0, so it stays inf
  return static_cast<std::uint16_t>(u >> 16);
}
inline float bf16_to_float(std::uint16_t h) {
  const std::uint32_t u = static_cast<std::uint32_t>(h) << 16;
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}
inline float round_bf16(float x) { return bf16_to_float(bf16_bits(x)); }

// y[i] = round_bf16(x[i]) (y may equal x), multithreaded, vector code when the
// avx512_bf16 kernel is in use.
void round_bf16_array(const float* x, float* y, std::size_t n);

// "auto" (default: avx512_bf16 when available) or "fallback"; "avx512_bf16"
// asks for the bf16 instructions and throws std::runtime_error where the CPU
// lacks them. Throws std::invalid_argument for another name.
void select_bf16_kernel(const std::string& name);
// The implementation a call would use now: "avx512_bf16" or "fallback".
const char* bf16_kernel_name();
bool bf16_kernel_available();  // AVX512-BF16 in the CPU, the OS and this build

namespace avx512 {
namespace bf16 {  // gemm_bf16_avx512.cpp, built with -mavx512bf16 too
// One thread's whole product (the five loops), and the micro-tile used to
// split C between threads.
// io.c: C is computed into P.c (float32 staging, beta 0) and each finished
// block is rounded into io.c while it is hot.
void gemm_bf16_single_thread(const GemmProblem<float>& p, const Bf16Io& io);
extern const int kMR, kNR;
void round_array(const float* x, float* y, std::size_t n);
void to_bf16(const float* x, std::uint16_t* y, std::size_t n);
}  // namespace bf16
}  // namespace avx512

}  // namespace fastnn
