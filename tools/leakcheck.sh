#!/usr/bin/env bash
# Runs every kernel family ROUNDS times (default 200) under valgrind memcheck and
# reports memory definitely lost in fastnn's extension (_core). CPython's own
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
sys.path.insert(0, "tests")
import numpy as np
import fastnn
from test_reliability import WORKLOAD
ns = {}
exec(WORKLOAD, ns)
fastnn.set_num_threads(2)
for dtype in (np.float32, np.float64):
    d = ns["inputs"](0, dtype)
    d.update(a=d["a"][:40, :50].copy(), b=d["b"][:50, :30].copy(), bias=d["bias"][:30].copy())
    for _ in range(int(os.environ.get("ROUNDS", "200"))):
        ns["workload"](d)
print("leakcheck: workload done")
PY
PYTHONPATH=python PYTHONMALLOC=malloc valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite \
  --num-callers=40 --log-file="$out/valgrind.log" python3 "$out/run.py"
# leak records (blank-line separated) that are definite and go through _core
awk 'BEGIN{RS=""} /definitely lost/ && /_core/' "$out/valgrind.log" > "$out/core_leaks.txt" || true
grep -E "definitely lost:|indirectly lost:|ERROR SUMMARY" "$out/valgrind.log" | sed 's/^==[0-9]*== */valgrind: /'
if [ -s "$out/core_leaks.txt" ]; then
  echo "leakcheck.sh: memory definitely lost in _core:" >&2
  cat "$out/core_leaks.txt" >&2
  exit 1
fi
echo "leakcheck.sh: no definite leak through _core (log: $out/valgrind.log)"
