"""The Keras metrics by loss name (binary/categorical/sparse_categorical_crossentropy,
kl_divergence, hinge, squared_hinge) and root_mean_squared_error, mape, msle: NumPy's
formulas over several batches, Keras's values where Keras is installed, and in fit."""
import os

import numpy as np
import pytest

import fastnn
from fastnn import layers as L
from fastnn import metrics

RNG = np.random.default_rng(0)
EPS = 1e-7


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _batches():
    """Three batches (y_true, y_pred) per kind of target."""
    out = {}
    probs = [_softmax(RNG.normal(size=(n, 4))) for n in (5, 7, 3)]
    ids = [RNG.integers(0, 4, len(p)) for p in probs]
    out["ids"] = list(zip(ids, probs))
    out["onehot"] = [(np.eye(4)[i], p) for i, p in zip(ids, probs)]
    out["binary"] = [(RNG.integers(0, 2, (n, 1)).astype(float), 1 / (1 + np.exp(-RNG.normal(size=(n, 1)))))
                     for n in (6, 2, 9)]
    out["soft"] = [(_softmax(RNG.normal(size=(n, 4))), p) for n, p in zip((5, 7, 3), probs)]
    out["regression"] = [(RNG.normal(size=(n, 3)) * 2, RNG.normal(size=(n, 3))) for n in (4, 8, 5)]
    out["positive"] = [(np.abs(y) + 0.1, np.abs(p)) for y, p in out["regression"]]
    return out


BATCHES = _batches()


def _per_sample(name, y, p):
    """The NumPy twin: each sample's value."""
    pc = np.clip(p, EPS, 1 - EPS)
    if name == "sparse_categorical_crossentropy":
        return -np.log(pc[np.arange(len(y)), y])
    if name == "categorical_crossentropy":
        return -(y * np.log(pc)).sum(1)
    if name == "binary_crossentropy":
        return -(y * np.log(pc) + (1 - y) * np.log(1 - pc)).mean(1)
    if name == "kl_divergence":
        t, q = np.clip(y, EPS, 1), np.clip(p, EPS, 1)
        return (t * np.log(t / q)).sum(1)
    if name in ("hinge", "squared_hinge"):
        s = 2 * y - 1 if np.all((y == 0) | (y == 1)) else y
        h = np.maximum(1 - s * p, 0)
        return (h if name == "hinge" else h * h).mean(1)
    if name == "mean_absolute_percentage_error":
        return 100 * (np.abs(y - p) / np.maximum(np.abs(y), EPS)).mean(1)
    if name == "mean_squared_logarithmic_error":
        return ((np.log1p(np.maximum(p, EPS)) - np.log1p(np.maximum(y, EPS))) ** 2).mean(1)
    if name == "root_mean_squared_error":
        return ((y - p) ** 2).mean(1)
    raise AssertionError(name)


CASES = [("sparse_categorical_crossentropy", "ids"), ("categorical_crossentropy", "onehot"),
         ("binary_crossentropy", "binary"), ("kl_divergence", "soft"), ("hinge", "binary"),
         ("squared_hinge", "binary"), ("mean_absolute_percentage_error", "regression"),
         ("mean_squared_logarithmic_error", "positive"), ("root_mean_squared_error", "regression")]


@pytest.mark.parametrize("name, kind", CASES)
def test_metric_by_name_equals_its_numpy_twin_over_batches(name, kind):
    m = metrics.get(name, "mse", 4)
    assert m.name == name
    values = []
    for y, p in BATCHES[kind]:
        m.update(y, p, False)
        values.append(_per_sample(name, y, p))
    want = np.concatenate(values).mean()
    if name == "root_mean_squared_error":
        want = np.sqrt(want)
    np.testing.assert_allclose(m.result(), want, rtol=1e-12)
    m.reset()
    assert np.isnan(m.result())


@pytest.mark.parametrize("alias, name", [("kld", "kl_divergence"), ("mape", "mean_absolute_percentage_error"),
                                         ("msle", "mean_squared_logarithmic_error"),
                                         ("rmse", "root_mean_squared_error")])
def test_aliases(alias, name):
    a, b = metrics.get(alias, "mse", 3), metrics.get(name, "mse", 3)
    assert type(a) is type(b) and a.name == alias


def test_crossentropy_metric_from_logits_when_the_loss_takes_logits():
    z = RNG.normal(size=(6, 4))
    y = RNG.integers(0, 4, 6)
    m = metrics.SparseCategoricalCrossentropy()
    m.update(y, z, True)  # the trainer's flag: the output is logits
    np.testing.assert_allclose(m.result(), _per_sample("sparse_categorical_crossentropy", y, _softmax(z)).mean(),
                               rtol=1e-12)


def test_loss_metric_in_fit_follows_the_loss():
    x = RNG.normal(size=(64, 5)).astype(np.float32)
    y = RNG.integers(0, 3, 64)
    m = fastnn.Sequential([L.Input((5,)), L.Dense(8, activation="relu"), L.Dense(3, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["sparse_categorical_crossentropy", "accuracy"])
    h = m.fit(x, y, batch_size=16, epochs=2, verbose=0, seed=0)
    # the same outputs, the loss from the fused logits kernel, the metric from probabilities
    np.testing.assert_allclose(h.history["sparse_categorical_crossentropy"], h.history["loss"], rtol=1e-5)
    ev = m.evaluate(x, y, return_dict=True)
    np.testing.assert_allclose(ev["sparse_categorical_crossentropy"], ev["loss"], rtol=1e-5)


def test_unknown_metric_name_still_refused():
    with pytest.raises(ValueError, match="unknown metric 'crossentropy'"):
        metrics.get("crossentropy", "mse", 3)


KERAS = {"sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
         "categorical_crossentropy": "CategoricalCrossentropy", "binary_crossentropy": "BinaryCrossentropy",
         "kl_divergence": "KLDivergence", "hinge": "Hinge", "squared_hinge": "SquaredHinge",
         "mean_absolute_percentage_error": "MeanAbsolutePercentageError",
         "mean_squared_logarithmic_error": "MeanSquaredLogarithmicError",
         "root_mean_squared_error": "RootMeanSquaredError"}


@pytest.mark.parametrize("name, kind", CASES)
def test_metric_by_name_equals_keras(name, kind):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("Keras runs another backend in this process")
    k = getattr(keras.metrics, KERAS[name])()
    m = metrics.get(name, "mse", 4)
    for y, p in BATCHES[kind]:
        k.update_state(y.astype(np.float32), p.astype(np.float32))
        m.update(y.astype(np.float32) if kind != "ids" else y, p.astype(np.float32), False)
    np.testing.assert_allclose(m.result(), float(k.result()), rtol=2e-5)
