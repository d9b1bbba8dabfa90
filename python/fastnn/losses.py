"""Losses: mean over the batch, with the gradient with respect to the model output.

Names as in Keras: ``"mse"`` / ``"mean_squared_error"``, ``"mae"``,
``"binary_crossentropy"``, ``"categorical_crossentropy"``,
``"sparse_categorical_crossentropy"``, ``"huber"``, ``"hinge"``, ``"squared_hinge"``,
``"kl_divergence"`` (``"kld"``); ``label_smoothing`` on the binary and categorical
cross-entropies (not on the sparse one, as in Keras 3). When the output layer ends in softmax
(sigmoid) and the loss is (sparse) categorical (binary) cross-entropy, the model
skips the output activation in training and calls the fused, numerically
stable kernel on the logits; the result is the same loss. With ``from_logits=True`` the
output layer gives raw scores and every cross-entropy uses the fused kernel
(``ops.softmax_cross_entropy``, ``ops.binary_cross_entropy_with_logits``).
``Model.compile`` refuses a cross-entropy without ``from_logits`` after an output that
cannot give probabilities (a linear / relu / ... output, softmax over one unit, softmax
vs sigmoid mismatches), and ``from_logits=True`` after softmax or sigmoid (see
``fastnn._output_check``).

>>> import numpy as np, fastnn
>>> fastnn.losses.get("mse")(np.array([[1.0], [0.0]]), np.array([[0.5], [0.5]]))
0.25
"""
from __future__ import annotations

import numpy as np

from . import ops as _ops
from ._registry import resolve

_EPS = 1e-7  # probabilities are clipped to [eps, 1 - eps], as Keras does


class Loss:
    """Base: ``loss(y_true, y_pred) -> float``; ``value_and_grad(pred, y, logits) -> (loss, dpred)``."""

    name = "loss"
    fuses_with = None  # output activation whose logits the fused kernel takes
    from_logits = False
    class_ids = False  # targets are integer class ids, not rows like the output

    def __init__(self):
        """No arguments: Keras's ``reduction`` (only its default, sum_over_batch_size, is computed)
        and ``name`` are refused by name (TypeError), not with "takes no arguments"."""

    def __call__(self, y_true, y_pred):
        y_pred = np.asarray(y_pred, dtype=np.float64)
        if y_pred.ndim == 1:
            y_pred = y_pred[:, None]
        y_true = np.asarray(y_true)
        if not self.class_ids:
            y_true = y_true.astype(np.float64).reshape(y_pred.shape)
        return self.value_and_grad(y_pred, y_true, self.from_logits)[0]

    def prepare_targets(self, y, n, output_shape, dtype=np.float32, what="y"):
        """``y`` checked against ``n`` samples and a model output of feature shape
        ``output_shape``, as a C-contiguous array the loss takes (``dtype``, or int64 class
        ids). Raises a ValueError / TypeError naming ``what``; ``y`` is never modified."""
        if y is None:
            raise ValueError(f"{what}: expected targets, got None")
        y = np.asarray(y)
        if y.shape[0:1] != (n,):
            raise ValueError(f"{what}: expected {n} targets (one per row of x), got {y.shape[0] if y.ndim else 0} "
                             f"(shape {y.shape}): x and y lengths differ")
        if not (np.issubdtype(y.dtype, np.number) or y.dtype == np.bool_):
            raise TypeError(f"{what}: expected numbers, got an array of dtype {y.dtype}")
        if np.issubdtype(y.dtype, np.floating) and not np.isfinite(y).all():
            raise ValueError(f"{what}: contains NaN or infinity")
        return self._targets(y, n, int(output_shape[-1]), dtype, what)

    def _targets(self, y, n, width, dtype, what):
        """Targets shaped like the output: (n, width) rows (a 1-D y for one output unit)."""
        if y.ndim == 1 and width == 1:
            y = y[:, None]
        self._check_rank(y, n, width, what)
        if y.shape[1:] != (width,):
            raise ValueError(f"{what}: expected targets of shape ({n}, {width}) for an output layer of "
                             f"{width} units, got {y.shape}")
        y = np.ascontiguousarray(y, dtype=dtype)
        self._check_range(y, what)
        return y

    def _check_rank(self, y, n, width, what):
        pass

    def _check_range(self, y, what):
        pass

    def value_and_grad(self, pred, y, logits):
        raise NotImplementedError

    def get_config(self):
        return {}


class _ProbabilityTargets:
    """Mixin: targets are probabilities, in [0, 1]; predictions are probabilities, or logits
    with ``from_logits=True``."""

    def __init__(self, from_logits=False):
        self.from_logits = bool(from_logits)

    def get_config(self):
        return {"from_logits": self.from_logits}

    def _check_range(self, y, what):
        if y.min() < 0 or y.max() > 1:
            raise ValueError(f"{what}: labels out of range: {self.name} expects targets in [0, 1], "
                             f"got values from {y.min()} to {y.max()}")


def _smoothing(value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not 0 <= float(value) <= 1:
        raise ValueError(f"label_smoothing: expected a number in [0, 1], got {value!r}")
    return float(value)


def _with_smoothing(config, label_smoothing):
    """The config, with label_smoothing only when set (older saved files stay identical)."""
    if label_smoothing:
        config["label_smoothing"] = label_smoothing
    return config


class _SmoothedTargets(_ProbabilityTargets):
    """Probability targets with Keras's ``label_smoothing``: y * (1 - ls) + ls / classes, classes
    2 for binary targets, else the rows' width."""

    _binary = False

    def __init__(self, from_logits=False, label_smoothing=0.0):
        super().__init__(from_logits)
        self.label_smoothing = _smoothing(label_smoothing)

    def get_config(self):
        return _with_smoothing(super().get_config(), self.label_smoothing)

    def _smoothed(self, y):
        """y as the loss's kernels take it (every step computing this loss smooths through here)."""
        ls = self.label_smoothing
        return y * (1.0 - ls) + ls / (2 if self._binary else y.shape[-1]) if ls else y


class MeanSquaredError(Loss):
    """mean((pred - y)^2) over all elements."""

    name = "mean_squared_error"

    def value_and_grad(self, pred, y, logits=False):
        return _ops.mean_squared_error(pred, y)


class MeanAbsoluteError(Loss):
    """mean(|pred - y|) over all elements (gradient sign(pred - y) / size). A float32/float64
    difference's sum is ``ops.abs_sum`` (float64, a fixed order: the native training step
    computes the same bits with the same kernel); others, NumPy's mean."""

    name = "mean_absolute_error"

    def value_and_grad(self, pred, y, logits=False):
        d = pred - y
        if d.dtype in (np.float32, np.float64) and d.size:
            loss = _ops.abs_sum(d) / d.size
        else:
            loss = float(np.abs(d).mean())
        np.sign(d, out=d)
        d *= d.dtype.type(1.0 / d.size)
        return loss, d


class BinaryCrossentropy(_SmoothedTargets, Loss):
    """-mean(y log p + (1 - y) log(1 - p)); ``from_logits=True`` takes p = sigmoid(z)."""

    name = "binary_crossentropy"
    fuses_with = "sigmoid"
    _binary = True

    def value_and_grad(self, pred, y, logits=False):
        y = self._smoothed(y)
        if logits:
            return _ops.binary_cross_entropy_with_logits(pred, y)
        t = pred.dtype.type
        p = np.clip(pred, _EPS, 1 - _EPS)
        loss = -float(np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
        grad = ((p - y) / (p * (1 - p)) / t(pred.size)).astype(pred.dtype)
        grad[(pred < _EPS) | (pred > 1 - _EPS)] = 0  # clipped: flat
        return loss, grad


class CategoricalCrossentropy(_SmoothedTargets, Loss):
    """-mean over rows of sum(y log p), y one-hot (or probability) rows; from softmax logits
    with ``from_logits=True`` or a softmax output layer (fused)."""

    name = "categorical_crossentropy"
    fuses_with = "softmax"

    def value_and_grad(self, pred, y, logits=False):
        y = self._smoothed(y)
        if logits:
            return _ops.softmax_cross_entropy(pred, y)
        m = pred.shape[0]
        p = np.clip(pred, _EPS, 1 - _EPS)
        loss = -float((y * np.log(p)).sum() / m)
        grad = (-y / p / m).astype(pred.dtype)
        grad[(pred < _EPS) | (pred > 1 - _EPS)] = 0
        return loss, grad

    def _check_rank(self, y, n, width, what):
        if y.ndim == 1:
            raise ValueError(f"{what}: categorical_crossentropy expects one-hot rows of shape ({n}, {width}), "
                             f"got {y.shape}; for integer class ids use sparse_categorical_crossentropy")


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """Categorical cross-entropy with integer class ids as labels."""

    name = "sparse_categorical_crossentropy"
    class_ids = True

    def __init__(self, from_logits=False):  # no label_smoothing: Keras 3 has none for sparse labels
        super().__init__(from_logits)

    def get_config(self):
        return {"from_logits": self.from_logits}

    def _targets(self, y, n, width, dtype, what):
        """Class ids in [0, width) of shape (n,) (or (n, 1)), as int64."""
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise ValueError(f"{what}: sparse_categorical_crossentropy expects integer class ids of shape "
                             f"({n},), got {y.shape}; for one-hot rows use categorical_crossentropy")
        if not np.issubdtype(y.dtype, np.integer):
            if np.any(y != np.floor(y)):
                raise ValueError(f"{what}: class ids must be whole numbers")
        lo, hi = y.min(), y.max()
        if lo < 0 or hi >= width:
            raise ValueError(f"{what}: labels out of range for the output layer: expected class ids in "
                             f"[0, {width}), got values from {lo} to {hi}")
        return np.ascontiguousarray(y, dtype=np.int64)

    def value_and_grad(self, pred, y, logits=False):
        if logits:
            return _ops.softmax_cross_entropy(pred, y)
        m = pred.shape[0]
        rows = np.arange(m)
        py = pred[rows, y]
        p = np.clip(py, _EPS, 1 - _EPS)
        loss = -float(np.log(p).sum() / m)
        g = -1.0 / p / m
        g[(py < _EPS) | (py > 1 - _EPS)] = 0
        grad = np.zeros_like(pred)
        grad[rows, y] = g
        return loss, grad


class Huber(Loss):
    """Keras's Huber: mean of ``0.5 e^2`` where ``|e| <= delta``, ``delta |e| - 0.5 delta^2``
    elsewhere, e = pred - y (gradient clip(e, -delta, delta) / size).

    >>> import numpy as np
    >>> Huber(delta=1.0)(np.array([[0.0, 0.0]]), np.array([[0.5, 3.0]]))
    1.3125
    """

    name = "huber"

    def __init__(self, delta=1.0):
        if isinstance(delta, bool) or not (np.isfinite(float(delta)) and float(delta) > 0):
            raise ValueError(f"delta: expected a positive number, got {delta!r}")
        self.delta = float(delta)

    def value_and_grad(self, pred, y, logits=False):
        e = pred - y
        a = np.abs(e)
        d = self.delta
        per = np.where(a <= d, 0.5 * e * e, d * a - 0.5 * d * d)  # >= 0: abs_sum is its sum
        # float32/float64: ops.abs_sum (a fixed order, as the native training step sums it)
        loss = _ops.abs_sum(per) / per.size if per.dtype in (np.float32, np.float64) and per.size \
            else float(np.mean(per))
        np.clip(e, -d, d, out=e)
        e *= e.dtype.type(1.0 / e.size)
        return loss, e

    def get_config(self):
        return {"delta": self.delta}


def _hinge_labels(y):
    """Keras: labels all in {0, 1} (over the batch) become -1/1; others are used as given."""
    return 2.0 * y - 1.0 if np.all((y == 0) | (y == 1)) else y


class Hinge(Loss):
    """mean(max(1 - y * pred, 0)), labels -1/1 (0/1 labels converted, as Keras)."""

    name = "hinge"

    def value_and_grad(self, pred, y, logits=False):
        y = _hinge_labels(y)
        margin = 1.0 - y * pred
        loss = float(np.mean(np.maximum(margin, 0)))
        grad = np.where(margin > 0, -y, 0.0).astype(pred.dtype) / pred.dtype.type(pred.size)
        return loss, grad


class SquaredHinge(Loss):
    """mean(max(1 - y * pred, 0)^2), labels -1/1 (0/1 labels converted, as Keras)."""

    name = "squared_hinge"

    def value_and_grad(self, pred, y, logits=False):
        y = _hinge_labels(y)
        h = np.maximum(1.0 - y * pred, 0)
        loss = float(np.mean(h * h))
        grad = (-2.0 * y * h).astype(pred.dtype) / pred.dtype.type(pred.size)
        return loss, grad


class KLDivergence(_ProbabilityTargets, Loss):
    """Mean over rows of sum(y log(y / p)), y and p clipped to [1e-7, 1] (Keras); targets must
    be probabilities (refused otherwise, where Keras would clip silently)."""

    name = "kl_divergence"

    def value_and_grad(self, pred, y, logits=False):
        m = pred.shape[0]
        t = np.clip(y, _EPS, 1)
        p = np.clip(pred, _EPS, 1)
        loss = float(np.sum(t * np.log(t / p)) / m)
        grad = (-t / p / m).astype(pred.dtype)
        grad[(pred < _EPS) | (pred > 1)] = 0  # clipped: flat
        return loss, grad


_BY_NAME = {
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "huber": Huber, "hinge": Hinge, "squared_hinge": SquaredHinge,
    "kl_divergence": KLDivergence, "kld": KLDivergence,
}
_CLASSES = {c.__name__: c for c in _BY_NAME.values()}


def get(identifier):
    """A Loss from a name, a class, an instance or a serialized dict."""
    return resolve(identifier, kind="loss", base=Loss, by_name=_BY_NAME, classes=_CLASSES, expected="a Loss")


def serialize(loss):
    return {"class_name": type(loss).__name__, "config": loss.get_config()}
