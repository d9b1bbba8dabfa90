"""The native training step (python/fastnn/native_step.py, csrc/fastnn/step/): a supported
model trains bitwise the same as with the Python step (FASTNN_NATIVE_STEP=0), float32
and float64, 1 and 2 threads, with Dropout (same Philox seeds); anything unsupported falls back to
the Python step."""
import numpy as np
import pytest

import fastnn
from fastnn import _core
from fastnn import layers as L
from fastnn import optimizers as O
from helpers import count_native_steps


def _dense(units, k, **kw):
    return L.Dense(units, kernel_initializer=fastnn.initializers.GlorotUniform(seed=10 + k), **kw)


def _train(monkeypatch, native, build, loss, opt, y, dtype, epochs=2, callbacks=None, sample_weight=None,
           batch_size=16):
    """(final parameters (running statistics included), gradients and optimizer state,
    history, number of native steps) of one training run."""
    monkeypatch.setenv("FASTNN_NATIVE_STEP", "1" if native else "0")
    count = count_native_steps(monkeypatch)
    x = np.random.default_rng(0).normal(size=(90, 10)).astype(dtype)
    model = fastnn.Sequential([L.Input((10,))] + build(), dtype=dtype)
    model.compile(opt(), loss)
    h = model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0, seed=3, callbacks=callbacks,
                  sample_weight=sample_weight)
    state = {"params": model.arena.params.copy(), "grads": model.arena.grads.copy()}
    state.update({"opt " + k: v.copy() for k, v in model.optimizer.state.items()})
    # the variables outside the arena too (BatchNormalization's moving statistics)
    state.update({f"layer {k} {n}": np.array(v) for k, l in enumerate(model.layers) for n, v in l.vars.items()})
    return state, h.history, count["n"]


def _both(monkeypatch, *args, **kw):
    ref = _train(monkeypatch, False, *args, **kw)
    nat = _train(monkeypatch, True, *args, **kw)
    assert ref[2] == 0
    assert sorted(nat[0]) == sorted(ref[0])
    for k in ref[0]:
        np.testing.assert_array_equal(nat[0][k], ref[0][k], err_msg=k)  # bitwise (NaN equal to NaN)
    assert nat[1] == ref[1]
    return nat[2]


_IDS = np.random.default_rng(1).integers(0, 4, 90)
_ROWS = np.random.default_rng(2).random((90, 3))

SUPPORTED = [
    # (layers, loss, optimizer, targets)
    (lambda: [_dense(16, 0, activation="relu"), _dense(8, 1, activation="tanh"), _dense(4, 2, activation="softmax")],
     "sparse_categorical_crossentropy", lambda: O.Adam(1e-2), _IDS),
    (lambda: [_dense(12, 0, activation="elu"), _dense(8, 1, activation=fastnn.activations.LeakyReLU(0.2)),
              _dense(4, 2)],
     fastnn.losses.SparseCategoricalCrossentropy(from_logits=True),
     lambda: O.SGD(0.05, momentum=0.9, nesterov=True), _IDS),
    (lambda: [_dense(12, 0, activation="selu", use_bias=False), _dense(3, 1, activation="softmax")],
     "categorical_crossentropy", lambda: O.AdamW(1e-2), np.eye(3)[_IDS % 3]),
    (lambda: [_dense(12, 0, activation="sigmoid"), _dense(3, 1, activation="relu")],
     "mse", lambda: O.SGD(0.1), _ROWS),
    (lambda: [_dense(8, 0, activation="relu"), _dense(3, 1)],
     "mse", lambda: O.Adam(fastnn.schedules.ExponentialDecay(1e-2, 5, 0.5)), _ROWS),
    (lambda: [_dense(16, 0, activation="relu"), L.Dropout(0.3, seed=5), _dense(8, 1, activation="relu"),
              L.Dropout(0.5, seed=6), _dense(4, 2, activation="softmax")],
     "sparse_categorical_crossentropy", lambda: O.Adam(1e-2), _IDS),
    # AMSGrad (slot vhat): the fused kernel's vmax branch, called by the native step too
    (lambda: [_dense(16, 0, activation="relu"), L.Dropout(0.3, seed=5), _dense(4, 1, activation="softmax")],
     "sparse_categorical_crossentropy", lambda: O.Adam(5e-2, beta_2=0.9, amsgrad=True), _IDS),
    (lambda: [_dense(12, 0, activation="tanh"), _dense(3, 1)],
     "mse", lambda: O.AdamW(5e-2, weight_decay=0.01, amsgrad=True), _ROWS),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", range(len(SUPPORTED)))
def test_native_step_bitwise_equal_to_python_step(monkeypatch, threads, dtype, case):
    build, loss, opt, y = SUPPORTED[case]
    y = y.astype(dtype) if y.dtype.kind == "f" else y
    n = _both(monkeypatch, build, loss, opt, y, dtype)
    assert n == 2 * 6  # every step of both epochs ran natively (90 rows, batch 16)


def test_frozen_layers_and_trainable_change_mid_epoch(monkeypatch):
    """A frozen first layer (backward stops above it), then a callback unfreezing it in the
    middle of an epoch: the plan is rebuilt and the result still equals the Python step."""
    class Unfreeze(fastnn.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 3:
                self.model.layers[0].trainable = True

    def build():
        first = _dense(16, 0, activation="relu")
        first.trainable = False
        return [first, L.Dropout(0.25, seed=2), _dense(8, 1, activation="relu"), _dense(4, 2, activation="softmax")]

    n = _both(monkeypatch, build, "sparse_categorical_crossentropy", lambda: O.Adam(1e-2), _IDS, "float32",
              callbacks=[Unfreeze()])
    assert n == 12


def test_amsgrad_switched_on_mid_epoch(monkeypatch, threads):
    """amsgrad set by a callback in the middle of an epoch: the Python step adds vhat (zeros)
    at the next step, then the rebuilt native plan updates it: bitwise the Python step."""
    class Switch(fastnn.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 2 and not self.model.optimizer.amsgrad:
                self.model.optimizer.amsgrad = True

    n = _both(monkeypatch, lambda: [_dense(8, 0, activation="relu"), _dense(4, 1, activation="softmax")],
              "sparse_categorical_crossentropy", lambda: O.Adam(5e-2, beta_2=0.9), _IDS, "float64",
              callbacks=[Switch()])
    assert n == 11  # the step that adds the slot runs in Python


def test_activation_and_dropout_rate_changed_mid_epoch_rebuild_the_plan(monkeypatch):
    """The plan copies each Dense's activation and each Dropout's rate: a callback changing
    them between steps is seen at the next step, as by the Python step."""
    class Change(fastnn.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 3:
                self.model.layers[0].activation = fastnn.activations.get("tanh")
                self.model.layers[1].rate = 0.5

    def build():
        return [_dense(16, 0, activation="relu"), L.Dropout(0.25, seed=2), _dense(4, 1, activation="softmax")]

    n = _both(monkeypatch, build, "sparse_categorical_crossentropy", lambda: O.Adam(1e-2), _IDS, "float32",
              callbacks=[Change()])
    assert n == 12

UNSUPPORTED = {
    # (a first-layer Dropout runs natively: tests/test_native_step_input_dropout.py)
    # (weight regularizers run natively: tests/test_native_step_reg.py; ActivityRegularization
    # too, tests/test_native_step_activity.py, but not as the first layer)
    "activity_regularization_first": lambda: [L.ActivityRegularization(l2=1e-2), _dense(4, 1, activation="softmax")],
    # (constraints and clipping run natively, a constraint of its own class does not:
    # tests/test_native_step_clip.py)
    # a hidden softmax Dense (row-wise, no GEMM epilogue; gelu, swish, ...: test_native_step_acts.py)
    "softmax_hidden": lambda: [_dense(8, 0, activation="softmax"), _dense(4, 1, activation="softmax")],
}


@pytest.mark.parametrize("what", sorted(UNSUPPORTED))
def test_unsupported_layers_fall_back(monkeypatch, what):
    n = _both(monkeypatch, UNSUPPORTED[what], "sparse_categorical_crossentropy", lambda: O.Adam(1e-2), _IDS,
              "float32")
    assert n == 0


def test_unsupported_training_options_fall_back(monkeypatch):
    build = SUPPORTED[0][0]
    my_nadam = type("MyNadam", (O.Nadam,), {})  # a subclass (Nadam itself is native: test_native_step_optim_more)
    assert _both(monkeypatch, build, "sparse_categorical_crossentropy", lambda: my_nadam(1e-2), _IDS,
                 "float32") == 0
    assert _both(monkeypatch, build, "sparse_categorical_crossentropy", lambda: O.Adam(1e-2, use_ema=True),
                 _IDS, "float32") == 0
    # (label smoothing runs natively: tests/test_native_step_smoothing.py)
    # (sample and class weights run natively: tests/test_native_step_weights.py)
    # softmax output with MSE: the softmax is not a GEMM epilogue
    assert _both(monkeypatch, build, "mse", lambda: O.SGD(0.1), np.eye(4)[_IDS], "float32") == 0


def test_native_step_checks_its_arguments():
    f = np.float32
    W, y = np.zeros((3, 2), f), np.zeros((4, 2), f)
    layers = [(W, None, np.zeros((3, 2), f), None, y, None, "relu", 0.0)]
    step = _core.NativeStep(layers, 0, "mse", np.zeros((4, 2), f), "sgd", {"momentum": 0.0, "nesterov": False}, [])
    with pytest.raises(ValueError, match="x: expected shape"):
        step.run(np.zeros((5, 3), f), np.zeros((4, 2), f), 0.1, 1)
    with pytest.raises(TypeError, match="x:"):
        step.run(np.zeros((4, 3)), np.zeros((4, 2), f), 0.1, 1)
    with pytest.raises(ValueError, match="labels: expected shape"):
        step.run(np.zeros((4, 3), f), np.zeros((4, 3), f), 0.1, 1)
    with pytest.raises(ValueError, match="must not overlap labels"):
        step.run(np.zeros((4, 3), f), y, 0.1, 1)  # labels are the layer's own output buffer
    with pytest.raises(ValueError, match="loss:"):
        _core.NativeStep(layers, 0, "hinge", np.zeros((4, 2), f), "sgd", {}, [])
    with pytest.raises(ValueError, match="dx: layer 1"):
        _core.NativeStep(layers + [(np.zeros((2, 2), f), None, None, None, np.zeros((4, 2), f), None, "relu", 0.0)],
                         0, "mse", np.zeros((4, 2), f), "sgd", {"momentum": 0.0, "nesterov": False}, [])
    assert step.run(np.ones((4, 3), f), np.ones((4, 2), f), 0.1, 1) == pytest.approx(1.0)
