"""Weight penalties added to the loss, Keras names and defaults.

``L2(l2)`` adds ``l2 * sum(w**2)`` (gradient ``2 * l2 * w``), ``L1(l1)`` adds
``l1 * sum(|w|)``, ``L1L2`` both. Per layer (``Dense(kernel_regularizer=L2(1e-4))``)
or model-wide (``model.compile(..., regularizer=L2(1e-4))``, applied to every
kernel). The penalty is part of the reported ``loss``; ``data_loss`` is without it.
The penalty is added after the backward pass, on the weights before the update; L1,
L2, L1L2 and BatchMeanL2 run inside the native training step (``fastnn.native_step``).

>>> import numpy as np, fastnn
>>> fastnn.regularizers.L2(0.5)(np.array([1.0, 2.0]))
2.5
"""
from __future__ import annotations

import numpy as np

from . import ops as _ops
from ._registry import resolve
from ._validate import Interval, Real, validate

_CONSTRAINTS = {"l1": [Interval(Real, 0, None, closed="left")], "l2": [Interval(Real, 0, None, closed="left")]}


class Regularizer:
    """penalty = reg(w); reg.add_gradient(w, grad) adds d penalty / dw to grad in place."""

    l1 = 0.0
    l2 = 0.0

    def __call__(self, w):
        """The penalty of w. A float32/float64 array's sums are ``ops.abs_sum`` and
        ``ops.sum_squares`` (float64, a fixed order: the native training step computes
        the same bits with the same kernels); other arrays, NumPy's."""
        w = np.asarray(w)
        core = w.dtype in (np.float32, np.float64)
        p = 0.0
        if self.l1:
            p += self.l1 * (_ops.abs_sum(w) if core else float(np.abs(w).sum()))
        if self.l2:
            f = w.ravel()
            p += self.l2 * (_ops.sum_squares(w) if core else float(np.dot(f, f)))
        return p

    def add_gradient(self, w, grad, scratch=None):
        """grad += l1 * sign(w) + 2 l2 w, with scratch (same shape) to avoid allocation."""
        t = w.dtype.type
        if scratch is None:
            scratch = np.empty_like(w)
        if self.l2:
            np.multiply(w, t(2 * self.l2), out=scratch)
            grad += scratch
        if self.l1:
            np.sign(w, out=scratch)
            scratch *= t(self.l1)
            grad += scratch

    _config = ("l1", "l2")  # the arguments get_config returns

    def _set(self, **penalties):
        validate(penalties, _CONSTRAINTS, type(self).__name__)
        for k, v in penalties.items():
            setattr(self, k, float(v))

    def get_config(self):
        return {k: getattr(self, k) for k in self._config}


class L1(Regularizer):
    """l1 * sum(|w|)."""

    _config = ("l1",)

    def __init__(self, l1=0.01):
        self._set(l1=l1)


class L2(Regularizer):
    """l2 * sum(w^2)."""

    _config = ("l2",)

    def __init__(self, l2=0.01):
        self._set(l2=l2)


class L1L2(Regularizer):
    """l1 * sum(|w|) + l2 * sum(w^2)."""

    def __init__(self, l1=0.0, l2=0.0):
        self._set(l1=l1, l2=l2)


class BatchMeanL2(Regularizer):
    """scikit-learn's MLP penalty: ``0.5 * alpha * sum(w**2) / batch_size`` (gradient
    ``alpha * w / batch_size``), where ``batch_size`` is the number of samples in the
    current mini-batch. The trainer does not tell a regularizer the batch size, so whoever
    trains sets the attribute ``batch_size`` before each step (``fastnn.sklearn`` does, from
    a callback; the last, smaller batch of an epoch included).

    This is the notes' ``(lambda / 2m) * sum ||W||^2`` with ``lambda = alpha`` and ``m``
    the mini-batch size. It is ``L2(0.5 * alpha / batch_size)`` for one fixed batch size.
    """

    def __init__(self, alpha=1e-4, batch_size=1):
        self.alpha = float(alpha)
        self.batch_size = batch_size

    @property
    def batch_size(self):
        return self._batch_size

    @batch_size.setter
    def batch_size(self, m):
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
            raise ValueError(f"batch_size: expected an int >= 1, got {m!r}")
        self._batch_size = int(m)

    @property
    def l2(self):
        return 0.5 * self.alpha / self._batch_size

    def get_config(self):
        return {"alpha": self.alpha, "batch_size": self._batch_size}


l1, l2, l1_l2 = L1, L2, L1L2
_BY_NAME = {"l1": L1, "l2": L2, "l1_l2": L1L2}
_CLASSES = {"L1": L1, "L2": L2, "L1L2": L1L2, "BatchMeanL2": BatchMeanL2}


def get(identifier):
    """A Regularizer from a name, a class, an instance, a serialized dict or None."""
    if identifier is None:
        return None
    return resolve(identifier, kind="regularizer", base=Regularizer, by_name=_BY_NAME, classes=_CLASSES,
                   expected="a Regularizer or None")


def serialize(reg):
    return None if reg is None else {"class_name": type(reg).__name__, "config": reg.get_config()}
