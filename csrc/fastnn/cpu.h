// ISA detection and the dispatch choice.
//
// Each kernel family keeps its own table of function pointers, one per ISA
// (scalar::, avx2:: and avx512::<family>_kernels, each with f32 and f64 halves);
// its dispatcher picks one with FASTNN_KERNELS (dispatch.h). The active
// ISA is chosen once, at import, by select_isa(); kernels read it through active_isa().
#pragma once
#include <string>
#include <type_traits>

namespace fastnn {

enum class Isa { scalar = 0, avx2 = 1, avx512 = 2 };

struct CpuFeatures {
  bool sse2 = false, avx = false, avx2 = false, fma = false;
  bool avx512f = false, avx512dq = false, avx512bw = false, avx512vl = false;
  bool avx512_bf16 = false;                 // CPUID 7.1 EAX[5]: vdpbf16ps, vcvtne2ps2bf16
  bool amx_bf16 = false, amx_tile = false;  // CPUID 7.0 EDX[22], EDX[24]: reported only (no AMX kernel yet)
  bool os_avx = false;     // XCR0 enables YMM state
  bool os_avx512 = false;  // XCR0 enables opmask and ZMM state
  bool os_amx = false;     // XCR0 enables XTILECFG and XTILEDATA state
  std::string vendor, brand;
};

const CpuFeatures& cpu_features();
bool isa_supported(Isa isa);   // CPU and OS support it, and it was compiled in
Isa best_isa();
Isa active_isa();
// Sets the active ISA; "" or "auto" picks the best. Throws std::invalid_argument
// for an unknown name and std::runtime_error when the CPU lacks the ISA.
void select_isa(const std::string& name);
const char* isa_name(Isa isa);
// The Isa named `name` ("scalar", "avx2", "avx512") into *isa; false for any other name.
bool isa_from_name(const std::string& name, Isa* isa);

// The active ISA's table among a family's three.
template <class Table> const Table& active_table(const Table& scalar_t, const Table& avx2_t, const Table& avx512_t) {
  switch (active_isa()) {
    case Isa::avx512: return avx512_t;
    case Isa::avx2: return avx2_t;
    default: return scalar_t;
  }
}

}  // namespace fastnn

// The active ISA's table `name` of a family, from inside namespace fastnn (the
// AVX tables exist only in x86 builds).
#if defined(FASTNN_X86)
#define FASTNN_ACTIVE_TABLE(name) ::fastnn::active_table(scalar::name, avx2::name, avx512::name)
#else
#define FASTNN_ACTIVE_TABLE(name) (scalar::name)
#endif
