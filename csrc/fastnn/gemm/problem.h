// A GemmProblem as the ops layer fills it for row-major operands (row strides lda,
// ldb, ldc), alpha 1, beta 0, no epilogue: the products of the native step
// (step/step.cpp) and of a mixed Dense layer (gemm/bf16/dense_bf16.cpp); and a
// Dense layer's forward y = act(x @ W + b) (ops.matmul(x, W, bias=b, out=y,
// activation=act) as the binding sets it up).
#pragma once
#include <cstddef>

#include "fastnn/gemm/gemm.h"

namespace fastnn {

template <class T>
GemmProblem<T> gemm_problem(bool trans_a, bool trans_b, std::size_t m, std::size_t k, std::size_t n, const T* a,
                            std::size_t lda, const T* b, std::size_t ldb, T* c, std::size_t ldc) {
  GemmProblem<T> P;
  P.trans_a = trans_a;
  P.trans_b = trans_b;
  P.m = m;
  P.k = k;
  P.n = n;
  P.a = a;
  P.lda = lda;
  P.b = b;
  P.ldb = ldb;
  P.c = c;
  P.ldc = ldc;
  return P;
}

template <class T>
GemmProblem<T> dense_forward_problem(std::size_t m, std::size_t in, std::size_t out, const T* x, const T* W,
                                     const T* b, T* y, Act act, T alpha) {
  GemmProblem<T> P = gemm_problem<T>(false, false, m, in, out, x, in, W, out, y, out);
  P.bias = b;
  if (act != Act::identity) {
    P.act = act;
    P.has_act = true;
    P.act_alpha = alpha;
  }
  return P;
}

}  // namespace fastnn
