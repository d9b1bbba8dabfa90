"""Fits the odd polynomial tanh(x) ~ x + x^3 * P(x^2) used by the float32
vector tanh for |x| < 0.625 (csrc/fastnn/simd/vecmath_impl.h).

Minimises the relative error by iteratively reweighted least squares on a dense
grid and prints the coefficients and the max relative error in float64 and in
float32 evaluation (Horner with the float32-rounded coefficients)."""
import numpy as np

XMAX, DEG = 0.625, 5
x = np.linspace(1e-4, XMAX, 200001)
t = np.tanh(x)
target = (t - x) / x**3                       # P(x^2) target
u = x * x
V = np.vander(u, DEG + 1, increasing=True)
w = np.ones_like(x)
for _ in range(30):                           # Lawson iterations toward minimax
    # relative error of tanh: x^3 (P - target) / t
    scale = x**3 / t
    c, *_ = np.linalg.lstsq(V * (w * scale)[:, None], target * w * scale, rcond=None)
    err = np.abs((V @ c - target) * scale)
    w *= (err / err.max()) ** 0.5 + 1e-3
c32 = c.astype(np.float32)
xf = x.astype(np.float32)
uf = xf * xf
p = np.float32(0)
for k in reversed(range(DEG + 1)):
    p = p * uf + c32[k]
yf = xf + xf * uf * p
rel64 = np.max(np.abs((V @ c - target) * x**3 / t))
ulp = np.abs(yf.astype(np.float64) - np.tanh(xf.astype(np.float64))) / np.spacing(np.abs(np.tanh(xf)).astype(np.float32))
print("coefficients:", [float(v) for v in c32])
print("max rel err (float64 eval): %.3g" % rel64)
print("max ulp (float32 eval): %.3f" % ulp.max())
