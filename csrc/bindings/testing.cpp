// fastnn._core._testing: probes for the tests (not API).
#include <pybind11/stl.h>

#include <atomic>
#include <chrono>
#include <new>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common.h"
#include "fastnn/step/step.h"
#include "fastnn/optim/denormals.h"
#include "fastnn/parallel.h"

namespace fastnn_py {
namespace {

// One pool job of n chunks in which every chunk waits (up to 10 s) until all n
// have started, so each ran on its own thread, and records its thread's MXCSR.
std::vector<unsigned> mxcsr_of_pool_threads(int n) {
  struct Probe {
    std::atomic<int> started{0};
    std::atomic<bool> timed_out{false};
    int n;
    std::vector<unsigned> out;
  } probe;
  probe.n = n;
  probe.out.assign(n, 0);
  fastnn::run_chunks(n, [](void* p, std::size_t c) {
    Probe& pr = *static_cast<Probe*>(p);
    pr.started.fetch_add(1);
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (pr.started.load() < pr.n) {
      if (std::chrono::steady_clock::now() > until) {
        pr.timed_out.store(true);
        break;
      }
      std::this_thread::yield();
    }
    pr.out[c] = fastnn::current_mxcsr() & ~0x3fu;  // control bits: the status flags are each thread's own
  }, &probe);
  if (probe.timed_out.load())
    throw std::runtime_error("mxcsr_of_threads: the pool's threads did not all start within 10 s (busy pool?)");
  return probe.out;
}

std::atomic<int> g_started{0}, g_finished{0};
int g_unfinished_at_throw = -1;

}  // namespace

void bind_testing(py::module_& m) {
  m.def("mxcsr_of_threads", [](int n, py::object mxcsr) {
    // MXCSR each of n threads of one pool job computes with (tests: workers take the
    // caller's, and nothing leaks out of a kernel call)
    if (n < 1 || n > std::min(1024, fastnn::max_threads()))
      throw py::value_error("n: expected 1..min(1024, max_threads), got " + std::to_string(n));
    long v = -1;
    if (!mxcsr.is_none()) {
      v = mxcsr.cast<long>();
      if (v < 0 || v > 0xffff || (v & 0x1f80) != 0x1f80)
        throw py::value_error("mxcsr: expected 0..0xffff with every exception masked (0x1f80), got " +
                              std::to_string(v));
    }
    py::gil_scoped_release nogil;
#if defined(FASTNN_HAS_MXCSR)
    const unsigned saved = _mm_getcsr();
    if (v >= 0) _mm_setcsr(static_cast<unsigned>(v));
    try {
      auto out = mxcsr_of_pool_threads(n);
      _mm_setcsr(saved);
      return out;
    } catch (...) {
      _mm_setcsr(saved);
      throw;
    }
#else
    return mxcsr_of_pool_threads(n);
#endif
  }, py::arg("n"), py::arg("mxcsr") = py::none(),
     "MXCSR control bits (status flags masked) in each chunk of a pool job of n chunks, each on its own "
     "thread (chunk 0 on the caller), with the caller's MXCSR set to `mxcsr` for the call when given (0 on "
     "non-x86).");

  m.def("chunk_error", [](int nchunks, int failing, const std::string& kind, int delay_ms) {
    // a job whose chunk `failing` throws at once while the others sleep delay_ms
    if (nchunks < 1 || nchunks > fastnn::max_threads() || failing < 0 || failing >= nchunks)
      throw py::value_error("chunk_error: bad nchunks/failing");
    struct Args { int failing; const std::string* kind; int delay_ms; } args{failing, &kind, delay_ms};
    g_started = 0;
    g_finished = 0;
    g_unfinished_at_throw = -1;
    py::gil_scoped_release nogil;
    try {
      fastnn::run_chunks(nchunks, [](void* p, std::size_t c) {
        const Args& a = *static_cast<Args*>(p);
        g_started.fetch_add(1);
        if (static_cast<int>(c) == a.failing) {
          if (*a.kind == "bad_alloc") throw std::bad_alloc();
          throw std::runtime_error("chunk " + std::to_string(c) + " failed");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(a.delay_ms));
        g_finished.fetch_add(1);
      }, &args);
    } catch (...) {
      g_unfinished_at_throw = g_started.load() - 1 - g_finished.load();  // started chunks still running
      throw;
    }
  }, py::arg("nchunks"), py::arg("failing"), py::arg("kind") = "bad_alloc", py::arg("delay_ms") = 50);
  m.def("chunk_error_stats", []() {
    return py::make_tuple(g_started.load(), g_finished.load(), g_unfinished_at_throw);
  }, "(chunks started, chunks finished, chunks still running when the error reached the caller)");

  m.def("nested_parallel_for", [](std::size_t outer, std::size_t inner) {
    // parallel_for inside parallel_for (grain 1): out[i * inner + j] counts the writes of (i, j)
    std::vector<int> out(outer * inner, 0);
    {
      py::gil_scoped_release nogil;
      fastnn::parallel_for(outer, 1, [&](std::size_t b, std::size_t e) {
        for (std::size_t i = b; i < e; ++i)
          fastnn::parallel_for(inner, 1, [&](std::size_t b2, std::size_t e2) {
            for (std::size_t j = b2; j < e2; ++j) out[i * inner + j] += 1;
          }, 1);
      }, 1);
    }
    return out;
  }, py::arg("outer"), py::arg("inner"));

  m.def("set_step_profiling", &fastnn::set_step_profiling, py::arg("on"),
        "Native step profile: on resets the sums and starts timing the step's parts; off stops.");
  m.def("step_profile", []() {
    const fastnn::StepProfile p = fastnn::step_profile();
    py::dict d;
    d["dense_forward"] = p.dense_forward;
    d["dense_backward"] = p.dense_backward;
    d["other_layers"] = p.other_layers;
    d["loss"] = p.loss;
    d["optimizer"] = p.optimizer;
    d["steps"] = p.steps;
    return d;
  }, "Seconds in each part of the native step, summed over the steps since profiling started.");
  m.def("pool_spin_ns", &fastnn::pool_spin_ns, "How long an idle pool worker spins before it sleeps (ns).");
  m.def("set_pool_spin_ns", &fastnn::set_pool_spin_ns, py::arg("ns"));
}

}  // namespace fastnn_py
