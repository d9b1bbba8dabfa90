"""Issue 12: a probability loss after an output that cannot give probabilities is refused at
compile; from_logits=True trains every cross-entropy through the fused kernels, checked
against a float64 NumPy twin."""
import copy

import numpy as np
import pytest

import fastnn
from fastnn import losses
from fastnn.layers import Activation, BatchNormalization, Dense, Dropout, Flatten, Input

PROB_LOSSES = ["sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy"]


def _model(units, act, extra=()):
    return fastnn.Sequential([Dense(8, activation="relu", input_dim=4), Dense(units, activation=act), *extra])


@pytest.mark.parametrize("loss", PROB_LOSSES)
@pytest.mark.parametrize("act", [None, "relu", "tanh", "elu", "softplus"])
def test_probability_loss_after_unbounded_output_refused(loss, act):
    m = _model(10, act)
    with pytest.raises(ValueError, match=r'activation="(softmax|sigmoid)".*from_logits=True'):
        m.compile("sgd", loss)
    assert not m.compiled and m.loss is None and m.optimizer is None  # nothing changed


def test_issue_example_refused_and_from_logits_accepted():
    """The issue's case: Dense(10) without softmax + sparse_categorical_crossentropy."""
    m = _model(10, None)
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy expects probabilities"):
        m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    m.compile("adam", losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    assert m.compiled


@pytest.mark.parametrize("units,act,loss,ok", [
    (3, "softmax", "categorical_crossentropy", True),
    (3, "softmax", "sparse_categorical_crossentropy", True),
    (1, "sigmoid", "binary_crossentropy", True),
    (5, "sigmoid", "binary_crossentropy", True),      # multi-label: legitimate
    (3, "softmax", "binary_crossentropy", False),     # coupled units
    (3, "sigmoid", "categorical_crossentropy", False),
    (3, "sigmoid", "sparse_categorical_crossentropy", False),
    (1, "softmax", "binary_crossentropy", False),     # always 1.0
    (1, "softmax", "categorical_crossentropy", False),
    (3, None, "mse", True), (3, "relu", "mae", True),
])
def test_sigmoid_softmax_mismatches(units, act, loss, ok):
    m = _model(units, act)
    if ok:
        m.compile("sgd", loss)
    else:
        with pytest.raises(ValueError, match="loss: "):
            m.compile("sgd", loss)


@pytest.mark.parametrize("act", ["softmax", "sigmoid"])
def test_from_logits_after_squashing_output_refused(act):
    loss = losses.CategoricalCrossentropy(from_logits=True) if act == "softmax" else \
        losses.BinaryCrossentropy(from_logits=True)
    with pytest.raises(ValueError, match="applied twice"):
        _model(3, act).compile("sgd", loss)


def test_other_output_layers():
    for extra in ([BatchNormalization()], [Dropout(0.5)]):
        with pytest.raises(ValueError, match="cannot produce them"):
            _model(3, "softmax", extra).compile("sgd", "categorical_crossentropy")
    _model(3, "softmax", [Flatten()]).compile("sgd", "categorical_crossentropy")  # looked through
    m = fastnn.Sequential([Dense(8, input_dim=4), Activation("relu")])
    with pytest.raises(ValueError, match="cannot produce them"):
        m.compile("sgd", "binary_crossentropy")
    x = Input(4)
    with pytest.raises(ValueError, match="cannot produce them"):
        fastnn.Model(x, Dense(3)(x)).compile("sgd", "categorical_crossentropy")


def test_unbuilt_activation_softmax_of_one_unit_refused_at_fit():
    """The width of Activation("softmax") is known only once built: the first fit refuses,
    before any weight changes."""
    m = fastnn.Sequential([Dense(1), Activation("softmax")])
    m.compile("sgd", "binary_crossentropy")
    x = np.ones((4, 3), np.float32)
    with pytest.raises(ValueError, match="always 1.0"):
        m.fit(x, np.ones(4), epochs=1, verbose=0)
    assert m.history is None


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _twin(kind, z, y):
    """float64 NumPy (loss, dloss/dz) of the mean cross-entropy on logits z."""
    m = z.shape[0]
    if kind == "binary":
        p = _sigmoid(z)
        loss = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
        return loss, (p - y) / z.size
    e = np.exp(z - z.max(1, keepdims=True))
    p = e / e.sum(1, keepdims=True)
    t = np.eye(z.shape[1])[y] if kind == "sparse" else y
    return -np.sum(t * np.log(p)) / m, (p - t) / m


@pytest.mark.parametrize("kind", ["binary", "categorical", "sparse"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_from_logits_matches_float64_twin_and_uses_fused_kernel(kind, dtype, monkeypatch):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(16, 5))
    cls = {"binary": losses.BinaryCrossentropy, "categorical": losses.CategoricalCrossentropy,
           "sparse": losses.SparseCategoricalCrossentropy}[kind]
    y = {"binary": rng.integers(0, 2, (16, 3)).astype(float), "categorical": np.eye(3)[rng.integers(0, 3, 16)],
         "sparse": rng.integers(0, 3, 16)}[kind]
    m = fastnn.Sequential([Dense(3, input_dim=5)], dtype=dtype)
    m.compile("sgd", cls(from_logits=True), metrics=["accuracy"] + (["mse"] if kind != "sparse" else []))
    fused = "binary_cross_entropy_with_logits" if kind == "binary" else "softmax_cross_entropy"
    calls = []
    real = getattr(fastnn.ops, fused)
    monkeypatch.setattr(fastnn.ops, fused, lambda *a, **k: calls.append(1) or real(*a, **k))
    loss, grads = m.compute_loss_and_gradients(x, y)
    assert calls, "the fused kernel was not used"
    W, b = (w.astype(np.float64) for w in m.get_weights())
    ref, dz = _twin(kind, x @ W + b, y)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert loss == pytest.approx(ref, rel=tol)
    np.testing.assert_allclose(grads, np.concatenate([(x.T @ dz).ravel(), dz.sum(0)]), rtol=tol * 10, atol=tol)
    h = m.fit(x.astype(dtype), y, epochs=2, batch_size=8, verbose=0, seed=0)  # metrics run on logits
    assert np.isfinite(h.history["loss"]).all() and "accuracy" in h.history


def test_from_logits_learns_where_the_refused_setup_would_not():
    """Dense(10) logits + from_logits=True reaches far better than chance on a separable task."""
    rng = np.random.default_rng(0)
    c = rng.integers(0, 4, 400)
    x = (np.eye(4)[c] * 3 + rng.normal(size=(400, 4)) * 0.3).astype(np.float32)
    fastnn.set_random_seed(0)
    m = _model(4, None)
    m.compile("adam", losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    m.fit(x, c, epochs=20, batch_size=32, verbose=0, seed=0)
    assert m.evaluate(x, c, return_dict=True)["accuracy"] > 0.95
    assert copy.deepcopy(m).predict(x).shape == (400, 4)
