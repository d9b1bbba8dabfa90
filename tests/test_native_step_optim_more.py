"""SGD's decoupled weight_decay and its ema momentum form (the course notes': v = b v + (1 - b) g,
p -= lr v; the velocity rescaled when the rate changes), Nadam, Adamax and Lion (their NumPy
updates, operation by operation: step/optim_more.cpp) in the native step and the native epoch
(_native_optim.spec, sync_in/sync_out, csrc/fastnn/step): bitwise the Python step
(FASTNN_NATIVE_STEP=0) in weights, optimizer slots, SGD's _ema_lr and history."""
import numpy as np
import pytest

import fastnn
from fastnn import layers as L
from fastnn import native_step
from fastnn import optimizers as O
from helpers import count_native_steps
from test_native_step import _ROWS, _both
from test_native_step_acts import _run, _same
from test_native_step_optim import MODELS, _y

_SCHED = fastnn.schedules.ExponentialDecay
OPTS = {
    "sgd_wd": lambda: O.SGD(5e-2, weight_decay=0.02),
    "sgd_momentum_wd": lambda: O.SGD(5e-2, momentum=0.9, nesterov=True, weight_decay=0.01),
    "sgd_ema": lambda: O.SGD(0.2, momentum=0.9, momentum_form="ema"),
    "sgd_ema_nesterov_wd": lambda: O.SGD(0.2, momentum=0.8, nesterov=True, momentum_form="ema", weight_decay=0.01),
    "sgd_ema_schedule": lambda: O.SGD(_SCHED(0.3, 4, 0.5), momentum=0.9, momentum_form="ema"),
    "sgd_ema_epoch_schedule": lambda: O.SGD(_SCHED(0.3, 1, 0.5, per_epoch=True), momentum=0.7, momentum_form="ema"),
    "nadam": lambda: O.Nadam(1e-2),
    "nadam_wd_schedule": lambda: O.Nadam(_SCHED(2e-2, 4, 0.5), beta_1=0.8, beta_2=0.99, epsilon=1e-6,
                                         weight_decay=0.01),
    "adamax": lambda: O.Adamax(1e-2),
    "adamax_wd": lambda: O.Adamax(2e-2, beta_1=0.7, beta_2=0.9, epsilon=1e-5, weight_decay=0.02),
    "lion": lambda: O.Lion(1e-3),
    "lion_wd_schedule": lambda: O.Lion(_SCHED(3e-3, 4, 0.5), beta_1=0.5, beta_2=0.9, weight_decay=0.05),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("opt", sorted(OPTS))
def test_optimizers_run_natively_bitwise_the_python_step(monkeypatch, threads, dtype, model, opt):
    build, loss, y = MODELS[model]
    n = _both(monkeypatch, build, loss, OPTS[opt], _y(y, dtype), dtype)
    assert n == 2 * 6  # every step of both epochs native (90 rows, batch 16)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("opt", ["sgd_momentum_wd", "sgd_ema_nesterov_wd", "sgd_ema_schedule", "nadam_wd_schedule",
                                 "adamax_wd", "lion_wd_schedule"])
def test_native_epoch_bitwise_equal_to_batch_by_batch_and_python(monkeypatch, threads, dtype, opt):
    build, loss, y = MODELS["dropout_xent"]
    ref, _ = _run(monkeypatch, "python", build, loss, OPTS[opt], y, dtype)
    batch, n_batch = _run(monkeypatch, "batch", build, loss, OPTS[opt], y, dtype)
    epoch, n_epoch = _run(monkeypatch, "epoch", build, loss, OPTS[opt], y, dtype)  # 3 batches a call
    assert ref[2] == 0 and batch[2] == epoch[2] == 12 and n_batch == 0 and n_epoch == 2
    _same(batch, ref)
    _same(epoch, ref)


def _model(dtype, opt):
    model = fastnn.Sequential([L.Input((10,))] + MODELS["batchnorm_mse"][0](), dtype=dtype)
    model.compile(opt, "mse")
    return model


def _state(model):
    opt = model.optimizer
    return [w.copy() for w in model.get_weights()] + [v.copy() for v in opt.state.values()], \
        (opt.iterations, getattr(opt, "_ema_lr", None), getattr(opt, "_ema_step", None))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("opt", ["sgd_momentum_wd", "sgd_ema_schedule", "sgd_ema_nesterov_wd", "nadam_wd_schedule",
                                 "adamax_wd", "lion"])
def test_train_on_batch(monkeypatch, dtype, opt):
    def run(native):
        monkeypatch.setenv("FASTNN_NATIVE_STEP", "1" if native else "0")
        count = count_native_steps(monkeypatch)
        model = _model(dtype, OPTS[opt]())
        x = np.random.default_rng(0).normal(size=(24, 10)).astype(dtype)
        logs = []
        for i in range(6):
            if i == 3:
                model.optimizer.learning_rate = 0.05 if not isinstance(model.optimizer.learning_rate, float) else \
                    model.optimizer.learning_rate / 2  # the ema form rescales its velocity
            logs.append(model.train_on_batch(x, _ROWS[:24].astype(dtype), return_dict=True))
        return _state(model), logs, count["n"]
    ref, got = run(False), run(True)
    assert ref[2] == 0 and got[2] == 6
    assert got[1] == ref[1]
    assert got[0][1] == ref[0][1]  # iterations, _ema_lr, _ema_step
    for a, b in zip(got[0][0], ref[0][0]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_hyperparameters_changed_between_fits_and_mixed_with_python_steps(monkeypatch, dtype):
    """momentum, weight_decay and the form changed between fits rebuild the plan; a fit with the
    Python step between native ones carries _ema_lr across: bitwise the Python step throughout."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(64, 10)).astype(dtype), rng.random((64, 3)).astype(dtype)

    def run(native):
        counts = []
        model = _model(dtype, O.SGD(0.2, momentum=0.9, momentum_form="ema"))
        for i, change in enumerate([{}, {"learning_rate": 0.1}, {"momentum": 0.5, "weight_decay": 0.05},
                                    {"momentum_form": "keras"}, {"momentum_form": "ema", "learning_rate": 0.3}]):
            for k, v in change.items():
                setattr(model.optimizer, k, v)
            on = native and i != 1  # the second fit runs the Python step: its rates stay in _ema_lr
            monkeypatch.setenv("FASTNN_NATIVE_STEP", "1" if on else "0")
            count = count_native_steps(monkeypatch)
            model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
            counts.append(count["n"])
        return _state(model), counts
    ref, got = run(False), run(True)
    assert ref[1] == [0] * 5 and got[1] == [4, 0, 4, 4, 4]
    assert got[0][1] == ref[0][1]
    for a, b in zip(got[0][0], ref[0][0]):
        np.testing.assert_array_equal(a, b)


def test_ema_momentum_set_to_zero_after_build_still_rescales_the_velocity(monkeypatch):
    """SGD._update's ema branch runs while the velocity slot exists: with momentum 0 it still
    rescales the (unused) velocity when the rate changes."""
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(48, 10)), rng.random((48, 3))

    def run(native):
        monkeypatch.setenv("FASTNN_NATIVE_STEP", "1" if native else "0")
        count = count_native_steps(monkeypatch)
        model = _model("float64", O.SGD(0.2, momentum=0.9, momentum_form="ema"))
        model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
        model.optimizer.momentum, model.optimizer.learning_rate = 0.0, 0.1
        model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
        return _state(model), count["n"]
    ref, got = run(False), run(True)
    assert got[1] == 6
    assert got[0][1] == ref[0][1]
    for a, b in zip(got[0][0], ref[0][0]):
        np.testing.assert_array_equal(a, b)


def _sgd_model(opt=None):
    init = fastnn.initializers.GlorotUniform
    m = fastnn.Sequential([L.Input((6,)), L.Dense(8, activation="relu", kernel_initializer=init(seed=0)),
                           L.Dropout(0.25, seed=4), L.Dense(3, activation="softmax", kernel_initializer=init(seed=1))])
    m.compile(opt or O.SGD(0.1, momentum=0.9, momentum_form="ema", weight_decay=0.01),
              "sparse_categorical_crossentropy")
    return m


@pytest.mark.parametrize("opt,bad", [(o, b) for o in ("sgd_ema_wd", "nadam", "adamax", "lion")
                                     for b in ("nan lr", "negative lr", "index out of range")]
                         + [("sgd_ema_wd", "momentum")])
def test_run_batches_refuses_and_changes_nothing(monkeypatch, opt, bad):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(70, 6)).astype(np.float32), rng.integers(0, 3, 70)
    m = _sgd_model(None if opt == "sgd_ema_wd" else OPTS[opt]())
    m.fit(x, y, batch_size=8, epochs=1, seed=1, verbose=0)
    if bad == "momentum":  # a plan with a hyperparameter its kernel refuses (fit never builds one)
        real = native_step._native_optim.spec
        monkeypatch.setattr(native_step._native_optim, "spec", lambda opt: (real(opt)[0], {**real(opt)[1], bad: 1.0}))
        native_step._PLANS.pop(m)
    ready = native_step._ready(m, 8, x[:8], y[:8], *fastnn.trainer.loss_mode(m))
    assert ready is not None
    native = ready[0][0][0]
    native_step._native_optim.sync_in(native, m.optimizer)
    ema, prod = native.ema_state, native.nadam_product
    assert (prod is None) == (opt != "nadam") and (prod is None or prod == m.optimizer._u_product)
    before = [w.copy() for w in m.get_weights()] + [v.copy() for v in m.optimizer.state.values()]
    if opt == "sgd_ema_wd":
        assert sorted(m.optimizer.state) == ["velocity"] and ema[0] == m.optimizer._ema_lr == 0.1 and ema[2] == 0
    else:
        assert ema is None
    k = 3
    args = dict(x=x, labels=y.astype(np.int64), index=np.arange(k * 8, dtype=np.int64), lrs=np.full(k, 5e-2),
                step0=m.optimizer.iterations + 1, seeds=np.zeros((k, 1), np.uint64), losses=np.zeros(k),
                xbuf=np.empty((8, 6), np.float32), ybuf=np.empty(8, np.int64))
    if bad == "nan lr":
        args["lrs"][2] = np.nan
    elif bad == "negative lr":
        args["lrs"][1] = -1.0
    elif bad == "index out of range":
        args["index"][5] = 70
    with pytest.raises(ValueError, match="lr|index|momentum"):
        native.run_batches(**args)
    after = [w.copy() for w in m.get_weights()] + [v.copy() for v in m.optimizer.state.values()]
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
    assert not args["losses"].any() and native.ema_state == ema and native.nadam_product == prod


def test_ema_state_is_none_without_the_ema_form():
    m = _sgd_model()
    m.optimizer.momentum_form = "keras"
    x, y = np.zeros((8, 6), np.float32), np.zeros(8, np.int64)
    m.fit(x, y, batch_size=8, epochs=1, verbose=0)
    ready = native_step._ready(m, 8, x, y, *fastnn.trainer.loss_mode(m))
    assert ready is not None and ready[0][0][0].ema_state is None


@pytest.mark.parametrize("opt", ["nadam", "adamax", "lion"])
def test_more_hyperparameters_changed_between_fits_rebuild_the_plan(monkeypatch, opt):
    """A changed beta_1 continues Nadam's running product (Nadam._u_product, synced in and out),
    and a fit of Python steps between native ones carries it across."""
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(64, 10)), rng.random((64, 3))

    def run(native):
        counts = []
        model = _model("float64", OPTS[opt]())
        for i, change in enumerate([{}, {"beta_1": 0.6}, {"beta_2": 0.8, "weight_decay": 0.03}, {"learning_rate": 5e-3},
                                    {}]):
            for k, v in change.items():
                setattr(model.optimizer, k, v)
            monkeypatch.setenv("FASTNN_NATIVE_STEP", "1" if native and i != 3 else "0")  # one fit in Python between
            count = count_native_steps(monkeypatch)
            model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
            counts.append(count["n"])
        return _state(model), counts
    ref, got = run(False), run(True)
    assert ref[1] == [0] * 5 and got[1] == [4, 4, 4, 0, 4]
    assert got[0][1] == ref[0][1]
    for a, b in zip(got[0][0], ref[0][0]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("opt", ["nadam", "adamax", "lion"])
def test_more_subclasses_fall_back(monkeypatch, opt):
    build, loss, y = MODELS["dropout_xent"]
    sub = type("Sub", (type(OPTS[opt]()),), {})
    assert _both(monkeypatch, build, loss, lambda: sub(1e-2), y, "float32") == 0
