"""The native step and native epoch with a first-layer Dropout (input dropout: the plan's
first node drops the batch's rows, its input is x), alone, with a hidden Dropout too, before
BatchNormalization, a frozen Dense or after leading Flatten layers. Bitwise the Python step
(FASTNN_NATIVE_STEP=0): weights, optimizer slots, moving statistics, history, and each
Dropout's call count (its next seeds); float32 and float64, 1 and 2 threads. A first Dropout
over a 3-D input (no Flatten before it) runs the Python step."""
import numpy as np
import pytest

import fastnn
from fastnn import layers as L
from fastnn import optimizers as O
from native_modes import case_runner, check_modes, same
from test_native_step import _IDS, _ROWS, _dense
from helpers import count_native_steps


def _frozen(layer):
    layer.trainable = False
    return layer


CASES = {
    # name: (layers, loss, optimizer, labels)
    "input dropout": (lambda: [L.Dropout(0.2, seed=1), _dense(16, 0, activation="relu"),
                               _dense(4, 1, activation="softmax")],
                      "sparse_categorical_crossentropy", lambda: O.Adam(1e-2), _IDS),
    "input and hidden dropout": (lambda: [L.Dropout(0.2, seed=1), _dense(16, 0, activation="relu"),
                                          L.Dropout(0.5, seed=2), _dense(4, 1)],
                                 fastnn.losses.SparseCategoricalCrossentropy(from_logits=True),
                                 lambda: O.SGD(0.05, momentum=0.9), _IDS),
    "before batchnorm": (lambda: [L.Dropout(0.3, seed=3), L.BatchNormalization(), _dense(8, 0, activation="tanh"),
                                  _dense(3, 1)], "mse", lambda: O.RMSprop(1e-2), _ROWS),
    "before a frozen dense": (lambda: [L.Dropout(0.1, seed=4), _frozen(_dense(16, 0, activation="relu")),
                                       _dense(4, 1, activation="softmax")],
                              "sparse_categorical_crossentropy", lambda: O.Adam(1e-2), _IDS),
    "identity activation first": (lambda: [L.Activation("linear"), L.Dropout(0.25, seed=5),
                                           _dense(8, 0, activation="gelu"), _dense(3, 1, activation="sigmoid")],
                                  "binary_crossentropy", lambda: O.Nadam(1e-2), (_ROWS > 0.5).astype(np.float32)),
}


def _record(layers):
    return {"dropout calls": np.array([l._calls for l in layers if type(l) is L.Dropout])}


# (state with each Dropout's call count, history, native steps) of a case's run (native_modes.fit_mode)
_fit = case_runner(CASES, _record)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_input_dropout_native_step_and_epoch_bitwise_equal_to_python_step(monkeypatch, threads, dtype, case):
    ref = check_modes(lambda mode: _fit(monkeypatch, mode, case, dtype))
    assert np.all(ref[0]["dropout calls"] == 12)


def test_input_dropout_with_sample_weights_bitwise(monkeypatch, threads):
    w = np.random.default_rng(7).random(90) + 0.25
    check_modes(lambda mode: _fit(monkeypatch, mode, "input dropout", "float32", sample_weight=w))


def _image_run(monkeypatch, native, flatten_first):
    """Inputs of shape (2, 5): [Flatten, Dropout, ...] (native) or [Dropout, Flatten, ...]
    (a 3-D Dropout: the Python step)."""
    monkeypatch.setenv("FASTNN_NATIVE_STEP", "1" if native else "0")
    count = count_native_steps(monkeypatch)
    drop, flat = L.Dropout(0.2, seed=9), L.Flatten()
    x = np.random.default_rng(0).normal(size=(90, 2, 5)).astype(np.float32)
    m = fastnn.Sequential([L.Input((2, 5))] + ([flat, drop] if flatten_first else [drop, flat])
                          + [_dense(8, 0, activation="relu"), _dense(4, 1)])
    m.compile(O.Adam(1e-2), fastnn.losses.SparseCategoricalCrossentropy(from_logits=True))
    h = m.fit(x, _IDS, batch_size=16, epochs=2, verbose=0, seed=3)
    return m.arena.params.copy(), h.history, count["n"]


@pytest.mark.parametrize("flatten_first,native", [(True, 12), (False, 0)])
def test_input_dropout_after_flatten_native_before_it_python(monkeypatch, flatten_first, native):
    ref = _image_run(monkeypatch, False, flatten_first)
    nat = _image_run(monkeypatch, True, flatten_first)
    assert nat[2] == native
    np.testing.assert_array_equal(nat[0], ref[0])
    assert nat[1] == ref[1]
