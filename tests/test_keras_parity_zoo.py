"""The new layers, losses and metrics against Keras 3 itself (jax backend) on the same data."""
import os

import numpy as np
import pytest

import fastnn
from fastnn import layers as L
from fastnn import losses as Ls
from fastnn import metrics as M

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "jax":
    pytest.skip("Keras runs another backend in this process", allow_module_level=True)

rng = np.random.default_rng(0)
X = rng.normal(size=(6, 3, 5)).astype(np.float32)


@pytest.mark.parametrize("ours,theirs", [
    (lambda: L.ReLU(max_value=1.0, negative_slope=0.1, threshold=0.2),
     lambda: keras.layers.ReLU(max_value=1.0, negative_slope=0.1, threshold=0.2)),
    (lambda: L.ReLU(), lambda: keras.layers.ReLU()),
    (lambda: L.LeakyReLU(), lambda: keras.layers.LeakyReLU()),
    (lambda: L.ELU(alpha=0.7), lambda: keras.layers.ELU(alpha=0.7)),
    (lambda: L.Softmax(), lambda: keras.layers.Softmax()),
    (lambda: L.Softmax(axis=1), lambda: keras.layers.Softmax(axis=1)),
    (lambda: L.LayerNormalization(), lambda: keras.layers.LayerNormalization()),
    (lambda: L.LayerNormalization(axis=[1, 2], epsilon=1e-5), lambda: keras.layers.LayerNormalization(axis=[1, 2],
                                                                                                    epsilon=1e-5)),
    (lambda: L.Reshape((-1, 3)), lambda: keras.layers.Reshape((-1, 3))),
])
def test_layers_forward(ours, theirs):
    m = fastnn.Sequential([L.Input((3, 5)), ours()])
    k = theirs()
    out_k = np.asarray(k(X))
    if m.get_weights():
        kw = [rng.normal(size=w.shape).astype(np.float32) for w in k.get_weights()]
        k.set_weights(kw)
        m.set_weights(kw)
        out_k = np.asarray(k(X))
    np.testing.assert_allclose(m.predict(X), out_k, rtol=2e-5, atol=2e-6)


Y01 = (rng.uniform(size=(8, 4)) > 0.5).astype(np.float32)
P = rng.uniform(0.02, 0.98, size=(8, 4)).astype(np.float32)
PS = P / P.sum(1, keepdims=True)
Z = (rng.normal(size=(8, 4)) * 2).astype(np.float32)
YOH = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 8)]


@pytest.mark.parametrize("ours,theirs,y,p", [
    (Ls.Huber(0.7), keras.losses.Huber(0.7), Y01 * 2, Z),
    (Ls.Hinge(), keras.losses.Hinge(), Y01, Z),
    (Ls.SquaredHinge(), keras.losses.SquaredHinge(), 2 * Y01 - 1, Z),
    (Ls.KLDivergence(), keras.losses.KLDivergence(), PS[::-1].copy(), PS),
    (Ls.CategoricalCrossentropy(label_smoothing=0.1), keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
     YOH, PS),
    (Ls.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2),
     keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2), YOH, Z),
    (Ls.BinaryCrossentropy(label_smoothing=0.1), keras.losses.BinaryCrossentropy(label_smoothing=0.1), Y01, P),
    (Ls.BinaryCrossentropy(from_logits=True, label_smoothing=0.3),
     keras.losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.3), Y01, Z),
])
def test_losses(ours, theirs, y, p):
    assert ours(y, p) == pytest.approx(float(theirs(y, p)), rel=1e-5)


def test_metrics():
    y = (rng.uniform(size=300) < 0.4).astype(np.float32)
    p = np.clip(0.3 * y + rng.uniform(size=300) * 0.7, 0, 1).astype(np.float32)
    yc = rng.integers(0, 5, 300)
    pc = rng.dirichlet(np.ones(5), size=300).astype(np.float32)
    pairs = [(M.AUC(), keras.metrics.AUC(), y, p), (M.AUC(curve="PR"), keras.metrics.AUC(curve="PR"), y, p),
             (M.AUC(num_thresholds=30, summation_method="minoring"),
              keras.metrics.AUC(num_thresholds=30, summation_method="minoring"), y, p),
             (M.Precision(thresholds=0.4), keras.metrics.Precision(thresholds=0.4), y, p),
             (M.Recall(), keras.metrics.Recall(), y, p),
             (M.F1Score(average="macro"), keras.metrics.F1Score(average="macro"), np.eye(5)[yc], pc),
             (M.F1Score(), keras.metrics.F1Score(), np.eye(5)[yc], pc),
             (M.TopKCategoricalAccuracy(k=2), keras.metrics.TopKCategoricalAccuracy(k=2), np.eye(5)[yc], pc),
             (M.SparseTopKCategoricalAccuracy(k=3), keras.metrics.SparseTopKCategoricalAccuracy(k=3), yc, pc)]
    for ours, theirs, yy, pp in pairs:
        for i in range(0, 300, 64):
            ours.update_state(yy[i:i + 64], pp[i:i + 64])
            theirs.update_state(yy[i:i + 64], pp[i:i + 64])
        np.testing.assert_allclose(ours.result(), np.asarray(theirs.result()), rtol=2e-5, atol=1e-6,
                                   err_msg=type(ours).__name__)
