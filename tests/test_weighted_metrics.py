"""compile(weighted_metrics=...): metrics whose means weigh each row by its sample (and class)
weight, Keras 3's names (``weighted_<name>`` beside an unweighted metric of that name) and
values (checked against Keras on the same weights and data); saved with the model."""
import numpy as np
import pytest

import fastnn
from fastnn import metrics as M
from fastnn.layers import Dense, Input

from helpers import keras_on_jax


def _data(n=60, k=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    ids = rng.integers(0, k, n)
    w = rng.uniform(0.0, 3.0, n).astype(np.float32)
    w[:5] = 0.0
    return x, ids, np.eye(k, dtype=np.float32)[ids], w


def _model(loss="sparse_categorical_crossentropy", **kw):
    fastnn.utils.set_random_seed(1)
    m = fastnn.Sequential([Dense(8, activation="relu", input_dim=4), Dense(3, activation="softmax")])
    m.compile("adam", loss, **kw)
    return m


def test_names_and_values_by_hand():
    x, ids, _, w = _data()
    m = _model(metrics=["accuracy"], weighted_metrics=["accuracy", "sparse_categorical_crossentropy"])
    logs = m.evaluate(x, ids, sample_weight=w, batch_size=16, return_dict=True)
    assert list(logs) == ["loss", "accuracy", "weighted_accuracy", "sparse_categorical_crossentropy"]
    p = m.predict(x)
    hit = (p.argmax(axis=1) == ids).astype(np.float64)
    assert logs["accuracy"] == pytest.approx(hit.mean(), rel=1e-12)
    assert logs["weighted_accuracy"] == pytest.approx((hit * w).sum() / w.sum(), rel=1e-6)
    nll = -np.log(p[np.arange(len(ids)), ids].astype(np.float64))
    assert logs["sparse_categorical_crossentropy"] == pytest.approx((nll * w).sum() / w.sum(), rel=1e-5)


def test_without_sample_weights_the_weighted_equal_the_plain():
    x, ids, _, _ = _data()
    m = _model(metrics=["accuracy", "mae"], weighted_metrics=["accuracy", "mae"], loss="categorical_crossentropy")
    logs = m.evaluate(x, np.eye(3, dtype=np.float32)[ids], return_dict=True)
    assert logs["weighted_accuracy"] == logs["accuracy"]
    assert logs["weighted_mae"] == pytest.approx(logs["mae"], rel=1e-12)


@pytest.mark.parametrize("name", ["accuracy", "categorical_accuracy", "mse", "mae", "root_mean_squared_error",
                                  "mape", "msle", "categorical_crossentropy", "kl_divergence", "hinge",
                                  "squared_hinge", "binary_crossentropy", "precision", "auc"])
def test_every_metric_weighs_as_repeated_rows(name):
    """Weight 2 on a row is that row twice; weight 0 is the row left out."""
    rng = np.random.default_rng(3)
    y = np.eye(3)[rng.integers(0, 3, 20)].astype(np.float32)
    p = rng.dirichlet(np.ones(3), 20).astype(np.float32)
    w = rng.integers(0, 3, 20).astype(np.float32)
    weighted = M.get(name, "categorical_crossentropy", 3)
    weighted.update(y, p, False, w)
    rows = np.repeat(np.arange(20), w.astype(int))
    plain = M.get(name, "categorical_crossentropy", 3)
    plain.update(y[rows], p[rows], False)
    assert np.allclose(weighted.result(), plain.result(), rtol=1e-5, atol=1e-7)


def test_fit_feeds_class_weights_to_the_weighted_metrics():
    x, ids, _, _ = _data()
    m = _model(metrics=["accuracy"], weighted_metrics=["accuracy"])
    h = m.fit(x, ids, epochs=2, batch_size=10, class_weight={0: 0.0, 1: 1.0, 2: 1.0}, verbose=0, shuffle=False)
    assert h.history["weighted_accuracy"] != h.history["accuracy"]
    m2 = _model(metrics=["accuracy"], weighted_metrics=["accuracy"])  # the same run, rows of class 0 unseen
    h2 = m2.fit(x, ids, epochs=2, batch_size=10, class_weight={0: 0.0, 1: 1.0, 2: 1.0}, verbose=0, shuffle=False)
    assert h2.history == h.history


def test_train_and_test_on_batch():
    x, ids, _, w = _data(20)
    m = _model(weighted_metrics=["accuracy"])
    m.train_on_batch(x, ids, sample_weight=w)
    r = m.test_on_batch(x, ids, sample_weight=w, return_dict=True)
    hit = (m.predict(x).argmax(axis=1) == ids)
    assert r["accuracy"] == pytest.approx((hit * w).sum() / w.sum(), rel=1e-6)


@pytest.mark.parametrize("bad, match", [(["no_such_metric"], "unknown metric"), (42, "weighted_metrics"),
                                        ({"other": ["mae"]}, "weighted_metrics")])
def test_bad_weighted_metrics_are_refused_and_change_nothing(bad, match):
    m = _model(metrics=["mae"])
    before = (m.optimizer, m.loss, m._metric_names, m._weighted_metric_names)
    with pytest.raises((ValueError, TypeError), match=match):
        m.compile("sgd", "mse", weighted_metrics=bad)
    assert (m.optimizer, m.loss, m._metric_names, m._weighted_metric_names) == before


def test_several_outputs_take_one_entry_per_output():
    """As Keras 3: a flat list that is not one entry per output is refused (the forms a model
    with several outputs takes: tests/test_multi_weighted_metrics.py)."""
    i = Input((4,))
    a, b = Dense(2, name="a")(i), Dense(1, name="b")(i)
    m = fastnn.Model(i, [a, b])
    with pytest.raises(ValueError, match="one entry per output"):
        m.compile("sgd", "mse", weighted_metrics=["mae"])
    assert not m.compiled
    m.compile("sgd", "mse", weighted_metrics=[["mae"], "mse"])
    assert m._weighted_metric_names == {"a": ["mae"], "b": ["mse"]}


def test_saved_and_loaded(tmp_path):
    x, ids, _, w = _data()
    m = _model(metrics=["accuracy"], weighted_metrics=["accuracy"])
    m.fit(x, ids, verbose=0, epochs=1)
    m.save(tmp_path / "m.npz")
    back = fastnn.load_model(tmp_path / "m.npz")
    assert back.evaluate(x, ids, sample_weight=w, return_dict=True) == \
        m.evaluate(x, ids, sample_weight=w, return_dict=True)
    m.compile("adam", "sparse_categorical_crossentropy", weighted_metrics=[M.Precision(thresholds=0.4)])
    m.save(tmp_path / "o.npz")  # a metric object is kept as its class and config (tests/test_metric_files.py)
    back = fastnn.load_model(tmp_path / "o.npz")
    assert back._weighted_metric_names[0].get_config() == m._weighted_metric_names[0].get_config()
    assert back.evaluate(x, ids, sample_weight=w, return_dict=True) == \
        m.evaluate(x, ids, sample_weight=w, return_dict=True)


def test_matches_keras():
    keras = keras_on_jax()
    x, ids, y1h, w = _data(64)
    m = _model(loss="categorical_crossentropy", metrics=["accuracy", "mae"],
               weighted_metrics=["accuracy", "mse", "categorical_crossentropy"])
    km = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                           keras.layers.Dense(3, activation="softmax")])
    km.set_weights(m.get_weights())
    km.compile("adam", "categorical_crossentropy", metrics=["accuracy", "mae"],
               weighted_metrics=["accuracy", "mse", "categorical_crossentropy"])
    ours = m.evaluate(x, y1h, sample_weight=w, batch_size=16, return_dict=True)
    theirs = km.evaluate(x, y1h, sample_weight=w, batch_size=16, return_dict=True, verbose=0)
    assert set(ours) == set(theirs)
    for k in theirs:
        assert ours[k] == pytest.approx(float(theirs[k]), rel=2e-5, abs=1e-6), k


@pytest.mark.parametrize("shuffle", [True, False])
def test_native_epoch_feeds_each_batch_weights(monkeypatch, shuffle):
    """fit's native epoch (sample weights run natively) gives the weighted metrics each
    batch's weights: the history equals the Python step's, bitwise."""
    from helpers import count_native_steps
    x, ids, _, w = _data(70)
    hist = {}
    for native in (True, False):
        monkeypatch.setenv("FASTNN_NATIVE_STEP", "1" if native else "0")
        count = count_native_steps(monkeypatch)
        m = _model(metrics=["accuracy"], weighted_metrics=["accuracy", "sparse_categorical_crossentropy"])
        hist[native] = m.fit(x, ids, sample_weight=w, batch_size=8, epochs=2, verbose=0, seed=3,
                             shuffle=shuffle).history
        assert count["n"] == (18 if native else 0)
    assert hist[True] == hist[False]
    assert hist[True]["weighted_accuracy"] != hist[True]["accuracy"]
