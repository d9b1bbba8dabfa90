"""The native step and native epoch with mean absolute error and Huber (loss kinds "mae" and
"huber", csrc/fastnn/step/losses_more.cpp): their value_and_grad's NumPy arithmetic and their
ops.abs_sum, after linear, sigmoid and relu outputs, with Dropout, BatchNormalization, weight and
activity regularizers; Huber's delta as given (one that float32 cannot hold too) and changed
during fit. Bitwise the Python step (FASTNN_NATIVE_STEP=0); float32 and float64, 1 and 2
threads. Sample weights, labels of another dtype and a delta that is not a float run the
Python step."""
import numpy as np
import pytest

import fastnn
from fastnn import _core
from fastnn import _native_loss
from fastnn import layers as L
from fastnn import optimizers as O
from fastnn import regularizers as R
from native_modes import case_runner, check_modes, same
from test_native_step import _ROWS, _dense

CASES = {
    # name: (layers, loss, optimizer, targets)
    "linear": (lambda: [_dense(16, 0, activation="relu"), _dense(3, 1)], "mae", lambda: O.Adam(1e-2), _ROWS),
    "sigmoid": (lambda: [_dense(12, 0, activation="tanh"), _dense(3, 1, activation="sigmoid")],
                fastnn.losses.MeanAbsoluteError(), lambda: O.SGD(0.1, momentum=0.9), _ROWS),
    "relu output, one unit": (lambda: [_dense(12, 0, activation="gelu"), _dense(1, 1, activation="relu")],
                              "mean_absolute_error", lambda: O.RMSprop(1e-2), _ROWS[:, 0]),
    "dropout, batchnorm, regularizers": (lambda: [_dense(16, 0, activation="relu", kernel_regularizer=R.L2(1e-3)),
                                                  L.Dropout(0.3, seed=5), L.BatchNormalization(),
                                                  L.ActivityRegularization(1e-3, 1e-3), _dense(3, 1)],
                                         "mae", lambda: O.Nadam(1e-2), _ROWS),
    "huber": (lambda: [_dense(16, 0, activation="relu"), _dense(3, 1)], "huber", lambda: O.Adam(1e-2), 4 * _ROWS),
    "huber delta 0.1": (lambda: [_dense(12, 0, activation="tanh"), _dense(3, 1)], fastnn.losses.Huber(0.1),
                        lambda: O.SGD(0.1, momentum=0.9), _ROWS),
    "huber, dropout, batchnorm": (lambda: [_dense(16, 0, activation="relu"), L.Dropout(0.3, seed=5),
                                           L.BatchNormalization(), _dense(1, 1)],
                                  fastnn.losses.Huber(0.37), lambda: O.Lion(1e-3), 3 * _ROWS[:, 0]),
}

_fit = case_runner(CASES)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_mae_native_step_and_epoch_bitwise_equal_to_python_step(monkeypatch, threads, dtype, case):
    check_modes(lambda mode: _fit(monkeypatch, mode, case, dtype))


@pytest.mark.parametrize("case", ["linear", "huber"])
def test_mae_huber_with_sample_weights_run_the_python_step(monkeypatch, case):
    """The Python step weights them in NumPy (per_sample_loss, a dot product): no native step."""
    w = np.random.default_rng(7).random(90) + 0.25
    ref = _fit(monkeypatch, "python", case, "float32", sample_weight=w)
    for mode in ("batch", "epoch"):
        nat = _fit(monkeypatch, mode, case, "float32", sample_weight=w)
        assert nat[2] == 0
        same(nat, ref)


@pytest.mark.parametrize("loss", ["mae", "huber"])
def test_mae_huber_labels_of_another_dtype_are_not_native(loss):
    m = fastnn.Sequential([L.Input((3,)), L.Dense(2)])
    m.compile(O.SGD(0.1), loss)
    y = np.zeros((4, 2), np.float32)
    assert _native_loss.loss_kind(m, y, False, False)[0] == loss
    assert _native_loss.loss_kind(m, y.astype(np.float64), False, False) is None  # pred - y would be float64
    assert _native_loss.loss_kind(m, y.astype(np.int64), False, False) is None
    if loss == "huber":
        m.loss.delta = np.float32(1.0)  # set after construction, not a float: the Python step
        assert _native_loss.loss_kind(m, y, False, False) is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mae_value_is_the_mean_of_abs_differences(dtype):
    rng = np.random.default_rng(0)
    p, y = rng.normal(size=(37, 5)).astype(dtype), rng.normal(size=(37, 5)).astype(dtype)
    loss, grad = fastnn.losses.MeanAbsoluteError().value_and_grad(p.copy(), y)
    want = np.abs(p.astype(np.float64) - y.astype(np.float64)).mean()
    assert loss == pytest.approx(want, rel=1e-12 if dtype == np.float64 else 1e-7)
    np.testing.assert_array_equal(grad, np.sign(p - y) * dtype(1 / p.size))


class _Delta(fastnn.callbacks.Callback):
    """Sets the loss's delta at the start of epoch 1 (at epoch 0: the case's, 0.1: the case's
    loss is one instance for every run)."""

    def __init__(self, delta):
        super().__init__()
        self.delta = delta

    def on_epoch_begin(self, epoch, logs=None):
        self.model.loss.delta = self.delta if epoch == 1 else 0.1


@pytest.mark.parametrize("delta,native", [(0.05, 10), (2.5, 10), (1, 5)])
def test_huber_delta_changed_during_fit(monkeypatch, delta, native):
    """A new float delta: the plan is rebuilt with it; an int: the Python step runs. (Batches of
    18: no last partial batch, whose plan would be rebuilt anyway.)"""
    check_modes(lambda mode: _fit(monkeypatch, mode, "huber delta 0.1", "float32", batch_size=18,
                                  callbacks=[_Delta(delta)]), steps=native)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huber_value_and_gradient_vs_numpy(dtype):
    rng = np.random.default_rng(0)
    p, y = rng.normal(size=(37, 5)).astype(dtype), rng.normal(size=(37, 5)).astype(dtype)
    p[0, :2] = y[0, :2] + dtype(0.1)  # at delta (as the dtype holds it)
    loss, grad = fastnn.losses.Huber(0.1).value_and_grad(p.copy(), y)
    e = p.astype(np.float64) - y.astype(np.float64)
    a = np.abs(e)
    want = np.where(a <= 0.1, 0.5 * e * e, 0.1 * a - 0.005).mean()
    assert loss == pytest.approx(want, rel=1e-12 if dtype == np.float64 else 1e-6)
    np.testing.assert_array_equal(grad, np.clip(p - y, -0.1, 0.1) * dtype(1 / p.size))


def test_huber_plan_takes_its_delta():
    """The 'huber' kernel with the delta set, against Huber.value_and_grad (the same bits),
    on differences at, just below and beyond delta, NaN and a signed zero."""
    f = np.float32
    W, y, dlogits = np.eye(3, dtype=f), np.zeros((4, 3), f), np.zeros((4, 3), f)
    step = _core.NativeStep([(W, None, np.zeros((3, 3), f), None, y, None, "identity", 0.0)], 0, "huber",
                            dlogits, "sgd", {"momentum": 0.0, "nesterov": False}, [])
    with pytest.raises(ValueError, match="delta: expected a finite value > 0"):
        step.set_huber_delta(0.0)
    step.set_huber_delta(0.1)
    d = f(0.1)
    x = np.array([[d, -d, np.nextafter(d, f(0))], [np.nextafter(d, f(1)), 7, -7], [-0.0, 0.0, 0.05],
                  [1e-30, -3e-39, 0.2]], f)
    t = np.zeros((4, 3), f)
    loss = step.run(x, t, 0.0, 1)
    want, grad = fastnn.losses.Huber(0.1).value_and_grad(y.copy(), t)  # the identity layer's output
    assert loss == want
    np.testing.assert_array_equal(y, x)  # (+0.0 where x has -0.0: the product sums)
    np.testing.assert_array_equal(dlogits, grad)
    np.testing.assert_array_equal(np.signbit(dlogits), np.signbit(grad))  # -0.0 too
    x[1, 0] = np.nan
    assert np.isnan(step.run(x, t, 0.0, 1))


def test_mae_plan_refuses_sample_weights():
    f = np.float32
    W, y = np.ones((3, 2), f), np.zeros((4, 2), f)
    step = _core.NativeStep([(W, None, np.zeros((3, 2), f), None, y, None, "identity", 0.0)], 0, "mae",
                            np.zeros((4, 2), f), "sgd", {"momentum": 0.0, "nesterov": False}, [])
    x, t = np.arange(12, dtype=f).reshape(4, 3) - 5, np.ones((4, 2), f)
    with pytest.raises(ValueError, match="takes no sample weights"):
        step.run(x, t, 0.0, 1, np.ones(4, f))
    loss = step.run(x, t, 0.0, 1)
    assert loss == np.abs(x @ W - t).astype(np.float64).sum() / 8
