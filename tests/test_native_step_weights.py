"""Sample weights and class weights in the native step and the native epoch: the weighted
loss kernels (ops' sample_weight, tests/test_weighted_loss_ops.py) that the Python step calls,
the batch's weights gathered in the core like its labels (NativeStep.run_batches' weights and
wbuf). Every loss kind (sparse and one-hot cross-entropy, MSE, sigmoid BCE), float32 and
float64, 1 and 2 threads, Dropout and BatchNormalization, shuffled or not, zero weights, a
partial last batch, metrics: native, and bitwise the Python step (FASTNN_NATIVE_STEP=0):
weights, optimizer slots, moving statistics, history. A refused call changes nothing."""
import numpy as np
import pytest

import fastnn
from fastnn import layers as L
from fastnn import native_step
from fastnn import optimizers as O
from helpers import count_native_steps
from test_native_epoch import _EPOCH_STEPS, _data, _model, _plan, _snapshot, check_run_batches_equals_run
from test_native_step import _dense

_IDS = np.random.default_rng(1).integers(0, 4, 90)
_BITS = np.random.default_rng(4).integers(0, 2, 90)
_ROWS = np.random.default_rng(2).random((90, 3))

KINDS = {
    # name: (layers, loss, optimizer, labels, class weights)
    "sparse xent": (lambda: [_dense(16, 0, activation="relu"), L.Dropout(0.3, seed=5),
                             _dense(4, 1, activation="softmax")],
                    "sparse_categorical_crossentropy", lambda: O.Adam(1e-2), _IDS, {0: 0.5, 2: 4.0, 3: 0.0}),
    "one-hot xent": (lambda: [_dense(12, 0), L.BatchNormalization(), L.Activation("relu"),
                              _dense(4, 1, activation="softmax")],
                     "categorical_crossentropy", lambda: O.SGD(0.05, momentum=0.9), np.eye(4)[_IDS], {1: 3.0}),
    "mse": (lambda: [_dense(12, 0, activation="tanh"), L.Dropout(0.2, seed=3), _dense(3, 1)],
            "mse", lambda: O.AdamW(1e-2), _ROWS, {0: 2.0, 1: 0.25}),
    "bce": (lambda: [_dense(16, 0, activation="relu"), L.Dropout(0.3, seed=5), _dense(8, 1), L.BatchNormalization(),
                     L.Activation("relu"), _dense(1, 2, activation="sigmoid")],
            "binary_crossentropy", lambda: O.Adam(1e-2, amsgrad=True), _BITS, {0: 1.0, 1: 5.0}),
}


def _weights(n=90):
    w = np.random.default_rng(9).random(n) * 2
    w[::5] = 0.0  # zero weights: those samples take no part
    return w


def _fit(monkeypatch, native, kind, dtype, weighting, shuffle=True, batch_size=16, metrics=None, **kw):
    """(state, history, native steps, native epochs) of two epochs of fit on 90 rows."""
    build, loss, opt, y, cw = KINDS[kind]
    monkeypatch.setenv("FASTNN_NATIVE_STEP", "1" if native else "0")
    epochs = {"n": 0}

    def epoch_steps(*a):
        run = _EPOCH_STEPS(*a)
        epochs["n"] += run is not None
        return run
    monkeypatch.setattr(native_step, "epoch_steps", epoch_steps)
    count = count_native_steps(monkeypatch)
    y = y.astype(dtype) if y.dtype.kind == "f" else y
    x = np.random.default_rng(0).normal(size=(90, 10)).astype(dtype)
    model = fastnn.Sequential([L.Input((10,))] + build(), dtype=dtype)
    model.compile(opt(), loss, metrics=metrics)
    weights = {"sample": {"sample_weight": _weights()}, "class": {"class_weight": cw},
               "both": {"sample_weight": _weights(), "class_weight": cw}}[weighting]
    h = model.fit(x, y, batch_size=batch_size, epochs=2, verbose=0, seed=3, shuffle=shuffle, **weights, **kw)
    state = {"params": model.arena.params.copy(), "grads": model.arena.grads.copy()}
    state.update({"opt " + k: v.copy() for k, v in model.optimizer.state.items()})
    state.update({f"layer {k} {n}": np.array(v) for k, l in enumerate(model.layers) for n, v in l.vars.items()})
    return state, h.history, count["n"], epochs["n"]


def _check(monkeypatch, *args, steps=12, **kw):
    """The native run bitwise the Python one, every step native, both epochs native epochs."""
    ref = _fit(monkeypatch, False, *args, **kw)
    nat = _fit(monkeypatch, True, *args, **kw)
    assert ref[2] == 0 and nat[2] == steps and nat[3] == 2
    assert sorted(nat[0]) == sorted(ref[0])
    for k in ref[0]:
        np.testing.assert_array_equal(nat[0][k], ref[0][k], err_msg=k)  # bitwise
    assert nat[1] == ref[1]
    return nat


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("weighting", ["sample", "class"])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_weighted_fit_runs_natively_bitwise_the_python_step(monkeypatch, threads, kind, weighting, dtype):
    # 90 rows, batch 16: 5 full batches in the native epoch, the last 10 rows by the native step
    _check(monkeypatch, kind, dtype, weighting)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_unshuffled_with_metrics_and_both_weights(monkeypatch, kind):
    metrics = ["accuracy"] if kind != "mse" else ["mae"]
    _check(monkeypatch, kind, "float32", "both", shuffle=False, metrics=metrics)


@pytest.mark.parametrize("batch_size, steps", [(7, 26), (30, 6), (90, 2)])
def test_any_batch_size(monkeypatch, batch_size, steps):
    # 12 full batches of 7 and a last one of 6; batches that divide the 90 rows
    _check(monkeypatch, "sparse xent", "float64", "sample", batch_size=batch_size, steps=steps)


def test_validation_split_weights_the_training_rows_only(monkeypatch):
    # 72 training rows at batch 16: 4 full batches and a last one of 8, per epoch
    nat = _check(monkeypatch, "bce", "float32", "both", validation_split=0.2, steps=10)
    assert "val_loss" in nat[1]


def test_all_zero_weights_train_nothing_but_the_statistics(monkeypatch):
    # every gradient zero (SGD without momentum: no change), the loss 0: both steps agree
    build = lambda: [_dense(8, 0, activation="relu"), _dense(4, 1, activation="softmax")]  # noqa: E731
    monkeypatch.setitem(KINDS, "zero", (build, "sparse_categorical_crossentropy", lambda: O.SGD(0.1), _IDS,
                                        {0: 0.0, 1: 0.0, 2: 0.0, 3: 0.0}))
    nat = _check(monkeypatch, "zero", "float32", "class")
    assert nat[1]["loss"] == [0.0, 0.0]


def test_train_on_batch_and_a_streamed_source_run_natively(monkeypatch):
    monkeypatch.setenv("FASTNN_NATIVE_STEP", "1")
    x, y = _data()
    results = []
    for native in ("1", "0"):
        monkeypatch.setenv("FASTNN_NATIVE_STEP", native)
        count = count_native_steps(monkeypatch)
        m = _model()
        loss = m.train_on_batch(x[:16], y[:16], sample_weight=_weights(16), class_weight={1: 2.0})
        data = fastnn.data.adapt(x, y, _weights(70), batch_size=16, shuffle=False)
        h = m.fit(data, epochs=1, verbose=0, class_weight={0: 3.0})
        results.append((loss, h.history, [w.copy() for w in m.get_weights()], count["n"]))
    (l1, h1, w1, n1), (l0, h0, w0, n0) = results
    assert n1 == 1 + 5 and n0 == 0  # train_on_batch's step and the 5 batches of the source
    assert l1 == l0 and h1 == h0
    for a, b in zip(w1, w0):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bad", [np.nan, -1.0, np.inf])
def test_fit_refuses_non_finite_or_negative_weights_before_any_change(monkeypatch, bad):
    monkeypatch.setenv("FASTNN_NATIVE_STEP", "1")
    x, y = _data()
    m = _model()
    m.fit(x, y, batch_size=8, epochs=1, seed=1, verbose=0)
    before, it = _snapshot(m), m.optimizer.iterations
    w = np.ones(70)
    w[33] = bad
    with pytest.raises(ValueError, match="sample_weight"):
        m.fit(x, y, batch_size=8, epochs=1, seed=1, verbose=0, sample_weight=w)
    for a, b in zip(before, _snapshot(m)):
        np.testing.assert_array_equal(a, b)
    assert m.optimizer.iterations == it


def _batches_args(m, x, y, k=3):
    return dict(x=x, labels=y.astype(np.int64), index=np.arange(k * 8, dtype=np.int64), lrs=np.full(k, 1e-2),
                step0=m.optimizer.iterations + 1, seeds=np.zeros((k, 1), np.uint64), losses=np.zeros(k),
                xbuf=np.empty((8, 6), np.float32), ybuf=np.empty(8, np.int64),
                weights=_weights(70).astype(np.float32), wbuf=np.empty(8, np.float32))


@pytest.mark.parametrize("bad", ["weights length", "weights dtype", "weights strided", "weights without wbuf",
                                 "wbuf without weights", "wbuf size", "wbuf dtype", "wbuf read-only",
                                 "wbuf overlaps xbuf", "wbuf overlaps the model", "weights overlap wbuf",
                                 "xbuf overlaps the parameters", "ybuf overlaps the optimizer slots"])
def test_run_batches_refuses_bad_weights_and_changes_nothing(bad):
    x, y = _data()
    m = _model()
    native = _plan(m, x, y, 8)
    before = _snapshot(m)
    args = _batches_args(m, x, y)
    err = TypeError if "dtype" in bad else ValueError
    if bad == "weights length":
        args["weights"] = args["weights"][:69]
    elif bad == "weights dtype":
        args["weights"] = args["weights"].astype(np.float64)
    elif bad == "weights strided":
        args["weights"] = np.ones(140, np.float32)[::2]
    elif bad == "weights without wbuf":
        args["wbuf"] = None
    elif bad == "wbuf without weights":
        args["weights"] = None
    elif bad == "wbuf size":
        args["wbuf"] = np.empty(9, np.float32)
    elif bad == "wbuf dtype":
        args["wbuf"] = np.empty(8, np.float64)
    elif bad == "wbuf read-only":
        args["wbuf"].flags.writeable = False
    elif bad == "wbuf overlaps xbuf":
        args["wbuf"] = args["xbuf"].reshape(-1)[40:48]
    elif bad == "wbuf overlaps the model":
        args["wbuf"] = m.layers[0].vars["kernel"].reshape(-1)[:8]
    elif bad == "xbuf overlaps the parameters":  # (not written by a layer: the optimizer's)
        args["xbuf"] = m.arena.params[:48].reshape(8, 6)
    elif bad == "ybuf overlaps the optimizer slots":
        args["ybuf"] = next(iter(m.optimizer.state.values()))[:16].view(np.int64)
    elif bad == "weights overlap wbuf":
        both = np.ones(78, np.float32)
        args["weights"], args["wbuf"] = both[:70], both[62:70]
    losses, wbuf = args["losses"].copy(), None if args["wbuf"] is None else args["wbuf"].copy()
    with pytest.raises(err):
        native.run_batches(**args)
    for a, b in zip(before, _snapshot(m)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(args["losses"], losses)
    if wbuf is not None:
        np.testing.assert_array_equal(args["wbuf"], wbuf)


def test_run_batches_with_weights_equals_run_step_by_step():
    """One run_batches call gathering the weights, four weighted run calls: the same bits."""
    x, y = _data()
    labels, w = y.astype(np.int64), _weights(70).astype(np.float32)
    native, order = check_run_batches_equals_run(_model(), _model(), x, labels, w)
    # and the weights were used: the same batch unweighted gives another loss
    rows = order[:8]
    assert native.run(x[rows], labels[rows], 0.0, 99) != native.run(x[rows], labels[rows], 0.0, 99, w[rows])


def test_weighted_label_smoothing_reports_the_smoothed_loss(monkeypatch):
    """The Python step's weighted value with label smoothing: the smoothed targets' loss (as its
    gradient), the weighted kernel's (the native step's too: test_native_step_smoothing.py)."""
    from fastnn import _weights as W
    from fastnn import _reference_weighted as rw
    rng = np.random.default_rng(0)
    z, y, w = rng.normal(size=(6, 4)), np.eye(4)[rng.integers(0, 4, 6)], rng.random(6)
    loss = fastnn.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2)
    value, grad = W.weighted_value_and_grad(loss, z, y, w, True)
    want, want_grad = rw.softmax_cross_entropy(z, y * 0.8 + 0.05, sample_weight=w)
    assert abs(value - want) <= 1e-12 * abs(want)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-12, atol=1e-15)
