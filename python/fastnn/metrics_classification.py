"""Streaming classification metrics, Keras 3 names, defaults and formulas: ``Precision``,
``Recall``, ``AUC`` (ROC or PR, ``num_thresholds=200``, Keras's interpolation),
``TopKCategoricalAccuracy``, ``SparseTopKCategoricalAccuracy``, ``F1Score`` / ``FBetaScore``.

Each accumulates over batches: ``update_state(y_true, y_pred, sample_weight=None)``,
``result()``, ``reset_state()`` (the trainer's ``update``/``reset`` call the same). Threshold
metrics take probabilities; given logits (``from_logits=True`` on AUC, or the trainer's
logits path) they apply the sigmoid first. Integer class ids against a k-wide output are
one-hot encoded (Keras would refuse the shape mismatch). Re-exported by ``fastnn.metrics``.

>>> import numpy as np
>>> m = Precision(); m.update_state(np.array([1, 0, 1]), np.array([0.9, 0.8, 0.2]))
>>> m.result()
0.5
"""
from __future__ import annotations

import numpy as np

_EPS = 1e-7  # Keras's backend.epsilon()


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


class StreamingMetric:
    """Base: state reset by ``reset_state``; ``update``/``reset`` are the trainer's names."""

    name = "metric"
    needs_probabilities = False

    def __init__(self, name=None):
        if name is not None:
            self.name = str(name)
        self.reset_state()

    def update(self, y_true, y_pred, logits=False, sample_weight=None):
        self.update_state(y_true, y_pred, sample_weight, _logits=logits)

    def reset(self):
        self.reset_state()

    def _weights(self, sample_weight, n):
        if sample_weight is None:
            return np.ones(n)
        w = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
        if w.shape != (n,):
            raise ValueError(f"sample_weight: expected {n} weights (one per row), got shape {np.shape(sample_weight)}")
        return w

    def get_config(self):
        return {"name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _as_rows(y_true, y_pred):
    """(y, p) as float64 (n, k) arrays; class ids for a k-wide output are one-hot encoded."""
    p = np.asarray(y_pred, dtype=np.float64)
    if p.ndim == 1:
        p = p[:, None]
    p = p.reshape(p.shape[0], -1)
    y = np.asarray(y_true)
    if y.ndim == 2 and y.shape[1] == 1 and p.shape[1] > 1:
        y = y[:, 0]
    if y.ndim == 1 and p.shape[1] > 1:
        ids = y.astype(np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= p.shape[1] or np.any(ids != y)):
            raise ValueError(f"y_true: class ids must be whole numbers in [0, {p.shape[1]})")
        y = np.eye(p.shape[1])[ids]
    y = np.asarray(y, dtype=np.float64).reshape(p.shape[0], -1)
    if y.shape != p.shape:
        raise ValueError(f"y_true: expected shape {p.shape} like y_pred, got {np.shape(y_true)}")
    return y, p


class _Confusion(StreamingMetric):
    """tp/fp/tn/fn per threshold (``y_pred > threshold``), sample-weighted, flattened over labels
    (per label when ``_per_label``)."""

    needs_probabilities = True
    _per_label = False

    def _setup(self, thresholds, top_k, class_id):
        self.top_k = None if top_k is None else int(top_k)
        self.class_id = None if class_id is None else int(class_id)
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k: expected a positive int, got {top_k!r}")
        t = np.atleast_1d(np.asarray(0.5 if thresholds is None else thresholds, dtype=np.float64))
        if t.ndim != 1 or not np.all(np.isfinite(t)):
            raise ValueError(f"thresholds: expected a number or a list of numbers, got {thresholds!r}")
        if thresholds is None and self.top_k is not None:  # Keras 3: each row's top k count as predicted
            t = np.array([-np.inf])
        self._thr = np.sort(t)
        # as given, in plain floats (a config JSON can hold)
        self.thresholds = (None if thresholds is None else float(t[0]) if np.ndim(thresholds) == 0
                           else [float(v) for v in t])

    def reset_state(self):
        self.tp = self.fp = self.tn = self.fn = 0.0

    def _prepare(self, y_true, y_pred, sample_weight, logits):
        y, p = _as_rows(y_true, y_pred)
        if logits:
            p = _sigmoid(p)
        if y.size and (y.min() < 0 or y.max() > 1):
            raise ValueError(f"y_true: {type(self).__name__} expects labels in [0, 1], got values from "
                             f"{y.min()} to {y.max()}")
        if self.top_k is not None:  # Keras: predictions outside the row's top k are -inf
            k = min(self.top_k, p.shape[1])
            keep = np.argpartition(-p, k - 1, axis=1)[:, :k]
            q = np.full_like(p, -np.inf)
            np.put_along_axis(q, keep, np.take_along_axis(p, keep, 1), 1)
            p = q
        if self.class_id is not None:
            if not 0 <= self.class_id < p.shape[1]:
                raise ValueError(f"class_id: expected a class in [0, {p.shape[1]}), got {self.class_id}")
            y, p = y[:, self.class_id:self.class_id + 1], p[:, self.class_id:self.class_id + 1]
        w = np.broadcast_to(self._weights(sample_weight, p.shape[0])[:, None], p.shape)
        return y, p, w

    def update_state(self, y_true, y_pred, sample_weight=None, _logits=False):
        y, p, w = self._prepare(y_true, y_pred, sample_weight, _logits)
        axis = 0 if self._per_label else None
        # number of thresholds strictly below each prediction: p > thr[j] for j < idx
        idx = np.searchsorted(self._thr, p, side="left")
        T = len(self._thr)
        tp = np.zeros((T,) + (() if axis is None else (p.shape[1],)))
        fp = np.zeros_like(tp)
        if axis is None:
            for arr, lab in ((tp, y * w), (fp, (1 - y) * w)):
                hist = np.bincount(idx.ravel(), weights=lab.ravel(), minlength=T + 1)
                arr += np.cumsum(hist[::-1])[::-1][1:]
        else:
            for j in range(p.shape[1]):
                for arr, lab in ((tp, y[:, j] * w[:, j]), (fp, (1 - y[:, j]) * w[:, j])):
                    hist = np.bincount(idx[:, j], weights=lab, minlength=T + 1)
                    arr[:, j] += np.cumsum(hist[::-1])[::-1][1:]
        pos, neg = np.sum(y * w, axis=axis), np.sum((1 - y) * w, axis=axis)
        self.tp = self.tp + tp
        self.fp = self.fp + fp
        self.fn = self.fn + (pos - tp)
        self.tn = self.tn + (neg - fp)

    def _one(self, values):
        v = np.broadcast_to(np.asarray(values, dtype=np.float64), self._thr.shape)
        return float(v[0]) if np.ndim(self.thresholds) == 0 else [float(a) for a in v]


def _div(a, b):
    """Keras's divide_no_nan: 0 where the denominator is 0."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape), where=b != 0)


class Precision(_Confusion):
    """tp / (tp + fp) over every label of every row, ``y_pred > thresholds`` (default 0.5); ``top_k``
    keeps only each row's k largest predictions (without ``thresholds`` all k count as predicted, as
    Keras 3), ``class_id`` one column. 0 when nothing is predicted."""

    name = "precision"

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None):
        self._setup(thresholds, top_k, class_id)
        super().__init__(name)

    def result(self):
        return self._one(_div(self.tp, np.asarray(self.tp) + self.fp))

    def get_config(self):
        return {"name": self.name, "thresholds": self.thresholds, "top_k": self.top_k, "class_id": self.class_id}


class Recall(Precision):
    """tp / (tp + fn), arguments as :class:`Precision`."""

    name = "recall"

    def result(self):
        return self._one(_div(self.tp, np.asarray(self.tp) + self.fn))


_CURVES = ("ROC", "PR")
_SUMMATION = ("interpolation", "minoring", "majoring")


class AUC(_Confusion):
    """Area under the ROC or PR curve from ``num_thresholds`` confusion matrices (Keras 3):
    thresholds ``i / (num_thresholds - 1)`` for i = 1..num_thresholds-2 plus ``-1e-7`` and
    ``1 + 1e-7``; ROC by the trapezoidal rule over (FPR, TPR); PR with
    ``summation_method="interpolation"`` by Davis & Goadrich's interpolation (Keras's
    ``interpolate_pr_auc``). ``multi_label=True`` averages one curve per label; otherwise all
    labels are pooled. Close to, not equal to, scikit-learn's exact ``roc_auc_score`` (equal when
    the scores fall between the thresholds).
    """

    name = "auc"

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation", name=None,
                 thresholds=None, multi_label=False, from_logits=False):
        if thresholds is not None:
            t = sorted(float(v) for v in thresholds)
            if any(not 0 <= v <= 1 for v in t):
                raise ValueError(f"thresholds: expected values in [0, 1], got {thresholds!r}")
            num_thresholds = len(t) + 2
        else:
            if isinstance(num_thresholds, bool) or not isinstance(num_thresholds, (int, np.integer)) \
                    or num_thresholds <= 1:
                raise ValueError(f"num_thresholds: expected an int > 1, got {num_thresholds!r}")
            t = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        c = str(curve).upper()
        if c not in _CURVES:
            raise ValueError(f"curve: expected one of {', '.join(_CURVES)}, got {curve!r}")
        sm = str(summation_method).lower()
        if sm not in _SUMMATION:
            raise ValueError(f"summation_method: expected one of {', '.join(_SUMMATION)}, got {summation_method!r}")
        self.num_thresholds, self.curve, self.summation_method = int(num_thresholds), c, sm
        self.multi_label, self.from_logits = bool(multi_label), bool(from_logits)
        self._init_thresholds = None if thresholds is None else list(t)
        self._thr = np.array([0.0 - _EPS] + t + [1.0 + _EPS])
        self.thresholds, self.top_k, self.class_id = list(self._thr), None, None
        self._per_label = self.multi_label
        StreamingMetric.__init__(self, name)

    def update_state(self, y_true, y_pred, sample_weight=None, _logits=False):
        super().update_state(y_true, y_pred, sample_weight, _logits or self.from_logits)

    def _interpolate_pr(self):
        nt = self.num_thresholds
        tp, fp, fn = (np.asarray(a, dtype=np.float64) for a in (self.tp, self.fp, self.fn))
        dtp = tp[:nt - 1] - tp[1:]
        p = tp + fp
        dp = p[:nt - 1] - p[1:]
        slope = _div(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - slope * p[1:]
        ok = (p[:nt - 1] > 0) & (p[1:] > 0)
        ratio = np.where(ok, _div(p[:nt - 1], np.maximum(p[1:], 0)), 1.0)
        return _div(slope * (dtp + intercept * np.log(np.where(ratio > 0, ratio, 1.0))),
                    np.maximum(tp[1:] + fn[1:], 0))

    def result(self):
        if np.ndim(self.tp) == 0:  # nothing seen
            return 0.0
        nt = self.num_thresholds
        if self.curve == "PR" and self.summation_method == "interpolation":
            terms = self._interpolate_pr()
        else:
            recall = _div(self.tp, self.tp + self.fn)
            if self.curve == "ROC":
                x, y = _div(self.fp, self.fp + self.tn), recall
            else:
                x, y = recall, _div(self.tp, self.tp + self.fp)
            if self.summation_method == "interpolation":
                h = (y[:nt - 1] + y[1:]) / 2
            elif self.summation_method == "minoring":
                h = np.minimum(y[:nt - 1], y[1:])
            else:
                h = np.maximum(y[:nt - 1], y[1:])
            terms = (x[:nt - 1] - x[1:]) * h
        return float(np.mean(np.sum(terms, axis=0))) if self.multi_label else float(np.sum(terms))

    def get_config(self):
        """Keras's keys (less ``dtype``, ``num_labels``, ``label_weights``); ``thresholds``
        only when given, as Keras."""
        c = {"name": self.name, "num_thresholds": self.num_thresholds, "curve": self.curve,
             "summation_method": self.summation_method, "multi_label": self.multi_label,
             "from_logits": self.from_logits}
        if self._init_thresholds is not None:
            c["thresholds"] = list(self._init_thresholds)
        return c


class _Mean(StreamingMetric):
    """Weighted mean of a per-row value."""

    def reset_state(self):
        self._total, self._count = 0.0, 0.0

    def update_state(self, y_true, y_pred, sample_weight=None, _logits=False):
        v = self._values(y_true, np.asarray(y_pred, dtype=np.float64))
        w = self._weights(sample_weight, v.shape[0])
        self._total += float(np.dot(v, w))
        self._count += float(w.sum())

    def result(self):
        return self._total / self._count if self._count else 0.0


def _k(k):
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k: expected a positive int, got {k!r}")
    return int(k)


def _in_top_k(p, ids, k):
    """1.0 where the label's score is among the row's k largest (ties counted in, as tf.math.in_top_k)."""
    if p.ndim != 2:
        raise ValueError(f"y_pred: expected (batch, classes) scores, got shape {p.shape}")
    if ids.size and (ids.min() < 0 or ids.max() >= p.shape[1]):
        raise ValueError(f"y_true: class ids must be in [0, {p.shape[1]})")
    target = p[np.arange(p.shape[0]), ids]
    return (np.sum(p > target[:, None], axis=1) < k).astype(np.float64)


class TopKCategoricalAccuracy(_Mean):
    """Share of rows whose one-hot label's class is among the k highest scores (Keras default k=5)."""

    name = "top_k_categorical_accuracy"

    def __init__(self, k=5, name=None):
        self.k = _k(k)
        super().__init__(name)

    def _values(self, y, p):
        y = np.asarray(y)
        if y.shape != p.shape:
            raise ValueError(f"y_true: expected one-hot rows of shape {p.shape}, got {y.shape}")
        return _in_top_k(p, np.argmax(y, axis=1), self.k)

    def get_config(self):
        return {"name": self.name, "k": self.k}


class SparseTopKCategoricalAccuracy(TopKCategoricalAccuracy):
    """Share of rows whose integer label is among the k highest scores (Keras default k=5)."""

    name = "sparse_top_k_categorical_accuracy"

    def _values(self, y, p):
        y = np.asarray(y).reshape(-1)
        if y.shape[0] != p.shape[0]:
            raise ValueError(f"y_true: expected {p.shape[0]} class ids, got shape {y.shape}")
        ids = y.astype(np.int64)
        if np.any(ids != y):
            raise ValueError("y_true: class ids must be whole numbers")
        return _in_top_k(p, ids, self.k)


_AVERAGES = (None, "micro", "macro", "weighted")


class FBetaScore(StreamingMetric):
    """Keras 3's FBetaScore: per-class tp/fp/fn summed over batches; a prediction is positive where
    ``y_pred > threshold``, or, with ``threshold=None``, where it is its row's maximum.
    ``average``: None (one score per class, a list), "micro", "macro" or "weighted";
    precision, recall and F use Keras's ``+ 1e-7`` in the denominators."""

    name = "fbeta_score"
    needs_probabilities = True

    def __init__(self, average=None, beta=1.0, threshold=None, name=None):
        if average not in _AVERAGES:
            raise ValueError(f"average: expected one of {_AVERAGES}, got {average!r}")
        if isinstance(beta, bool) or not (np.isfinite(float(beta)) and float(beta) > 0):
            raise ValueError(f"beta: expected a positive number, got {beta!r}")
        if threshold is not None and not 0 <= float(threshold) <= 1:
            raise ValueError(f"threshold: expected a number in [0, 1] or None, got {threshold!r}")
        self.average, self.beta = average, float(beta)
        self.threshold = None if threshold is None else float(threshold)
        super().__init__(name)

    def reset_state(self):
        self.tp = self.fp = self.fn = self.support = 0.0

    def update_state(self, y_true, y_pred, sample_weight=None, _logits=False):
        y, p = _as_rows(y_true, y_pred)
        if _logits:
            p = _sigmoid(p)
        if self.threshold is None:
            # Keras: the row maximum, and never an all-zero row ([0, 0, 0] does not become [1, 1, 1])
            pred = ((p >= p.max(axis=1, keepdims=True)) & (np.abs(p) > 1e-9)).astype(np.float64)
        else:
            pred = (p > self.threshold).astype(np.float64)
        w = self._weights(sample_weight, p.shape[0])[:, None]
        axis = None if self.average == "micro" else 0
        self.tp = self.tp + np.sum(pred * y * w, axis=axis)
        self.fp = self.fp + np.sum(pred * (1 - y) * w, axis=axis)
        self.fn = self.fn + np.sum((1 - pred) * y * w, axis=axis)
        self.support = self.support + np.sum(y * w, axis=axis)

    def result(self):
        tp, fp, fn = (np.asarray(a, dtype=np.float64) for a in (self.tp, self.fp, self.fn))
        precision = tp / (tp + fp + _EPS)
        recall = tp / (tp + fn + _EPS)
        b2 = self.beta ** 2
        f = precision * recall / (b2 * precision + recall + _EPS) * (1 + b2)
        if self.average == "weighted":
            sup = np.asarray(self.support, dtype=np.float64)
            return float(np.sum(f * sup / (np.sum(sup) + _EPS)))
        if self.average is not None:
            return float(np.mean(f))
        return [float(v) for v in np.atleast_1d(f)]

    def get_config(self):
        return {"name": self.name, "average": self.average, "beta": self.beta, "threshold": self.threshold}


class F1Score(FBetaScore):
    """FBetaScore with beta = 1 (Keras 3's F1Score; ``average=None`` gives one score per class)."""

    name = "f1_score"

    def __init__(self, average=None, threshold=None, name=None):
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name)

    def get_config(self):
        c = super().get_config()
        del c["beta"]
        return c


CLASSES = {c.name: c for c in (Precision, Recall, AUC, TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy,
                               F1Score, FBetaScore)}
