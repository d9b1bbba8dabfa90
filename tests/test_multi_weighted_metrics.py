"""compile(weighted_metrics=...) and sample weights on a model with several outputs, as Keras 3:
one entry per output (list) or a dict keyed by output names, logs ``<output>_<name>`` or
``<output>_weighted_<name>``, each output's loss and weighted metrics weighted by one array
for all outputs or one per output; class_weight refused. Checked against Keras 3 (jax) on
the same weights and data: fit history and evaluate within 2e-5 (float32)."""
import numpy as np
import pytest

import fastnn
from fastnn import metrics as M
from fastnn.layers import Dense, Input

from helpers import keras_on_jax


def _build(L, Model):
    a = L.Input((4,), name="a")
    h = L.Dense(6, activation="tanh", name="h")(a)
    return Model(a, [L.Dense(3, activation="softmax", name="cls")(h), L.Dense(2, name="reg")(h)])


def _data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    ids = rng.integers(0, 3, n)
    r = rng.standard_normal((n, 2)).astype(np.float32)
    w1, w2 = (rng.uniform(0.0, 2.0, n).astype(np.float32) for _ in range(2))
    w1[:4] = 0.0
    return x, ids, r, w1, w2


def _pair(loss=("sparse_categorical_crossentropy", "mse"), **compile_kw):
    """(fastnn model, Keras model) with the same weights, compiled alike (SGD: one formula)."""
    keras = keras_on_jax()
    fastnn.utils.set_random_seed(4)
    fm = _build(fastnn.layers, fastnn.Model)
    km = _build(keras.layers, keras.Model)
    for layer in fm.layers:
        if layer.specs:
            km.get_layer(layer.name).set_weights(layer.get_weights())
    kw = dict(loss=loss if isinstance(loss, dict) else list(loss), loss_weights=[1.0, 0.5], **compile_kw)
    fm.compile(fastnn.optimizers.SGD(0.1), **kw)
    km.compile(keras.optimizers.SGD(0.1), **kw)
    return fm, km


def _close(ours, theirs, what):
    assert set(ours) == set(theirs), (what, sorted(ours), sorted(theirs))
    for k in theirs:
        np.testing.assert_allclose(np.asarray(ours[k], dtype=np.float64), np.asarray(theirs[k], dtype=np.float64),
                                   rtol=2e-5, atol=2e-6, err_msg=f"{what}: {k}")


# case: (fastnn's compile arguments, Keras's (from the keras module), the sample weights)
CASES = {
    "lists, one weight array": (
        dict(metrics=[["accuracy"], ["mae"]], weighted_metrics=[["accuracy"], ["mae", "mse"]]),
        lambda keras: dict(metrics=[["accuracy"], ["mae"]], weighted_metrics=[["accuracy"], ["mae", "mse"]]),
        lambda w1, w2: w1),
    "dict, per-output weights": (
        dict(weighted_metrics={"reg": ["mae"], "cls": ["accuracy", "sparse_top_k_categorical_accuracy"]}),
        lambda keras: dict(weighted_metrics={"reg": ["mae"], "cls": ["accuracy", "sparse_top_k_categorical_accuracy"]}),
        lambda w1, w2: [w1, w2]),
    # Keras applies a flat list with one entry per output one per output, in weighted_metrics
    # as in metrics; fastnn's flat `metrics` list applies to every output
    # (docs/PORTING_FROM_KERAS.md), so its metrics are given as lists here
    "one metric per output": (
        dict(metrics=[["accuracy"], ["mae"]], weighted_metrics=["accuracy", "mae"]),
        lambda keras: dict(metrics=["accuracy", "mae"], weighted_metrics=["accuracy", "mae"]),
        lambda w1, w2: [w1, w2]),
    "None for one output, a metric object": (
        dict(weighted_metrics=[None, [M.RootMeanSquaredError()]]),
        lambda keras: dict(weighted_metrics=[None, [keras.metrics.RootMeanSquaredError()]]),
        lambda w1, w2: [w1, w2]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_fit_history_and_evaluate_match_keras(case):
    keras = keras_on_jax()
    ours_kw, theirs_kw, weights = CASES[case]
    fm, km = _pair(**ours_kw)
    km.compile(keras.optimizers.SGD(0.1), loss=["sparse_categorical_crossentropy", "mse"], loss_weights=[1.0, 0.5],
               **theirs_kw(keras))
    x, ids, r, w1, w2 = _data()
    sw = weights(w1, w2)
    xv, idv, rv, v1, v2 = _data(24, seed=1)
    vsw = weights(v1, v2)
    ours = fm.fit(x, [ids, r], sample_weight=sw, batch_size=16, epochs=2, shuffle=False, verbose=0,
                  validation_data=(xv, [idv, rv], vsw)).history
    theirs = km.fit(x, [ids, r], sample_weight=sw, batch_size=16, epochs=2, shuffle=False, verbose=0,
                    validation_data=(xv, [idv, rv], vsw)).history
    _close(ours, theirs, "fit")
    ev = fm.evaluate(x, [ids, r], sample_weight=sw, batch_size=16, return_dict=True)
    kev = km.evaluate(x, [ids, r], sample_weight=sw, batch_size=16, return_dict=True, verbose=0)
    _close(ev, kev, "evaluate")


def test_dict_targets_and_weights_keyed_by_output_names_match_keras():
    fm, km = _pair(loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"},
                   weighted_metrics={"cls": ["accuracy"], "reg": ["mse"]}, metrics={"cls": ["accuracy"]})
    x, ids, r, w1, w2 = _data()
    y = {"cls": ids, "reg": r}
    ours = fm.evaluate(x, y, sample_weight={"reg": w2, "cls": w1}, batch_size=16, return_dict=True)
    # Keras 3.15 wants targets and weights in the structure of the model's outputs (a list
    # here: with dicts its loss fails on a KeyError); fastnn also takes them keyed by names
    theirs = km.evaluate(x, [ids, r], sample_weight=[w1, w2], batch_size=16, return_dict=True, verbose=0)
    _close(ours, theirs, "evaluate")
    assert "cls_weighted_accuracy" in ours and "reg_mse" in ours


def test_weighted_values_by_hand_and_the_unweighted_stay_unweighted():
    fastnn.utils.set_random_seed(0)
    fm = _build(fastnn.layers, fastnn.Model)
    fm.compile("sgd", loss=["sparse_categorical_crossentropy", "mse"], metrics=[["accuracy"], []],
               weighted_metrics=[["accuracy"], ["mae"]])
    x, ids, r, w1, w2 = _data()
    logs = fm.evaluate(x, [ids, r], sample_weight={"cls": w1, "reg": w2}, return_dict=True)
    p, q = fm.predict(x)
    hit = (p.argmax(axis=1) == ids).astype(np.float64)
    assert logs["cls_accuracy"] == pytest.approx(hit.mean(), rel=1e-12)
    assert logs["cls_weighted_accuracy"] == pytest.approx((hit * w1).sum() / w1.sum(), rel=1e-6)
    mae = np.abs(q.astype(np.float64) - r).mean(axis=1)
    assert logs["reg_mae"] == pytest.approx((mae * w2).sum() / w2.sum(), rel=1e-5)
    assert logs["reg_loss"] == pytest.approx(((q - r) ** 2).mean(axis=1) @ w2 / len(x), rel=1e-5)


@pytest.mark.parametrize("bad, match", [
    ("mae", "expected a list, tuple or dict"),                       # Keras: a list, tuple, or dict
    (["mae"], "takes one entry per output"),                          # Keras: arity mismatch
    (["mae", "mae", "mae"], "takes one entry per output"),
    ({"nope": ["mae"]}, "unknown output names"),
    ([["no_such_metric"], None], "unknown metric"),
    ([None, 7], "weighted_metrics"),
])
def test_forms_keras_refuses_are_refused_and_change_nothing(bad, match):
    fastnn.utils.set_random_seed(0)
    m = _build(fastnn.layers, fastnn.Model)
    m.compile("sgd", loss=["sparse_categorical_crossentropy", "mse"], weighted_metrics=[["accuracy"], None])
    before = (m.optimizer, m.loss, m._metric_names, m._weighted_metric_names)
    with pytest.raises((ValueError, TypeError), match=match):
        m.compile("adam", loss=["sparse_categorical_crossentropy", "mse"], weighted_metrics=bad)
    assert (m.optimizer, m.loss, m._metric_names, m._weighted_metric_names) == before


def test_class_weight_is_refused_as_keras_refuses_it():
    fm, km = _pair(weighted_metrics=[["accuracy"], None])
    x, ids, r, _, _ = _data()
    w = [v.copy() for v in fm.get_weights()]
    with pytest.raises(ValueError, match="only supported for Models with a single output"):
        km.fit(x, [ids, r], class_weight={0: 1.0, 1: 2.0, 2: 1.0}, verbose=0)
    with pytest.raises(ValueError, match="class_weight: only supported for models with a single output"):
        fm.fit(x, [ids, r], class_weight={0: 1.0, 1: 2.0, 2: 1.0}, verbose=0)
    with pytest.raises(ValueError, match="class_weight"):
        fm.train_on_batch(x, [ids, r], class_weight={0: 1.0})
    assert all(np.array_equal(a, b) for a, b in zip(w, fm.get_weights()))


@pytest.mark.parametrize("sw, match", [
    ({"cls": np.ones(48)}, "missing \\['reg'\\]"),
    ([np.ones(48)] * 3, "a list of 3 arrays"),
    ([np.ones(48), None], "expected an array of 48 weights"),
    ([np.ones(48), np.ones(47)], "sample_weight\\['reg'\\]: expected shape"),
    ([np.ones(48), -np.ones(48)], "sample_weight\\['reg'\\]: expected finite weights >= 0"),
])
def test_bad_per_output_weights_are_refused_and_change_nothing(sw, match):
    fastnn.utils.set_random_seed(0)
    m = _build(fastnn.layers, fastnn.Model)
    m.compile("sgd", loss=["sparse_categorical_crossentropy", "mse"], weighted_metrics=[["accuracy"], None])
    x, ids, r, _, _ = _data()
    w = [v.copy() for v in m.get_weights()]
    with pytest.raises(ValueError, match=match):
        m.fit(x, [ids, r], sample_weight=sw, verbose=0)
    with pytest.raises(ValueError, match=match):
        m.evaluate(x, [ids, r], sample_weight=sw)
    assert all(np.array_equal(a, b) for a, b in zip(w, m.get_weights()))


def test_per_output_weights_shuffle_with_their_rows():
    """A shuffled fit gives each row its own weights: weights that are 1 for the output of
    every row train as no weights at all; zero weights on one output train as if that output
    had a zero loss weight (bitwise, the same order of rows)."""
    x, ids, r, _, _ = _data()
    runs = {}
    for name, sw, lw in [("ones", [np.ones(48), np.ones(48)], [1.0, 1.0]), ("none", None, [1.0, 1.0]),
                         ("zero", [np.ones(48), np.zeros(48)], [1.0, 1.0]), ("lw0", None, [1.0, 0.0])]:
        fastnn.utils.set_random_seed(5)
        m = _build(fastnn.layers, fastnn.Model)
        m.compile("sgd", loss=["sparse_categorical_crossentropy", "mse"], loss_weights=lw)
        m.fit(x, [ids, r], sample_weight=sw, batch_size=8, epochs=2, seed=1, verbose=0)
        runs[name] = m.get_weights()
    for a, b in zip(runs["ones"], runs["none"]):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(runs["zero"], runs["lw0"]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_saved_and_loaded_with_the_same_logs(tmp_path):
    fastnn.utils.set_random_seed(0)
    a = Input(4, name="a", dtype="float64")
    h = Dense(6, activation="tanh", dtype="float64")(a)
    m = fastnn.Model(a, [Dense(3, activation="softmax", name="cls", dtype="float64")(h),
                         Dense(2, name="reg", dtype="float64")(h)])
    m.compile("adam", loss=["sparse_categorical_crossentropy", "mse"], metrics=[["accuracy"], None],
              weighted_metrics={"cls": ["accuracy", M.AUC(num_thresholds=40)], "reg": [M.RootMeanSquaredError()]})
    x, ids, r, w1, w2 = _data()
    m.fit(x, [ids, r], sample_weight=[w1, w2], epochs=1, verbose=0, seed=0)
    before = m.evaluate(x, [ids, r], sample_weight=[w1, w2], return_dict=True)
    m.save(tmp_path / "m.npz")
    after = fastnn.load_model(tmp_path / "m.npz").evaluate(x, [ids, r], sample_weight=[w1, w2], return_dict=True)
    assert list(after) == list(before)
    for k in before:
        np.testing.assert_allclose(after[k], before[k], rtol=1e-12, atol=1e-12, err_msg=k)


def test_train_and_test_on_batch_match_keras():
    fm, km = _pair(weighted_metrics=[["accuracy"], ["mae"]])
    x, ids, r, w1, w2 = _data()
    for step in ("train_on_batch", "test_on_batch"):
        ours = getattr(fm, step)(x, [ids, r], sample_weight=[w1, w2], return_dict=True)
        theirs = getattr(km, step)(x, [ids, r], sample_weight=[w1, w2], return_dict=True)
        _close(ours, {k: float(v) for k, v in theirs.items()}, step)
