"""Max ulp error of fastnn's float32 tanh over ALL float32 inputs, on every ISA path.

    PYTHONPATH=python python3 bench/tanh_exhaustive.py [--step 1]

Error as tests/test_activations.py measures it: |y - r| / spacing(float32(|r|)) with
r = np.tanh(float64(x)), over results with |r| >= FLT_MIN. Every positive finite float
is checked against the reference; every negative one must be the exact negation of its
positive twin (tanh is odd); +-inf must give +-1 and NaN must give NaN. --step k checks
every k-th bit pattern only (a quick run)."""
import argparse
import time

import numpy as np

from fastnn import _core, ops

TINY = np.finfo(np.float32).tiny


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--step", type=int, default=1)
    ap.add_argument("--chunk", type=int, default=1 << 24)
    a = ap.parse_args()
    isas = [i for i in ("scalar", "avx2", "avx512") if _core.isa_supported(i)]
    before = _core.active_isa()
    worst = {i: (0.0, 0.0) for i in isas}
    bad = {i: 0 for i in isas}
    t0 = time.time()
    top = 0x7F800000  # +inf's bit pattern: every positive finite float is below it
    for lo in range(0, top, a.chunk * a.step):
        bits = np.arange(lo, min(lo + a.chunk * a.step, top), a.step, dtype=np.uint32)
        x = bits.view(np.float32)
        r = np.tanh(x.astype(np.float64))
        rf = np.abs(r).astype(np.float32)
        sp = np.spacing(rf).astype(np.float64)
        normal = np.abs(r) >= TINY
        for isa in isas:
            _core.select_isa(isa)
            y = ops.activation("tanh", x)
            yn = ops.activation("tanh", -x)
            bad[isa] += int(np.count_nonzero(yn.view(np.uint32) != (-y).view(np.uint32)))
            bad[isa] += int(np.count_nonzero((y > 1) | (y < 0)))
            err = np.where(normal, np.abs(y.astype(np.float64) - r) / sp, 0.0)
            k = int(np.argmax(err))
            if err[k] > worst[isa][0]:
                worst[isa] = (float(err[k]), float(x[k]))
    special = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0], np.float32)
    for isa in isas:
        _core.select_isa(isa)
        y = ops.activation("tanh", special)
        ok = y[0] == 1 and y[1] == -1 and np.isnan(y[2]) and y[3] == 0 and y[4] == 0 and np.signbit(y[4])
        bad[isa] += 0 if ok else 1
        print(f"{isa:7s} max ulp {worst[isa][0]:.3f} at x={worst[isa][1]!r}  "
              f"odd/range/special failures: {bad[isa]}")
    _core.select_isa(before)
    print(f"checked every {a.step}-th float32 in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
