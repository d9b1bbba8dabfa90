"""Fits the polynomial of expm1(r) ~ r + r^2 P(r), |r| <= ln2/2, used by the float32
vector tanh (csrc/fastnn/simd/vecmath_impl.h vtanh), minimising the relative error of
expm1 by Lawson's iteratively reweighted least squares on a dense grid.

    python3 tools/fit_tanh_expm1.py [DEGREE]      # degree of P, default 4 (expm1 degree 6)

Prints the float32 coefficients (constant term first) and the float64 max relative
error. The kernel's end-to-end error over all float32 inputs: bench/act_exhaustive.py."""
import sys

import numpy as np

DEG = int(sys.argv[1]) if len(sys.argv) > 1 else 4
R = np.log(2) / 2 * 1.0001                     # |r| <= ln2/2 after r = z - n ln2, plus slack
r = np.linspace(-R, R, 200001)
r = r[np.abs(r) > 1e-6]
f = np.expm1(r)
target = (f - r) / r**2                        # P(r) target
V = np.vander(r, DEG + 1, increasing=True)
scale = r**2 / f                               # error of P, as a relative error of expm1
w = np.ones_like(r)
for _ in range(60):
    c, *_ = np.linalg.lstsq(V * (w * scale)[:, None], target * w * scale, rcond=None)
    err = np.abs((V @ c - target) * scale)
    w *= (err / err.max()) ** 0.5 + 1e-4
print(f"degree {DEG}: max relative error of expm1 (float64) {err.max():.3g}")
print("coefficients:", ", ".join(f"{float(np.float32(v))!r}f" for v in c))
