"""The NumPy twins of the Keras 3 activations beyond the classic set (relu6, hard_sigmoid,
hard_silu, softsign, exponential, mish, log_sigmoid, celu, hard_tanh, squareplus, sparse_plus,
tanh_shrink, hard_shrink, soft_shrink), for
:mod:`fastnn.reference`: plain formulas in the dtype of the input (the tests use
float64). The kinks have gradient 0, as relu's; infinities give the limits. Imports
only NumPy."""
from __future__ import annotations

import numpy as np

MORE_ACTS = ("relu6", "hard_sigmoid", "hard_silu", "softsign", "exponential", "mish", "log_sigmoid",
             "celu", "hard_tanh", "squareplus", "sparse_plus", "tanh_shrink", "hard_shrink", "soft_shrink")
_NEED_X = ("hard_silu", "softsign", "mish", "log_sigmoid", "tanh_shrink")


def _tanh_series(n):
    """The first n coefficients c_k of x - tanh x = sum_k c_k x^(2k + 3): with m = k + 2,
    -2^(2m) (2^(2m) - 1) B_2m / (2m)!, the Bernoulli numbers from their recurrence, exactly."""
    from fractions import Fraction
    from math import comb, factorial
    b = [Fraction(1)]
    for m in range(1, 2 * n + 4):
        b.append(-sum(comb(m + 1, j) * b[j] for j in range(m)) / (m + 1))
    return tuple(float(-(4 ** m) * (4 ** m - 1) * b[2 * m] / factorial(2 * m)) for m in range(2, n + 2))


_TANH_SERIES = _tanh_series(18)  # |x| < 0.5: terms shrink by x^2 / (pi^2 / 4) <= 0.1 each


def _tanh_shrink(x):
    """x - tanh(x); for |x| < 0.5 its Taylor series (the subtraction would cancel there)."""
    a = np.abs(x)
    ac = np.minimum(a, 0.5)
    u = ac * ac
    p = np.zeros_like(u)
    for c in reversed(_TANH_SERIES):
        p = p * u + c
    r = np.where(a < 0.5, ac * u * p, a - np.tanh(a))
    return np.where(x < 0, -r, r)


def _softplus(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _mish_parts(x):
    """(tanh(softplus(x)), sech^2(softplus(x))) as n / (n + 2) and 4 (n + 1) / (n + 2)^2,
    n = e (e + 2), e = exp(x) (x clamped to 40: beyond, t = 1 and the second is ~0)."""
    e = np.exp(np.minimum(x, 40))
    n = e * (e + 2)
    return n / (n + 2), 4 * (n + 1) / ((n + 2) * (n + 2)), e


def _check_alpha(name, a):
    if name == "celu" and a == 0:
        raise ValueError("alpha: celu's alpha divides x, expected a nonzero number, got 0")
    if name == "squareplus" and not a > 0:
        raise ValueError(f"alpha: squareplus's alpha is its b, expected b > 0, got {a}")


def _squareplus(x, b):
    """(x + sqrt(x^2 + b)) / 2; for x < 0 as b / (2 (sqrt(x^2 + b) - x)) (no cancellation)."""
    s = np.where(np.abs(x) > 1e150, np.abs(x), np.sqrt(np.minimum(np.abs(x), 1e150) ** 2 + b))
    with np.errstate(divide="ignore", invalid="ignore"):  # the branch not taken: s - x = 0 for x >> 0
        return np.where(x < 0, b / (2 * (s - x)), x / 2 + s / 2)


def more_forward(name, x, a):
    """act(x) for a name of MORE_ACTS (else a ValueError naming it)."""
    t = x.dtype.type
    _check_alpha(name, a)
    if name == "relu6":
        return np.where(np.isnan(x), x, np.clip(x, 0, 6))
    if name == "hard_sigmoid":
        return np.where(np.isnan(x), x, np.clip(x + 3, 0, 6) / 6)
    if name == "hard_silu":
        return np.where(x <= -3, t(0), x * (np.clip(x + 3, 0, 6) / 6))
    if name == "softsign":
        return np.where(np.isinf(x), np.sign(x), x / (1 + np.abs(x)))
    if name == "exponential":
        return np.exp(x)
    if name == "mish":
        return np.where(x == -np.inf, t(0), x * _mish_parts(x)[0])
    if name == "log_sigmoid":
        return -_softplus(-x)
    if name == "celu":
        return np.where(x > 0, x, t(a) * np.expm1(np.minimum(x, 0) / t(a)))
    if name == "hard_tanh":
        return np.where(np.isnan(x), x, np.clip(x, -1, 1))
    if name == "squareplus":
        return _squareplus(x, t(a))
    if name == "sparse_plus":
        return np.where(x <= -1, t(0), np.where(x >= 1, x, (x + 1) * (x + 1) / 4))
    if name == "tanh_shrink":
        return _tanh_shrink(x)
    if name == "hard_shrink":  # a is Keras's threshold; NaN stays NaN (Keras's where() gives 0)
        return np.where(np.abs(x) > t(a), x, np.where(np.isnan(x), x, t(0)))
    if name == "soft_shrink":
        return np.where(x > t(a), x - t(a), np.where(x < -t(a), x + t(a), np.where(np.isnan(x), x, t(0))))
    raise ValueError(f"name: unknown activation {name!r}")


def more_derivative(name, x, y, a):
    """act'(.) from x, or from y where the registry allows it (x is None)."""
    t = (x if x is not None else y).dtype.type
    _check_alpha(name, a)
    if name in _NEED_X and x is None:
        raise ValueError(f"x: activation {name!r} needs the forward input x")
    s = x if x is not None else y
    if name == "relu6":
        return np.where((s > 0) & (s < 6), t(1), t(0))
    if name == "hard_sigmoid":
        h = y if x is None else more_forward(name, x, a)
        return np.where((h > 0) & (h < 1), t(1 / 6), t(0))
    if name == "hard_silu":
        return np.where(x <= -3, t(0), np.where(x >= 3, t(1), (2 * x + 3) / 6))
    if name == "softsign":
        return 1 / ((1 + np.abs(x)) * (1 + np.abs(x)))
    if name == "exponential":
        return np.exp(x) if x is not None else y
    if name == "mish":
        xc = np.maximum(x, -1e4)
        th, sech2, e = _mish_parts(xc)
        return th + np.minimum(xc, 40) * (e / (1 + e)) * sech2
    if name == "log_sigmoid":
        e = np.exp(-np.abs(x))  # sigmoid(-x), stable on both sides
        return np.where(x <= 0, 1 / (1 + e), e / (1 + e))
    if name == "celu":
        return np.where(s > 0, t(1), y / t(a) + 1 if x is None else np.exp(np.minimum(x, 0) / t(a)))
    if name == "hard_tanh":
        return np.where((s > -1) & (s < 1), t(1), t(0))
    if name == "squareplus":  # 1/2 (1 + x / sqrt(x^2 + b)) = 4 y^2 / (4 y^2 + b)
        h = np.minimum(y if x is None else _squareplus(x, t(a)), 1e150)
        return 4 * h * h / (4 * h * h + t(a))
    if name == "sparse_plus":
        if x is None:
            return np.where(y < 1, np.sqrt(y), t(1))
        return np.where(x <= -1, t(0), np.where(x >= 1, t(1), (x + 1) / 2))
    if name == "tanh_shrink":
        return np.tanh(x) * np.tanh(x)
    if name in ("hard_shrink", "soft_shrink"):  # 1 where the forward passes x on (strictly), else 0
        if x is None:  # y == 0 exactly there, but for hard_shrink with a < 0 (the identity)
            return np.where(y != 0, t(1), t(1) if name == "hard_shrink" and a < 0 else t(0))
        keep = np.abs(x) > t(a) if name == "hard_shrink" else (x > t(a)) | (x < -t(a))
        return np.where(keep, t(1), t(0))
    raise ValueError(f"name: unknown activation {name!r}")
