"""The native step and native epoch with ActivityRegularization layers
(python/fastnn/_native_activity.py, csrc/fastnn/step/activity.cpp): hidden, stacked, after
Dropout / BatchNormalization / a gelu Dense (two nodes), as the output layer (mse), with weight
regularizers (the penalties' order), frozen layers below (no backward through it), l1 or l2 alone.
Bitwise the Python step (FASTNN_NATIVE_STEP=0): weights, optimizer slots, moving statistics,
history (``loss`` with the penalty, ``data_loss``), each layer's ``activity_loss``; float32 and
float64, 1 and 2 threads. A first layer, factors that are not floats, a replaced forward run the
Python step; factors changed during fit are followed."""
import numpy as np
import pytest

import fastnn
from fastnn import _core
from fastnn import layers as L
from fastnn import native_step
from fastnn import optimizers as O
from fastnn import regularizers as R
from native_modes import case_runner, check_modes, same
from test_native_step import _IDS, _ROWS, _dense

AR = L.ActivityRegularization


def _frozen(layer):
    layer.trainable = False
    return layer


CASES = {
    # name: (layers, loss, optimizer, labels)
    "hidden": (lambda: [_dense(16, 0, activation="relu"), AR(l1=1e-3, l2=1e-2), _dense(4, 1, activation="softmax")],
               "sparse_categorical_crossentropy", lambda: O.Adam(1e-2), _IDS),
    "stacked, l1 / l2 alone": (lambda: [_dense(16, 0, activation="tanh"), AR(l1=2e-2), _dense(8, 1, activation="elu"),
                                        AR(l2=5e-2), _dense(4, 2)],
                               fastnn.losses.SparseCategoricalCrossentropy(from_logits=True),
                               lambda: O.SGD(0.05, momentum=0.9), _IDS),
    "dropout, batchnorm": (lambda: [_dense(16, 0, activation="relu"), L.Dropout(0.3, seed=5), AR(1e-3, 1e-3),
                                    _dense(8, 1), L.BatchNormalization(), AR(l2=1e-2), L.Activation("relu"),
                                    _dense(4, 2, activation="softmax")],
                           "sparse_categorical_crossentropy", lambda: O.Adam(1e-2), _IDS),
    "after gelu": (lambda: [_dense(12, 0, activation="gelu"), AR(1e-2, 1e-2), _dense(3, 1, activation="relu")],
                   "mse", lambda: O.RMSprop(1e-2), _ROWS),
    "output layer": (lambda: [_dense(12, 0, activation="relu"), _dense(3, 1), AR(1e-2, 3e-2)],
                     "mse", lambda: O.SGD(0.1), _ROWS),
    "with weight regularizers": (lambda: [_dense(16, 0, activation="relu", kernel_regularizer=R.L2(1e-3)),
                                          AR(1e-3, 1e-2), _dense(4, 1, activation="softmax",
                                                                 kernel_regularizer=R.L1L2(1e-4, 1e-3))],
                                 "sparse_categorical_crossentropy", lambda: O.AdamW(1e-2), _IDS),
    "frozen below": (lambda: [_frozen(_dense(16, 0, activation="relu")), AR(1e-2, 1e-2),
                              _dense(4, 1, activation="softmax")],
                     "sparse_categorical_crossentropy", lambda: O.Adam(1e-2), _IDS),
    "frozen below, trainable above": (lambda: [_frozen(_dense(16, 0, activation="relu")), _dense(8, 1),
                                               AR(1e-2, 1e-2), _dense(4, 2, activation="softmax")],
                                      "sparse_categorical_crossentropy", lambda: O.Adam(1e-2), _IDS),
}


def _record(layers):
    return {"activity": np.array([l.activity_loss for l in layers if type(l) is AR])}


# (state with each ActivityRegularization's activity_loss, history, native steps) of a case's run
# (native_modes.fit_mode)
_fit = case_runner(CASES, _record)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_activity_native_step_and_epoch_bitwise_equal_to_python_step(monkeypatch, threads, dtype, case):
    ref = check_modes(lambda mode: _fit(monkeypatch, mode, case, dtype))
    assert "data_loss" in ref[1] and ref[1]["loss"] != ref[1]["data_loss"]  # a penalty that shows
    assert np.all(ref[0]["activity"] > 0)


def test_activity_with_sample_weights_bitwise(monkeypatch, threads):
    w = np.random.default_rng(7).random(90) + 0.25
    check_modes(lambda mode: _fit(monkeypatch, mode, "hidden", "float32", sample_weight=w))


class _Refactor(fastnn.callbacks.Callback):
    """Sets every ActivityRegularization's factors at the start of epoch 1."""

    def __init__(self, **factors):
        super().__init__()
        self.factors = factors

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            for layer in self.model.layers:
                if type(layer) is AR:
                    for k, v in self.factors.items():
                        setattr(layer, k, v)


@pytest.mark.parametrize("factors,native", [({"l1": 0.0, "l2": 0.5}, 10), ({"l1": 0.1}, 10), ({"l2": 1}, 5)])
def test_activity_factors_changed_during_fit(monkeypatch, factors, native):
    """New float factors: the plan is rebuilt with them; an int factor: the Python step runs.
    (Batches of 18: no last partial batch, whose plan would be rebuilt anyway.)"""
    check_modes(lambda mode: _fit(monkeypatch, mode, "stacked, l1 / l2 alone", "float32", batch_size=18,
                                  callbacks=[_Refactor(**factors)]), steps=native)


class _Spy(AR):
    """A subclass: its own forward could differ (the Python step runs it)."""


def _check_falls_back(monkeypatch, build, loss):
    """The layers (Adam, class ids): no native step, and the Python step's results."""
    fit = case_runner({"case": (build, loss, lambda: O.Adam(1e-2), _IDS)}, _record)
    ref = fit(monkeypatch, "python", "case", "float32")
    nat = fit(monkeypatch, "epoch", "case", "float32")
    assert nat[2] == 0
    same(nat, ref)


@pytest.mark.parametrize("what", ["first layer", "subclass", "replaced forward"])
def test_activity_unsupported_falls_back(monkeypatch, what):
    def build():
        if what == "first layer":
            return [AR(l2=1e-2), _dense(8, 0, activation="relu"), _dense(4, 1, activation="softmax")]
        layer = _Spy(l2=1e-2) if what == "subclass" else AR(l2=1e-2)
        if what == "replaced forward":
            layer.forward = lambda x, training=False, logits=False, f=layer.forward: f(x, training, logits)
        return [_dense(8, 0, activation="relu"), layer, _dense(4, 1, activation="softmax")]
    _check_falls_back(monkeypatch, build, "sparse_categorical_crossentropy")


def test_activity_penalty_is_the_layers_forward():
    """One native step: its penalty is ActivityRegularization.forward's on the step's input,
    then the weight penalties (trainer.regularization's order and sums)."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 6)).astype(np.float32), rng.integers(0, 3, 8)
    m = fastnn.Sequential([L.Input((6,)), _dense(5, 0, activation="tanh", kernel_regularizer=R.L2(1e-2)),
                           AR(0.1, 0.2), _dense(3, 1)])
    m.compile(O.SGD(0.1), fastnn.losses.SparseCategoricalCrossentropy(from_logits=True))
    m.fit(x, y, batch_size=8, epochs=1, verbose=0)
    modes = fastnn.trainer.loss_mode(m)
    h = m.layers[0].forward(x, True).copy()
    ar = AR(0.1, 0.2)
    ar.forward(h)
    want = ar.activity_loss + R.L2(1e-2)(m.layers[0].vars["kernel"])  # the weights before the update
    loss, pen, _ = native_step.try_step(m, x, y, *modes, None)
    assert m.layers[1].activity_loss == ar.activity_loss
    assert pen == want


def test_activity_node_checks_its_arguments():
    f = np.float32
    W, y = (np.arange(6, dtype=f).reshape(3, 2) - 2) / 4, np.zeros((4, 2), f)
    dense = (W, None, np.zeros((3, 2), f), None, y, None, "relu", 0.0)
    sgd = ("sgd", {"momentum": 0.0, "nesterov": False}, [])
    with pytest.raises(ValueError, match="first layer"):
        _core.NativeStep([("activity", np.zeros((4, 3), f), 0.1, 0.0)], 0, "mse", np.zeros((4, 3), f), *sgd)
    with pytest.raises(ValueError, match="output buffer of the layer below"):
        _core.NativeStep([dense, ("activity", np.zeros((4, 2), f), 0.1, 0.0)], 0, "mse", np.zeros((4, 2), f), *sgd)
    with pytest.raises(ValueError, match="l1, l2"):
        _core.NativeStep([dense, ("activity", y, -0.1, 0.0)], 0, "mse", np.zeros((4, 2), f), *sgd)
    step = _core.NativeStep([dense, ("activity", y, 0.5, 0.0)], 0, "mse", np.zeros((4, 2), f), *sgd)
    x = np.arange(12, dtype=f).reshape(4, 3) - 5
    step.run(x, np.zeros((4, 2), f), 0.0, 1)
    np.testing.assert_array_equal(y, np.maximum(x @ W, 0))
    assert step.activity_losses == [0.5 * float(np.abs(y).sum()) / 4]
    assert step.penalty == step.activity_losses[0]


def test_activity_in_a_mixed_bfloat16_model_falls_back(monkeypatch):
    """A mixed_bfloat16 model with an ActivityRegularization: the Python step (the layer below
    may store its output as bfloat16 bits, which the node does not read)."""
    def build():
        init = fastnn.initializers.GlorotUniform
        return [L.Dense(16, activation="relu", kernel_initializer=init(seed=1), dtype="mixed_bfloat16"),
                AR(1e-2, 1e-2), L.Dense(4, kernel_initializer=init(seed=2), dtype="mixed_bfloat16")]
    _check_falls_back(monkeypatch, build, fastnn.losses.SparseCategoricalCrossentropy(from_logits=True))


@pytest.mark.parametrize("l1,l2", [(0.5, 0.0), (0.0, 0.25), (0.5, 0.25)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activity_node_gradient_is_the_layers_backward(dtype, l1, l2):
    """The node's backward on dy (here the loss gradient: the node is the output layer, after a
    relu Activation node) equals ActivityRegularization.backward's NumPy arithmetic on the same
    activity, with zeros, NaN, an infinity and subnormals in it."""
    tiny = np.finfo(dtype).smallest_subnormal
    x = np.array([[0.0, -0.0, 1.5, -2.0], [np.nan, np.inf, 2 * tiny, tiny], [-tiny, 3.0, -0.5, 1e-3]], dtype)
    y, dlogits = np.zeros((3, 4), dtype), np.zeros((3, 4), dtype)
    t = np.array([[0.0, 0.5, -1.0, 2.0], [1.0, 0.0, 0.0, 0.0], [0.0, -0.0, 0.0, 0.0]], dtype)
    step = _core.NativeStep([("activation", y, "relu", 0.0), ("activity", y, l1, l2)], 0, "mse", dlogits, "sgd",
                            {"momentum": 0.0, "nesterov": False}, [])
    with np.errstate(invalid="ignore", over="ignore"):
        step.run(x, t, 0.0, 0)
        _, want = fastnn.ops.mean_squared_error(y, t)
        layer = AR(l1, l2)
        layer.build((4,), dtype)
        layer.forward(y.copy(), True)
        layer.backward(want)
    assert np.isnan(y[1, 0]) and y[1, 1] == np.inf and y[1, 3] == tiny  # the values reached the node
    np.testing.assert_array_equal(dlogits, want)
    np.testing.assert_array_equal(np.signbit(dlogits), np.signbit(want))
