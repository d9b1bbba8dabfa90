"""Optimizer hyperparameters assigned after construction (``opt.beta_1 = 2.0``): an attribute
is not checked when set (as in Keras), so ``fit`` and ``train_on_batch`` check them all before
anything changes; a refused call leaves the model and the optimizer exactly as they were."""
import numpy as np
import pytest

import fastnn
from fastnn import layers as L
from fastnn import optimizers as O

X = np.random.default_rng(0).normal(size=(40, 5)).astype(np.float32)
Y = np.arange(40) % 3

LATE = [  # (optimizer, attribute, value, the attribute the error names)
    (lambda: O.Adam(1e-2), "beta_1", 2.0, "beta_1"),
    (lambda: O.Adam(1e-2), "beta_2", -0.1, "beta_2"),
    (lambda: O.Adam(1e-2), "epsilon", "1e-7", "epsilon"),
    (lambda: O.Adam(1e-2), "epsilon", 0.0, "epsilon"),
    (lambda: O.Adam(1e-2), "amsgrad", "yes", "amsgrad"),
    (lambda: O.SGD(0.1), "clipnorm", -1, "clipnorm"),
    (lambda: O.SGD(0.1), "clipvalue", float("nan"), "clipvalue"),
    (lambda: O.SGD(0.1, momentum=0.9), "momentum", 1.5, "momentum"),
    (lambda: O.SGD(0.1), "momentum_form", "notes", "momentum_form"),
    (lambda: O.SGD(0.1), "nesterov", "no", "nesterov"),
    (lambda: O.AdamW(1e-2), "weight_decay", -0.5, "weight_decay"),
    (lambda: O.RMSprop(1e-2), "rho", 1.0, "rho"),
    (lambda: O.Lion(1e-3), "beta_1", 1.5, "beta_1"),
    (lambda: O.Adam(1e-2, clipnorm=1.0), "global_clipnorm", 1.0, "global_clipnorm"),
    (lambda: O.Adam(1e-2), "use_ema", True, "use_ema"),
    (lambda: O.Adam(1e-2, use_ema=True), "ema_momentum", 2, "ema_momentum"),
    (lambda: O.Adam(1e-2), "_learning_rate", -1.0, "learning_rate"),
]


def _model(opt):
    fastnn.utils.set_random_seed(4)
    model = fastnn.Sequential([L.Input((5,)), L.Dense(8, activation="relu"), L.BatchNormalization(),
                               L.Dropout(0.3, seed=1), L.Dense(3, activation="softmax")])
    model.compile(opt, "sparse_categorical_crossentropy")
    model.fit(X, Y, batch_size=8, epochs=1, verbose=0, seed=0)
    return model


def _snapshot(model):
    opt = model.optimizer
    return ([w.copy() for w in model.get_weights()], opt.iterations, opt.epoch, sorted(opt.slots),
            {k: v.copy() for k, v in opt.state.items()}, [getattr(l, "_calls", None) for l in model.layers])


def _assert_same(a, b):
    for w, v in zip(a[0], b[0]):
        np.testing.assert_array_equal(w, v)
    assert a[1:4] == b[1:4] and a[5] == b[5]
    assert sorted(a[4]) == sorted(b[4])
    for k in a[4]:
        np.testing.assert_array_equal(a[4][k], b[4][k], err_msg=k)


@pytest.mark.parametrize("case", range(len(LATE)))
@pytest.mark.parametrize("call", ["fit", "train_on_batch"])
def test_late_hyperparameter_refused_before_any_change(case, call):
    make, attr, value, named = LATE[case]
    model = _model(make())
    setattr(model.optimizer, attr, value)  # not checked when set
    before = _snapshot(model)
    with pytest.raises((ValueError, TypeError), match=named):
        if call == "fit":
            model.fit(X, Y, batch_size=8, epochs=1, verbose=0, seed=1)
        else:
            model.train_on_batch(X[:8], Y[:8])
    _assert_same(_snapshot(model), before)


def test_learning_rate_setter_refuses_at_once():
    opt = O.Adam(1e-2)
    with pytest.raises(ValueError, match="learning_rate"):
        opt.learning_rate = "abc"
    assert opt.learning_rate == 1e-2


def test_valid_late_hyperparameters_train(monkeypatch):
    """Accepted late values are used (native step and Python step alike)."""
    results = []
    for native in ("1", "0"):
        monkeypatch.setenv("FASTNN_NATIVE_STEP", native)
        model = _model(O.Adam(1e-2))
        model.optimizer.beta_1, model.optimizer.epsilon = 0.5, 1e-4
        model.fit(X, Y, batch_size=8, epochs=1, verbose=0, seed=1)
        results.append(model.get_weights())
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    ref = _model(O.Adam(1e-2))
    ref.fit(X, Y, batch_size=8, epochs=1, verbose=0, seed=1)
    assert not np.array_equal(ref.get_weights()[0], results[0][0])
