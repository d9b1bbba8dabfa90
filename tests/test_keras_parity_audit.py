"""Workflows run the same way in fastnn and in Keras 3 (JAX backend) on the same weights and data:
callbacks' decisions, metrics' thresholds, Sequential editing. Each test failed before its fix."""
import numpy as np
import pytest

import fastnn
from fastnn import layers as L
from helpers import keras_on_jax


@pytest.fixture(scope="module")
def keras():
    return keras_on_jax()


def _pair(keras, d=5, out=1, act="sigmoid", seed=0):
    """The same MLP in Keras and fastnn (fastnn takes Keras's weights)."""
    k = keras.Sequential([keras.Input((d,)), keras.layers.Dense(8, activation="relu"),
                          keras.layers.Dense(out, activation=act)])
    f = fastnn.Sequential([L.Input((d,)), L.Dense(8, activation="relu"), L.Dense(out, activation=act)])
    rng = np.random.default_rng(seed)
    ws = [rng.normal(scale=0.5, size=w.shape).astype(np.float32) for w in k.get_weights()]
    k.set_weights(ws)
    f.set_weights(ws)
    return k, f


def _data(n=40, d=5, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (x[:, :1] + 0.5 * rng.normal(size=(n, 1)) > 0).astype(np.float32)
    return x, y


def _scripted(lib, key, values):
    """A callback writing values[epoch] into the epoch's logs under key (before the ones after it)."""
    class Script(lib.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs[key] = values[epoch]
    return Script()


def _fit_both(keras, kcb, fcb, key, values, k_metrics=None, f_metrics=None):
    x, y = _data()
    k, f = _pair(keras)
    k.compile(keras.optimizers.SGD(0.1), "binary_crossentropy", metrics=k_metrics)
    f.compile(fastnn.optimizers.SGD(0.1), "binary_crossentropy", metrics=f_metrics)
    fit = dict(batch_size=8, epochs=len(values), shuffle=False, verbose=0, validation_data=(x, y))
    hk = k.fit(x, y, callbacks=[_scripted(keras, key, values), kcb], **fit)
    hf = f.fit(x, y, callbacks=[_scripted(fastnn, key, values), fcb], **fit)
    return k, f, hk, hf


def test_early_stopping_restores_the_best_weights_also_without_stopping(keras):
    # best val_loss at epoch 2 of 6, patience never runs out: Keras 3 still restores epoch 2's weights
    values = [0.9, 0.8, 0.5, 0.7, 0.6, 0.65]
    kw = dict(monitor="val_loss", patience=10, restore_best_weights=True)
    es = fastnn.callbacks.EarlyStopping(**kw)
    k, f, hk, hf = _fit_both(keras, keras.callbacks.EarlyStopping(**kw), es, "val_loss", values)
    assert len(hk.epoch) == len(hf.epoch) == 6 and es.best_epoch == 2
    for a, b in zip(k.get_weights(), f.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("metric", ["precision", "recall", "auc", "named_precision"])
def test_early_stopping_auto_mode_maximizes_precision_and_recall(keras, metric):
    # a rising metric is an improvement for Keras 3 (its direction "up"): no early stop
    values = [0.5, 0.6, 0.55, 0.7, 0.69, 0.71, 0.65, 0.64]
    kcls = {"precision": keras.metrics.Precision, "recall": keras.metrics.Recall, "auc": keras.metrics.AUC,
            "named_precision": keras.metrics.Precision}[metric]
    fmet = fastnn.metrics.Precision(name="named_precision") if metric == "named_precision" else metric
    key = "val_" + metric
    kes, fes = keras.callbacks.EarlyStopping(monitor=key, patience=2), fastnn.callbacks.EarlyStopping(monitor=key, patience=2)
    _, _, hk, hf = _fit_both(keras, kes, fes, key, values, [kcls(name=metric)], [fmet])
    assert fes.mode == "max"
    assert len(hf.epoch) == len(hk.epoch) == 8
    rk = keras.callbacks.ReduceLROnPlateau(monitor=key, patience=1, factor=0.5)
    rf = fastnn.callbacks.ReduceLROnPlateau(monitor=key, patience=1, factor=0.5)
    _, _, hk, hf = _fit_both(keras, rk, rf, key, values, [kcls(name=metric)], [fmet])
    np.testing.assert_allclose(hf.history["learning_rate"], hk.history["learning_rate"], rtol=1e-6)


def test_binary_accuracy_threshold_on_a_sigmoid_or_softmax_output(keras):
    x, y = _data(60)
    w = np.random.default_rng(2).uniform(0.1, 2.0, 60).astype(np.float32)
    k, f = _pair(keras)
    k.compile("sgd", "binary_crossentropy", metrics=[keras.metrics.BinaryAccuracy(threshold=0.3)],
              weighted_metrics=[keras.metrics.BinaryAccuracy(threshold=0.7, name="w")])
    f.compile("sgd", "binary_crossentropy", metrics=[fastnn.metrics.BinaryAccuracy(threshold=0.3)],
              weighted_metrics=[fastnn.metrics.BinaryAccuracy(threshold=0.7)])
    rk = k.evaluate(x, y, sample_weight=w, batch_size=16, return_dict=True, verbose=0)
    rf = f.evaluate(x, y, sample_weight=w, batch_size=16, return_dict=True)
    assert rf["binary_accuracy"] == pytest.approx(rk["binary_accuracy"], abs=1e-6)
    assert rf["weighted_binary_accuracy"] == pytest.approx(rk["w"], abs=1e-6)
    # a softmax output (fused with the cross-entropy): the threshold applies to the probabilities
    yc = np.eye(3, dtype=np.float32)[np.random.default_rng(3).integers(0, 3, 60)]
    k, f = _pair(keras, out=3, act="softmax")
    k.compile("sgd", "categorical_crossentropy", metrics=["binary_accuracy"])
    f.compile("sgd", "categorical_crossentropy", metrics=["binary_accuracy"])
    rk = k.evaluate(x, yc, return_dict=True, verbose=0)
    rf = f.evaluate(x, yc, return_dict=True)
    assert rf["binary_accuracy"] == pytest.approx(rk["binary_accuracy"], abs=1e-6)


@pytest.mark.parametrize("cls", ["Precision", "Recall"])
@pytest.mark.parametrize("kw", [dict(top_k=2), dict(top_k=1, class_id=2), dict(top_k=2, thresholds=0.6)])
def test_precision_recall_top_k_count_the_top_k_as_predicted(keras, cls, kw):
    rng = np.random.default_rng(4)
    y = (rng.uniform(size=(50, 4)) > 0.5).astype(np.float32)
    p = rng.uniform(size=(50, 4)).astype(np.float32)
    w = rng.uniform(0, 2, 50).astype(np.float32)
    for sw in (None, w):
        km = getattr(keras.metrics, cls)(name=cls.lower(), **kw)  # named: Keras's auto names count globally
        km.update_state(y, p, sample_weight=sw)
        fm = getattr(fastnn.metrics, cls)(**kw)
        fm.update(y, p, sample_weight=sw)
        assert fm.result() == pytest.approx(float(km.result()), abs=1e-6)


def test_sequential_add_after_the_build_builds_the_new_layer(keras):
    x, _ = _data(12)
    k, f = _pair(keras)
    k.pop()
    f.pop()
    k.add(keras.layers.Dense(3, activation="softmax"))
    f.add(L.Dense(3, activation="softmax"))
    assert [w.shape for w in f.get_weights()] == [w.shape for w in k.get_weights()] == [(5, 8), (8,), (8, 3), (3,)]
    assert f.count_params() == k.count_params()
    f.set_weights(k.get_weights())
    np.testing.assert_allclose(f.predict(x), k.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    # a model built up one add at a time from its Input, as Keras
    k = keras.Sequential()
    k.add(keras.Input((5,)))
    k.add(keras.layers.Dense(4))
    f = fastnn.Sequential()
    f.add(L.Input((5,)))
    f.add(L.Dense(4))
    assert [w.shape for w in f.get_weights()] == [w.shape for w in k.get_weights()] == [(5, 4), (4,)]
    # a layer that cannot follow leaves the model as it was
    before = f.get_weights()
    with pytest.raises(ValueError, match="target_shape"):
        f.add(L.Reshape((7,)))
    assert len(f.layers) == 1 and all(np.array_equal(a, b) for a, b in zip(before, f.get_weights()))


def test_metric_objects_log_under_keras_default_names(keras):
    x, y = _data(24)
    yc = np.eye(3, dtype=np.float32)[np.arange(24) % 3]
    cases = [(1, "sigmoid", y, "binary_crossentropy", ["BinaryAccuracy", "MeanSquaredError", "MeanAbsoluteError"]),
             (3, "softmax", yc, "categorical_crossentropy", ["CategoricalAccuracy"]),
             (3, "softmax", np.arange(24) % 3, "sparse_categorical_crossentropy", ["SparseCategoricalAccuracy"])]
    for out, act, target, loss, names in cases:
        k, f = _pair(keras, out=out, act=act)
        k.compile("sgd", loss, metrics=[getattr(keras.metrics, n)() for n in names])
        f.compile("sgd", loss, metrics=[getattr(fastnn.metrics, n)() for n in names])
        hk = k.fit(x, target, epochs=1, batch_size=8, shuffle=False, verbose=0, validation_split=0.25)
        hf = f.fit(x, target, epochs=1, batch_size=8, shuffle=False, verbose=0, validation_split=0.25)
        assert sorted(hf.history) == sorted(hk.history)
        for key in hk.history:
            np.testing.assert_allclose(hf.history[key], hk.history[key], rtol=1e-5, atol=1e-6)
    assert fastnn.metrics.BinaryAccuracy(name="ba").name == "ba"


def test_metric_objects_start_from_zero_in_validation_evaluate_and_on_batch_calls(keras):
    # one metric object serves every run of the model: validation after the epoch's training,
    # evaluate after fit, each *_on_batch call (it summed the training batches into val_* before)
    x, y = _data(48, seed=4)
    k, f = _pair(keras)
    k.compile(keras.optimizers.SGD(0.1), "binary_crossentropy",
              metrics=[keras.metrics.MeanSquaredError(), keras.metrics.AUC(name="auc"), keras.metrics.BinaryAccuracy()])
    f.compile(fastnn.optimizers.SGD(0.1), "binary_crossentropy",
              metrics=[fastnn.metrics.MeanSquaredError(), fastnn.metrics.AUC(), fastnn.metrics.BinaryAccuracy()])
    fit = dict(batch_size=8, epochs=2, shuffle=False, verbose=0, validation_split=0.25)
    hk, hf = k.fit(x, y, **fit), f.fit(x, y, **fit)
    assert sorted(hf.history) == sorted(hk.history)
    for key in hk.history:
        np.testing.assert_allclose(hf.history[key], hk.history[key], rtol=2e-5, atol=1e-6, err_msg=key)
    for a, b in zip((k.evaluate(x[:20], y[:20], verbose=0), k.evaluate(x[20:], y[20:], verbose=0)),
                    (f.evaluate(x[:20], y[:20]), f.evaluate(x[20:], y[20:]))):
        np.testing.assert_allclose(b, a, rtol=2e-5, atol=1e-6)  # a list: loss, then each metric
    for sl in (slice(0, 10), slice(10, 30)):
        np.testing.assert_allclose(f.test_on_batch(x[sl], y[sl]), k.test_on_batch(x[sl], y[sl]), rtol=2e-5, atol=1e-6)
        np.testing.assert_allclose(f.train_on_batch(x[sl], y[sl]), k.train_on_batch(x[sl], y[sl]), rtol=2e-5, atol=1e-6)


def test_reset_metrics_between_batch_calls(keras):
    x, y = _data(30, seed=5)
    k, f = _pair(keras)
    k.compile(keras.optimizers.SGD(0.1), "binary_crossentropy", metrics=[keras.metrics.AUC(name="auc")])
    f.compile(fastnn.optimizers.SGD(0.1), "binary_crossentropy", metrics=[fastnn.metrics.AUC()])
    for sl in (slice(0, 10), slice(10, 30)):
        k.reset_metrics()
        f.reset_metrics()
        np.testing.assert_allclose(f.train_on_batch(x[sl], y[sl]), k.train_on_batch(x[sl], y[sl]), rtol=2e-5, atol=1e-6)


def test_metric_objects_of_a_two_output_model_keep_their_names(keras):
    # each run prefixed the object's name again: cls_cls_..., values split over the keys
    rng = np.random.default_rng(6)
    x = rng.normal(size=(40, 5)).astype(np.float32)
    y = {"cls": rng.integers(0, 3, 40), "reg": rng.normal(size=(40, 1)).astype(np.float32)}

    def build(lib, layers):
        i = layers.Input((5,))
        h = layers.Dense(8, activation="relu")(i)
        return lib.Model(i, [layers.Dense(3, activation="softmax", name="cls")(h), layers.Dense(1, name="reg")(h)])
    k, f = build(keras, keras.layers), build(fastnn, L)
    f.set_weights(k.get_weights())
    loss = {"cls": "sparse_categorical_crossentropy", "reg": "mse"}
    k.compile(keras.optimizers.SGD(0.05), loss=loss, metrics={"cls": [keras.metrics.SparseCategoricalAccuracy()],
                                                               "reg": [keras.metrics.MeanAbsoluteError()]})
    f.compile(fastnn.optimizers.SGD(0.05), loss=loss, metrics={"cls": [fastnn.metrics.SparseCategoricalAccuracy()],
                                                                "reg": [fastnn.metrics.MeanAbsoluteError()]})
    fit = dict(batch_size=8, epochs=2, shuffle=False, verbose=0, validation_split=0.25)
    hk, hf = k.fit(x, y, **fit), f.fit(x, y, **fit)
    assert sorted(hf.history) == sorted(hk.history)
    for key in hk.history:
        np.testing.assert_allclose(hf.history[key], hk.history[key], rtol=2e-5, atol=1e-6, err_msg=key)
    np.testing.assert_allclose(f.evaluate(x, y), k.evaluate(x, y, verbose=0), rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("how", [dict(validation_split=0.25, validation_steps=1),
                                 dict(validation_steps=2), dict(validation_steps=1, validation_batch_size=7)])
def test_validation_steps_take_the_first_batches_of_batch_size_rows_each_epoch(keras, how):
    # Keras 3: validation_batch_size or batch_size rows a batch, from the first batch at every
    # validation (fastnn ignored validation_steps with validation_split, and read 1024-row
    # batches continuing across epochs)
    x, y = _data(48)
    fit = dict(batch_size=8, epochs=3, shuffle=False, verbose=0, **how)
    if "validation_split" not in how:
        fit["validation_data"] = _data(30, seed=9)
    k, f = _pair(keras)
    k.compile(keras.optimizers.SGD(0.1), "binary_crossentropy", metrics=["accuracy"])
    f.compile(fastnn.optimizers.SGD(0.1), "binary_crossentropy", metrics=["accuracy"])
    hk, hf = k.fit(x, y, **fit), f.fit(x, y, **fit)
    for key in ("val_loss", "val_accuracy"):
        np.testing.assert_allclose(hf.history[key], hk.history[key], rtol=2e-5, atol=1e-6, err_msg=key)


def test_every_callback_gets_fit_params(keras):
    x, y = _data(50)
    seen = {}

    def spy(lib, tag):
        class Spy(lib.callbacks.Callback):
            def on_train_begin(self, logs=None):
                seen[tag] = dict(self.params)
        return Spy()
    k, f = _pair(keras)
    k.compile("sgd", "binary_crossentropy")
    f.compile("sgd", "binary_crossentropy")
    k.fit(x, y, batch_size=16, epochs=3, verbose=0, validation_split=0.2, callbacks=[spy(keras, "k")])
    f.fit(x, y, batch_size=16, epochs=3, verbose=0, validation_split=0.2, callbacks=[spy(fastnn, "f")])
    assert {key: seen["f"][key] for key in seen["k"]} == seen["k"]  # epochs, steps, verbose


def test_lambda_callback_and_the_logs_every_hook_gets(keras):
    # Keras 3 passes a logs dict to on_train_begin / on_epoch_begin (and the last epoch's logs to
    # on_train_end); fastnn called them without, so a Keras callback's `logs` argument failed
    x, y = _data(40)
    seen = {"k": [], "f": []}

    def spy(lib, tag):
        rec = seen[tag]
        return lib.callbacks.LambdaCallback(
            on_train_begin=lambda logs: rec.append(("train_begin", dict(logs))),
            on_epoch_begin=lambda epoch, logs: rec.append(("epoch_begin", epoch, dict(logs))),
            on_epoch_end=lambda epoch, logs: rec.append(("epoch_end", epoch, sorted(logs))),
            on_train_batch_end=lambda batch, logs: rec.append(("batch", batch)),
            on_train_end=lambda logs: rec.append(("train_end", sorted(logs))))
    k, f = _pair(keras)
    k.compile("sgd", "binary_crossentropy")
    f.compile("sgd", "binary_crossentropy")
    k.fit(x, y, batch_size=16, epochs=2, verbose=0, validation_split=0.25, callbacks=[spy(keras, "k")])
    f.fit(x, y, batch_size=16, epochs=2, verbose=0, validation_split=0.25, callbacks=[spy(fastnn, "f")])
    assert seen["f"] == seen["k"]
    with pytest.raises(TypeError, match="on_epoch_ned"):
        fastnn.callbacks.LambdaCallback(on_epoch_ned=print)


def test_learning_rate_scheduler_refuses_an_optimizer_with_a_schedule(keras):
    # Keras 3: TypeError; fastnn replaced the schedule by the callback's number (or failed
    # inside the user's function with a confusing message)
    x, y = _data(16)
    k, f = _pair(keras)
    k.compile(keras.optimizers.SGD(keras.optimizers.schedules.ExponentialDecay(0.1, 2, 0.5)), "binary_crossentropy")
    f.compile(fastnn.optimizers.SGD(fastnn.schedules.ExponentialDecay(0.1, 2, 0.5)), "binary_crossentropy")
    with pytest.raises(TypeError):
        k.fit(x, y, epochs=1, verbose=0, callbacks=[keras.callbacks.LearningRateScheduler(lambda e, lr: 0.01)])
    before = f.get_weights()
    with pytest.raises(TypeError, match="learning_rate is a schedule"):
        f.fit(x, y, epochs=1, verbose=0, callbacks=[fastnn.callbacks.LearningRateScheduler(lambda e, lr: 0.01)])
    assert isinstance(f.optimizer.learning_rate, fastnn.schedules.ExponentialDecay)
    assert all(np.array_equal(a, b) for a, b in zip(before, f.get_weights()))


@pytest.mark.parametrize("name", ["MeanSquaredError", "MeanAbsoluteError", "Hinge", "SquaredHinge", "Huber",
                                  "BinaryCrossentropy"])
def test_a_keras_loss_reduction_is_refused_by_name(name):
    # fastnn computes Keras's default sum_over_batch_size only; MeanSquaredError(reduction="sum")
    # said "takes no arguments" without naming the argument
    with pytest.raises(TypeError, match="reduction"):
        getattr(fastnn.losses, name)(reduction="sum")
