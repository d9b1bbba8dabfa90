// A mixed_bfloat16 Dense layer's kernels, called by the Python step
// (layers/_mixed.py through _core.dense_bf16_backward) and by the native step
// (fastnn/step), so that both compute the same bits:
//
//   forward   y = act(bf16(x) · bf16(W) + b)            one gemm_bf16 call
//   backward  dz = dy * act'(y)                          in place in dy
//             dW = bf16(x)ᵀ · bf16(dz), db = Σ_rows dz   one gemm_bf16 call (db
//                                                        float32, rows in order)
//             dx = bf16(dz) · bf16(W)ᵀ                   one gemm_bf16 call
//
// x may be float32 or bfloat16 bits (the output of a layer below stored in
// bfloat16), y likewise (then act' reads the bits widened, exactly, chunk by
// chunk: the same values as widening the whole y first). W, b, dW, db, dx and
// dy are float32. Only activations fused in the GEMM epilogue (no saved input).
#pragma once
#include <cstddef>
#include <cstdint>

#include "fastnn/eltwise/eltwise.h"

namespace fastnn {

struct DenseBf16 {
  std::size_t m = 0, in = 0, out = 0;  // batch, input width, units
  const float* x = nullptr;            // m x in, or x16 (bits)
  const std::uint16_t* x16 = nullptr;
  const float* W = nullptr;            // in x out
  const float* b = nullptr;            // out, or null (no bias)
  float* y = nullptr;                  // m x out, or y16 (bits)
  std::uint16_t* y16 = nullptr;
  Act act = Act::identity;
  float alpha = 0.0f;                  // the activation's alpha
  float* dW = nullptr;                 // null: no parameter gradients
  float* db = nullptr;                 // null: none (no bias, or not trainable)
  float* dx = nullptr;                 // null: no input gradient
};

void dense_bf16_forward(const DenseBf16& L);
// dy (m x out) becomes dz in place; then dW (+ db) and dx as set.
void dense_bf16_backward(const DenseBf16& L, float* dy);

// dy[i] *= act'(y[i]) for y given as bfloat16 bits (exactly widened), in place;
// the float32 activation kernel on chunks of the widened y.
void activation_backward_bf16y(Act act, float* dy, const std::uint16_t* y16, std::size_t n, float alpha);

}  // namespace fastnn
