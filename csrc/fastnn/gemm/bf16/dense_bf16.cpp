// A mixed Dense layer's kernels (dense_bf16.h).
#include "fastnn/gemm/bf16/dense_bf16.h"

#include <algorithm>

#include "fastnn/gemm/bf16/gemm_bf16.h"
#include "fastnn/gemm/problem.h"
#include "fastnn/parallel.h"

namespace fastnn {

namespace {

constexpr std::size_t kChunk = 2048;                        // widened values per step (8 KiB on the stack)
// values per thread: eltwise.cpp's measured grains (the relu family is cheap, the others
// transcendental), so a mixed layer's act' splits like a float32 layer's
std::size_t act_grain(Act act) {
  return act == Act::identity || act == Act::relu || act == Act::leaky_relu ? std::size_t(1) << 16
                                                                              : std::size_t(1) << 14;
}

}  // namespace

void activation_backward_bf16y(Act act, float* dy, const std::uint16_t* y16, std::size_t n, float alpha) {
  const auto fn = FASTNN_KERNELS(float, eltwise_kernels).backward;  // activation_backward's kernel
  parallel_for(n, act_grain(act), [&](std::size_t b, std::size_t e) {
    alignas(64) float y[kChunk];
    for (std::size_t i = b; i < e; i += kChunk) {
      const std::size_t len = std::min(kChunk, e - i);
      for (std::size_t j = 0; j < len; ++j) y[j] = bf16_to_float(y16[i + j]);
      fn(act, dy + i, nullptr, y, dy + i, len, alpha, false);
    }
  });
}

// ops.matmul_bf16(x, W, bias=b, out=y, activation=act) as the binding sets it up.
void dense_bf16_forward(const DenseBf16& L) {
  GemmProblem<float> P = dense_forward_problem<float>(L.m, L.in, L.out, L.x, L.W, L.b, L.y, L.act, L.alpha);
  Bf16Io io;
  io.a = L.x16;
  io.c = L.y16;
  if (io.a) P.a = nullptr;
  if (io.c) P.c = nullptr;
  gemm_bf16(P, io);
}

void dense_bf16_backward(const DenseBf16& L, float* dy) {
  const std::size_t m = L.m;
  if (L.act != Act::identity) {
    if (L.y16) activation_backward_bf16y(L.act, dy, L.y16, m * L.out, L.alpha);
    else activation_backward<float>(L.act, dy, nullptr, L.y, dy, m * L.out, L.alpha);
  }
  if (L.dW) {  // dW = x^T dz, db = column sums of dz (while dz is packed)
    GemmProblem<float> P = gemm_problem<float>(true, false, L.in, m, L.out, L.x, L.in, dy, L.out, L.dW, L.out);
    P.bias_grad = L.db;
    Bf16Io io;
    io.a = L.x16;
    if (io.a) P.a = nullptr;
    gemm_bf16(P, io);
  }
  if (L.dx) gemm_bf16(gemm_problem<float>(false, true, m, L.out, L.in, dy, L.out, L.W, L.out, L.dx, L.in));
}

}  // namespace fastnn
