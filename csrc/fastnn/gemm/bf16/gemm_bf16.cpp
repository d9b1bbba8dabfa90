// bf16 GEMM driver (baseline ISA): the choice of implementation, the split of
// C between threads, and the fallback through the float32 GEMM.
//
// Threads (avx512_bf16): as gemm.cpp, each thread gets a contiguous band of
// whole micro-tiles of C and runs the five loops on it with its own packed
// buffers. Both operands are packed (and rounded) by every thread that reads
// them, so the band runs along the smaller operand's other side: columns when
// m <= n (each thread rounds all of A, its share of B), rows otherwise. Every
// element of C is computed by the same sequence of operations whatever the
// thread count (k is sliced from k alone), so results are bitwise reproducible.
#include "fastnn/gemm/bf16/gemm_bf16.h"

#include <algorithm>
#include <new>
#include <stdexcept>
#include <vector>

#include "fastnn/cpu.h"
#include "fastnn/parallel.h"
#include "fastnn/reduce/reduce.h"

namespace fastnn {
namespace {

// Minimum multiply-adds per thread before a second one pays off (as gemm.cpp's
// measured float32 grain: the bf16 kernel is faster, so this errs toward one thread).
constexpr std::size_t kGrainMacs = std::size_t(3) << 17;
constexpr std::size_t kRoundGrain = std::size_t(1) << 16;  // elements per thread for rounding

bool g_force_fallback = false;

bool use_bf16_kernel() {
  return !g_force_fallback && active_isa() == Isa::avx512 && bf16_kernel_available();
}

#if defined(FASTNN_HAVE_AVX512BF16)
void gemm_avx512bf16(const GemmProblem<float>& P, const Bf16Io& io) {
  const std::size_t mr = avx512::bf16::kMR, nr = avx512::bf16::kNR;
  const std::size_t tiles_m = (P.m + mr - 1) / mr, tiles_n = (P.n + nr - 1) / nr;
  const bool split_n = P.m <= P.n ? tiles_n >= 2 : tiles_m < 2;
  const std::size_t tiles = split_n ? tiles_n : tiles_m;
  const std::size_t macs = P.m * P.n * std::max<std::size_t>(P.k, 1);
  const int nt = static_cast<int>(std::min<std::size_t>(threads_for(macs, kGrainMacs), tiles));
  if (nt <= 1) {
    avx512::bf16::gemm_bf16_single_thread(P, io);
    return;
  }
  parallel_bands(nt, tiles, [&](std::size_t t, std::size_t tb, std::size_t te) {
    GemmProblem<float> S = P;
    Bf16Io Sio = io;
    if (split_n) {
      const std::size_t j0 = tb * nr, j1 = std::min(P.n, te * nr);
      const std::size_t ob = P.trans_b ? j0 * P.ldb : j0;
      S.n = j1 > j0 ? j1 - j0 : 0;
      S.b = P.b ? P.b + ob : nullptr;
      Sio.b = io.b ? io.b + ob : nullptr;
      S.c = P.c + j0;
      Sio.c = io.c ? io.c + j0 : nullptr;
      S.bias = P.bias ? P.bias + j0 : nullptr;
      S.bias_grad = P.bias_grad ? P.bias_grad + j0 : nullptr;
    } else {
      const std::size_t i0 = tb * mr, i1 = std::min(P.m, te * mr);
      const std::size_t oa = P.trans_a ? i0 : i0 * P.lda;
      S.m = i1 > i0 ? i1 - i0 : 0;
      S.a = P.a ? P.a + oa : nullptr;
      Sio.a = io.a ? io.a + oa : nullptr;
      S.c = P.c + i0 * P.ldc;
      Sio.c = io.c ? io.c + i0 * P.ldc : nullptr;
      if (t != 0) S.bias_grad = nullptr;  // every row band sums all of op(B)'s columns: one writes them
    }
    if (S.m && S.n) avx512::bf16::gemm_bf16_single_thread(S, Sio);
  });
}
#endif

// Elements spanned by a stored matrix of `rows` rows of `cols` values, row stride ld.
std::size_t span(std::size_t rows, std::size_t cols, std::size_t ld) { return rows ? (rows - 1) * ld + cols : 0; }

// P.bias_grad = alpha * column sums of op(B) + beta * P.bias_grad, rows added in
// order (the order of the fused sum and of column_sum), B float32 or bits io.b.
void bias_grad_rows(const GemmProblem<float>& P, const Bf16Io& io) {
  float* s = P.bias_grad;
  if (!P.trans_b && !io.b && P.ldb == P.n && P.alpha == 1.0f && P.beta == 0.0f) {
    column_sum<float>(P.b, s, P.k, P.n);  // the same sums (rows in order from zero), vectorized and threaded
    return;
  }
  thread_local std::vector<float> sum;  // reused: no allocation once grown
  if (sum.size() < P.n) sum.resize(P.n);
  std::fill(sum.begin(), sum.begin() + P.n, 0.0f);
  for (std::size_t p = 0; p < P.k; ++p)
    for (std::size_t j = 0; j < P.n; ++j) {
      const std::size_t at = P.trans_b ? j * P.ldb + p : p * P.ldb + j;
      sum[j] += io.b ? bf16_to_float(io.b[at]) : P.b[at];
    }
  for (std::size_t j = 0; j < P.n; ++j) s[j] = P.beta != 0.0f ? P.alpha * sum[j] + P.beta * s[j] : P.alpha * sum[j];
}

// Rounded copies of A and B (kept per calling thread, so steady-state calls
// do not allocate; bf16 operands are widened, exactly), then the active ISA's
// float32 GEMM; a bf16 C is computed into P.c (the staging) and rounded after.
void gemm_fallback(const GemmProblem<float>& P, const Bf16Io& io) {
  thread_local std::vector<float> ra, rb;
  const std::size_t na = P.trans_a ? span(P.k, P.m, P.lda) : span(P.m, P.k, P.lda);
  const std::size_t nb = P.trans_b ? span(P.n, P.k, P.ldb) : span(P.k, P.n, P.ldb);
  if (ra.size() < na) ra.resize(na);
  if (rb.size() < nb) rb.resize(nb);
  if (io.a) from_bf16_array(io.a, ra.data(), na); else round_bf16_array(P.a, ra.data(), na);
  if (io.b) from_bf16_array(io.b, rb.data(), nb); else round_bf16_array(P.b, rb.data(), nb);
  GemmProblem<float> Q = P;
  Q.a = ra.data();
  Q.b = rb.data();
  gemm<float>(Q);
  if (io.c) {
    if (P.ldc == P.n) to_bf16_array(P.c, io.c, P.m * P.n);
    else for (std::size_t i = 0; i < P.m; ++i) to_bf16_array(P.c + i * P.ldc, io.c + i * P.ldc, P.n);
  }
}

}  // namespace

bool bf16_kernel_available() {
#if defined(FASTNN_HAVE_AVX512BF16)
  return isa_supported(Isa::avx512) && cpu_features().avx512_bf16;
#else
  return false;
#endif
}

void select_bf16_kernel(const std::string& name) {
  if (name == "auto" || name.empty()) {
    g_force_fallback = false;
  } else if (name == "fallback") {
    g_force_fallback = true;
  } else if (name == "avx512_bf16") {
    if (!bf16_kernel_available())
      throw std::runtime_error("bf16 kernel 'avx512_bf16': this CPU (or OS, or build) lacks AVX512-BF16; "
                               "use 'auto' or 'fallback'");
    g_force_fallback = false;
  } else {
    throw std::invalid_argument("bf16 kernel: expected 'auto', 'avx512_bf16' or 'fallback', got '" + name + "'");
  }
}

const char* bf16_kernel_name() { return use_bf16_kernel() ? "avx512_bf16" : "fallback"; }

namespace {
// y[b:e] = f(x[b:e]) over threads: the avx512_bf16 vector code `vec`, or `one` per element.
template <class In, class Out, class Vec, class One>
void convert_array(const In* x, Out* y, std::size_t n, Vec vec, One one) {
  const bool use_vec = use_bf16_kernel();
  parallel_for(n, kRoundGrain, [&](std::size_t b, std::size_t e) {
    if (use_vec) {
      vec(x + b, y + b, e - b);
      return;
    }
    for (std::size_t i = b; i < e; ++i) y[i] = one(x[i]);
  });
}
}  // namespace

#if defined(FASTNN_HAVE_AVX512BF16)
#define FASTNN_BF16_VEC(f) avx512::bf16::f
#else
#define FASTNN_BF16_VEC(f) [](auto, auto, std::size_t) {}  // never called: use_bf16_kernel() is false
#endif

void round_bf16_array(const float* x, float* y, std::size_t n) {
  convert_array(x, y, n, FASTNN_BF16_VEC(round_array), round_bf16);
}

void to_bf16_array(const float* x, std::uint16_t* y, std::size_t n) {
  convert_array(x, y, n, FASTNN_BF16_VEC(to_bf16), bf16_bits);
}

void from_bf16_array(const std::uint16_t* x, float* y, std::size_t n) {
  parallel_for(n, kRoundGrain, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) y[i] = bf16_to_float(x[i]);  // the compiler vectorizes this
  });
}

void gemm_bf16(const GemmProblem<float>& P) { gemm_bf16(P, Bf16Io{}); }

void gemm_bf16(const GemmProblem<float>& P0, const Bf16Io& io) {
  if (P0.n == 0) return;
  if (P0.m == 0) {  // no product, but op(B) may still have column sums to give
    if (P0.bias_grad) bias_grad_rows(P0, io);
    return;
  }
  GemmProblem<float> P = P0;
  if (io.c) {  // float32 staging of C, per calling thread (reused: no allocation once grown)
    if (P.beta != 0.0f) throw std::invalid_argument("gemm_bf16: a bfloat16 C needs beta == 0");
    thread_local std::vector<float> stage;
    const std::size_t nc = span(P.m, P.n, P.ldc);
    if (stage.size() < nc) stage.resize(nc);
    P.c = stage.data();
  }
  const bool kernel = use_bf16_kernel();
  if (P.bias_grad && (!kernel || P.trans_b || io.b)) {  // the kernel sums only float32 rows of B as it packs them
    bias_grad_rows(P, io);
    P.bias_grad = nullptr;
  }
#if defined(FASTNN_HAVE_AVX512BF16)
  if (kernel) {
    gemm_avx512bf16(P, io);
    return;
  }
#endif
  gemm_fallback(P, io);
}

}  // namespace fastnn
