// ISA detection and the dispatch choice.
//
// Each kernel family keeps its own table of function pointers, one entry per
// ISA (see eltwise/eltwise.cpp for the pattern). The active ISA is chosen once,
// at import, by select_isa(); kernels read it through active_isa().
#pragma once
#include <string>

namespace fastnn {

enum class Isa { scalar = 0, avx2 = 1, avx512 = 2 };

struct CpuFeatures {
  bool sse2 = false, avx = false, avx2 = false, fma = false;
  bool avx512f = false, avx512dq = false, avx512bw = false, avx512vl = false;
  bool os_avx = false;     // XCR0 enables YMM state
  bool os_avx512 = false;  // XCR0 enables opmask and ZMM state
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

}  // namespace fastnn
