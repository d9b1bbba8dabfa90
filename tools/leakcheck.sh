#!/usr/bin/env bash
# Runs every kernel family ROUNDS times (default 200) under valgrind memcheck and
# reports memory definitely lost in fastnn's extension (_core) and memory errors
# with a fastnn frame. (valgrind hides AVX-512 from CPUID: the avx2 path runs.) CPython's own
# allocations alive at exit are not counted: only leak records whose stack goes
# through _core are.
#
#   tools/leakcheck.sh            # uses python/fastnn/_core*.so (tools/devbuild.sh)
#   ROUNDS=50 tools/leakcheck.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind > /dev/null || { echo "leakcheck.sh: valgrind not found" >&2; exit 2; }
out=$(mktemp -d)
cat > "$out/run.py" <<'PY'
import os, sys
sys.path.insert(0, "tools")
import numpy as np
import fastnn
import kernel_workload as ns
fastnn.set_num_threads(2)
for dtype in (np.float32, np.float64):
    d = ns.inputs(0, dtype)
    d.update(a=d["a"][:40, :50].copy(), b=d["b"][:50, :30].copy(), bias=d["bias"][:30].copy())
    for _ in range(int(os.environ.get("ROUNDS", "200"))):
        ns.workload(d)
print("leakcheck: workload done")
PY
py=$(python3 -c 'import sys; print(sys.executable)')  # the interpreter itself, not a pyenv shim
PYTHONPATH=python PYTHONMALLOC=malloc valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite \
  --num-callers=40 --log-file="$out/valgrind.log" "$py" "$out/run.py"
# leak records (blank-line separated) that are definite and go through _core
sed 's/^==[0-9]*== \{0,1\}//' "$out/valgrind.log" | awk 'BEGIN{RS=""} /are definitely lost/ && /fastnn/' \
  > "$out/core_leaks.txt" || true
grep -E "definitely lost:|indirectly lost:|ERROR SUMMARY" "$out/valgrind.log" | sed 's/^==[0-9]*== */valgrind: /' || true
# memory errors (invalid reads/writes, uninitialised values) with a fastnn frame
sed 's/^==[0-9]*== \{0,1\}//' "$out/valgrind.log" | awk 'BEGIN{RS=""} /^(Invalid|Conditional|Use of uninit|Syscall param|Mismatched)/ && /fastnn/' \
  > "$out/core_errors.txt" || true
if [ -s "$out/core_errors.txt" ]; then
  echo "leakcheck.sh: memory errors in fastnn:" >&2
  cat "$out/core_errors.txt" >&2
  exit 1
fi
if [ -s "$out/core_leaks.txt" ]; then
  echo "leakcheck.sh: memory definitely lost in _core:" >&2
  cat "$out/core_leaks.txt" >&2
  exit 1
fi
echo "leakcheck.sh: no definite leak through _core (log: $out/valgrind.log)"
