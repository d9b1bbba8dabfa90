// A GemmProblem as the ops layer fills it for row-major operands (row strides lda,
// ldb, ldc), alpha 1, beta 0, no epilogue: the products of the native step
// (step/step.cpp) and of a mixed Dense layer (gemm/bf16/dense_bf16.cpp).
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

}  // namespace fastnn
