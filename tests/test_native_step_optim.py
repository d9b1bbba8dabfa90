"""RMSprop (plain, Keras's momentum, centered, decoupled weight_decay) and Adagrad in the native
step and the native epoch (native_step._optimizer_spec, _native_optim, csrc/fastnn/step): the
same kernels as RMSprop._update / Adagrad._update per trainable range, so training is bitwise
the Python step's (FASTNN_NATIVE_STEP=0) in weights, optimizer slots and history."""
import numpy as np
import pytest

import fastnn
from fastnn import layers as L
from fastnn import native_step
from fastnn import optimizers as O
from helpers import count_native_steps
from test_native_step import _IDS, _ROWS, _both, _dense
from test_native_step_acts import _run, _same

OPTS = {
    "rmsprop": lambda: O.RMSprop(1e-2),
    "rmsprop_momentum": lambda: O.RMSprop(1e-2, momentum=0.9),
    "rmsprop_centered": lambda: O.RMSprop(1e-2, rho=0.8, centered=True),
    "rmsprop_both_wd": lambda: O.RMSprop(5e-3, momentum=0.5, centered=True, weight_decay=0.01),
    "rmsprop_schedule": lambda: O.RMSprop(fastnn.schedules.ExponentialDecay(1e-2, 5, 0.5), momentum=0.9),
    "adagrad": lambda: O.Adagrad(5e-2),
    "adagrad_wd": lambda: O.Adagrad(5e-2, initial_accumulator_value=0.5, epsilon=1e-6, weight_decay=0.02),
}
MODELS = {
    "dropout_xent": (lambda: [_dense(16, 0, activation="relu"), L.Dropout(0.3, seed=5), _dense(8, 1, activation="tanh"),
                              _dense(4, 2, activation="softmax")], "sparse_categorical_crossentropy", _IDS),
    "batchnorm_mse": (lambda: [_dense(12, 0), L.BatchNormalization(), L.Activation("relu"), _dense(3, 1)],
                      "mse", _ROWS),
}


def _y(y, dtype):
    return y.astype(dtype) if y.dtype.kind == "f" else y


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("opt", sorted(OPTS))
def test_rmsprop_and_adagrad_run_natively_bitwise_the_python_step(monkeypatch, threads, dtype, model, opt):
    build, loss, y = MODELS[model]
    n = _both(monkeypatch, build, loss, OPTS[opt], _y(y, dtype), dtype)
    assert n == 2 * 6  # every step of both epochs native (90 rows, batch 16)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("opt", ["rmsprop_both_wd", "rmsprop_schedule", "adagrad_wd"])
def test_native_epoch_bitwise_equal_to_batch_by_batch_and_python(monkeypatch, threads, dtype, opt):
    build, loss, y = MODELS["dropout_xent"]
    ref, _ = _run(monkeypatch, "python", build, loss, OPTS[opt], y, dtype)
    batch, n_batch = _run(monkeypatch, "batch", build, loss, OPTS[opt], y, dtype)
    epoch, n_epoch = _run(monkeypatch, "epoch", build, loss, OPTS[opt], y, dtype)  # 3 batches a call
    assert ref[2] == 0 and batch[2] == epoch[2] == 12 and n_batch == 0 and n_epoch == 2
    _same(batch, ref)
    _same(epoch, ref)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("opt", ["rmsprop_both_wd", "adagrad"])
def test_train_on_batch(monkeypatch, dtype, opt):
    def run(native):
        monkeypatch.setenv("FASTNN_NATIVE_STEP", "1" if native else "0")
        count = count_native_steps(monkeypatch)
        model = fastnn.Sequential([L.Input((10,))] + MODELS["batchnorm_mse"][0](), dtype=dtype)
        model.compile(OPTS[opt](), "mse")
        x = np.random.default_rng(0).normal(size=(24, 10)).astype(dtype)
        logs = [model.train_on_batch(x, _ROWS[:24].astype(dtype), return_dict=True) for _ in range(4)]
        state = [w.copy() for w in model.get_weights()] + [v.copy() for v in model.optimizer.state.values()]
        return state, logs, count["n"]
    ref, got = run(False), run(True)
    assert ref[2] == 0 and got[2] == 4
    assert got[1] == ref[1]
    for a, b in zip(got[0], ref[0]):
        np.testing.assert_array_equal(a, b)


def test_momentum_and_centered_switched_on_mid_epoch(monkeypatch, threads):
    """Set by a callback: the Python step adds the slot (zeros) at the next step, then the
    rebuilt plan updates it: bitwise the Python step."""
    class Switch(fastnn.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            opt = self.model.optimizer
            if batch == 2 and not opt.momentum:
                opt.momentum = 0.8
            if batch == 4 and not opt.centered:
                opt.centered = True

    build, loss, y = MODELS["dropout_xent"]
    n = _both(monkeypatch, build, loss, lambda: O.RMSprop(1e-2), y, "float64", callbacks=[Switch()])
    assert n == 10  # the two steps that add a slot run in Python


def test_subclasses_and_non_numbers_fall_back(monkeypatch):
    class MyRMSprop(O.RMSprop):
        pass
    build, loss, y = MODELS["dropout_xent"]
    assert _both(monkeypatch, build, loss, lambda: MyRMSprop(1e-2), y, "float32") == 0
    # (clipping is native: RMSprop with clipnorm runs every step natively, bitwise)
    assert _both(monkeypatch, build, loss, lambda: O.RMSprop(1e-2, clipnorm=1.0), y, "float32") == 12
    assert _both(monkeypatch, build, loss, lambda: O.Adagrad(1e-2, use_ema=True), y, "float32") == 0


def _rms_model():
    init = fastnn.initializers.GlorotUniform
    m = fastnn.Sequential([L.Input((6,)), L.Dense(8, activation="relu", kernel_initializer=init(seed=0)),
                           L.Dropout(0.25, seed=4), L.Dense(3, activation="softmax", kernel_initializer=init(seed=1))])
    m.compile(O.RMSprop(1e-2, momentum=0.9, centered=True, weight_decay=0.01), "sparse_categorical_crossentropy")
    return m


def refuse_run_batches(monkeypatch, m, bad, snapshot=lambda native: None):
    """m (6 features, 3 classes, one Dropout) fitted on 70 rows, then a run_batches call that bad
    makes its plan refuse: the weights, the slots and snapshot(native) (taken before) unchanged.
    Returns (the optimizer's slot names, the snapshot)."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(70, 6)).astype(np.float32), rng.integers(0, 3, 70)
    m.fit(x, y, batch_size=8, epochs=1, seed=1, verbose=0)
    if bad in ("rho", "momentum"):  # a plan with a hyperparameter its kernel refuses (fit never builds one)
        real = native_step._native_optim.spec
        monkeypatch.setattr(native_step._native_optim, "spec", lambda opt: (real(opt)[0], {**real(opt)[1], bad: 1.0}))
        native_step._PLANS.pop(m)
    ready = native_step._ready(m, 8, x[:8], y[:8], *fastnn.trainer.loss_mode(m))
    assert ready is not None
    native = ready[0][0][0]
    snap = snapshot(native)
    before = [w.copy() for w in m.get_weights()] + [v.copy() for v in m.optimizer.state.values()]
    k = 3
    args = dict(x=x, labels=y.astype(np.int64), index=np.arange(k * 8, dtype=np.int64), lrs=np.full(k, 1e-2),
                step0=m.optimizer.iterations + 1, seeds=np.zeros((k, 1), np.uint64), losses=np.zeros(k),
                xbuf=np.empty((8, 6), np.float32), ybuf=np.empty(8, np.int64))
    if bad == "nan lr":
        args["lrs"][2] = np.nan
    elif bad == "negative lr":
        args["lrs"][1] = -1.0
    elif bad == "index out of range":
        args["index"][5] = 70
    with pytest.raises(ValueError, match="lr|index|rho|momentum"):
        native.run_batches(**args)
    after = [w.copy() for w in m.get_weights()] + [v.copy() for v in m.optimizer.state.values()]
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
    assert not args["losses"].any() and snapshot(native) == snap
    return sorted(m.optimizer.state), snap


@pytest.mark.parametrize("bad", ["nan lr", "negative lr", "rho", "momentum", "index out of range"])
def test_run_batches_refuses_and_changes_nothing(monkeypatch, bad):
    assert refuse_run_batches(monkeypatch, _rms_model(), bad)[0] == ["average_gradient", "momentum", "sq_avg"]


def test_plan_refuses_an_unknown_optimizer():
    with pytest.raises(ValueError, match="optimizer: expected 'adam', 'sgd', 'rmsprop', 'adagrad', 'nadam', "
                                         "'adamax' or 'lion', got 'adadelta'"):
        fastnn._core.NativeStep([(np.zeros((3, 2), np.float32), None, None, None, np.zeros((4, 2), np.float32),
                                  None, "identity", 0.0, False)], 0, "mse", np.zeros((4, 2), np.float32), "adadelta",
                                {}, [])
