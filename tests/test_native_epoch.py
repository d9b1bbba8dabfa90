"""fit's native epoch (native_step.epoch_steps, NativeStep.run_batches): the full batches of
an in-memory epoch run several per core call, gathered in the core. It trains bitwise the
same as batch by batch (the native step, and the Python step), in chunks of any size; it
runs with metrics and sample weights, steps aside for batch callbacks; a refused call changes nothing."""
import numpy as np
import pytest

import fastnn
from fastnn import layers as L
from fastnn import native_step
from fastnn import optimizers as O
from test_native_step import SUPPORTED, _train

_EPOCH_STEPS = native_step.epoch_steps  # the real one (tests patch the module's name)


def _run(monkeypatch, mode, case, dtype, chunk_rows=32, **kw):
    """mode: "python" (FASTNN_NATIVE_STEP=0), "batch" (the native step batch by batch) or
    "epoch" (run_batches, chunk_rows rows per call)."""
    build, loss, opt, y = SUPPORTED[case]
    y = y.astype(dtype) if y.dtype.kind == "f" else y
    monkeypatch.setattr(native_step, "CHUNK_ROWS", chunk_rows)
    calls = {"n": 0}
    real = _EPOCH_STEPS

    def epoch_steps(*a):
        run = None if mode != "epoch" else real(*a)
        calls["n"] += run is not None
        return run
    monkeypatch.setattr(native_step, "epoch_steps", epoch_steps)
    out = _train(monkeypatch, mode != "python", build, loss, opt, y, dtype, **kw)
    return out, calls["n"]


def _same(a, b):
    assert sorted(a[0]) == sorted(b[0])
    for k in a[0]:
        np.testing.assert_array_equal(a[0][k], b[0][k], err_msg=k)  # bitwise
    assert a[1] == b[1]  # history: the epoch losses


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", range(len(SUPPORTED)))
@pytest.mark.parametrize("chunk_rows", [16, 48, 4096])
def test_native_epoch_bitwise_equal_to_batch_by_batch(monkeypatch, threads, dtype, case, chunk_rows):
    # 90 rows, batch 16: 5 full batches (calls of 1, 3 or 5 of them) and a last one of 10
    ref, _ = _run(monkeypatch, "python", case, dtype)
    batch, n_batch = _run(monkeypatch, "batch", case, dtype)
    epoch, n_epoch = _run(monkeypatch, "epoch", case, dtype, chunk_rows=chunk_rows)
    assert n_batch == 0 and n_epoch == 2  # one native epoch per epoch
    assert batch[2] == epoch[2] == 12  # every step native (6 per epoch)
    _same(epoch, batch)
    _same(epoch, ref)


@pytest.mark.parametrize("batch_size", [1, 2, 30, 90, 200])
def test_native_epoch_any_batch_size(monkeypatch, batch_size):
    # batch 1 (90 steps, many calls), a batch that divides n (no last partial batch), the
    # whole set in one batch and one larger than the set (fit takes n rows)
    ref, _ = _run(monkeypatch, "python", 0, "float32", batch_size=batch_size)
    epoch, n = _run(monkeypatch, "epoch", 0, "float32", chunk_rows=24, batch_size=batch_size)
    assert n == 2
    _same(epoch, ref)


def _model(seed=0, **compile_kw):
    init = fastnn.initializers.GlorotUniform
    m = fastnn.Sequential([L.Input((6,)), L.Dense(8, activation="relu", kernel_initializer=init(seed=seed)),
                           L.Dropout(0.25, seed=4), L.Dense(3, activation="softmax", kernel_initializer=init(seed=1))])
    m.compile(O.Adam(1e-2), "sparse_categorical_crossentropy", **compile_kw)
    return m


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(70, 6)).astype(np.float32), rng.integers(0, 3, 70)


class _BatchEnd(fastnn.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1


@pytest.mark.parametrize("kind", ["metrics", "batch callback", "sample weight", "unshuffled"])
def test_native_epoch_runs_or_steps_aside_and_results_do_not_change(monkeypatch, kind):
    _check_same_fit(monkeypatch, kind)


def _check_same_fit(monkeypatch, kind):
    x, y = _data()
    spy = {"epochs": 0}
    real = _EPOCH_STEPS

    def epoch_steps(*a):
        run = real(*a)
        spy["epochs"] += run is not None
        return run

    def fit(native_epoch):
        monkeypatch.setattr(native_step, "epoch_steps", epoch_steps if native_epoch else (lambda *a: None))
        metrics = ["accuracy", fastnn.metrics.SparseTopKCategoricalAccuracy(2)]
        m = _model(metrics=metrics if kind == "metrics" else None)
        kw = {"callbacks": [_BatchEnd()]} if kind == "batch callback" else {}
        if kind == "sample weight":
            kw["sample_weight"] = np.linspace(0.5, 1.5, 70)
        h = m.fit(x, y, batch_size=16, epochs=2, seed=1, verbose=0, shuffle=kind != "unshuffled", **kw)
        return m.get_weights(), h.history

    spy["epochs"] = 0
    w0, h0 = fit(False)
    w1, h1 = fit(True)
    assert spy["epochs"] == (0 if kind == "batch callback" else 2)  # sample weights: gathered in the core
    assert h0 == h1
    for a, b in zip(w0, w1):
        np.testing.assert_array_equal(a, b)


def test_native_epoch_progress_bar_and_stop_training(monkeypatch, capsys):
    x, y = _data()

    class Stop(fastnn.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.stop_training = True
    m = _model()
    h = m.fit(x, y, batch_size=8, epochs=3, seed=1, verbose=1, callbacks=[Stop()])
    assert len(h.history["loss"]) == 1 and np.isfinite(h.history["loss"][0])
    assert "loss" in capsys.readouterr().out
    assert m.optimizer.iterations == 9  # 8 full batches and the last 6 rows


def _plan(m, x, y, bs):
    """The model's native plan for batch size bs (built by one epoch), with its buffers."""
    m.fit(x, y, batch_size=bs, epochs=1, seed=1, verbose=0)
    ready = native_step._ready(m, bs, x[:bs], y[:bs], *fastnn.trainer.loss_mode(m))
    assert ready is not None
    return ready[0][0][0]


def _snapshot(m):
    return [w.copy() for w in m.get_weights()] + [v.copy() for v in m.optimizer.state.values()]


@pytest.mark.parametrize("bad", ["index out of range", "negative index", "nan lr", "negative lr", "labels dtype",
                                 "seeds size", "xbuf overlaps the model", "index size", "losses dtype",
                                 "x width", "outs shape", "outs overlaps xbuf", "outs dtype"])
def test_run_batches_refuses_and_changes_nothing(bad):
    x, y = _data()
    m = _model()
    native = _plan(m, x, y, 8)
    before = _snapshot(m)
    k = 3
    args = dict(x=x, labels=y.astype(np.int64), index=np.arange(k * 8, dtype=np.int64), lrs=np.full(k, 1e-2),
                step0=m.optimizer.iterations + 1, seeds=np.zeros((k, 1), np.uint64), losses=np.zeros(k),
                xbuf=np.empty((8, 6), np.float32), ybuf=np.empty(8, np.int64))
    err = ValueError
    if bad == "index out of range":
        args["index"][5] = 70
    elif bad == "negative index":
        args["index"][0] = -1
    elif bad == "nan lr":
        args["lrs"][2] = np.nan
    elif bad == "negative lr":
        args["lrs"][1] = -1.0
    elif bad == "labels dtype":
        args["labels"], err = y.astype(np.int32), TypeError
    elif bad == "seeds size":
        args["seeds"] = np.zeros((k, 2), np.uint64)
    elif bad == "xbuf overlaps the model":
        args["xbuf"] = m.layers[0].vars["kernel"][:8]
    elif bad == "index size":
        args["index"] = np.arange(k * 8 - 1, dtype=np.int64)
    elif bad == "losses dtype":
        args["losses"], err = np.zeros(k, np.float32), TypeError
    elif bad == "x width":
        args["x"] = np.zeros((70, 5), np.float32)
    elif bad == "outs shape":
        args["outs"] = np.zeros((k, 8, 4), np.float32)
    elif bad == "outs overlaps xbuf":
        args["outs"] = np.zeros(k * 8 * 3 + 8 * 6, np.float32)[:k * 8 * 3].reshape(k, 8, 3)
        args["xbuf"] = np.zeros(k * 8 * 3 + 8 * 6, np.float32)
        args["outs"] = args["xbuf"][:k * 8 * 3].reshape(k, 8, 3)
        args["xbuf"] = args["xbuf"][k * 8 * 3 - 6:k * 8 * 3 - 6 + 48].reshape(8, 6)
    elif bad == "outs dtype":
        args["outs"], err = np.zeros((k, 8, 3), np.float64), TypeError
    losses = args["losses"].copy()
    with pytest.raises(err):
        native.run_batches(**args)
    for a, b in zip(before, _snapshot(m)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(args["losses"], losses)


def test_run_batches_equals_run_step_by_step():
    x, y = _data()
    check_run_batches_equals_run(_model(), _model(), x, y.astype(np.int64))


def check_run_batches_equals_run(m1, m2, x, labels, weights=None):
    """Four steps of batch 8 (one Dropout layer), one run_batches call on m1's plan and four
    run calls on m2's (the same weights and optimizer state): the same losses and weights.
    weights: the rows' sample weights (gathered by run_batches, each batch's given to run)."""
    n1, n2 = _plan(m1, x, labels, 8), _plan(m2, x, labels, 8)
    m2.set_weights(m1.get_weights())
    for a, b in zip(m1.optimizer.state.values(), m2.optimizer.state.values()):
        b[...] = a
    it = m1.optimizer.iterations
    order = np.random.default_rng(3).permutation(70)[:32].astype(np.int64)
    seeds = np.arange(4, dtype=np.uint64).reshape(4, 1) * 977
    lrs = np.array([1e-2, 5e-3, 2e-3, 1e-3])
    losses = np.zeros(4)
    xbuf, ybuf = np.empty((8, 6), np.float32), np.empty((8,) + labels.shape[1:], labels.dtype)
    wbuf = None if weights is None else np.empty(8, weights.dtype)
    n1.run_batches(x, labels, order, lrs, it + 1, seeds, losses, xbuf, ybuf, weights=weights, wbuf=wbuf)
    step = native_step._ready(m2, 8, x[:8], labels[:8], *fastnn.trainer.loss_mode(m2))[0]
    plan_seeds = step[0][1]
    for i in range(4):
        plan_seeds[:] = seeds[i]
        rows = order[i * 8:(i + 1) * 8]
        w = None if weights is None else weights[rows]
        assert n2.run(x[rows], labels[rows], lrs[i], it + 1 + i, w) == losses[i]
    for a, b in zip(m1.get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(xbuf, x[order[24:32]])  # the last batch stays in the buffer
    if weights is not None:
        np.testing.assert_array_equal(wbuf, weights[order[24:32]])
    return n2, order


class _NanAfter(fastnn.schedules.LearningRateSchedule):
    """1e-2 for the first `good` steps, then NaN (which the optimizer refuses)."""

    def __init__(self, good):
        self.good = good

    def __call__(self, step):
        return 1e-2 if step < self.good else float("nan")

    def get_config(self):
        return {"good": self.good}


@pytest.mark.parametrize("good", [0, 3, 11])
def test_a_refused_rate_mid_call_stops_where_batch_by_batch_stops(monkeypatch, good):
    x, y = _data()
    out = []
    for native_epoch in (False, True):
        monkeypatch.setattr(native_step, "epoch_steps", _EPOCH_STEPS if native_epoch else (lambda *a: None))
        m = fastnn.Sequential([L.Input((6,)), L.Dense(8, activation="relu"), L.Dense(3, activation="softmax")])
        m.compile(O.Adam(_NanAfter(good)), "sparse_categorical_crossentropy")
        m.build((None, 6))
        m.set_weights([np.full(w.shape, 0.1, w.dtype) for w in m.get_weights()])
        with pytest.raises(ValueError, match="lr"):
            m.fit(x, y, batch_size=8, epochs=2, seed=1, verbose=0)
        out.append((m.optimizer.iterations, _snapshot(m)))
        monkeypatch.undo()
    assert out[0][0] == out[1][0] == good
    for a, b in zip(out[0][1], out[1][1]):
        np.testing.assert_array_equal(a, b)


def test_step_profile_times_the_parts_of_every_native_step():
    from fastnn import _core
    x, y = _data()
    m = _model()
    m.fit(x, y, batch_size=8, epochs=1, seed=1, verbose=0)
    _core._testing.set_step_profiling(True)
    try:
        m.fit(x, y, batch_size=8, epochs=1, seed=1, verbose=0)
        p = _core._testing.step_profile()
    finally:
        _core._testing.set_step_profiling(False)
    assert p["steps"] == 9, p  # 8 full batches (native epoch) and the last 6 rows (try_step)
    for k in ("dense_forward", "dense_backward", "other_layers", "loss", "optimizer"):
        assert p[k] > 0, k
    m.fit(x, y, batch_size=8, epochs=1, seed=1, verbose=0)
    assert _core._testing.step_profile()["steps"] == 9  # off: not counted
    _core._testing.set_step_profiling(True)
    assert _core._testing.step_profile()["steps"] == 0  # on again: reset
    _core._testing.set_step_profiling(False)


def test_a_wide_output_keeps_fewer_steps_per_call(monkeypatch):
    # the metrics' copies of the outputs stay under OUTPUT_BYTES per call; results unchanged
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(40, 6)).astype(np.float32), rng.integers(0, 50, 40)
    sizes, real = [], fastnn._core.NativeStep.run_batches

    def spy(self, *a, **k):
        sizes.append(len(a[3]))
        return real(self, *a, **k)

    def fit(limit):
        monkeypatch.setattr(native_step, "OUTPUT_BYTES", limit)
        init = fastnn.initializers.GlorotUniform
        m = fastnn.Sequential([L.Input((6,)), L.Dense(50, activation="softmax", kernel_initializer=init(seed=3))])
        m.compile(O.Adam(1e-2), "sparse_categorical_crossentropy", metrics=["accuracy"])
        return m.fit(x, y, batch_size=4, epochs=1, seed=0, verbose=0).history, m.get_weights()
    monkeypatch.setattr(fastnn._core.NativeStep, "run_batches", spy)
    h1, w1 = fit(4 << 20)
    assert sizes == [10]
    sizes.clear()
    h2, w2 = fit(3 * 4 * 50 * 4)  # three steps' outputs
    assert sizes == [3, 3, 3, 1]
    assert h1 == h2
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)


def _flatten_fit(monkeypatch, mode, shape, middle_flatten=False):
    """(weights and slots, history, native steps) of a model with a leading Flatten (and, with
    middle_flatten, one after the first Dense) on inputs of feature shape `shape`."""
    monkeypatch.setenv("FASTNN_NATIVE_STEP", "0" if mode == "python" else "1")
    monkeypatch.setattr(native_step, "epoch_steps", _EPOCH_STEPS if mode == "epoch" else (lambda *a: None))
    monkeypatch.setattr(native_step, "CHUNK_ROWS", 32)
    from helpers import count_native_steps
    count = count_native_steps(monkeypatch)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(70,) + shape).astype(np.float32)
    y = rng.integers(0, 3, 70)
    init = fastnn.initializers.GlorotUniform
    layers = [L.Input(shape), L.Flatten(), L.Dense(8, activation="relu", kernel_initializer=init(seed=1))]
    if middle_flatten:
        layers.append(L.Flatten())
    layers += [L.Dropout(0.2, seed=3), L.Dense(3, activation="softmax", kernel_initializer=init(seed=2))]
    m = fastnn.Sequential(layers)
    m.compile(O.Adam(1e-2), "sparse_categorical_crossentropy", metrics=["accuracy"])
    h = m.fit(x, y, batch_size=16, epochs=2, seed=5, verbose=0)
    state = [w.copy() for w in m.get_weights()] + [v.copy() for v in m.optimizer.state.values()]
    return state, h.history, count["n"]


@pytest.mark.parametrize("shape", [(2, 5), (2, 3, 2), (7,)])
def test_a_leading_flatten_runs_natively_and_bitwise_the_same(monkeypatch, shape):
    ref = _flatten_fit(monkeypatch, "python", shape)
    batch = _flatten_fit(monkeypatch, "batch", shape)
    epoch = _flatten_fit(monkeypatch, "epoch", shape)
    assert ref[2] == 0 and batch[2] == epoch[2] == 10  # 5 steps an epoch (4 full, the last 6 rows)
    for run in (batch, epoch):
        assert run[1] == ref[1]
        for a, b in zip(run[0], ref[0]):
            np.testing.assert_array_equal(a, b)


def test_a_flatten_after_the_first_layer_falls_back(monkeypatch):
    ref = _flatten_fit(monkeypatch, "python", (2, 5), middle_flatten=True)
    epoch = _flatten_fit(monkeypatch, "epoch", (2, 5), middle_flatten=True)
    assert epoch[2] == 0 and epoch[1] == ref[1]
    for a, b in zip(epoch[0], ref[0]):
        np.testing.assert_array_equal(a, b)
