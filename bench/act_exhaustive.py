"""Max ulp error of a float32 activation over ALL float32 inputs, on every ISA path.

    PYTHONPATH=python python3 bench/act_exhaustive.py [--act tanh] [--step 1]

Error as tests/test_activations.py measures it: |y - r| / spacing(float32(|r|)) with
r the float64 twin (fastnn.reference) at float64(x), over results with |r| >= FLT_MIN.
tanh: every positive finite float is checked against the reference and every negative
one must be the exact negation of its positive twin (tanh is odd), |y| <= 1, tanh(+-inf)
= +-1, tanh(-0) = -0, NaN gives NaN. Other activations: both signs against the reference,
sigmoid in [0, 1]. --step k checks every k-th bit pattern only (a quick run)."""
import argparse
import time

import numpy as np

from fastnn import _core, ops, reference as ref

TINY = np.finfo(np.float32).tiny


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--act", default="tanh")
    ap.add_argument("--step", type=int, default=1)
    ap.add_argument("--chunk", type=int, default=1 << 22)
    a = ap.parse_args()
    isas = [i for i in ("scalar", "avx2", "avx512") if _core.isa_supported(i)]
    before = _core.active_isa()
    worst = {i: (0.0, 0.0) for i in isas}
    bad = {i: 0 for i in isas}
    t0 = time.time()
    top = 0x7F800000  # +inf's bit pattern: every positive finite float is below it
    for lo in range(0, top, a.chunk * a.step):
        bits = np.arange(lo, min(lo + a.chunk * a.step, top), a.step, dtype=np.uint32)
        odd = a.act == "tanh"
        xs = bits.view(np.float32) if odd else np.concatenate([bits.view(np.float32), -bits.view(np.float32)])
        r = ref.activation(a.act, xs.astype(np.float64))
        sp = np.spacing(np.abs(r).astype(np.float32)).astype(np.float64)
        normal = np.abs(r) >= TINY
        for isa in isas:
            _core.select_isa(isa)
            y = ops.activation(a.act, xs)
            if odd:
                yn = ops.activation(a.act, -xs)
                bad[isa] += int(np.count_nonzero(yn.view(np.uint32) != (-y).view(np.uint32)))
                bad[isa] += int(np.count_nonzero((y > 1) | (y < 0)))
            if a.act == "sigmoid":
                bad[isa] += int(np.count_nonzero((y > 1) | (y < 0)))
            err = np.where(normal, np.abs(y.astype(np.float64) - r) / sp, 0.0)
            k = int(np.argmax(err))
            if err[k] > worst[isa][0]:
                worst[isa] = (float(err[k]), float(xs[k]))
    special = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0], np.float32)
    for isa in isas:
        _core.select_isa(isa)
        y = ops.activation(a.act, special)
        r = ref.activation(a.act, special.astype(np.float64))
        ok = np.array_equal(y, r, equal_nan=True)
        if a.act == "tanh":
            ok = ok and bool(np.signbit(y[4]))
        bad[isa] += 0 if ok else 1
        print(f"{isa:7s} max ulp {worst[isa][0]:.3f} at x={worst[isa][1]!r}  "
              f"odd/range/special failures: {bad[isa]}")
    _core.select_isa(before)
    print(f"{a.act}: checked every {a.step}-th float32 in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
