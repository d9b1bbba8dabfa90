"""The NumPy twin of gelu (keras.activations.gelu), for :mod:`fastnn.reference`:
float64 throughout, math.erfc for the exact form. Imports only NumPy and math."""
from __future__ import annotations

import math

import numpy as np

GELU_TANH_COEF = 0.044715
_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def gelu_approximate(a, name):
    """gelu's alpha is keras.activations.gelu's approximate flag: 0 (erf) or 1 (tanh form)."""
    if a not in (0, 1):
        raise ValueError(f"{name}: gelu's alpha is its approximate flag, 0 or 1, got {a}")
    return bool(a)


def gelu_parts(x, approximate):
    """(gelu(x), gelu'(x)) in float64, as Keras 3 defines them:
    exact:  0.5 x (1 + erf(x / sqrt 2)) = x Phi(x), Phi(x) = erfc(-x / sqrt 2) / 2 (math.erfc:
            accurate in both tails), gelu' = Phi(x) + x exp(-x^2 / 2) / sqrt(2 pi);
    approximate: 0.5 x (1 + tanh(v)), v = sqrt(2 / pi) (x + 0.044715 x^3),
            gelu' = 0.5 (1 + tanh v) + 0.5 x (1 - tanh^2 v) sqrt(2 / pi) (1 + 3 0.044715 x^2),
            with 0.5 (1 + tanh v) = 1 / (1 + exp(-2v)) and 0.5 (1 - tanh v) = 1 / (1 + exp(2v))
            (the same numbers, without cancellation for v far below 0: float32 keeps them).
    Infinities give the limits (gelu(-inf) = 0, gelu'(+-inf) = 1, 0), not inf * 0."""
    x = np.asarray(x, dtype=np.float64)
    xc = np.clip(x, -1e4, 1e4)  # beyond, the gate is exactly 0 or 1 in float64
    if approximate:
        c = math.sqrt(2 / math.pi)
        v = c * (xc + GELU_TANH_COEF * xc ** 3)
        with np.errstate(over="ignore"):
            gate, rest = 1 / (1 + np.exp(-2 * v)), 1 / (1 + np.exp(2 * v))  # (1 + tanh v)/2, (1 - tanh v)/2
        d = gate + 2 * xc * gate * rest * c * (1 + 3 * GELU_TANH_COEF * xc * xc)
    else:
        gate = 0.5 * _erfc(-xc / math.sqrt(2))
        d = gate + xc * np.exp(-0.5 * xc * xc) / math.sqrt(2 * math.pi)
    y = np.where(np.isinf(x), np.where(x > 0, x, -0.0), x * gate)
    return y, np.where(np.isnan(x), x, d)
