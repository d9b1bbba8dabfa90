"""Fits the polynomial behind tanh_shrink(x) = x - tanh(x) for |x| < 1.25, where the
subtraction cancels (x - tanh x = x^3 / 3 - 2 x^5 / 15 + ...):
    x - tanh x = x^3 (1/3 + u Q(u)),  u = x^2 in [0, 1.5625],
Q approximating ((x - tanh x) / x^3 - 1/3) / u, which is analytic on the interval (its
nearest singularity at u = -pi^2 / 4). The error of Q counts in the result as
u dQ / (1/3 + u Q), the weight of the fit:
  float32: Lawson's iteratively reweighted least squares on a dense grid (float64), then
           the coefficients rounded to float32;
  float64: interpolation at the Chebyshev nodes in 50-digit arithmetic (close to minimax;
           float64 least squares is not accurate enough at this degree).
Used by csrc/fastnn/eltwise/shrink_acts_impl.h.

    python3 tools/fit_tanh_shrink.py [DEGREE_F32] [DEGREE_F64]    # defaults 9 and 19 (the kernels')

Prints the coefficients (constant term first) and the max error they bring to the result
(relative, exact arithmetic, 3001 points). End-to-end errors: tests/test_acts_shrink.py."""
import sys

import mpmath as mp
import numpy as np

mp.mp.dps = 60
U = 1.5625  # (1.25)^2: above 1.25 the kernels use (|x| - 1) + 2 / (exp(2|x|) + 1)


def g(u):
    """(x - tanh x) / x^3 at u = x^2."""
    if u == 0:
        return mp.mpf(1) / 3
    x = mp.sqrt(u)
    return (x - mp.tanh(x)) / (x * x * x)


def q_target(u):
    return mp.mpf(-2) / 15 if u == 0 else (g(u) - mp.mpf(1) / 3) / u


def fit_f32(deg, n=3000, rounds=80):
    u = np.array([U * (1 - np.cos(np.pi * (k + 0.5) / n)) / 2 for k in range(n)])
    t = np.array([float(q_target(mp.mpf(v))) for v in u])
    w_err = u / np.array([float(g(mp.mpf(v))) for v in u])  # dy / y per unit of dQ
    V = np.vander(u, deg + 1, increasing=True)
    w = np.ones(n)
    for _ in range(rounds):
        c, *_ = np.linalg.lstsq(V * (w * w_err)[:, None], t * w * w_err, rcond=None)
        err = np.abs((V @ c - t) * w_err)
        w *= (err / err.max()) ** 0.5 + 1e-4
    return [float(np.float32(v)) for v in c]


def fit_f64(deg):
    nodes = [U * (1 - mp.cos(mp.pi * (2 * k + 1) / (2 * (deg + 1)))) / 2 for k in range(deg + 1)]
    a = mp.matrix([[v ** j for j in range(deg + 1)] for v in nodes])
    c = mp.lu_solve(a, mp.matrix([q_target(v) for v in nodes]))
    return [float(v) for v in c]


def max_error(coef):
    worst = mp.mpf(0)
    for i in range(3001):
        u = U * mp.mpf(i) / 3000
        q = mp.mpf(0)
        for c in reversed(coef):
            q = q * u + mp.mpf(c)
        worst = max(worst, abs(u * (q - q_target(u)) / g(u)))
    return worst


if __name__ == "__main__":
    d32 = int(sys.argv[1]) if len(sys.argv) > 1 else 9
    d64 = int(sys.argv[2]) if len(sys.argv) > 2 else 19
    for bits, deg, c in ((32, d32, fit_f32(d32)), (64, d64, fit_f64(d64))):
        print(f"float{bits}, degree {deg}: max relative error in the result {float(max_error(c)):.3g} "
              f"(half an ulp: {2.0 ** (-24 if bits == 32 else -53):.3g})")
        print("  " + ", ".join(repr(v) for v in c))
