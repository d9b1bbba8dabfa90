// fastnn._core: the compiled core. Each kernel family binds itself in its own
// file (bind_<family>); this file adds dispatch, threads and cpu_info.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>

#include "fastnn_build_info.h"
#include "fastnn/cpu.h"
#include "fastnn/parallel.h"

namespace py = pybind11;

namespace fastnn_py {
void bind_constrain(py::module_& m);
void bind_eltwise(py::module_& m);
void bind_gemm(py::module_& m);
void bind_gemm_bf16(py::module_& m);
void bind_gather(py::module_& m);
void bind_norm(py::module_& m);
void bind_layernorm(py::module_& m);
void bind_loss(py::module_& m);
void bind_optim(py::module_& m);
void bind_random(py::module_& m);
void bind_reduce(py::module_& m);
void bind_step(py::module_& m);
void bind_testing(py::module_& m);
}  // namespace fastnn_py

#ifndef FASTNN_COMPILER
#define FASTNN_COMPILER "unknown"
#endif
#ifndef FASTNN_BUILD_FLAGS
#define FASTNN_BUILD_FLAGS "unknown"
#endif

PYBIND11_MODULE(_core, m) {
  m.doc() = "fastnn compiled core (C++17, SIMD, its own thread pool)";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const std::invalid_argument& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const std::out_of_range& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });

  m.def("select_isa", [](const std::string& name) { fastnn::select_isa(name); }, py::arg("name"),
        "Choose the ISA path: 'auto', 'scalar', 'avx2' or 'avx512'.");
  m.def("active_isa", []() { return std::string(fastnn::isa_name(fastnn::active_isa())); });
  m.def("isa_supported", [](const std::string& name) {
    if (name == "scalar") return fastnn::isa_supported(fastnn::Isa::scalar);
    if (name == "avx2") return fastnn::isa_supported(fastnn::Isa::avx2);
    if (name == "avx512") return fastnn::isa_supported(fastnn::Isa::avx512);
    throw std::invalid_argument("isa: expected 'scalar', 'avx2' or 'avx512', got '" + name + "'");
  });
  m.def("set_num_threads", [](py::int_ n) {
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(n.ptr(), &overflow);
    const int hi = fastnn::max_threads();
    if (overflow || v < 1 || v > hi)
      throw std::invalid_argument("n: expected an integer in [1, " + std::to_string(hi) + "], got " +
                                  py::str(n).cast<std::string>() +
                                  (hi == fastnn::kMaxThreads ? "" : " (OMP_THREAD_LIMIT)"));
    fastnn::set_num_threads(static_cast<int>(v));
  }, py::arg("n"), "Threads of fastnn's kernels: 1..max_threads (4096, or OMP_THREAD_LIMIT when lower).");
  m.attr("max_threads") = fastnn::max_threads();
  m.def("get_num_threads", &fastnn::get_num_threads);
  m.def("cpu_features", []() {
    const fastnn::CpuFeatures& f = fastnn::cpu_features();
    py::dict d;
    d["vendor"] = f.vendor;
    d["brand"] = f.brand;
    d["sse2"] = f.sse2; d["avx"] = f.avx; d["avx2"] = f.avx2; d["fma"] = f.fma;
    d["avx512f"] = f.avx512f; d["avx512dq"] = f.avx512dq; d["avx512bw"] = f.avx512bw; d["avx512vl"] = f.avx512vl;
    d["os_avx"] = f.os_avx; d["os_avx512"] = f.os_avx512;
    d["avx512_bf16"] = f.avx512_bf16; d["amx_bf16"] = f.amx_bf16; d["amx_tile"] = f.amx_tile; d["os_amx"] = f.os_amx;
    return d;
  });
  m.attr("compiler") = FASTNN_COMPILER;
  m.attr("build_flags") = FASTNN_BUILD_FLAGS;
#if defined(FASTNN_X86)
  m.attr("compiled_isas") = py::make_tuple("scalar", "avx2", "avx512");
#else
  m.attr("compiled_isas") = py::make_tuple("scalar");
#endif

  fastnn_py::bind_constrain(m);
  fastnn_py::bind_eltwise(m);
  fastnn_py::bind_gemm(m);
  fastnn_py::bind_gemm_bf16(m);
  fastnn_py::bind_gather(m);
  fastnn_py::bind_norm(m);
  fastnn_py::bind_layernorm(m);
  fastnn_py::bind_loss(m);
  fastnn_py::bind_optim(m);
  fastnn_py::bind_random(m);
  fastnn_py::bind_reduce(m);
  fastnn_py::bind_step(m);
  py::module_ testing = m.def_submodule("_testing", "Test hooks: probes of the core's state, not API.");
  fastnn_py::bind_testing(testing);
}
