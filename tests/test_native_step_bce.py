"""The native step and native epoch with binary cross-entropy (loss kind "bce_logits"):
``Dense(1, activation="sigmoid")`` + ``"binary_crossentropy"`` (fused on the logits),
``from_logits=True`` after a linear layer, multi-label ``Dense(k, sigmoid)``; labels of
shape (m,) or (m, 1), float, integer or bool. Bitwise the Python step (FASTNN_NATIVE_STEP=0):
weights, optimizer slots, moving statistics, history (metrics too); label smoothing runs
natively too; a refused call changes nothing."""
import numpy as np
import pytest

import fastnn
from fastnn import layers as L
from fastnn import native_step
from fastnn import optimizers as O
from test_native_epoch import _EPOCH_STEPS, _plan, _snapshot, check_run_batches_equals_run
from test_native_step import _dense, _train

_COMPILE = fastnn.Sequential.compile
_BITS = np.random.default_rng(4).integers(0, 2, 90)  # 0/1 labels of one sigmoid unit
_MULTI = np.random.default_rng(5).integers(0, 2, (90, 3))  # multi-label rows
_SOFT = np.random.default_rng(6).random((90, 3))  # probabilities as targets

CASES = {
    # name: (layers, loss, optimizer, labels as given to fit)
    "sigmoid, (m,) float": (lambda: [_dense(8, 0, activation="relu"), _dense(1, 1, activation="sigmoid")],
                            "binary_crossentropy", lambda: O.Adam(1e-2), _BITS.astype(np.float64)),
    "sigmoid, (m, 1) int": (lambda: [_dense(8, 0, activation="tanh"), _dense(1, 1, activation="sigmoid")],
                            "binary_crossentropy", lambda: O.SGD(0.1, momentum=0.9), _BITS.reshape(-1, 1)),
    "sigmoid, (m,) bool": (lambda: [_dense(8, 0, activation="elu"), _dense(1, 1, activation="sigmoid")],
                           fastnn.losses.BinaryCrossentropy(), lambda: O.SGD(0.05), _BITS.astype(bool)),
    "from_logits, linear": (lambda: [_dense(8, 0, activation="relu"), _dense(1, 1)],
                            fastnn.losses.BinaryCrossentropy(from_logits=True),
                            lambda: O.SGD(0.1, momentum=0.9, nesterov=True), _BITS),
    "multi-label": (lambda: [_dense(12, 0, activation="relu"), _dense(3, 1, activation="sigmoid")],
                    "binary_crossentropy", lambda: O.AdamW(1e-2), _MULTI.astype(np.float32)),
    "soft targets, amsgrad": (lambda: [_dense(12, 0, activation="selu"), _dense(3, 1, activation="sigmoid")],
                              "binary_crossentropy", lambda: O.Adam(5e-2, beta_2=0.9, amsgrad=True), _SOFT),
    "dropout, batchnorm": (lambda: [_dense(16, 0, activation="relu"), L.Dropout(0.3, seed=5),
                                    _dense(8, 1), L.BatchNormalization(), L.Activation("relu"),
                                    _dense(1, 2, activation="sigmoid")],
                           "binary_crossentropy", lambda: O.Adam(1e-2), _BITS),
    "sigmoid activation layer": (lambda: [_dense(8, 0, activation="relu"), _dense(1, 1),
                                          L.Activation("sigmoid")],
                                 "binary_crossentropy", lambda: O.SGD(0.1), _BITS.reshape(-1, 1)),
}


def _fit(monkeypatch, mode, case, dtype, metrics=None):
    """(state, history, native steps) of _train's run. mode: "python" (FASTNN_NATIVE_STEP=0),
    "batch" (the native step batch by batch) or "epoch" (the native epoch, 48 rows a call)."""
    build, loss, opt, y = CASES[case]
    monkeypatch.setattr(native_step, "CHUNK_ROWS", 48)
    monkeypatch.setattr(native_step, "epoch_steps", _EPOCH_STEPS if mode == "epoch" else (lambda *a: None))
    if metrics:  # _train compiles with (optimizer, loss): the metrics added here
        monkeypatch.setattr(fastnn.Sequential, "compile", lambda self, o, l: _COMPILE(self, o, l, metrics=metrics))
    return _train(monkeypatch, mode != "python", build, loss, opt, y, dtype)


def _same(a, b):
    assert sorted(a[0]) == sorted(b[0])
    for k in a[0]:
        np.testing.assert_array_equal(a[0][k], b[0][k], err_msg=k)  # bitwise
    assert a[1] == b[1]  # history: losses (and metrics), exactly


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_bce_native_step_and_epoch_bitwise_equal_to_python_step(monkeypatch, threads, dtype, case):
    ref = _fit(monkeypatch, "python", case, dtype)
    batch = _fit(monkeypatch, "batch", case, dtype)
    epoch = _fit(monkeypatch, "epoch", case, dtype)
    assert ref[2] == 0
    assert batch[2] == epoch[2] == 12  # every step of both epochs native (90 rows, batch 16)
    _same(batch, ref)
    _same(epoch, ref)


@pytest.mark.parametrize("case", ["sigmoid, (m,) float", "from_logits, linear", "multi-label",
                                  "dropout, batchnorm"])
@pytest.mark.parametrize("metrics", [["accuracy"], ["binary_accuracy", "binary_crossentropy", "auc"]])
def test_bce_metrics_from_the_native_epoch_equal_the_python_step(monkeypatch, threads, case, metrics):
    ref = _fit(monkeypatch, "python", case, "float32", metrics)
    epoch = _fit(monkeypatch, "epoch", case, "float32", metrics)
    assert epoch[2] == 12
    assert set(metrics) - {"binary_accuracy"} <= set(ref[1]) and len(ref[1]) == len(metrics) + 1
    _same(epoch, ref)


def test_bce_label_smoothing_runs_natively(monkeypatch):
    """(label smoothing: tests/test_native_step_smoothing.py)"""
    build, _, opt, y = CASES["sigmoid, (m,) float"]
    loss = fastnn.losses.BinaryCrossentropy(label_smoothing=0.1)
    runs = [_train(monkeypatch, native, build, loss, opt, y, "float32") for native in (False, True)]
    assert runs[1][2] == 12
    _same(runs[1], runs[0])


def _model(units=1, dropout=True):
    init = fastnn.initializers.GlorotUniform
    mid = [L.Dropout(0.25, seed=4)] if dropout else []
    m = fastnn.Sequential([L.Input((6,)), L.Dense(8, activation="relu", kernel_initializer=init(seed=0))] + mid
                          + [L.Dense(units, activation="sigmoid", kernel_initializer=init(seed=1))])
    m.compile(O.Adam(1e-2), "binary_crossentropy")
    return m


def _data(units=1):
    rng = np.random.default_rng(0)
    return rng.normal(size=(70, 6)).astype(np.float32), rng.integers(0, 2, (70, units)).astype(np.float32)


@pytest.mark.parametrize("bad", ["labels width", "labels 1-D", "labels dtype", "ybuf width", "nan lr",
                                 "index out of range"])
def test_bce_run_batches_refuses_and_changes_nothing(bad):
    x, y = _data()
    m = _model()
    native = _plan(m, x, y, 8)
    assert native_step._PLANS[m][1][1] == "bce_logits"
    before = _snapshot(m)
    k = 3
    args = dict(x=x, labels=y, index=np.arange(k * 8, dtype=np.int64), lrs=np.full(k, 1e-2),
                step0=m.optimizer.iterations + 1, seeds=np.zeros((k, 1), np.uint64), losses=np.zeros(k),
                xbuf=np.empty((8, 6), np.float32), ybuf=np.empty((8, 1), np.float32))
    err, match = ValueError, None
    if bad == "labels width":
        args["labels"], match = np.zeros((70, 2), np.float32), "labels: expected shape"
    elif bad == "labels 1-D":
        args["labels"] = y[:, 0].copy()
    elif bad == "labels dtype":
        args["labels"], err = y.astype(np.float64), TypeError
    elif bad == "ybuf width":
        args["ybuf"], match = np.empty((8, 2), np.float32), "ybuf: expected shape"
    elif bad == "nan lr":
        args["lrs"][1] = np.nan
    elif bad == "index out of range":
        args["index"][4] = 70
    losses = args["losses"].copy()
    with pytest.raises(err, match=match):
        native.run_batches(**args)
    for a, b in zip(before, _snapshot(m)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(args["losses"], losses)


@pytest.mark.parametrize("units", [1, 3])
def test_bce_run_batches_equals_run_step_by_step(units):
    x, y = _data(units)
    m1, m2 = _model(units), _model(units)
    check_run_batches_equals_run(m1, m2, x, y)
    assert native_step._PLANS[m1][1][1] == "bce_logits"


def test_bce_loss_is_the_ops_kernels_on_the_steps_logits():
    """One native step's loss is ops.binary_cross_entropy_with_logits on its logits, exactly."""
    x, y = _data(3)
    m = _model(3, dropout=False)
    m.fit(x, y, batch_size=8, epochs=1, seed=1, verbose=0)
    modes = fastnn.trainer.loss_mode(m)
    logits = m._forward(x[:8], True, modes[1]).copy()  # the logits the step computes
    ref_loss, _ = fastnn.ops.binary_cross_entropy_with_logits(logits, y[:8])
    loss, _, out = native_step.try_step(m, x[:8], y[:8], *modes, None)
    assert loss == ref_loss
    np.testing.assert_array_equal(out, logits)


def test_bce_wrong_labels_fall_back_to_the_python_step_and_its_error(monkeypatch):
    """train_step with labels the loss refuses ((m,) for one unit before fit's preparation,
    or the wrong width): no native plan takes them; the Python step runs and raises its error."""
    x, y = _data()
    m = _model(dropout=False)
    m.fit(x, y, batch_size=8, epochs=1, seed=1, verbose=0)
    modes = fastnn.trainer.loss_mode(m)
    for yb in (y[:8, 0], np.zeros((8, 2), np.float32)):
        assert native_step._ready(m, 8, x[:8], yb, *modes) is None
        with pytest.raises(ValueError, match="targets: expected shape"):
            fastnn.trainer.train_step(m, x[:8], yb, *modes)
