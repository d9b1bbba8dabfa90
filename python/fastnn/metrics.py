"""Metrics accumulated over batches: accuracy (binary, categorical or sparse, chosen from the
loss and output width as Keras does), mse, mae, root_mean_squared_error, mape, msle, the
losses as metrics (binary/categorical/sparse_categorical_crossentropy, kl_divergence, hinge,
squared_hinge); and (``fastnn.metrics_classification``)
precision, recall, auc, top_k_categorical_accuracy, sparse_top_k_categorical_accuracy,
f1_score, fbeta_score.

>>> import numpy as np
>>> m = SparseCategoricalAccuracy(); m.update(np.array([1, 0]), np.array([[0.2, 0.8], [0.3, 0.7]]))
>>> m.result()
0.5
"""
from __future__ import annotations

import numpy as np


class Metric:
    """Running mean over the samples seen since ``reset()``."""

    name = "metric"

    def __init__(self, name=None):
        if name is not None:
            self.name = str(name)
        self.reset()

    def get_config(self):
        """The constructor's arguments (Keras's ``get_config``, less its ``dtype``: fastnn's
        metrics accumulate in float64); ``type(m).from_config(m.get_config())`` is ``m`` anew."""
        return {"name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def reset(self):
        self._total, self._count = 0.0, 0

    def update(self, y_true, y_pred, logits=False, sample_weight=None):
        """Adds a batch; with ``sample_weight`` (one weight per row: ``compile(weighted_metrics=)``)
        the mean becomes ``sum(w * value) / sum(w)`` over the rows seen, as Keras's."""
        if sample_weight is None:
            self._total += self._batch_sum(y_true, y_pred, logits)
            self._count += y_pred.shape[0]
            return
        w = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
        if w.shape != (y_pred.shape[0],):
            raise ValueError(f"sample_weight: expected {y_pred.shape[0]} weights (one per row), got shape "
                             f"{np.shape(sample_weight)}")
        self._total += float(np.dot(self._values(y_true, y_pred, logits), w))
        self._count += float(w.sum())

    def _batch_sum(self, y, p, logits):
        return float(self._values(y, p, logits).sum())

    def result(self):
        return self._total / self._count if self._count else float("nan")


def _rows(y, p):
    """(y, p) as float64 (n, k) arrays (y shaped like p)."""
    p = np.asarray(p, dtype=np.float64)
    p = p.reshape(p.shape[0], -1)
    return np.asarray(y, dtype=np.float64).reshape(p.shape), p


class BinaryAccuracy(Metric):
    """Share of outputs on the right side of ``threshold`` (a probability; on logits its logit,
    as sigmoid(z) > t exactly when z > log(t / (1 - t)))."""

    name = "binary_accuracy"  # Keras 3's default names ("accuracy" when compiled as "accuracy")
    needs_probabilities = True  # a fused sigmoid / softmax output: thresholded after the activation, as Keras

    def __init__(self, threshold=0.5, name=None):
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.integer, np.floating)) \
                or not np.isfinite(threshold):
            raise ValueError(f"threshold: expected a finite number, got {threshold!r}")
        self.threshold = float(threshold)
        super().__init__(name)

    def get_config(self):
        return {"name": self.name, "threshold": self.threshold}

    def _thr(self, logits):
        t = self.threshold
        if not logits:
            return t
        if t <= 0.0 or t >= 1.0:
            return np.inf if t >= 1.0 else -np.inf
        return float(np.log(t / (1.0 - t)))  # 0.0 exactly for the default 0.5

    def _batch_sum(self, y, p, logits):
        thr = self._thr(logits)
        return float(np.count_nonzero((p > thr) == (y > 0.5))) / (p.size / p.shape[0])

    def _values(self, y, p, logits):
        thr = self._thr(logits)
        y, p = _rows(y, p)
        return ((p > thr) == (y > 0.5)).mean(axis=1)


class CategoricalAccuracy(Metric):
    """Share of rows whose argmax matches the one-hot label's."""

    name = "categorical_accuracy"

    def _batch_sum(self, y, p, logits):
        return float(np.count_nonzero(np.argmax(p, axis=1) == np.argmax(y, axis=1)))

    def _values(self, y, p, logits):
        return (np.argmax(p, axis=1) == np.argmax(y, axis=1)).astype(np.float64)


class SparseCategoricalAccuracy(Metric):
    """Share of rows whose argmax equals the integer label."""

    name = "sparse_categorical_accuracy"

    def _batch_sum(self, y, p, logits):
        return float(np.count_nonzero(np.argmax(p, axis=1) == y))

    def _values(self, y, p, logits):
        return (np.argmax(p, axis=1) == np.asarray(y).reshape(-1)).astype(np.float64)


class MeanSquaredError(Metric):
    name = "mean_squared_error"
    needs_probabilities = True

    def _batch_sum(self, y, p, logits):
        d = p - y
        return float(np.einsum("ij,ij->", d, d)) / p.shape[1]

    def _values(self, y, p, logits):
        y, p = _rows(y, p)
        return ((p - y) ** 2).mean(axis=1)


class MeanAbsoluteError(Metric):
    name = "mean_absolute_error"
    needs_probabilities = True

    def _batch_sum(self, y, p, logits):
        return float(np.abs(p - y).sum()) / p.shape[1]

    def _values(self, y, p, logits):
        y, p = _rows(y, p)
        return np.abs(p - y).mean(axis=1)


class RootMeanSquaredError(MeanSquaredError):
    """sqrt of the mean squared error over every output of every sample seen (Keras)."""

    name = "root_mean_squared_error"

    def result(self):
        return float(np.sqrt(super().result()))


class MeanAbsolutePercentageError(Metric):
    """100 * mean |y - p| / max(|y|, 1e-7) (Keras)."""

    name = "mean_absolute_percentage_error"
    needs_probabilities = True

    def _values(self, y, p, logits):
        y, p = _rows(y, p)
        return 100.0 * (np.abs(y - p) / np.maximum(np.abs(y), 1e-7)).mean(axis=1)


class MeanSquaredLogarithmicError(Metric):
    """mean (log(max(p, 1e-7) + 1) - log(max(y, 1e-7) + 1))^2 (Keras)."""

    name = "mean_squared_logarithmic_error"
    needs_probabilities = True

    def _values(self, y, p, logits):
        y, p = _rows(y, p)
        d = np.log1p(np.maximum(p, 1e-7)) - np.log1p(np.maximum(y, 1e-7))
        return (d * d).mean(axis=1)


class _LossMetric(Metric):
    """A loss as a metric (Keras: ``metrics=["sparse_categorical_crossentropy"]``): the mean
    over the samples seen of the loss, batch by batch. It takes what the trainer gives the
    metrics that need probabilities: probabilities when the output layer's activation is
    fused into the loss (the activation applied to the logits), the logits themselves for a
    model whose loss says ``from_logits=True`` (Keras would read them as probabilities)."""

    needs_probabilities = True
    loss_class = None

    def __init__(self, name=None):
        from . import losses
        self.loss = getattr(losses, self.loss_class)()
        super().__init__(name)

    def _prepare(self, y, p):
        p = np.asarray(p)
        if p.ndim == 1:
            p = p[:, None]
        if self.loss.class_ids:
            return np.asarray(y).reshape(-1).astype(np.int64), p
        return np.asarray(y, dtype=p.dtype).reshape(p.shape), p

    def _batch_sum(self, y, p, logits):
        y, p = self._prepare(y, p)
        return self.loss.value_and_grad(p, y, logits)[0] * p.shape[0]

    def _values(self, y, p, logits):
        from ._weights import per_sample_loss
        y, p = self._prepare(y, p)
        return per_sample_loss(self.loss, p, y, logits)


def _loss_metric(cls, name):
    return type(cls, (_LossMetric,), {"name": name, "loss_class": cls, "__module__": __name__,
                                      "__doc__": f"The {name} loss (fastnn.losses.{cls}) as a metric."})


(BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy, KLDivergence, Hinge,
 SquaredHinge) = (_loss_metric(c, n) for c, n in (
     ("BinaryCrossentropy", "binary_crossentropy"), ("CategoricalCrossentropy", "categorical_crossentropy"),
     ("SparseCategoricalCrossentropy", "sparse_categorical_crossentropy"), ("KLDivergence", "kl_divergence"),
     ("Hinge", "hinge"), ("SquaredHinge", "squared_hinge")))


_MORE = {"root_mean_squared_error": RootMeanSquaredError, "rmse": RootMeanSquaredError,
         "mean_absolute_percentage_error": MeanAbsolutePercentageError, "mape": MeanAbsolutePercentageError,
         "mean_squared_logarithmic_error": MeanSquaredLogarithmicError, "msle": MeanSquaredLogarithmicError,
         "binary_crossentropy": BinaryCrossentropy, "categorical_crossentropy": CategoricalCrossentropy,
         "sparse_categorical_crossentropy": SparseCategoricalCrossentropy, "kl_divergence": KLDivergence,
         "kld": KLDivergence, "hinge": Hinge, "squared_hinge": SquaredHinge}


from .metrics_classification import (AUC, F1Score, FBetaScore, Precision, Recall,  # noqa: E402,F401
                                     SparseTopKCategoricalAccuracy, StreamingMetric, TopKCategoricalAccuracy)
from .metrics_classification import CLASSES as _STREAMING  # noqa: E402

KNOWN = ("accuracy", "acc", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
         "mse", "mean_squared_error", "mae", "mean_absolute_error") + tuple(_STREAMING) + tuple(_MORE)


def with_weighted(metrics, weighted, loss_name, output_width):
    """``metrics`` and then the ``weighted`` ones (``compile(weighted_metrics=...)``: fed the
    sample weights, ``_weighted`` set), each named as its metric, or ``weighted_<name>`` when
    one before has that name (Keras 3)."""
    names = {m.name for m in metrics}
    out = list(metrics)
    for spec in weighted:
        m = own(spec, loss_name, output_width)
        if m.name in names:
            m.name = "weighted_" + m.name
        m._weighted = True
        names.add(m.name)
        out.append(m)
    return out


def own(identifier, loss_name, output_width):
    """``get``, but a metric object given is copied (fresh state), so that each fit, evaluate
    or validation pass starts from zero (never from the counts another pass left in the
    object compile was given) and the model renames and tags its own metrics
    (``weighted_<name>``, ``<output>_<name>``), never that object, which a later call or a
    saved file would see renamed again."""
    if isinstance(identifier, (Metric, StreamingMetric)):
        import copy
        m = copy.deepcopy(identifier)
        m.reset()
        return m
    return get(identifier, loss_name, output_width)


def get(identifier, loss_name, output_width):
    """A Metric from a name; "accuracy" picks binary / categorical / sparse like Keras."""
    if isinstance(identifier, (Metric, StreamingMetric)):
        return identifier
    if not isinstance(identifier, str):
        raise TypeError(f"metrics: expected metric names ({', '.join(KNOWN)}), got {type(identifier).__name__}")
    if identifier not in KNOWN:
        raise ValueError(f"metrics: unknown metric {identifier!r}; known: {', '.join(KNOWN)}")
    if identifier in ("accuracy", "acc"):
        if loss_name == "sparse_categorical_crossentropy":
            m = SparseCategoricalAccuracy()
        elif loss_name == "categorical_crossentropy":
            m = CategoricalAccuracy()
        elif loss_name == "binary_crossentropy" or output_width == 1:
            m = BinaryAccuracy()
        else:
            m = CategoricalAccuracy()
        m.name = identifier
        return m
    if identifier in _STREAMING:  # Keras defaults (F1Score: average=None, one score per class)
        return _STREAMING[identifier]()
    if identifier in _MORE:
        m = _MORE[identifier]()
        m.name = identifier
        return m
    cls = {"binary_accuracy": BinaryAccuracy, "categorical_accuracy": CategoricalAccuracy,
           "sparse_categorical_accuracy": SparseCategoricalAccuracy, "mse": MeanSquaredError,
           "mean_squared_error": MeanSquaredError, "mae": MeanAbsoluteError,
           "mean_absolute_error": MeanAbsoluteError}[identifier]
    m = cls()
    m.name = identifier
    return m
