"""Precision, Recall, AUC, top-k accuracy, F1: streamed over batches, compared with scikit-learn
(and, for AUC, a float64 NumPy twin of Keras's thresholded formula) on the same data."""
import numpy as np
import pytest

import fastnn
from fastnn import metrics as M

sk = pytest.importorskip("sklearn.metrics")

rng = np.random.default_rng(0)
N = 500
YB = (rng.uniform(size=N) < 0.4).astype(float)
PB = np.clip(0.35 * YB + rng.uniform(size=N) * 0.65, 0, 1)
W = rng.uniform(0.1, 2.0, size=N)
K = 6
YC = rng.integers(0, K, N)
PC = rng.dirichlet(np.ones(K), size=N) + 0.3 * np.eye(K)[YC]
PC /= PC.sum(1, keepdims=True)


def _stream(metric, y, p, w=None, batch=64):
    metric.reset_state()
    for i in range(0, len(y), batch):
        metric.update_state(y[i:i + batch], p[i:i + batch], None if w is None else w[i:i + batch])
    return metric.result()


@pytest.mark.parametrize("w", [None, W])
def test_precision_recall_vs_sklearn(w):
    pred = (PB > 0.5).astype(int)
    assert _stream(M.Precision(), YB, PB, w) == pytest.approx(sk.precision_score(YB, pred, sample_weight=w), rel=1e-12)
    assert _stream(M.Recall(), YB, PB, w) == pytest.approx(sk.recall_score(YB, pred, sample_weight=w), rel=1e-12)
    thr = [0.3, 0.7]
    got = _stream(M.Precision(thresholds=thr), YB, PB, w)
    assert got == pytest.approx([sk.precision_score(YB, PB > t, sample_weight=w) for t in thr], rel=1e-12)
    onehot = np.eye(K)[YC]
    got = _stream(M.Recall(class_id=2), onehot, PC, w)
    assert got == pytest.approx(sk.recall_score(YC == 2, PC[:, 2] > 0.5, sample_weight=w), rel=1e-12)
    top1 = (PC == PC.max(1, keepdims=True))  # top_k=1 then > 0.5 (Keras semantics)
    got = _stream(M.Precision(top_k=1, thresholds=0.2), onehot, PC, w)
    assert got == pytest.approx(sk.precision_score(onehot.ravel(), (top1 & (PC > 0.2)).ravel(),
                                                   sample_weight=None if w is None else np.repeat(w, K)), rel=1e-12)
    assert M.Precision().result() == 0.0  # nothing seen: 0, as Keras's divide_no_nan


def keras_auc_twin(y, p, nt=200, curve="ROC"):
    thr = np.array([-1e-7] + [(i + 1) / (nt - 1) for i in range(nt - 2)] + [1 + 1e-7])
    pos = p[None, :] > thr[:, None]
    tp, fp = (pos & (y == 1)).sum(1).astype(float), (pos & (y == 0)).sum(1).astype(float)
    fn, tn = (y == 1).sum() - tp, (y == 0).sum() - fp
    if curve == "ROC":
        x, yy = fp / (fp + tn), tp / (tp + fn)
        return float(np.sum((x[:-1] - x[1:]) * (yy[:-1] + yy[1:]) / 2))
    dtp = tp[:-1] - tp[1:]
    pp = tp + fp
    dp = pp[:-1] - pp[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(dp > 0, dtp / np.where(dp > 0, dp, 1), 0.0)
        inter = tp[1:] - slope * pp[1:]
        ratio = np.where((pp[:-1] > 0) & (pp[1:] > 0), pp[:-1] / np.where(pp[1:] > 0, pp[1:], 1), 1.0)
        den = tp[1:] + fn[1:]
        inc = np.where(den > 0, slope * (dtp + inter * np.log(ratio)) / np.where(den > 0, den, 1), 0.0)
    return float(inc.sum())


@pytest.mark.parametrize("curve", ["ROC", "PR"])
def test_auc_vs_keras_twin_and_sklearn(curve):
    got = _stream(M.AUC(curve=curve), YB, PB)
    assert got == pytest.approx(keras_auc_twin(YB, PB, curve=curve), rel=1e-12)
    exact = sk.roc_auc_score(YB, PB) if curve == "ROC" else sk.average_precision_score(YB, PB)
    assert got == pytest.approx(exact, abs=0.01)  # 200 thresholds: an approximation of the exact curve
    # scores between the thresholds: the 200-threshold ROC curve is the exact one
    q = (np.floor(PB * 199) + 0.5) / 199
    if curve == "ROC":
        assert _stream(M.AUC(), YB, q) == pytest.approx(sk.roc_auc_score(YB, q), rel=1e-12)
    w_auc = _stream(M.AUC(curve=curve, num_thresholds=1000), YB, q, W)
    exact_w = (sk.roc_auc_score if curve == "ROC" else sk.average_precision_score)(YB, q, sample_weight=W)
    assert w_auc == pytest.approx(exact_w, abs=0.01)


def test_auc_multi_label_and_logits():
    y = np.eye(K)[YC]
    got = _stream(M.AUC(multi_label=True), y, PC)
    assert got == pytest.approx(np.mean([keras_auc_twin(y[:, j], PC[:, j]) for j in range(K)]), rel=1e-12)
    z = np.log(PB / (1 - PB + 1e-12) + 1e-12)
    assert _stream(M.AUC(from_logits=True), YB, z) == pytest.approx(_stream(M.AUC(), YB, PB), abs=1e-3)


@pytest.mark.parametrize("k", [1, 3])
def test_top_k_vs_sklearn(k):
    expect = sk.top_k_accuracy_score(YC, PC, k=k, labels=np.arange(K))
    assert _stream(M.SparseTopKCategoricalAccuracy(k=k), YC, PC) == pytest.approx(expect, rel=1e-12)
    assert _stream(M.TopKCategoricalAccuracy(k=k), np.eye(K)[YC], PC) == pytest.approx(expect, rel=1e-12)
    w = sk.top_k_accuracy_score(YC, PC, k=k, labels=np.arange(K), sample_weight=W)
    assert _stream(M.SparseTopKCategoricalAccuracy(k=k), YC, PC, W) == pytest.approx(w, rel=1e-12)
    assert M.TopKCategoricalAccuracy().k == 5


@pytest.mark.parametrize("average", [None, "micro", "macro", "weighted"])
def test_f1_vs_sklearn(average):
    got = _stream(M.F1Score(average=average), np.eye(K)[YC], PC)
    expect = sk.f1_score(YC, PC.argmax(1), average=average)
    np.testing.assert_allclose(got, expect, rtol=1e-5, atol=1e-6)  # Keras's +1e-7 in the denominators
    got = _stream(M.F1Score(average=average, threshold=0.3), np.eye(K)[YC], PC, W)
    expect = sk.f1_score(np.eye(K)[YC], (PC > 0.3).astype(int), average=average, sample_weight=W)
    np.testing.assert_allclose(got, expect, rtol=1e-5, atol=1e-6)
    f2 = _stream(M.FBetaScore(average="macro", beta=2.0), np.eye(K)[YC], PC)
    assert f2 == pytest.approx(sk.fbeta_score(YC, PC.argmax(1), beta=2.0, average="macro"), rel=1e-5)


def test_in_fit_and_evaluate_by_name_and_config():
    x = rng.normal(size=(120, 4)).astype(np.float32)
    y = (x[:, 0] + 0.3 * x[:, 1] > 0).astype(np.float32)
    m = fastnn.Sequential([fastnn.layers.Dense(1, activation="sigmoid", input_dim=4)], dtype="float64")
    m.compile(fastnn.optimizers.SGD(learning_rate=0.5), "binary_crossentropy", metrics=["precision", "recall", "auc"])
    h = m.fit(x, y, batch_size=32, epochs=2, verbose=0)
    assert {"precision", "recall", "auc"} <= set(h.history)
    logs = m.evaluate(x, y, return_dict=True, batch_size=50)
    p = m.predict(x)[:, 0]
    assert logs["precision"] == pytest.approx(sk.precision_score(y, p > 0.5), rel=1e-12)
    assert logs["recall"] == pytest.approx(sk.recall_score(y, p > 0.5), rel=1e-12)
    assert logs["auc"] == pytest.approx(keras_auc_twin(y, p), rel=1e-12)
    mc = fastnn.Sequential([fastnn.layers.Dense(K, activation="softmax", input_dim=4)], dtype="float64")
    mc.compile("adam", "sparse_categorical_crossentropy", metrics=["sparse_top_k_categorical_accuracy", "precision"])
    yc = rng.integers(0, K, 120)
    logs = mc.evaluate(x, yc, return_dict=True)
    pc = mc.predict(x)
    assert logs["sparse_top_k_categorical_accuracy"] == pytest.approx(
        sk.top_k_accuracy_score(yc, pc, k=5, labels=np.arange(K)), rel=1e-12)
    assert logs["precision"] == pytest.approx(
        sk.precision_score(np.eye(K)[yc].ravel(), (pc > 0.5).ravel(), zero_division=0), rel=1e-12)
    for metric in (M.AUC(curve="PR", num_thresholds=50), M.Precision(thresholds=[0.2, 0.4], top_k=2),
                   M.F1Score(average="macro", threshold=0.4), M.SparseTopKCategoricalAccuracy(k=2)):
        again = type(metric)(**metric.get_config())
        assert again.get_config() == metric.get_config()


def test_refusals():
    with pytest.raises(ValueError, match="curve"):
        M.AUC(curve="DET")
    with pytest.raises(ValueError, match="num_thresholds"):
        M.AUC(num_thresholds=1)
    with pytest.raises(ValueError, match="average"):
        M.F1Score(average="samples")
    with pytest.raises(ValueError, match="k"):
        M.TopKCategoricalAccuracy(k=0)
    with pytest.raises(ValueError, match="y_true"):
        M.Precision().update_state(np.array([2.0, 0.0]), np.array([0.3, 0.6]))
    with pytest.raises(ValueError, match="sample_weight"):
        M.Recall().update_state(YB[:4], PB[:4], sample_weight=W[:3])
    with pytest.raises(ValueError, match="unknown metric"):
        M.get("precission", "mse", 1)


def test_per_class_f1_prints_in_the_progress_bar(capsys):
    m = fastnn.Sequential([fastnn.layers.Dense(3, activation="softmax", input_dim=4)])
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["f1_score"])
    x = rng.normal(size=(40, 4)).astype(np.float32)
    h = m.fit(x, np.arange(40) % 3, epochs=1, verbose=2)
    assert len(h.history["f1_score"][0]) == 3  # Keras's default average=None: one score per class
    assert "f1_score: [" in capsys.readouterr().out
