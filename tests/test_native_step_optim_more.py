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
from test_native_step_acts import _all_three
from test_native_step_optim import MODELS, refuse_run_batches

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
def test_step_and_epoch_run_natively_bitwise_the_python_step(monkeypatch, threads, dtype, model, opt):
    """The Python step, the native step batch by batch (fit with the native epoch off) and the
    native epoch (3 batches a call): the same weights, slots and history, every step native."""
    build, loss, y = MODELS[model]
    _all_three(monkeypatch, build, loss, OPTS[opt], y, dtype)


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


def _fits_both(monkeypatch, dtype, opt, changes, python_fit, seed):
    """fit once per change (attributes set on the optimizer before it), fit number python_fit
    with the Python step, the rest native; the same with the Python step throughout: bitwise the
    same state. Returns the native steps of each fit."""
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(64, 10)).astype(dtype), rng.random((64, 3)).astype(dtype)

    def run(native):
        counts = []
        model = _model(dtype, opt())
        for i, change in enumerate(changes):
            for k, v in change.items():
                setattr(model.optimizer, k, v)
            monkeypatch.setenv("FASTNN_NATIVE_STEP", "1" if native and i != python_fit else "0")
            count = count_native_steps(monkeypatch)
            model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
            counts.append(count["n"])
        return _state(model), counts
    ref, got = run(False), run(True)
    assert ref[1] == [0] * len(changes)
    assert got[0][1] == ref[0][1]
    for a, b in zip(got[0][0], ref[0][0]):
        np.testing.assert_array_equal(a, b)
    return got[1]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_hyperparameters_changed_between_fits_and_mixed_with_python_steps(monkeypatch, dtype):
    """momentum, weight_decay and the form changed between fits rebuild the plan; a fit with the
    Python step between native ones carries _ema_lr across: bitwise the Python step throughout."""
    changes = [{}, {"learning_rate": 0.1}, {"momentum": 0.5, "weight_decay": 0.05}, {"momentum_form": "keras"},
               {"momentum_form": "ema", "learning_rate": 0.3}]
    opt = lambda: O.SGD(0.2, momentum=0.9, momentum_form="ema")  # noqa: E731
    assert _fits_both(monkeypatch, dtype, opt, changes, 1, 3) == [4, 0, 4, 4, 4]


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
    m = _sgd_model(None if opt == "sgd_ema_wd" else OPTS[opt]())

    def snapshot(native):  # the state synced into the plan: unchanged by a refused call
        native_step._native_optim.sync_in(native, m.optimizer)
        return native.ema_state, native.nadam_product
    slots, (ema, prod) = refuse_run_batches(monkeypatch, m, bad, snapshot)
    assert (prod is None) == (opt != "nadam") and (prod is None or prod == m.optimizer._u_product)
    if opt == "sgd_ema_wd":
        assert slots == ["velocity"] and ema[0] == m.optimizer._ema_lr == 0.1 and ema[2] == 0
    else:
        assert ema is None


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
    changes = [{}, {"beta_1": 0.6}, {"beta_2": 0.8, "weight_decay": 0.03}, {"learning_rate": 5e-3}, {}]
    assert _fits_both(monkeypatch, "float64", OPTS[opt], changes, 3, 5) == [4, 4, 4, 0, 4]


@pytest.mark.parametrize("opt", ["nadam", "adamax", "lion"])
def test_more_subclasses_fall_back(monkeypatch, opt):
    build, loss, y = MODELS["dropout_xent"]
    sub = type("Sub", (type(OPTS[opt]()),), {})
    assert _both(monkeypatch, build, loss, lambda: sub(1e-2), y, "float32") == 0
