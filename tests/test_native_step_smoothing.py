"""The native step and native epoch with label smoothing (python/fastnn/_native_loss.py):
``CategoricalCrossentropy(label_smoothing=...)`` on a softmax output (fused) or on logits
(``from_logits=True``), and ``BinaryCrossentropy(label_smoothing=...)`` on a sigmoid output
or on logits; one-hot, soft, integer and bool targets, sample and class weights, Dropout and
BatchNormalization. Bitwise the Python step (FASTNN_NATIVE_STEP=0): weights, optimizer slots,
moving statistics, history; a label smoothing changed during fit is followed; one that is not
a plain float falls back to the Python step."""
import numpy as np
import pytest

import fastnn
from fastnn import layers as L
from fastnn import optimizers as O
from fastnn import _native_loss
from native_modes import check_modes, fit_mode, same
from test_native_step import _dense, _train

Ls = fastnn.losses
_IDS = np.random.default_rng(1).integers(0, 4, 90)
_BITS = np.random.default_rng(4).integers(0, 2, 90)
_MULTI = np.random.default_rng(5).integers(0, 2, (90, 3))
_SOFT = np.random.default_rng(6).dirichlet(np.ones(4), 90)

CASES = {
    # name: (layers, loss, optimizer, labels as given to fit)
    "cce softmax": (lambda: [_dense(16, 0, activation="relu"), _dense(4, 1, activation="softmax")],
                    lambda: Ls.CategoricalCrossentropy(label_smoothing=0.1), lambda: O.Adam(1e-2), np.eye(4)[_IDS]),
    "cce logits": (lambda: [_dense(12, 0, activation="tanh"), _dense(4, 1)],
                   lambda: Ls.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2),
                   lambda: O.SGD(0.1, momentum=0.9), np.eye(4)[_IDS]),
    "cce soft targets": (lambda: [_dense(12, 0, activation="gelu"), _dense(4, 1, activation="softmax")],
                         lambda: Ls.CategoricalCrossentropy(label_smoothing=0.35), lambda: O.RMSprop(1e-2),
                         _SOFT),
    "cce full smoothing": (lambda: [_dense(8, 0, activation="relu"), _dense(4, 1, activation="softmax")],
                           lambda: Ls.CategoricalCrossentropy(label_smoothing=1.0), lambda: O.SGD(0.1),
                           np.eye(4)[_IDS]),
    "cce int rows": (lambda: [_dense(8, 0, activation="elu"), _dense(4, 1, activation="softmax")],
                     lambda: Ls.CategoricalCrossentropy(label_smoothing=0.3), lambda: O.AdamW(1e-2),
                     np.eye(4, dtype=np.int64)[_IDS]),
    "cce dropout, batchnorm": (lambda: [_dense(16, 0, activation="relu"), L.Dropout(0.3, seed=5), _dense(8, 1),
                                        L.BatchNormalization(), L.Activation("relu"),
                                        _dense(4, 2, activation="softmax")],
                               lambda: Ls.CategoricalCrossentropy(label_smoothing=0.1), lambda: O.Adam(1e-2),
                               np.eye(4)[_IDS]),
    "bce sigmoid": (lambda: [_dense(8, 0, activation="relu"), _dense(1, 1, activation="sigmoid")],
                    lambda: Ls.BinaryCrossentropy(label_smoothing=0.1), lambda: O.Adam(1e-2),
                    _BITS.astype(np.float64)),
    "bce logits, bool": (lambda: [_dense(8, 0, activation="relu"), _dense(1, 1)],
                         lambda: Ls.BinaryCrossentropy(from_logits=True, label_smoothing=0.25),
                         lambda: O.SGD(0.1, momentum=0.9, nesterov=True), _BITS.astype(bool)),
    "bce multi-label": (lambda: [_dense(12, 0, activation="relu"), _dense(3, 1, activation="sigmoid")],
                        lambda: Ls.BinaryCrossentropy(label_smoothing=0.3), lambda: O.Nadam(1e-2),
                        _MULTI.astype(np.float32)),
}


def _fit(monkeypatch, mode, case, dtype, **kw):
    """(state, history, native steps) of native_modes.fit_mode's run of the case."""
    build, loss, opt, y = CASES[case]
    return fit_mode(monkeypatch, mode, build, loss(), opt, y, dtype, **kw)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_smoothing_native_step_and_epoch_bitwise_equal_to_python_step(monkeypatch, threads, dtype, case):
    check_modes(lambda mode: _fit(monkeypatch, mode, case, dtype))


@pytest.mark.parametrize("case", ["cce softmax", "cce logits", "bce sigmoid", "bce multi-label"])
def test_smoothing_with_sample_weights_bitwise(monkeypatch, threads, case):
    """The weighted kernels on the smoothed targets (_weights._fused), natively too."""
    w = np.random.default_rng(7).random(90) + 0.25
    check_modes(lambda mode: _fit(monkeypatch, mode, case, "float32", sample_weight=w))


def test_smoothing_changes_the_loss(monkeypatch):
    """The native step smooths: the same run without smoothing ends elsewhere."""
    build, _, opt, y = CASES["cce softmax"]
    plain = _train(monkeypatch, True, build, "categorical_crossentropy", opt, y, "float32")
    smooth = _fit(monkeypatch, "epoch", "cce softmax", "float32")
    assert plain[2] == smooth[2] == 12
    assert plain[1]["loss"] != smooth[1]["loss"]
    assert not np.array_equal(plain[0]["params"], smooth[0]["params"])


class _Resmooth(fastnn.callbacks.Callback):
    """Sets the loss's label smoothing at the start of epoch 1."""

    def __init__(self, value):
        super().__init__()
        self.value = value

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            self.model.loss.label_smoothing = self.value


@pytest.mark.parametrize("value", [0.05, 0.0])
def test_smoothing_changed_during_fit_is_followed(monkeypatch, value):
    """The native epoch's smoothed labels (made once per iterator) are remade when the loss's
    label smoothing changes between epochs, as the Python step smooths with it at every step."""
    check_modes(lambda mode: _fit(monkeypatch, mode, "bce multi-label", "float32", callbacks=[_Resmooth(value)]))


def test_smoothing_not_a_float_falls_back(monkeypatch):
    """A label smoothing set after construction to another type: the Python step runs it."""
    class Odd(fastnn.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.model.loss.label_smoothing = np.float32(0.1)
    ref = _fit(monkeypatch, "python", "cce logits", "float32", callbacks=[Odd()])
    nat = _fit(monkeypatch, "epoch", "cce logits", "float32", callbacks=[Odd()])
    assert nat[2] == 0
    same(nat, ref)


def test_smoothed_labels_are_the_python_steps():
    """_native_loss.loss_kind's labels: the loss's smoothing, converted to the model's dtype."""
    m = fastnn.Sequential([L.Input((3,)), L.Dense(4, activation="softmax")])
    m.compile(O.SGD(0.1), Ls.CategoricalCrossentropy(label_smoothing=0.1))
    y = np.eye(4, dtype=np.float32)[[0, 1, 3]]
    kind, labels = _native_loss.loss_kind(m, y, True, True)
    assert kind == "xent_probs" and labels.dtype == np.float32
    np.testing.assert_array_equal(labels, y * np.float32(0.9) + np.float32(0.025))
    assert _native_loss.loss_kind(m, y[:, 0], True, True) is None  # 1-D: the Python step raises
    m.compile(O.SGD(0.1), Ls.SparseCategoricalCrossentropy())
    assert _native_loss.loss_kind(m, np.array([0, 1, 3]), True, True)[0] == "xent_ids"
