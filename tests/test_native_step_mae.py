"""The native step and native epoch with mean absolute error (loss kind "mae",
csrc/fastnn/step/mae.cpp): MeanAbsoluteError.value_and_grad's NumPy arithmetic and its
ops.abs_sum, after linear, sigmoid and relu outputs, with Dropout, BatchNormalization, weight and
activity regularizers. Bitwise the Python step (FASTNN_NATIVE_STEP=0); float32 and float64, 1
and 2 threads. Sample weights and labels of another dtype run the Python step."""
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
}

_fit = case_runner(CASES)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_mae_native_step_and_epoch_bitwise_equal_to_python_step(monkeypatch, threads, dtype, case):
    check_modes(lambda mode: _fit(monkeypatch, mode, case, dtype))


def test_mae_with_sample_weights_runs_the_python_step(monkeypatch):
    """The Python step weights MAE in NumPy (per_sample_loss, a dot product): no native step."""
    w = np.random.default_rng(7).random(90) + 0.25
    ref = _fit(monkeypatch, "python", "linear", "float32", sample_weight=w)
    for mode in ("batch", "epoch"):
        nat = _fit(monkeypatch, mode, "linear", "float32", sample_weight=w)
        assert nat[2] == 0
        same(nat, ref)


def test_mae_labels_of_another_dtype_are_not_native():
    m = fastnn.Sequential([L.Input((3,)), L.Dense(2)])
    m.compile(O.SGD(0.1), "mae")
    y = np.zeros((4, 2), np.float32)
    assert _native_loss.loss_kind(m, y, False, False)[0] == "mae"
    assert _native_loss.loss_kind(m, y.astype(np.float64), False, False) is None  # pred - y would be float64
    assert _native_loss.loss_kind(m, y.astype(np.int64), False, False) is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mae_value_is_the_mean_of_abs_differences(dtype):
    rng = np.random.default_rng(0)
    p, y = rng.normal(size=(37, 5)).astype(dtype), rng.normal(size=(37, 5)).astype(dtype)
    loss, grad = fastnn.losses.MeanAbsoluteError().value_and_grad(p.copy(), y)
    want = np.abs(p.astype(np.float64) - y.astype(np.float64)).mean()
    assert loss == pytest.approx(want, rel=1e-12 if dtype == np.float64 else 1e-7)
    np.testing.assert_array_equal(grad, np.sign(p - y) * dtype(1 / p.size))


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
