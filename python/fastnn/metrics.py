"""Metrics accumulated over batches: accuracy (binary, categorical or sparse, chosen from the
loss and output width as Keras does), mse, mae; and (``fastnn.metrics_classification``)
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

    def __init__(self):
        self.reset()

    def reset(self):
        self._total, self._count = 0.0, 0

    def update(self, y_true, y_pred, logits=False):
        self._total += self._batch_sum(y_true, y_pred, logits)
        self._count += y_pred.shape[0]

    def result(self):
        return self._total / self._count if self._count else float("nan")


class BinaryAccuracy(Metric):
    """Share of outputs on the right side of 0.5 (0 for logits)."""

    name = "accuracy"

    def __init__(self, threshold=0.5):
        self.threshold = threshold
        super().__init__()

    def _batch_sum(self, y, p, logits):
        thr = 0.0 if logits else self.threshold
        return float(np.count_nonzero((p > thr) == (y > 0.5))) / (p.size / p.shape[0])


class CategoricalAccuracy(Metric):
    """Share of rows whose argmax matches the one-hot label's."""

    name = "accuracy"

    def _batch_sum(self, y, p, logits):
        return float(np.count_nonzero(np.argmax(p, axis=1) == np.argmax(y, axis=1)))


class SparseCategoricalAccuracy(Metric):
    """Share of rows whose argmax equals the integer label."""

    name = "accuracy"

    def _batch_sum(self, y, p, logits):
        return float(np.count_nonzero(np.argmax(p, axis=1) == y))


class MeanSquaredError(Metric):
    name = "mse"
    needs_probabilities = True

    def _batch_sum(self, y, p, logits):
        d = p - y
        return float(np.einsum("ij,ij->", d, d)) / p.shape[1]


class MeanAbsoluteError(Metric):
    name = "mae"
    needs_probabilities = True

    def _batch_sum(self, y, p, logits):
        return float(np.abs(p - y).sum()) / p.shape[1]


from .metrics_classification import (AUC, F1Score, FBetaScore, Precision, Recall,  # noqa: E402,F401
                                     SparseTopKCategoricalAccuracy, StreamingMetric, TopKCategoricalAccuracy)
from .metrics_classification import CLASSES as _STREAMING  # noqa: E402

KNOWN = ("accuracy", "acc", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
         "mse", "mean_squared_error", "mae", "mean_absolute_error") + tuple(_STREAMING)


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
    cls = {"binary_accuracy": BinaryAccuracy, "categorical_accuracy": CategoricalAccuracy,
           "sparse_categorical_accuracy": SparseCategoricalAccuracy, "mse": MeanSquaredError,
           "mean_squared_error": MeanSquaredError, "mae": MeanAbsoluteError,
           "mean_absolute_error": MeanAbsoluteError}[identifier]
    m = cls()
    m.name = identifier
    return m
