#!/usr/bin/env bash
# Builds fastnn._core (-O3 -g, the optimised loops that run in release) with AddressSanitizer + UndefinedBehaviorSanitizer into
# build-asan/ (its own build dir; python/fastnn/_core*.so is left alone), stages
# the package in build-asan/pkg/ and runs the kernel tests under it.
#
#   tools/sanitize.sh                       # kernel tests, fuzz tests included
#   tools/sanitize.sh tests/test_gemm.py    # chosen test files / pytest args
#
# CPython is not instrumented, so the ASan runtime is LD_PRELOADed. Any ASan or
# UBSan report aborts the process (halt_on_error), so a clean exit status means
# no finding. FASTNN_ISA is left to the tests: the `isa` fixture and the fuzz
# tests cover every path the machine supports.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build-asan
cxx=${CXX:-c++}

cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O3 -g -fno-sanitize-recover=undefined" \
  -DFASTNN_SANITIZE=address,undefined \
  -Dpybind11_DIR="$(python3 -c 'import pybind11; print(pybind11.get_cmake_dir())')" \
  -DPython_EXECUTABLE="$(command -v python3)" > /dev/null
cmake --build "$dir" -j "${JOBS:-2}"

# stage: the Python sources (linked, so edits show) next to the sanitized _core
pkg="$dir/pkg/fastnn"
rm -rf "$dir/pkg"
mkdir -p "$pkg"
for f in python/fastnn/*; do
  case "$f" in *.so) continue ;; esac
  ln -s "$PWD/$f" "$pkg/"
done
cp "$dir"/_core*.so "$pkg/"

asan_rt=$("$cxx" -print-file-name=libasan.so)
case "$asan_rt" in /*) ;; *) echo "sanitize.sh: no libasan.so for $cxx" >&2; exit 2 ;; esac
# libstdc++ preloaded too: ASan resolves the real __cxa_throw when it starts; if
# libstdc++ only arrives with the dlopen of _core, every C++ throw aborts in ASan.
stdcxx_rt=$("$cxx" -print-file-name=libstdc++.so)

if [ "$#" -eq 0 ]; then
  set -- tests/test_core.py tests/test_activations.py tests/test_gemm.py tests/test_loss.py tests/test_norm.py \
    tests/test_optim.py tests/test_random.py tests/test_reduce.py tests/test_fuzz_ops.py -m "not slow"
fi

export LD_PRELOAD="$asan_rt:$stdcxx_rt${LD_PRELOAD:+:$LD_PRELOAD}"
# detect_leaks=0: CPython's own allocations alive at exit are not leaks of ours
# (tools/leakcheck.sh looks for leaks in _core with valgrind instead).
# Reports also go to $dir/logs/ (pytest's fd capture would swallow a report printed
# just before the sanitizer ends the process; --capture=sys below keeps fd 2 free).
mkdir -p "$dir/logs"
rm -f "$dir"/logs/*
export ASAN_OPTIONS="log_path=$PWD/$dir/logs/asan:detect_leaks=0:halt_on_error=1:abort_on_error=1:detect_stack_use_after_return=1:strict_init_order=1:check_initialization_order=1:allocator_may_return_null=0"
export UBSAN_OPTIONS="log_path=$PWD/$dir/logs/ubsan:print_stacktrace=1:halt_on_error=1"
export PYTHONPATH="$PWD/$dir/pkg"
export PYTHONMALLOC=malloc  # let ASan see Python-side buffers too (NumPy data is malloc'ed anyway)
echo "sanitize.sh: ASan+UBSan build in $dir, running: pytest $*" >&2
python3 -c "import fastnn, sys; sys.stderr.write('sanitize.sh: fastnn from %s, isa %s\n' % (fastnn.__file__, fastnn.cpu_info()['isa']))"
status=0
python3 -m pytest -q -p no:cacheprovider --capture=sys "$@" || status=$?
if ls "$dir"/logs/* > /dev/null 2>&1; then
  echo "sanitize.sh: sanitizer reports:" >&2
  cat "$dir"/logs/* >&2
  exit 1
fi
echo "sanitize.sh: no sanitizer report (pytest exit status $status)" >&2
exit "$status"
