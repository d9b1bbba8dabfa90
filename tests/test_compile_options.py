"""compile's Keras 3 options about how steps run (fastnn._execution): steps_per_execution
(batch hooks once per N batches, Keras's indices and logs), run_eagerly, jit_compile,
auto_scale_loss, weighted_metrics; checked before anything changes; saved with the model."""
import json
import zipfile

import numpy as np
import pytest

import fastnn
from fastnn.layers import Dense, Dropout

from helpers import keras_on_jax


def _recorder_class(base, keep_logs=True):
    """A callback class over ``base`` recording (hook, batch index[, logs]) of every batch hook
    (logs: train/test end logs as a dict, predict outputs as an array)."""
    def hook(kind, phase):
        def record(self, batch, logs=None):
            event = (f"{kind}_{phase}", batch)
            if keep_logs and phase == "end":
                event += (np.array(logs["outputs"]) if kind == "predict" else dict(logs or {}),)
            self.events.append(event)
        return record

    def init(self):
        base.__init__(self)
        self.events = []
    methods = {f"on_{k}_batch_{p}": hook(k, p) for k in ("train", "test", "predict") for p in ("begin", "end")}
    return type("Recorder", (base,), {"__init__": init, **methods})


Recorder = _recorder_class(fastnn.callbacks.Callback)


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 5)).astype(np.float32), rng.standard_normal((n, 3)).astype(np.float32)


def _model(**compile_kw):
    fastnn.utils.set_random_seed(3)
    m = fastnn.Sequential([Dense(8, activation="relu", input_dim=5), Dropout(0.2, seed=1), Dense(3)])
    m.compile(fastnn.optimizers.Adam(0.01), "mse", **compile_kw)
    return m


def _indices(events):
    return [e[:2] for e in events]


def test_defaults_are_keras_defaults():
    m = _model()
    assert (m.steps_per_execution, m.run_eagerly, m.jit_compile, m.auto_scale_loss) == (1, False, False, True)
    m = _model(run_eagerly=True, steps_per_execution=4, jit_compile=True, auto_scale_loss=False,
               weighted_metrics=[])
    # Keras: jit_compile is switched off under run_eagerly
    assert (m.steps_per_execution, m.run_eagerly, m.jit_compile, m.auto_scale_loss) == (4, True, False, False)
    assert _model(jit_compile=True).jit_compile is True
    assert _model(weighted_metrics=None).compiled


@pytest.mark.parametrize("kw, name", [
    ({"steps_per_execution": 0}, "steps_per_execution"),
    ({"steps_per_execution": 2.0}, "steps_per_execution"),
    ({"steps_per_execution": True}, "steps_per_execution"),
    ({"steps_per_execution": "auto"}, "steps_per_execution"),
    ({"run_eagerly": "yes"}, "run_eagerly"),
    ({"jit_compile": "xla"}, "jit_compile"),
    ({"auto_scale_loss": None}, "auto_scale_loss"),
    ({"weighted_metrics": ["no_such"]}, "unknown metric"),
    ({"weighted_metrics": 3}, "weighted_metrics"),
])
def test_bad_options_are_refused_and_change_nothing(kw, name):
    m = _model(steps_per_execution=2, metrics=["mae"])
    opt, loss = m.optimizer, m.loss
    with pytest.raises(ValueError, match=name):
        m.compile("sgd", "mae", **kw)
    assert (m.optimizer, m.loss, m._metric_names, m.steps_per_execution) == (opt, loss, ["mae"], 2)


def test_fit_calls_the_batch_hooks_once_per_execution():
    x, y = _data(40)
    cb = Recorder()
    _model(steps_per_execution=3).fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[cb], shuffle=False)
    expect = []
    for _ in range(2):  # 10 batches an epoch: executions [0, 3), [3, 6), [6, 9), [9, 10)
        for first, last in ((0, 2), (3, 5), (6, 8), (9, 11)):  # Keras 3: the last ends at "11" too
            expect += [("train_begin", first), ("train_end", last)]
    assert _indices(cb.events) == expect


def test_training_is_the_same_and_the_logs_are_the_execution_mean():
    x, y = _data(38)  # batches of 4: the last has 2 rows
    one, three = Recorder(), Recorder()
    m1 = _model()
    h1 = m1.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[one], shuffle=False)
    m3 = _model(steps_per_execution=3)
    h3 = m3.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[three], shuffle=False)
    for a, b in zip(m1.get_weights(), m3.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert h1.history == h3.history
    losses = [e[2]["loss"] for e in one.events if e[0] == "train_end"]
    sizes = [4] * 9 + [2]
    got = [e[2]["loss"] for e in three.events if e[0] == "train_end"]
    for k, (a, b) in enumerate(((0, 3), (3, 6), (6, 9), (9, 10))):
        want = sum(l * s for l, s in zip(losses[a:b], sizes[a:b])) / sum(sizes[a:b])
        assert got[k] == pytest.approx(want, rel=1e-12)
    assert got[3] == losses[9]  # an execution of one batch: that batch's own loss


def test_steps_per_execution_one_keeps_every_batch():
    x, y = _data(12)
    cb = Recorder()
    _model().fit(x, y, batch_size=4, verbose=0, callbacks=[cb])
    assert _indices(cb.events) == [("train_begin", 0), ("train_end", 0), ("train_begin", 1), ("train_end", 1),
                                   ("train_begin", 2), ("train_end", 2)]


def test_evaluate_and_predict_hooks():
    x, y = _data(36)
    m = _model(steps_per_execution=4)
    cb = Recorder()
    out = m.predict(x, batch_size=5, callbacks=[cb])  # 8 batches: [0, 4), [4, 8)
    assert _indices(cb.events) == [("predict_begin", 0), ("predict_end", 3), ("predict_begin", 4),
                                   ("predict_end", 7)]
    np.testing.assert_array_equal(cb.events[1][2], out[:20])
    np.testing.assert_array_equal(cb.events[3][2], out[20:])
    cb.events.clear()
    m.evaluate(x, y, batch_size=10, callbacks=[cb])  # 4 batches: one execution
    assert _indices(cb.events) == [("test_begin", 0), ("test_end", 3)]
    per_batch = [m.evaluate(x[i:i + 10], y[i:i + 10], batch_size=10) for i in range(0, 36, 10)]
    want = sum(l * len(x[i:i + 10]) for l, i in zip(per_batch, range(0, 36, 10))) / 36
    assert cb.events[1][2]["loss"] == pytest.approx(want, rel=1e-6)


def test_validation_uses_the_test_hooks_per_execution():
    x, y = _data(24)
    cb = Recorder()
    _model(steps_per_execution=2).fit(x, y, batch_size=8, verbose=0, callbacks=[cb],
                                      validation_data=(x, y), validation_batch_size=8)
    assert _indices(cb.events) == [("train_begin", 0), ("train_end", 1), ("train_begin", 2), ("train_end", 3),
                                   ("test_begin", 0), ("test_end", 1), ("test_begin", 2), ("test_end", 3)]


def test_saved_with_the_model_and_checked_on_load(tmp_path):
    x, y = _data(8)
    m = _model(steps_per_execution=5, run_eagerly=True)
    m.fit(x, y, verbose=0)
    path = tmp_path / "m.npz"
    m.save(path)
    back = fastnn.load_model(path)
    assert (back.steps_per_execution, back.run_eagerly) == (5, True)
    # a file whose compile options are hostile is refused with the option's name
    with zipfile.ZipFile(path) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    cfg_name = next(n for n in entries if n.startswith("__config__"))
    arr = np.load(path)["__config__"]
    cfg = json.loads(str(arr))
    cfg["compile"]["steps_per_execution"] = -3
    bad = tmp_path / "bad.npz"
    np.savez(bad, **{k: v for k, v in np.load(path).items() if k != "__config__"},
             __config__=np.array(json.dumps(cfg)))
    assert cfg_name
    with pytest.raises(ValueError, match="steps_per_execution"):
        fastnn.load_model(bad)


def test_hook_indices_match_keras():
    keras = keras_on_jax()
    x, y = _data(40)

    KerasRecorder = _recorder_class(keras.callbacks.Callback, keep_logs=False)

    km = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
    km.compile("sgd", "mse", steps_per_execution=3)
    kcb = KerasRecorder()
    km.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[kcb], shuffle=False,
           validation_data=(x, y), validation_batch_size=8)
    km.predict(x, batch_size=6, verbose=0, callbacks=[kcb])
    cb = Recorder()
    m = _model(steps_per_execution=3)
    m.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[cb], shuffle=False,
          validation_data=(x, y), validation_batch_size=8)
    m.predict(x, batch_size=6, callbacks=[cb])
    assert _indices(cb.events) == kcb.events


def _hooked_fit(monkeypatch, native, n, chunk_rows=None, stop_at=None, epochs=2):
    """fit with a hook callback under steps_per_execution=n: (model, history, events, native steps)."""
    from fastnn import native_step

    from helpers import count_native_steps
    monkeypatch.setenv("FASTNN_NATIVE_STEP", "1" if native else "0")
    if chunk_rows:
        monkeypatch.setattr(native_step, "CHUNK_ROWS", chunk_rows)
    count = count_native_steps(monkeypatch)
    x, y = _data(150, seed=4)
    cb = Recorder()
    if stop_at is not None:
        def stop(batch, logs=None, cb=cb):
            cb.events.append(("train_end", batch, dict(logs or {})))
            if batch >= stop_at:
                m.stop_training = True
        cb.on_train_batch_end = stop
    fastnn.utils.set_random_seed(3)
    m = fastnn.Sequential([Dense(16, activation="relu", input_dim=5), Dropout(0.3, seed=2), Dense(3)])
    m.compile(fastnn.optimizers.Adam(0.01), "mse", metrics=["mae"], steps_per_execution=n)
    h = m.fit(x, y, batch_size=8, epochs=epochs, verbose=0, callbacks=[cb], seed=5)
    return m, h.history, cb.events, count["n"]


@pytest.mark.parametrize("n, chunk_rows", [(3, None), (5, 16), (40, None), (7, 8)])
def test_native_epoch_runs_between_the_hooks_bitwise(monkeypatch, n, chunk_rows):
    """With steps_per_execution > 1 the full batches run natively, a call never crossing an
    execution (CHUNK_ROWS small: an execution over several calls); weights, history and
    every hook call equal the batch-by-batch Python step's."""
    m1, h1, e1, c1 = _hooked_fit(monkeypatch, True, n, chunk_rows)
    monkeypatch.undo()
    m0, h0, e0, c0 = _hooked_fit(monkeypatch, False, n, chunk_rows)
    assert c1 == 2 * 19 and c0 == 0  # 150 rows: 18 full batches of 8 natively, the 19th by train_step (native too)
    for a, b in zip(m1.get_weights(), m0.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert h1 == h0
    assert e1 == e0  # indices, and each execution's mean loss bitwise


def test_stop_training_from_a_hook_stops_after_that_execution(monkeypatch):
    m1, h1, e1, c1 = _hooked_fit(monkeypatch, True, 4, stop_at=7, epochs=3)
    monkeypatch.undo()
    m0, h0, e0, _ = _hooked_fit(monkeypatch, False, 4, stop_at=7, epochs=3)
    assert [e[:2] for e in e1] == [("train_begin", 0), ("train_end", 3), ("train_begin", 4), ("train_end", 7)]
    assert c1 == 8 and h1 == h0 and len(h1["loss"]) == 1
    for a, b in zip(m1.get_weights(), m0.get_weights()):
        np.testing.assert_array_equal(a, b)
