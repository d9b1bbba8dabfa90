"""The coefficients of the float32 erf / erfc in csrc/fastnn/simd/vecmath_erf_impl.h.

    python3 tools/fit_erf.py        (needs scipy)

erfc(u) = exp(-u^2) t Q(t), t = 2/(2+u): Q ~ erfcx(u)/t, degree 9 in t on u in [0, 9.5].
erf(a) = a (c0 + s R(s)), s = a^2, c0 = 2/sqrt(pi): R degree 5 on a in [0, 1].
Both by iteratively reweighted least squares on Chebyshev nodes towards the minimax
relative error (printed), then rounded to float32."""
import numpy as np
from scipy.special import erf, erfcx

TMIN = 2 / 11.5  # u = 9.5


def irls(V, f, target, iters=40):
    """Coefficients c with V c ~ target, minimizing max |V c - target| / |f| (approximately)."""
    w = np.ones(len(f))
    for _ in range(iters):
        c, *_ = np.linalg.lstsq(V * (w / f)[:, None], w * target / f, rcond=None)
        r = (V @ c - target) / f
        w = w * (1 + 5 * np.abs(r) / np.abs(r).max())
    return c, np.abs(r).max()


def main():
    t = np.cos(np.linspace(0, np.pi, 6000)) * (1 - TMIN) / 2 + (1 + TMIN) / 2
    f = erfcx(2 / t - 2) / t
    q, err = irls(np.vander(t, 10), f, f)
    print(f"Q (t^9 .. t^0), relative error {err:.3g}:", ", ".join("%.9gf" % np.float32(c) for c in q))
    c0 = 2 / np.sqrt(np.pi)
    a = np.cos(np.linspace(0, np.pi, 4000)) / 2 + 0.5 + 1e-4
    s = a * a
    g = erf(a) / a
    r, _ = irls(np.vander(s, 6) * s[:, None], g, g - c0)
    err = np.abs((c0 + s * (np.vander(s, 6) @ r)) - g).max() / g.min()
    print(f"R (s^5 .. s^0), relative error {err:.3g}:", ", ".join("%.9gf" % np.float32(c) for c in r))
    print("c0 = %.9gf + %.9gf" % (np.float32(c0), c0 - float(np.float32(c0))))


if __name__ == "__main__":
    main()
