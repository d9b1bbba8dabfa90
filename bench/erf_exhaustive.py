"""Max ulp error of the float32 erf (_core.erf) and gelu (exact and tanh form) over ALL
float32 inputs, on every ISA path.

    PYTHONPATH=python python3 bench/erf_exhaustive.py [--step 1]

Error as tests/test_activations.py measures it: |y - r| / spacing(float32(|r|)), r in
float64 (scipy.special.erf / erfc; gelu exact: x erfc(-x/sqrt2)/2, the tanh form:
x / (1 + exp(-2v)), the twin's formulas), over results with |r| >= FLT_MIN. Both signs
of every positive finite float. The tanh form is also reported relative to its
conditioning, ulp / (1 + max(0, -2v)): for x << 0, y = x / (1 + exp(-2v)) and the
rounding of 2v in float32 (~|2v| eps) is what the ulp error grows with. --step k checks every k-th bit pattern only (a quick run).
Needs scipy (a fast float64 erf; math.erf is too slow for 4e9 values)."""
import argparse
import time

import numpy as np
from scipy.special import erf, erfc

from fastnn import _core, ops

TINY = np.finfo(np.float32).tiny


def references(xs):
    x = xs.astype(np.float64)
    xc = np.clip(x, -1e4, 1e4)
    v = np.sqrt(2 / np.pi) * (xc + 0.044715 * xc ** 3)
    with np.errstate(over="ignore"):
        tanh_form = x / (1 + np.exp(-2 * v))
    return {"erf": erf(x), "gelu": x * 0.5 * erfc(-x / np.sqrt(2)), "gelu_tanh": tanh_form}, 2 * v


def compute(name, xs):
    if name == "erf":
        y = np.empty_like(xs)
        _core.erf(xs, y)
        return y
    return ops.activation("gelu", xs, alpha=1.0 if name == "gelu_tanh" else 0.0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--step", type=int, default=1)
    ap.add_argument("--chunk", type=int, default=1 << 22)
    a = ap.parse_args()
    isas = [i for i in ("scalar", "avx2", "avx512") if _core.isa_supported(i)]
    names = ("erf", "gelu", "gelu_tanh")
    before = _core.active_isa()
    worst = {(i, n): (0.0, 0.0) for i in isas for n in names}
    t0 = time.time()
    top = 0x7F800000
    for lo in range(0, top, a.chunk * a.step):
        bits = np.arange(lo, min(lo + a.chunk * a.step, top), a.step, dtype=np.uint32)
        xs = np.concatenate([bits.view(np.float32), -bits.view(np.float32)])
        refs, w = references(xs)
        tail = 1 + np.maximum(0.0, -w)  # the tanh form's conditioning: ulp / (1 + max(0, -2v))
        for n in names:
            r = refs[n]
            with np.errstate(invalid="ignore"):
                sp = np.spacing(np.abs(r).astype(np.float32)).astype(np.float64)
            normal = np.abs(r) >= TINY
            for isa in isas:
                _core.select_isa(isa)
                err = np.where(normal, np.abs(compute(n, xs).astype(np.float64) - r) / sp, 0.0)
                if n == "gelu_tanh":
                    k = int(np.argmax(err / tail))
                    worst[isa, "gelu_tanh / (1 + max(0, -2v))"] = max(worst.get((isa, "gelu_tanh / (1 + max(0, -2v))"),
                                                                             (0.0, 0.0)), (float(err[k] / tail[k]),
                                                                                           float(xs[k])))
                k = int(np.argmax(err))
                if err[k] > worst[isa, n][0]:
                    worst[isa, n] = (float(err[k]), float(xs[k]))
    _core.select_isa(before)
    for (isa, n), (e, x) in worst.items():
        print(f"{n} {isa:7s} max ulp {e:.3f} at x={x!r}")
    print(f"checked every {a.step}-th float32 (both signs) in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
