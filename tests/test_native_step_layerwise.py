"""The native step's layer-by-layer update (step.cpp plan_layer_updates / update_layer): when
every trainable element is a float Dense layer's kernel or bias and nothing needs every
gradient before the update (no regularizer, clipping or constraint; SGD, RMSprop, Adagrad or
Adam), each layer's parameters are updated right after its backward, while its gradient is
in cache, instead of all of them after the whole backward. The update is elementwise, so the
result is bitwise the Python step's (FASTNN_NATIVE_STEP=0): weights, optimizer slots,
gradients, history; checked at 1 and 2 threads, float32 and float64, with frozen layers
(ranges in pieces), and the setups that keep the update at the end (layer_by_layer False).
"""
import numpy as np
import pytest

import fastnn
from fastnn import layers as L
from fastnn import native_step
from fastnn import optimizers as O
from test_native_step import _IDS, _ROWS, _both, _dense

OPTS = {
    "adam": lambda: O.Adam(1e-2),
    "amsgrad": lambda: O.Adam(5e-2, beta_2=0.9, amsgrad=True),
    "adamw": lambda: O.AdamW(1e-2, weight_decay=0.05),
    "adam_schedule": lambda: O.Adam(fastnn.schedules.ExponentialDecay(1e-2, 3, 0.5)),
    "sgd": lambda: O.SGD(0.05),
    "sgd_nesterov": lambda: O.SGD(0.05, momentum=0.9, nesterov=True),
    "sgd_ema": lambda: O.SGD(fastnn.schedules.ExponentialDecay(0.05, 3, 0.5), momentum=0.9, momentum_form="ema"),
    "sgd_wd": lambda: O.SGD(0.05, momentum=0.5, weight_decay=0.01),
    "rmsprop_centered": lambda: O.RMSprop(1e-2, momentum=0.9, centered=True),
    "adagrad": lambda: O.Adagrad(5e-2, weight_decay=0.02),
}


def _mlp():
    return [_dense(16, 0, activation="relu"), _dense(8, 1, activation="tanh"), _dense(4, 2, activation="softmax")]


def _frozen_middle():
    layers = [_dense(16, 0, activation="relu"), _dense(8, 1, activation="relu"), _dense(4, 2, activation="softmax")]
    layers[1].trainable = False  # the trainable ranges: two pieces of the arena
    return layers


def _frozen_first():
    layers = _mlp()
    layers[0].trainable = False  # the backward stops above it
    return layers


def _no_bias_dropout():
    return [_dense(12, 0, activation="selu", use_bias=False), L.Dropout(0.3, seed=5),
            _dense(4, 1, activation="softmax")]


MODELS = {"mlp": _mlp, "frozen_middle": _frozen_middle, "frozen_first": _frozen_first,
          "no_bias_dropout": _no_bias_dropout}


def _layer_by_layer(monkeypatch, build, loss, opt, y, dtype):
    """NativeStep.layer_by_layer of the plan fit builds for this setup."""
    monkeypatch.setenv("FASTNN_NATIVE_STEP", "1")
    model = fastnn.Sequential([L.Input((10,))] + build(), dtype=dtype)
    model.compile(opt(), loss)
    x = np.random.default_rng(0).normal(size=(32, 10)).astype(dtype)
    model.fit(x, y[:32], batch_size=16, epochs=1, verbose=0)
    return _native(model).layer_by_layer


def _native(model):
    """The _core.NativeStep of the plan fit built for model."""
    plan = native_step._PLANS[model][1]  # (step, loss kind, output buffer); step[0]: the NativeStep
    assert plan is not None, "the native step did not build a plan"
    return plan[0][0]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("opt", sorted(OPTS))
def test_layer_by_layer_update_is_bitwise_the_python_step(monkeypatch, threads, dtype, model, opt):
    assert _layer_by_layer(monkeypatch, MODELS[model], "sparse_categorical_crossentropy", OPTS[opt], _IDS, dtype)
    n = _both(monkeypatch, MODELS[model], "sparse_categorical_crossentropy", OPTS[opt], _IDS, dtype)
    assert n == 2 * 6  # every step of both epochs native (90 rows, batch 16)


def _l2():
    return [_dense(16, 0, activation="relu", kernel_regularizer=fastnn.regularizers.L2(1e-3)), _dense(4, 1)]


def _maxnorm():
    return [_dense(16, 0, activation="relu", kernel_constraint=fastnn.constraints.MaxNorm(0.5)), _dense(4, 1)]


def _batchnorm():
    return [_dense(12, 0), L.BatchNormalization(), L.Activation("relu"), _dense(4, 1)]


AT_THE_END = {  # (layers, optimizer): the update after the whole backward, as before
    "regularizer": (_l2, lambda: O.Adam(1e-2)),
    "constraint": (_maxnorm, lambda: O.Adam(1e-2)),
    "global_clipnorm": (_mlp, lambda: O.Adam(1e-2, global_clipnorm=0.1)),
    "clipvalue": (_mlp, lambda: O.SGD(0.1, clipvalue=0.01)),
    "batchnorm": (_batchnorm, lambda: O.Adam(1e-2)),
    "nadam": (_mlp, lambda: O.Nadam(1e-2)),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", sorted(AT_THE_END))
def test_setups_that_need_every_gradient_update_at_the_end(monkeypatch, threads, dtype, case):
    build, opt = AT_THE_END[case]
    y = _ROWS[:, :1].repeat(4, 1) if case != "global_clipnorm" and case != "clipvalue" and case != "nadam" else _IDS
    loss = "mse" if y is not _IDS else "sparse_categorical_crossentropy"
    yy = y.astype(dtype) if y is not _IDS else y
    assert not _layer_by_layer(monkeypatch, build, loss, opt, yy, dtype)
    assert _both(monkeypatch, build, loss, opt, yy, dtype) == 2 * 6


def test_a_refused_rate_changes_nothing(monkeypatch):
    """A NaN learning rate is refused before the first layer's update writes: run() raises and
    every parameter and slot is as before."""
    monkeypatch.setenv("FASTNN_NATIVE_STEP", "1")
    model = fastnn.Sequential([L.Input((10,))] + _mlp())
    model.compile(O.Adam(1e-2), "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(32, 10)).astype(np.float32)
    model.fit(x, _IDS[:32], batch_size=16, epochs=1, verbose=0)
    step = _native(model)
    assert step.layer_by_layer
    before = [model.arena.params.copy()] + [v.copy() for v in model.optimizer.state.values()]
    with pytest.raises(ValueError, match="lr"):
        step.run(x[:16], _IDS[:16].astype(np.int64), float("nan"), 3)
    after = [model.arena.params] + list(model.optimizer.state.values())
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("opt", ["adam", "sgd_nesterov", "rmsprop_centered"])
def test_on_and_off_give_the_same_bits_on_odd_widths(monkeypatch, threads, dtype, opt):
    """Pieces that start off any vector boundary (widths 37, 19, 5; one bias-free layer):
    the native step with the layer-by-layer update and without it (set_layer_by_layer) agree
    bitwise, and without it the plan says so."""
    from fastnn import _core
    monkeypatch.setenv("FASTNN_NATIVE_STEP", "1")
    rng = np.random.default_rng(7)
    x = rng.normal(size=(96, 23)).astype(dtype)
    y = rng.integers(0, 5, 96)

    def train(on):
        _core._testing.set_layer_by_layer(on)
        try:
            model = fastnn.Sequential([L.Input((23,)), _dense(37, 0, activation="relu"),
                                       _dense(19, 1, activation="elu", use_bias=False),
                                       _dense(5, 2, activation="softmax")], dtype=dtype)
            model.compile(OPTS[opt](), "sparse_categorical_crossentropy")
            h = model.fit(x, y, batch_size=24, epochs=3, verbose=0, seed=1)
            assert _native(model).layer_by_layer == on
            return [model.arena.params.copy()] + [v.copy() for v in model.optimizer.state.values()], h.history
        finally:
            _core._testing.set_layer_by_layer(True)
    (on, h_on), (off, h_off) = train(True), train(False)
    assert h_on == h_off
    for a, b in zip(on, off):
        np.testing.assert_array_equal(a, b)
