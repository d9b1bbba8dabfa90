"""Loss values against NumPy formulas; metrics; fusion of softmax / sigmoid outputs."""
import numpy as np
import pytest

import fastnn
from fastnn import losses, metrics

R = np.random.default_rng(0)
P = R.uniform(0.05, 0.95, size=(8, 3))
Y01 = R.integers(0, 2, size=(8, 3)).astype(float)


def test_mse_mae_values():
    t = R.normal(size=(8, 3))
    assert losses.get("mse")(t, P) == pytest.approx(np.mean((P - t) ** 2))
    assert losses.get("mae")(t, P) == pytest.approx(np.mean(np.abs(P - t)))


def test_binary_crossentropy_probabilities_and_logits_agree():
    z = np.log(P / (1 - P))
    ref = -np.mean(Y01 * np.log(P) + (1 - Y01) * np.log(1 - P))
    assert losses.BinaryCrossentropy()(Y01, P) == pytest.approx(ref)
    assert losses.BinaryCrossentropy(from_logits=True)(Y01, z) == pytest.approx(ref)


def test_categorical_and_sparse_agree():
    z = R.normal(size=(8, 3))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    c = R.integers(0, 3, 8)
    ref = -np.mean(np.log(p[np.arange(8), c]))
    assert losses.CategoricalCrossentropy()(np.eye(3)[c], p) == pytest.approx(ref)
    assert losses.CategoricalCrossentropy(from_logits=True)(np.eye(3)[c], z) == pytest.approx(ref)
    assert losses.SparseCategoricalCrossentropy()(c, p) == pytest.approx(ref)
    assert losses.SparseCategoricalCrossentropy(from_logits=True)(c, z) == pytest.approx(ref)


def test_softmax_output_with_crossentropy_uses_logits():
    m = fastnn.Sequential([fastnn.layers.Dense(3, activation="softmax", input_dim=2)])
    m.compile("sgd", "sparse_categorical_crossentropy")
    assert m._loss_mode() == (True, True)
    m.compile("sgd", "mse")
    assert m._loss_mode() == (False, False)
    m2 = fastnn.Sequential([fastnn.layers.Dense(1, activation="sigmoid", input_dim=2)])
    m2.compile("sgd", "binary_crossentropy")
    assert m2._loss_mode() == (True, True)


def test_fused_loss_is_stable_for_confident_wrong_predictions():
    m = fastnn.Sequential([fastnn.layers.Dense(2, activation="softmax", input_dim=1, use_bias=False)],
                          dtype="float64")
    m.compile("sgd", "sparse_categorical_crossentropy")
    m.set_weights([np.array([[200.0, -200.0]])])
    loss = m.evaluate(np.array([[1.0]]), np.array([1]))
    assert loss == pytest.approx(400.0)  # not clipped to -log(1e-7)


def test_metrics_accumulate_over_batches():
    acc = metrics.SparseCategoricalAccuracy()
    acc.update(np.array([0, 1]), np.array([[0.9, 0.1], [0.8, 0.2]]))
    acc.update(np.array([1]), np.array([[0.1, 0.9]]))
    assert acc.result() == pytest.approx(2 / 3)
    b = metrics.BinaryAccuracy()
    b.update(np.array([[0.0], [0.0]]), np.array([[0.2], [-0.1]]), logits=True)
    assert b.result() == 0.5


def test_accuracy_is_chosen_like_keras():
    assert isinstance(metrics.get("accuracy", "sparse_categorical_crossentropy", 10),
                      metrics.SparseCategoricalAccuracy)
    assert isinstance(metrics.get("accuracy", "categorical_crossentropy", 10), metrics.CategoricalAccuracy)
    assert isinstance(metrics.get("accuracy", "binary_crossentropy", 1), metrics.BinaryAccuracy)
    assert isinstance(metrics.get("accuracy", "mse", 1), metrics.BinaryAccuracy)
    assert isinstance(metrics.get("accuracy", "mse", 4), metrics.CategoricalAccuracy)
