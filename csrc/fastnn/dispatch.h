// Kernel dispatch declared once per family.
//
// A family writes its kernels once, over Vec<T>, in <family>_impl.h; CMake
// compiles that header once per ISA (generated <family>_<isa>.cpp, see
// CMakeLists.txt: foreach(isa ...)), each in namespace fastnn::<isa> with the
// ISA's flags, and each defines the ISA's table of function pointers. The
// family header declares the table type and the per-ISA tables with
//
//   template <class T> struct FooKernelsT { void (*run)(const T*, ...); };
//   FASTNN_DECLARE_KERNELS(FooKernels, FooKernelsT, foo_kernels)
//
// and its dispatcher picks the active ISA's float or double half with
// FASTNN_KERNELS(T, foo_kernels) -- in the manner of PyTorch's
// DECLARE_DISPATCH / DispatchStub and Highway's HWY_EXPORT.
#pragma once
#include <type_traits>

#include "fastnn/cpu.h"

namespace fastnn {

// One ISA's table of a family: the float and the double kernels.
template <template <class> class KernelsT> struct DtypeTable {
  KernelsT<float> f32;
  KernelsT<double> f64;
  template <class T> const KernelsT<T>& get() const {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "float or double");
    if constexpr (std::is_same_v<T, float>) return f32; else return f64;
  }
};

}  // namespace fastnn

// Declares the table type `Table` (= DtypeTable<KernelsT>) and the per-ISA tables
// `name` (defined by each ISA's generated translation unit); inside namespace fastnn.
#define FASTNN_DECLARE_KERNELS(Table, KernelsT, name) \
  using Table = ::fastnn::DtypeTable<KernelsT>;       \
  namespace scalar { extern const Table name; }       \
  namespace avx2 { extern const Table name; }         \
  namespace avx512 { extern const Table name; }

// The active ISA's kernels of dtype T from the tables `name`; inside namespace fastnn.
#define FASTNN_KERNELS(T, name) (FASTNN_ACTIVE_TABLE(name).template get<T>())
