"""A model compiled with metric objects is saved with them (class name and config, as Keras 3)
and loads with the same metrics: evaluate after load equals evaluate before. A metric of a
class fastnn cannot rebuild is refused when saving; a garbled entry in a file is a clear
ValueError when loading, never code run or a crash."""
import json

import re

import numpy as np
import pytest

import fastnn
from fastnn import metrics as M
from fastnn._metric_files import CLASSES, deserialize_spec, serialize_spec
from fastnn.layers import Dense, Input

from helpers import keras_on_jax


def _data(n=80, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype(dtype)
    ids = rng.integers(0, 3, n)
    w = rng.uniform(0.0, 2.0, n).astype(dtype)
    return x, ids, w


def _model(dtype="float64"):
    fastnn.utils.set_random_seed(2)
    return fastnn.Sequential([Dense(8, activation="relu", input_dim=4, dtype=dtype),
                              Dense(3, activation="softmax", dtype=dtype)])


def _reload(m, path):
    m.save(path)
    return fastnn.load_model(path)


def test_metric_objects_round_trip_and_evaluate_equal(tmp_path):
    x, ids, w = _data()
    m = _model()
    m.compile("adam", "sparse_categorical_crossentropy",
              metrics=[M.AUC(num_thresholds=50), M.Precision(thresholds=0.3), "accuracy",
                       M.SparseTopKCategoricalAccuracy(k=2, name="top2")],
              weighted_metrics=[M.Recall(thresholds=[0.2, 0.7]), "accuracy", M.F1Score(average="macro")])
    m.fit(x, ids, epochs=2, batch_size=16, verbose=0, seed=0)
    before = m.evaluate(x, ids, sample_weight=w, batch_size=16, return_dict=True)
    back = _reload(m, tmp_path / "m.npz")
    after = back.evaluate(x, ids, sample_weight=w, batch_size=16, return_dict=True)
    assert list(after) == list(before)
    assert list(before) == ["loss", "auc", "precision", "accuracy", "top2", "recall", "weighted_accuracy",
                            "f1_score"]
    for k in before:
        np.testing.assert_allclose(after[k], before[k], rtol=1e-12, atol=1e-12, err_msg=k)
    # the objects compile was given keep their names: a second save writes the same config
    again = _reload(back, tmp_path / "m2.npz")
    assert again.evaluate(x, ids, sample_weight=w, batch_size=16, return_dict=True) == after


def _two_outputs():
    fastnn.utils.set_random_seed(3)
    a = Input(4, name="a", dtype="float64")
    h = Dense(6, activation="tanh", dtype="float64")(a)
    return fastnn.Model(a, [Dense(3, activation="softmax", name="cls", dtype="float64")(h),
                            Dense(1, name="reg", dtype="float64")(h)])


@pytest.mark.parametrize("form", ["dict", "list"])
def test_multi_output_metric_objects_round_trip(tmp_path, form):
    x, ids, _ = _data()
    r = np.random.default_rng(1).standard_normal((len(x), 1))
    per = [[M.AUC(curve="PR", num_thresholds=30), "accuracy"], [M.RootMeanSquaredError(name="rms"), "mae"]]
    metrics = {"cls": per[0], "reg": per[1]} if form == "dict" else per
    m = _two_outputs()
    m.compile("sgd", loss=["sparse_categorical_crossentropy", "mse"], metrics=metrics)
    m.fit(x, [ids, r], epochs=1, batch_size=16, verbose=0, seed=0)
    before = m.evaluate(x, [ids, r], return_dict=True)
    assert m.evaluate(x, [ids, r], return_dict=True) == before  # names are not prefixed twice
    assert {"cls_auc", "cls_accuracy", "reg_rms", "reg_mae"} <= set(before)
    after = _reload(m, tmp_path / "m.npz").evaluate(x, [ids, r], return_dict=True)
    assert list(after) == list(before)
    for k in before:
        np.testing.assert_allclose(after[k], before[k], rtol=1e-12, atol=1e-12, err_msg=k)


ARGS = [
    (M.BinaryAccuracy, {"threshold": 0.3, "name": "ba"}),
    (M.CategoricalAccuracy, {"name": "ca"}), (M.SparseCategoricalAccuracy, {"name": "sca"}),
    (M.MeanSquaredError, {"name": "m2"}), (M.MeanAbsoluteError, {"name": "m1"}),
    (M.RootMeanSquaredError, {"name": "r"}), (M.MeanAbsolutePercentageError, {"name": "p"}),
    (M.MeanSquaredLogarithmicError, {"name": "l"}), (M.BinaryCrossentropy, {"name": "b"}),
    (M.CategoricalCrossentropy, {"name": "c"}), (M.SparseCategoricalCrossentropy, {"name": "s"}),
    (M.KLDivergence, {"name": "k"}), (M.Hinge, {"name": "h"}), (M.SquaredHinge, {"name": "sh"}),
    (M.Precision, {"thresholds": [0.7, 0.2], "top_k": 2, "name": "p2"}),
    (M.Recall, {"thresholds": 0.4, "class_id": 1, "name": "r1"}),
    (M.AUC, {"num_thresholds": 17, "curve": "PR", "summation_method": "minoring", "multi_label": True,
             "name": "a", "from_logits": True}),
    (M.AUC, {"thresholds": [0.1, 0.5, 0.9], "curve": "ROC", "summation_method": "majoring"}),
    (M.TopKCategoricalAccuracy, {"k": 2, "name": "t2"}), (M.SparseTopKCategoricalAccuracy, {"k": 1}),
    (M.F1Score, {"average": "weighted", "threshold": 0.4, "name": "f"}),
    (M.FBetaScore, {"average": "micro", "beta": 2.5, "threshold": None, "name": "fb"}),
]


def test_every_registered_class_is_covered_and_every_public_metric_registered():
    assert {c for c, _ in ARGS} == set(CLASSES.values())
    public = {v for k, v in vars(M).items() if isinstance(v, type) and not k.startswith("_")
              and issubclass(v, (M.Metric, M.StreamingMetric)) and v not in (M.Metric, M.StreamingMetric)}
    assert public == set(CLASSES.values())


def _feed(m, cls, seed):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(3), 40)
    ids = rng.integers(0, 3, 40)
    if cls is M.SparseCategoricalAccuracy or cls is M.SparseTopKCategoricalAccuracy or \
            cls is M.SparseCategoricalCrossentropy:
        y = ids
    else:
        y = np.eye(3)[ids]
    m.update(y, p, False, rng.uniform(0, 2, 40))
    return m.result()


@pytest.mark.parametrize("cls, kwargs", ARGS, ids=[f"{c.__name__}{i}" for i, (c, _) in enumerate(ARGS)])
def test_each_class_with_non_default_arguments_round_trips(cls, kwargs):
    m = cls(**kwargs)
    entry = json.loads(json.dumps(serialize_spec(m, "metrics")))
    assert entry["class_name"] == cls.__name__
    back = deserialize_spec(entry, "metrics")
    assert type(back) is cls and back.get_config() == m.get_config()
    for k, v in kwargs.items():
        assert entry["config"][k] == v, k
    np.testing.assert_allclose(_feed(back, cls, 5), _feed(m, cls, 5), rtol=0, atol=0)


# Keras's arguments fastnn's metrics do not take (their config lacks these keys): dtype (fastnn
# accumulates in float64), AUC's num_labels / label_weights, the cross-entropy metrics' own
# from_logits / label_smoothing / axis / ignore_class (fastnn's read what the trainer gives).
_NOT_TAKEN = {"dtype", "num_labels", "label_weights", "from_logits", "label_smoothing", "axis", "ignore_class"}


@pytest.mark.parametrize("cls, kwargs", ARGS, ids=[f"{c.__name__}{i}" for i, (c, _) in enumerate(ARGS)])
def test_config_keys_are_keras_keys(cls, kwargs):
    keras = keras_on_jax()
    theirs = getattr(keras.metrics, cls.__name__)(**kwargs).get_config()
    ours = cls(**kwargs).get_config()
    assert set(ours) <= set(theirs)
    missing = set(theirs) - set(ours)
    if cls is M.AUC:  # AUC takes from_logits
        missing.discard("num_labels"), missing.discard("label_weights")
        assert missing == {"dtype"}
    else:
        assert missing <= _NOT_TAKEN
    if "name" not in kwargs:  # Keras numbers its automatic names per process (auc, auc_1, ...)
        theirs["name"] = re.sub(r"_\d+$", "", theirs["name"])
    for k in ours:
        if k != "thresholds" or cls is not M.AUC:
            assert ours[k] == theirs[k] or (k == "curve" and ours[k] == str(theirs[k]).split(".")[-1]), k
    if kwargs.get("thresholds") is not None and cls is M.AUC:
        np.testing.assert_allclose(ours["thresholds"], theirs["thresholds"])


class MyAUC(M.AUC):
    pass


@pytest.mark.parametrize("where", ["metrics", "weighted_metrics"])
def test_a_metric_of_an_unknown_class_is_refused_when_saving(tmp_path, where):
    m = _model()
    m.compile("sgd", "sparse_categorical_crossentropy", **{where: [MyAUC(name="mine")]})
    with pytest.raises(ValueError, match=f"compile's {where} holds a metric of class .*MyAUC.*'mine'"):
        m.save(tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()


def test_a_per_output_metric_of_an_unknown_class_is_refused_when_saving(tmp_path):
    m = _two_outputs()
    m.compile("sgd", loss=["sparse_categorical_crossentropy", "mse"], metrics={"reg": [MyAUC()]})
    with pytest.raises(ValueError, match=r"metrics\['reg'\].*MyAUC"):
        m.save(tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()


def _tampered(tmp_path, entry):
    m = _model()
    m.compile("sgd", "sparse_categorical_crossentropy", metrics=[M.AUC(num_thresholds=20)])
    path = tmp_path / "m.npz"
    m.save(path)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    cfg = json.loads(str(arrays["__config__"]))
    cfg["compile"]["metrics"] = [entry]
    arrays["__config__"] = np.array(json.dumps(cfg))
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("entry, match", [
    ({"class_name": "os.system", "config": {"command": "touch pwned"}}, "unknown metric class 'os.system'"),
    ({"class_name": "Metric", "config": {}}, "unknown metric class"),
    ({"class_name": ["AUC"], "config": {}}, "unknown metric class"),
    ({"class_name": "AUC"}, "expected a metric name or"),
    ({"class_name": "AUC", "config": {}, "module": "os"}, "expected a metric name or"),
    ({"class_name": "AUC", "config": [1, 2]}, "expected a config dict"),
    ({"class_name": "AUC", "config": {"__class__": 1}}, "AUC takes no '__class__'"),
    ({"class_name": "AUC", "config": {"num_thresholds": -3}}, "num_thresholds"),
    ({"class_name": "AUC", "config": {"num_thresholds": 10 ** 15}}, "max_bytes"),
    ({"class_name": "AUC", "config": {"thresholds": "abc"}}, "AUC refuses its config"),
    ({"class_name": "Precision", "config": {"thresholds": [[0.1], [0.2, 0.3]]}}, "Precision refuses"),
    ({"class_name": "BinaryAccuracy", "config": {"threshold": "x"}}, "threshold"),
    ({"class_name": "TopKCategoricalAccuracy", "config": {"k": 0}}, "k: expected a positive int"),
    ({"class_name": "F1Score", "config": {"name": {"a": 1}}}, "name: expected a string"),
    (17, "expected a metric name or"),
    ("no_such_metric", "unknown metric"),
])
def test_a_garbled_metric_entry_is_a_clear_error(tmp_path, entry, match):
    path = _tampered(tmp_path, entry)
    with pytest.raises(ValueError, match=match) as e:
        fastnn.load_model(path)
    assert str(path) in str(e.value)
    assert not (tmp_path / "pwned").exists()
    assert fastnn.load_model(path, compile=False).built  # the architecture and weights still load


def test_a_metrics_entry_that_is_not_a_list_is_a_clear_error(tmp_path):
    path = _tampered(tmp_path, "x")
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    cfg = json.loads(str(arrays["__config__"]))
    cfg["compile"]["metrics"] = "auc"
    arrays["__config__"] = np.array(json.dumps(cfg))
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="expected a list of metrics"):
        fastnn.load_model(path)


def test_metric_object_renaming_never_touches_the_given_object():
    x, ids, w = _data(30)
    auc = M.AUC(name="auc")
    m = _model()
    m.compile("sgd", "sparse_categorical_crossentropy", metrics=[auc], weighted_metrics=[auc])
    logs = m.evaluate(x, ids, sample_weight=w, return_dict=True)
    assert list(logs) == ["loss", "auc", "weighted_auc"]
    assert m.evaluate(x, ids, sample_weight=w, return_dict=True) == logs
    assert auc.name == "auc" and not getattr(auc, "_weighted", False)


def test_a_metric_object_starts_each_evaluate_and_validation_from_zero():
    """evaluate after fit (and the validation pass inside fit) never count the batches the
    training epoch fed to the object compile was given."""
    x, ids, _ = _data()
    m = _model()
    m.compile("adam", "sparse_categorical_crossentropy", metrics=[M.AUC(num_thresholds=50)])
    h = m.fit(x[:60], ids[:60], epochs=1, batch_size=16, verbose=0, seed=0, validation_data=(x[60:], ids[60:]))
    expect = M.AUC(num_thresholds=50)
    expect.update(ids[60:], m.predict(x[60:]))
    assert h.history["val_auc"] == [expect.result()]
    assert m.evaluate(x[60:], ids[60:], return_dict=True)["auc"] == expect.result()
