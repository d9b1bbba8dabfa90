"""The native training step with weight regularizers (L1, L2, L1L2, BatchMeanL2: on kernels,
biases, BatchNormalization's gamma and beta, or model-wide from compile): bitwise the Python
step (FASTNN_NATIVE_STEP=0) in the weights, the gradients, the optimizer slots and the
history (``loss`` with the penalty, ``data_loss`` without), batch by batch (try_step) and
as fit's native epoch (run_batches), float32 and float64, 1 and 2 threads. The penalty's
sums are one kernel for both (ops.sum_squares, ops.abs_sum), checked against NumPy."""
import copy

import numpy as np
import pytest

import fastnn
from fastnn import _core, native_step, ops, reference
from fastnn import layers as L
from fastnn import optimizers as O
from fastnn import regularizers as R
from helpers import count_native_steps
from test_native_step import _IDS, _ROWS, _dense

_EPOCH_STEPS = native_step.epoch_steps


def _bn(**kw):
    return L.BatchNormalization(momentum=0.9, **kw)


CASES = {
    # name: (layers, compile's regularizer, loss, optimizer, targets)
    "l2_kernels_adam": (lambda: [_dense(16, 0, activation="relu", kernel_regularizer=R.L2(1e-2)),
                                 _dense(4, 1, activation="softmax", kernel_regularizer=R.L2(3e-3))],
                        None, "sparse_categorical_crossentropy", lambda: O.Adam(1e-2), _IDS),
    "l1_kernel_and_bias_sgd": (lambda: [_dense(12, 0, activation="tanh", kernel_regularizer=R.L1(1e-3),
                                               bias_regularizer=R.L1(1e-2)), _dense(4, 1)],
                               None, fastnn.losses.SparseCategoricalCrossentropy(from_logits=True),
                               lambda: O.SGD(0.05, momentum=0.9, nesterov=True), _IDS),
    "l1l2_dropout_adamw": (lambda: [_dense(16, 0, activation="relu", kernel_regularizer=R.L1L2(1e-3, 1e-2),
                                           bias_regularizer=R.L2(1e-2)), L.Dropout(0.3, seed=5),
                                    _dense(3, 1, activation="softmax", kernel_regularizer=R.L1L2(l1=2e-3))],
                           None, "categorical_crossentropy", lambda: O.AdamW(1e-2), np.eye(3)[_IDS % 3]),
    # the model-wide regularizer on every kernel, after a layer's own on the same kernel
    "model_wide_and_layer_sgd": (lambda: [_dense(12, 0, activation="sigmoid", kernel_regularizer=R.L1(1e-3)),
                                          _dense(3, 1)],
                                 R.L2(1e-2), "mse", lambda: O.SGD(0.1), _ROWS),
    "batchnorm_gamma_beta_adam": (lambda: [_dense(16, 0, use_bias=False, kernel_regularizer=R.L2(1e-2)),
                                           _bn(gamma_regularizer=R.L2(1e-2), beta_regularizer=R.L1(1e-3)),
                                           L.Activation("relu"), L.Dropout(0.25, seed=2),
                                           _dense(4, 1, activation="softmax")],
                                  None, "sparse_categorical_crossentropy", lambda: O.Adam(1e-2), _IDS),
    "batch_mean_l2_amsgrad": (lambda: [_dense(16, 0, activation="relu", kernel_regularizer=R.BatchMeanL2(1e-2, 16)),
                                       _dense(4, 1, activation="softmax")],
                              R.L1L2(1e-4, 1e-3), "sparse_categorical_crossentropy",
                              lambda: O.Adam(5e-2, beta_2=0.9, amsgrad=True), _IDS),
    # mixed_bfloat16 Dense layers (float32 variables: float32 models only)
    "mixed_bf16_l2": (lambda: [_dense(16, 0, activation="relu", dtype="mixed_bfloat16",
                                      kernel_regularizer=R.L2(1e-2), bias_regularizer=R.L1(1e-3)),
                               _dense(4, 1, activation="softmax", dtype="mixed_bfloat16")],
                      R.L1(1e-3), "sparse_categorical_crossentropy", lambda: O.Adam(1e-2), _IDS),
}


def _train(monkeypatch, mode, case, dtype, epochs=2, callbacks=None, model_hook=None):
    """(parameters, gradients, optimizer slots and layer variables; history; native steps)
    of one fit. mode: "python" (FASTNN_NATIVE_STEP=0), "batch" (try_step batch by batch) or
    "epoch" (the native epoch, 32 rows per call)."""
    build, reg, loss, opt, y = CASES[case]
    y = y.astype(dtype) if y.dtype.kind == "f" else y
    monkeypatch.setenv("FASTNN_NATIVE_STEP", "0" if mode == "python" else "1")
    monkeypatch.setattr(native_step, "epoch_steps", _EPOCH_STEPS if mode == "epoch" else (lambda *a: None))
    monkeypatch.setattr(native_step, "CHUNK_ROWS", 32)
    count = count_native_steps(monkeypatch)
    x = np.random.default_rng(0).normal(size=(90, 10)).astype(dtype)
    model = fastnn.Sequential([L.Input((10,))] + build(), dtype=dtype)
    model.compile(opt(), loss, regularizer=copy.deepcopy(reg))  # a callback may change it
    if model_hook is not None:
        model_hook(model)
    h = model.fit(x, y, batch_size=16, epochs=epochs, verbose=0, seed=3, callbacks=callbacks)
    return _state(model), h.history, count["n"]


def _state(model):
    state = {"params": model.arena.params.copy(), "grads": model.arena.grads.copy()}
    state.update({"opt " + k: v.copy() for k, v in model.optimizer.state.items()})
    state.update({f"layer {k} {n}": np.array(v) for k, l in enumerate(model.layers) for n, v in l.vars.items()})
    return state


def _same(a, b):
    assert sorted(a[0]) == sorted(b[0])
    for k in a[0]:
        np.testing.assert_array_equal(a[0][k], b[0][k], err_msg=k)  # bitwise
    assert a[1] == b[1]  # history: loss (with the penalty), data_loss, per epoch


@pytest.mark.parametrize("case,dtype", [(c, d) for c in sorted(CASES) for d in ("float32", "float64")
                                        if not (c.startswith("mixed") and d == "float64")])
def test_regularized_native_step_bitwise_equal_to_python_step(monkeypatch, threads, dtype, case):
    ref = _train(monkeypatch, "python", case, dtype)
    assert ref[2] == 0
    assert all(loss > data for loss, data in zip(ref[1]["loss"], ref[1]["data_loss"]))  # a penalty counted
    for mode in ("batch", "epoch"):
        got = _train(monkeypatch, mode, case, dtype)
        assert got[2] == 12, mode  # every step native: 2 epochs of 6 (90 rows, batch 16)
        _same(got, ref)


def test_frozen_regularized_layer(monkeypatch, threads):
    """A frozen regularized layer: its penalty counts (loss), no gradient is added to it."""
    def freeze(model):
        model.layers[0].trainable = False
    ref = _train(monkeypatch, "python", "l1l2_dropout_adamw", "float32", model_hook=freeze)
    for mode in ("batch", "epoch"):
        got = _train(monkeypatch, mode, "l1l2_dropout_adamw", "float32", model_hook=freeze)
        assert got[2] == 12
        _same(got, ref)


class _Change(fastnn.callbacks.Callback):
    """At batch 2 of each epoch: the coefficient of a regularizer changed in place (read at
    every step), a BatchMeanL2's batch size (as fastnn.sklearn sets it), and at batch 4 of the
    second epoch a layer frozen (the plan rebuilt)."""

    def on_train_batch_begin(self, batch, logs=None):
        m = self.model
        if batch == 2:
            m.layers[0].specs[0].regularizer.alpha *= 2.0
            m.layers[0].specs[0].regularizer.batch_size = 7 + batch
            m.regularizer.l2 = m.regularizer.l2 * 3.0
        if batch == 4 and m.layers[0].trainable and m.history and m.history.epoch:
            m.layers[0].trainable = False


def test_coefficients_read_at_every_step_and_trainable_change(monkeypatch):
    ref = _train(monkeypatch, "python", "batch_mean_l2_amsgrad", "float64", epochs=3, callbacks=[_Change()])
    got = _train(monkeypatch, "batch", "batch_mean_l2_amsgrad", "float64", epochs=3, callbacks=[_Change()])
    assert got[2] == 18  # batch callbacks: try_step at each batch, never the Python step
    _same(got, ref)


def _refit(monkeypatch, native, change):
    """Two fits of one model, the regularizers changed between them by change(model)."""
    monkeypatch.setenv("FASTNN_NATIVE_STEP", "1" if native else "0")
    count = count_native_steps(monkeypatch)
    x = np.random.default_rng(0).normal(size=(64, 10)).astype(np.float32)
    model = fastnn.Sequential([L.Input((10,)), _dense(8, 0, activation="relu", kernel_regularizer=R.L2(1e-2)),
                               _dense(4, 1, activation="softmax")])
    model.compile(O.Adam(1e-2), "sparse_categorical_crossentropy")
    h1 = model.fit(x, _IDS[:64], batch_size=16, epochs=1, verbose=0, seed=1)
    change(model)
    h2 = model.fit(x, _IDS[:64], batch_size=16, epochs=1, verbose=0, seed=2)
    return _state(model), (h1.history, h2.history), count["n"]


CHANGES = {
    "model_wide_added": lambda m: setattr(m, "regularizer", R.L1(1e-2)),
    "coefficient_in_place": lambda m: setattr(m.layers[0].specs[0].regularizer, "l2", 0.25),
    "model_wide_l1l2_recompiled": lambda m: m.compile(O.SGD(0.1), "sparse_categorical_crossentropy",
                                                      regularizer=R.L1L2(1e-3, 1e-2)),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_regularizer_changed_between_fits(monkeypatch, change):
    ref = _refit(monkeypatch, False, CHANGES[change])
    got = _refit(monkeypatch, True, CHANGES[change])
    assert ref[2] == 0 and got[2] == 8
    assert ref[1][1]["loss"][0] - ref[1][1]["data_loss"][0] != pytest.approx(
        ref[1][0]["loss"][0] - ref[1][0]["data_loss"][0], rel=0.05)  # the change matters
    _same(got, ref)


class _Custom(R.Regularizer):
    """A regularizer of its own kind: the native step does not know its penalty."""

    def __call__(self, w):
        return 0.5 * float(np.sum(np.asarray(w) ** 4))

    def add_gradient(self, w, grad, scratch=None):
        grad += 2.0 * w ** 3


FALLBACK = {
    "custom_regularizer": lambda m: None,
    "coefficient_not_a_float": lambda m: setattr(m.layers[1].specs[0].regularizer, "l2", np.float32(1e-2)),
}


@pytest.mark.parametrize("what", sorted(FALLBACK))
def test_other_regularizers_fall_back(monkeypatch, what):
    """A regularizer the plan does not compute (its own class, an l2 that is a NumPy
    float32, whose products the Python step makes in float32) runs the Python step."""
    def run(native):
        monkeypatch.setenv("FASTNN_NATIVE_STEP", "1" if native else "0")
        count = count_native_steps(monkeypatch)
        reg = _Custom() if what == "custom_regularizer" else R.L2(1e-2)
        model = fastnn.Sequential([L.Input((10,)), _dense(8, 0, activation="relu"),
                                   _dense(4, 1, activation="softmax", kernel_regularizer=reg)])
        model.compile(O.Adam(1e-2), "sparse_categorical_crossentropy")
        FALLBACK[what](model)
        x = np.random.default_rng(0).normal(size=(48, 10)).astype(np.float32)
        h = model.fit(x, _IDS[:48], batch_size=16, epochs=2, verbose=0, seed=1)
        return _state(model), h.history, count["n"]
    ref, got = run(False), run(True)
    assert got[2] == 0
    _same(got, ref)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_train_on_batch(monkeypatch, dtype):
    def run(native):
        monkeypatch.setenv("FASTNN_NATIVE_STEP", "1" if native else "0")
        count = count_native_steps(monkeypatch)
        model = fastnn.Sequential([L.Input((10,)), *CASES["l1l2_dropout_adamw"][0]()], dtype=dtype)
        model.compile(O.AdamW(1e-2), "categorical_crossentropy", regularizer=R.L2(1e-3))
        x = np.random.default_rng(0).normal(size=(24, 10)).astype(dtype)
        logs = [model.train_on_batch(x, np.eye(3)[_IDS[:24] % 3], return_dict=True) for _ in range(3)]
        return _state(model), logs, count["n"]
    ref, got = run(False), run(True)
    assert ref[2] == 0 and got[2] == 3
    assert all(d["loss"] > d["data_loss"] for d in ref[1])
    _same(got, ref)


# ------------------------------------------------------------------ the penalty kernels
SIZES = [0, 1, 7, 16, 63, 64, 65, 16_383, 16_384, 16_385, 100_003]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", SIZES)
def test_penalty_sums_match_numpy(isa_threads, dtype, n):
    """float64 accumulation in both (a float32 value and its square are exact in float64):
    the fixed block order of the kernel and NumPy's pairwise sum agree to 1e-12 relative."""
    x = (np.random.default_rng(n).standard_normal(n) * 3).astype(dtype)
    for op, twin in ((ops.sum_squares, reference.sum_squares), (ops.abs_sum, reference.abs_sum)):
        got, want = op(x), twin(x)
        assert isinstance(got, float)
        assert abs(got - want) <= 1e-12 * want, op.__name__
        assert op(x.reshape(-1, 1)) == got  # any shape: all its values


def test_penalty_sums_bitwise_for_any_thread_count_and_special_values():
    old = fastnn.get_num_threads()
    x = np.random.default_rng(1).standard_normal(300_001).astype(np.float32)
    try:
        got = []
        for t in (1, 2, 3):
            fastnn.set_num_threads(t)
            got.append((ops.sum_squares(x), ops.abs_sum(x)))
    finally:
        fastnn.set_num_threads(old)
    assert got[0] == got[1] == got[2]
    assert ops.abs_sum(np.array([-0.0, -1.5, 2.5])) == 4.0
    assert np.isnan(ops.abs_sum(np.array([1.0, np.nan], np.float32)))
    assert ops.sum_squares(np.array([np.inf, 1.0])) == np.inf
    assert ops.sum_squares(np.full(4, 2.0 ** 100, np.float32)) == 2.0 ** 202  # float32 squares in float64: no overflow
    assert ops.sum_squares(np.arange(6.0).reshape(2, 3)[:, ::2]) == 0 + 4 + 9 + 25  # a strided view: copied
    with pytest.raises(TypeError, match="x: expected dtype float32 or float64, got int64"):
        ops.abs_sum(np.arange(3))
    with pytest.raises(TypeError, match="x: expected a numpy.ndarray"):
        ops.sum_squares([1.0, 2.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.float16])
def test_regularizer_penalty_uses_the_kernels(dtype):
    """Regularizer.__call__: l1 * ops.abs_sum + l2 * ops.sum_squares, bitwise, for float32 and
    float64 (the native step's sums); NumPy's for other arrays; within 1e-12 of NumPy."""
    w = (np.random.default_rng(0).standard_normal((37, 19)) * 4).astype(dtype)
    r = R.L1L2(1e-3, 2e-2)
    if dtype in (np.float32, np.float64):
        assert r(w) == 0.0 + 1e-3 * ops.abs_sum(w) + 2e-2 * ops.sum_squares(w)
    w64 = w.astype(np.float64)
    assert r(w) == pytest.approx(1e-3 * np.abs(w64).sum() + 2e-2 * np.dot(w64.ravel(), w64.ravel()),
                                 rel=1e-12 if dtype != np.float16 else 1e-3)
    assert R.L2(0.5)(np.array([1.0, 2.0])) == 2.5


def test_native_step_checks_its_regularizer_arguments():
    f = np.float32
    W, y = np.zeros((3, 2), f), np.zeros((4, 2), f)
    layers = [(W, None, np.zeros((3, 2), f), None, y, None, "relu", 0.0)]
    sgd = {"momentum": 0.0, "nesterov": False}
    args = (layers, 0, "mse", np.zeros((4, 2), f), "sgd", sgd, [], None)
    with pytest.raises(ValueError, match="reg_coefs: expected a float64 array"):
        _core.NativeStep(*args, [(W, None)], None)
    with pytest.raises(ValueError, match="reg_coefs"):
        _core.NativeStep(*args, [(W, None)], np.zeros(3))
    with pytest.raises(TypeError, match="reg_coefs"):
        _core.NativeStep(*args, [(W, None)], np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="grad"):
        _core.NativeStep(*args, [(W, np.zeros(5, f))], np.zeros(2))
    with pytest.raises(TypeError, match="w"):
        _core.NativeStep(*args, [(W.astype(np.float64), None)], np.zeros(2))
    with pytest.raises(ValueError, match="regs: expected"):
        _core.NativeStep(*args, [(W,)], np.zeros(2))
    step = _core.NativeStep(*args, [(W + 1, np.zeros(6, f))], np.array([0.5, 0.25]))
    step.run(np.ones((4, 3), f), np.zeros((4, 2), f), 0.0, 1)
    assert step.penalty == 0.5 * 6 + 0.25 * 6


def test_replaced_penalty_methods_fall_back(monkeypatch):
    """add_gradient replaced on the class (a spy, as tests/test_sklearn.py's): the plan would
    not call it, so the Python step runs."""
    calls = []
    orig = R.Regularizer.add_gradient

    def spy(self, w, grad, scratch=None):
        calls.append(1)
        return orig(self, w, grad, scratch)
    monkeypatch.setattr(R.Regularizer, "add_gradient", spy)
    ref = _train(monkeypatch, "python", "l2_kernels_adam", "float32")
    n = len(calls)
    got = _train(monkeypatch, "epoch", "l2_kernels_adam", "float32")
    assert got[2] == 0 and len(calls) == 2 * n == 2 * 12 * 2
    _same(got, ref)


def test_sklearn_estimator_with_alpha_runs_natively(monkeypatch):
    """scikit-learn's penalty (BatchMeanL2, its batch size set by a callback before each
    batch, the last one smaller): every step native, the same weights as the Python step."""
    sk = pytest.importorskip("fastnn.sklearn")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(250, 3)), rng.integers(0, 3, 250)

    def fit(native):
        monkeypatch.setenv("FASTNN_NATIVE_STEP", "1" if native else "0")
        count = count_native_steps(monkeypatch)
        est = sk.MLPClassifier(hidden_layer_sizes=(8,), alpha=0.3, batch_size=100, max_iter=3,
                               n_iter_no_change=5, random_state=0).fit(x, y)
        return est.model_.get_weights(), est.predict_proba(x), count["n"]
    ref, got = fit(False), fit(True)
    assert ref[2] == 0 and got[2] == 9  # 3 epochs of 100, 100, 50
    for a, b in zip(ref[0], got[0]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ref[1], got[1])


def _reg_plan():
    """A model-wide L2 regularized model and its native plan for batch 8, its coefficients
    written (as try_step and the native epoch write them before each call)."""
    from test_native_epoch import _data, _model, _plan
    x, y = _data()
    m = _model(regularizer=R.L2(1e-2))
    native = _plan(m, x, y, 8)
    step = native_step._ready(m, 8, x[:8], y[:8], *fastnn.trainer.loss_mode(m))[0]
    assert step[0][0] is native and native_step._reg_coefs(step[0][3])
    return m, x, y, native


@pytest.mark.parametrize("bad", ["penalties dtype", "penalties size", "penalties overlaps losses",
                                 "penalties overlaps the model"])
def test_run_batches_refuses_bad_penalties_and_changes_nothing(bad):
    from test_native_epoch import _snapshot
    m, x, y, native = _reg_plan()
    before = _snapshot(m)
    k = 3
    args = dict(x=x, labels=y.astype(np.int64), index=np.arange(k * 8, dtype=np.int64), lrs=np.full(k, 1e-2),
                step0=m.optimizer.iterations + 1, seeds=np.zeros((k, 1), np.uint64), losses=np.zeros(k),
                xbuf=np.empty((8, 6), np.float32), ybuf=np.empty(8, np.int64), penalties=np.zeros(k))
    err = ValueError
    if bad == "penalties dtype":
        args["penalties"], err = np.zeros(k, np.float32), TypeError
    elif bad == "penalties size":
        args["penalties"] = np.zeros(k + 1)
    elif bad == "penalties overlaps losses":
        args["penalties"] = args["losses"]
    else:
        args["penalties"] = m.arena.grads[:2 * k].view(np.float64)  # float32 gradients seen as float64
    with pytest.raises(err):
        native.run_batches(**args)
    for a, b in zip(before, _snapshot(m)):
        np.testing.assert_array_equal(a, b)


def test_run_batches_penalties_equal_run_step_by_step():
    """Each step's penalty (on the weights before its update) from run_batches is the one
    run() reports (NativeStep.penalty) for the same step, from the same start."""
    m, x, y, native = _reg_plan()
    start = [w.copy() for w in m.get_weights()], {k: v.copy() for k, v in m.optimizer.state.items()}
    rows = np.random.default_rng(3).permutation(70)[:32].astype(np.int64)
    lrs, it, labels = np.array([1e-2, 5e-3, 2e-3, 1e-3]), m.optimizer.iterations, y.astype(np.int64)
    losses, pens, seeds = np.zeros(4), np.zeros(4), np.arange(4, dtype=np.uint64).reshape(4, 1) * 977
    native.run_batches(x, labels, rows, lrs, it + 1, seeds, losses, np.empty((8, 6), np.float32),
                       np.empty(8, np.int64), None, pens)
    end = m.get_weights()
    m.set_weights(start[0])
    for k, v in m.optimizer.state.items():
        v[...] = start[1][k]
    plan_seeds = native_step._ready(m, 8, x[:8], y[:8], *fastnn.trainer.loss_mode(m))[0][0][1]
    for i, batch in enumerate(rows.reshape(4, 8)):
        plan_seeds[:] = seeds[i]
        want = 1e-2 * sum(ops.sum_squares(k) for k in m.get_weights()[0::2])  # the kernels' L2, before
        loss = native.run(np.ascontiguousarray(x[batch]), labels[batch], lrs[i], it + 1 + i)
        assert (loss, native.penalty) == (losses[i], pens[i])
        assert pens[i] == pytest.approx(want, rel=1e-12) and pens[i] > 0
    for a, b in zip(end, m.get_weights()):
        np.testing.assert_array_equal(a, b)
