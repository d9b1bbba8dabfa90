#!/usr/bin/env bash
# Development build: compiles fastnn._core into build-dev/ (or $1) and copies it
# next to the sources, so `PYTHONPATH=python pytest` runs without reinstalling.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build-dev}
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -Dpybind11_DIR="$(python3 -c 'import pybind11; print(pybind11.get_cmake_dir())')" \
  -DPython_EXECUTABLE="$(command -v python3)" > /dev/null
cmake --build "$dir" -j 2
# copy, then rename over the old module: a running Python that has it mapped keeps the
# old file (cp straight over it rewrites mapped pages in place and crashes that process)
for so in "$dir"/_core*.so; do
  cp "$so" "python/fastnn/.$(basename "$so").tmp"
  mv -f "python/fastnn/.$(basename "$so").tmp" "python/fastnn/$(basename "$so")"
done
