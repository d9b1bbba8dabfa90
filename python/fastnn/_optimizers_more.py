"""Nadam, Adamax and Lion with Keras 3's formulas (re-exported by ``fastnn.optimizers``).

There is no fused kernel for them yet: each step is a few NumPy ufunc calls over each
trainable range of the flat arena, in place, with one scratch buffer per range (made once,
reused), so no allocation per step beyond NumPy's internal temporaries. The step count
``t`` is the optimizer's ``iterations`` (1 at the first step).
"""
from __future__ import annotations

import numpy as np

from ._validate import Interval, Real
from .optimizers import Optimizer


def _beta(name, b, lo_open=False):
    if isinstance(b, bool) or not isinstance(b, (int, float, np.floating)) \
            or not ((0 < b <= 1) if lo_open else (0 <= b < 1)):
        rng = "(0, 1]" if lo_open else "[0, 1)"
        raise ValueError(f"{name}: expected a number in {rng}, got {b!r}")
    return float(b)


def _epsilon(eps):
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating)) or not eps > 0:
        raise ValueError(f"epsilon: expected a positive number, got {eps!r}")
    return float(eps)


class _Scratch:
    def _scratch(self, p):
        key = (id(p), p.size, p.dtype)
        bufs = self.__dict__.setdefault("_scratch_bufs", {})
        b = bufs.get(key)
        if b is None:
            if len(bufs) > 64:
                bufs.clear()
            b = bufs[key] = np.empty_like(p)
        return b


class Adamax(_Scratch, Optimizer):
    """Adamax (Kingma & Ba, sec. 7), Keras 3: m = b1 m + (1 - b1) g; u = max(b2 u, |g|);
    p -= lr m / ((1 - b1^t) (u + epsilon)).

    >>> Adamax().get_config()["beta_2"]
    0.999
    """

    slots = ("m", "u")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2 = _beta("beta_1", beta_1), _beta("beta_2", beta_2)
        self.epsilon = _epsilon(epsilon)

    def _update(self, p, g, state, lr):
        self._decay(p, lr)
        m, u, t = state["m"], state["u"], p.dtype.type
        s = self._scratch(p)
        b1 = self.beta_1
        np.subtract(g, m, out=s)
        s *= t(1 - b1)
        m += s
        u *= t(self.beta_2)
        np.abs(g, out=s)
        np.maximum(u, s, out=u)
        np.add(u, t(self.epsilon), out=s)
        s *= t(1 - b1 ** self.iterations)
        np.divide(m, s, out=s)
        s *= t(lr)
        p -= s

    def get_config(self):
        c = super().get_config()
        c.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)
        return c


class Nadam(_Scratch, Optimizer):
    """Nadam (Dozat 2016), Keras 3: momentum schedule u_t = b1 (1 - 0.5 * 0.96^t),
    U_t = u_1 ... u_t; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
    m^ = u_{t+1} m / (1 - U_t u_{t+1}) + (1 - u_t) g / (1 - U_t); v^ = v / (1 - b2^t);
    p -= lr m^ / (sqrt(v^) + epsilon).

    >>> Nadam().get_config()["epsilon"]
    1e-07
    """

    slots = ("m", "v")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2 = _beta("beta_1", beta_1), _beta("beta_2", beta_2)
        self.epsilon = _epsilon(epsilon)
        self._u_product = (0, 1.0)  # (step, U_step), advanced once per step

    def _mu(self, t):
        return self.beta_1 * (1.0 - 0.5 * 0.96 ** t)

    def _product(self, t):
        k, prod = self._u_product
        if k > t:
            k, prod = 0, 1.0
        while k < t:
            k += 1
            prod *= self._mu(k)
        self._u_product = (k, prod)
        return prod

    def _update(self, p, g, state, lr):
        self._decay(p, lr)
        m, v, t = state["m"], state["v"], self.iterations
        ty = p.dtype.type
        u_t, u_next = self._mu(t), self._mu(t + 1)
        prod = self._product(t)
        s = self._scratch(p)
        np.subtract(g, m, out=s)
        s *= ty(1 - self.beta_1)
        m += s
        np.multiply(g, g, out=s)
        s -= v
        s *= ty(1 - self.beta_2)
        v += s
        # s = sqrt(v / (1 - b2^t)) + eps, then p -= lr * m^ / s
        np.multiply(v, ty(1.0 / (1.0 - self.beta_2 ** t)), out=s)
        np.sqrt(s, out=s)
        s += ty(self.epsilon)
        p -= (ty(lr * u_next / (1.0 - prod * u_next)) * m + ty(lr * (1.0 - u_t) / (1.0 - prod)) * g) / s

    def get_config(self):
        c = super().get_config()
        c.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)
        return c


class Lion(_Scratch, Optimizer):
    """Lion (Chen et al. 2023), Keras 3: p -= lr sign(b1 m + (1 - b1) g); m = b2 m + (1 - b2) g.
    Keras defaults lr 0.001, beta_1 0.9, beta_2 0.99 (the paper suggests a 3-10x smaller lr
    than AdamW's).

    >>> Lion().get_config()["beta_2"]
    0.99
    """

    slots = ("m",)
    _parameter_constraints = {**Optimizer._parameter_constraints,
                              "beta_1": [Interval(Real, 0, 1, closed="right")]}  # checked again at fit

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.99, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1 = _beta("beta_1", beta_1, lo_open=True)  # beta_1 = 0 would be signSGD (Keras refuses)
        self.beta_2 = _beta("beta_2", beta_2)

    def _update(self, p, g, state, lr):
        self._decay(p, lr)
        m, t = state["m"], p.dtype.type
        s = self._scratch(p)
        np.multiply(m, t(self.beta_1), out=s)
        s += t(1 - self.beta_1) * g
        np.sign(s, out=s)
        s *= t(lr)
        p -= s
        m *= t(self.beta_2)
        m += t(1 - self.beta_2) * g

    def get_config(self):
        c = super().get_config()
        c.update(beta_1=self.beta_1, beta_2=self.beta_2)
        return c
