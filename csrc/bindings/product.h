// A product out = act(alpha * op(a) @ op(b) + beta * out + bias) as the GEMM drivers
// take it, shared by the float32/float64 GEMM (gemm.cpp) and the bf16 GEMM (gemm_bf16.cpp).
#pragma once
#include "fastnn/gemm/gemm.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "common.h"

namespace fastnn_py {

// The sizes of op(a) (m, k) @ op(b) (k, n), op(x) = x.T when trans_x.
struct ProductShape {
  py::ssize_t m, k, n;
};
// a and b 2-D with equal inner dimensions, out exactly (m, n).
inline ProductShape product_shape(const py::array& a, const py::array& b, const py::array& out, bool trans_a,
                                  bool trans_b) {
  if (a.ndim() != 2) throw py::value_error("a: expected 2 dimensions, got " + std::to_string(a.ndim()));
  if (b.ndim() != 2) throw py::value_error("b: expected 2 dimensions, got " + std::to_string(b.ndim()));
  const py::ssize_t m = trans_a ? a.shape(1) : a.shape(0), k = trans_a ? a.shape(0) : a.shape(1);
  const py::ssize_t kb = trans_b ? b.shape(1) : b.shape(0), n = trans_b ? b.shape(0) : b.shape(1);
  if (k != kb)
    throw py::value_error("a, b: inner dimensions differ: op(a) is " + std::to_string(m) + " x " + std::to_string(k) +
                          " (a " + shape_str(a) + "), op(b) is " + std::to_string(kb) + " x " + std::to_string(n) +
                          " (b " + shape_str(b) + ")");
  if (out.ndim() != 2 || out.shape(0) != m || out.shape(1) != n)
    throw py::value_error("out: expected shape (" + std::to_string(m) + ", " + std::to_string(n) + "), got " +
                          shape_str(out));
  return {m, k, n};
}

// The problem of checked operands; the optional parts (bias, saved values) are the caller's.
// alpha and beta must be finite (ops' fast paths leave that check to here).
template <class T>
fastnn::GemmProblem<T> product_problem(const py::array& a, const py::array& b, py::array& out, const ProductShape& s,
                                       bool trans_a, bool trans_b, double alpha, double beta) {
  if (!std::isfinite(alpha)) throw py::value_error("alpha: expected a finite number, got " + std::to_string(alpha));
  if (!std::isfinite(beta)) throw py::value_error("beta: expected a finite number, got " + std::to_string(beta));
  fastnn::GemmProblem<T> P;
  P.trans_a = trans_a;
  P.trans_b = trans_b;
  P.m = s.m;
  P.k = s.k;
  P.n = s.n;
  P.a = cptr<T>(a);
  P.lda = a.shape(1);
  P.b = cptr<T>(b);
  P.ldb = b.shape(1);
  P.alpha = static_cast<T>(alpha);
  P.beta = static_cast<T>(beta);
  P.c = mptr<T>(out);
  P.ldc = s.n;
  return P;
}

// The epilogue's activation by name (None: none).
template <class T> void set_activation(fastnn::GemmProblem<T>& P, const py::object& activation, double act_alpha) {
  if (activation.is_none()) return;
  P.act = fastnn::parse_activation(activation.cast<std::string>());
  fastnn::check_activation_alpha(P.act, act_alpha, "activation_alpha");
  P.has_act = P.act != fastnn::Act::identity;
  P.act_alpha = static_cast<T>(act_alpha);
}

// Runs kernel(P) with the GIL released. The kernel writes C while it still reads A, B,
// bias and the saved values: when out overlaps one of them (alias), it computes into a
// temporary holding out's old value, copied to out after.
template <class T, class K> void run_product(fastnn::GemmProblem<T> P, bool alias, K kernel) {
  py::gil_scoped_release nogil;
  if (!alias) {
    kernel(P);
    return;
  }
  std::vector<T> tmp(P.c, P.c + P.m * P.n);
  T* dst = P.c;
  P.c = tmp.data();
  kernel(P);
  std::copy(tmp.begin(), tmp.end(), dst);
}

}  // namespace fastnn_py
