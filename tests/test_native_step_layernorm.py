"""LayerNormalization (2-D, last axis) in the native training step (_native_norm.py,
StepNode::layernorm): bitwise the same as the Python step (FASTNN_NATIVE_STEP=0), float32 and
float64, 1 and 2 threads, scale / center on and off, frozen, in fit's native epoch and batch by
batch; other LayerNormalization layers run the Python step."""
import numpy as np
import pytest

import fastnn
from fastnn import layers as L
from fastnn import native_step
from fastnn import optimizers as O
from test_native_epoch import _run, _same
from test_native_step import SUPPORTED, _IDS, _ROWS, _both, _dense, _train


def _ln_chain(center=True, scale=True, frozen=False):
    def build():
        ln = L.LayerNormalization(center=center, scale=scale)
        ln.trainable = not frozen
        return [_dense(16, 0), ln, L.Activation("relu"), L.Dropout(0.2, seed=4), _dense(8, 1, activation="tanh"),
                L.LayerNormalization(epsilon=1e-5), L.BatchNormalization(), _dense(4, 2, activation="softmax")]
    return build


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("center,scale", [(True, True), (False, True), (True, False), (False, False)])
def test_layernorm_native_bitwise_equal_to_python_step(monkeypatch, threads, dtype, center, scale):
    n = _both(monkeypatch, _ln_chain(center, scale), "sparse_categorical_crossentropy", lambda: O.Adam(1e-2),
              _IDS, dtype)
    assert n == 12  # every step of both epochs native (90 rows, batch 16)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_frozen_layernorm_native(monkeypatch, threads, dtype):
    n = _both(monkeypatch, _ln_chain(frozen=True), "sparse_categorical_crossentropy", lambda: O.SGD(0.1, momentum=0.9),
              _IDS, dtype)
    assert n == 12


def test_layernorm_first_layer_frozen_below(monkeypatch):
    """The backward stops at the LayerNormalization (the Dense below is frozen): its dx is not
    needed, dgamma and dbeta are."""
    def build():
        first = _dense(12, 0, activation="relu")
        first.trainable = False
        return [first, L.LayerNormalization(), _dense(3, 1)]
    assert _both(monkeypatch, build, "mse", lambda: O.Adam(1e-2), _ROWS, "float64") == 12


def test_layernorm_in_native_epoch(monkeypatch):
    SUPPORTED.append((_ln_chain(), "sparse_categorical_crossentropy", lambda: O.Adam(1e-2), _IDS))
    try:
        case = len(SUPPORTED) - 1
        ref, _ = _run(monkeypatch, "python", case, "float32")
        epoch, n_epoch = _run(monkeypatch, "epoch", case, "float32", chunk_rows=48)
    finally:
        SUPPORTED.pop()
    assert n_epoch == 2 and epoch[2] == 12
    _same(epoch, ref)


def test_other_layernorm_runs_python_step(monkeypatch):
    """A 3-D LayerNormalization is not a node: the Python step, same results."""
    def build():
        return [_dense(12, 0), L.Reshape((3, 4)), L.LayerNormalization(axis=[1, 2]), L.Flatten(), _dense(3, 1)]
    ref = _train(monkeypatch, False, build, "mse", lambda: O.SGD(0.1), _ROWS, "float64")
    nat = _train(monkeypatch, True, build, "mse", lambda: O.SGD(0.1), _ROWS, "float64")
    assert nat[2] == 0
    for k in ref[0]:
        np.testing.assert_array_equal(nat[0][k], ref[0][k], err_msg=k)
