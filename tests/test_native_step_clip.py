"""The native training step with gradient clipping (clipnorm, clipvalue, global_clipnorm) and
weight constraints (MaxNorm, MinMaxNorm, UnitNorm, NonNeg on kernels, biases and
BatchNormalization's gamma and beta): bitwise the Python step (FASTNN_NATIVE_STEP=0) in the
weights, the gradients, the optimizer slots and the history, batch by batch (try_step,
train_on_batch) and as fit's native epoch (run_batches), float32 and float64, 1 and 2 threads.
The constraints are one kernel for both (ops.norm_constraint, ops.non_neg), checked against
their NumPy twins (fastnn._reference_constraints)."""
import numpy as np
import pytest

import fastnn
from fastnn import _core, _reference_constraints, ops
from fastnn import constraints as C
from fastnn import layers as L
from fastnn import optimizers as O
from helpers import count_native_steps
from test_native_step import _IDS, _ROWS, _dense
import test_native_epoch as _epoch
import test_native_step_reg as _reg
from test_native_step_reg import _same, _state


def _bn(**kw):
    return L.BatchNormalization(momentum=0.9, **kw)


CASES = {
    # name: (layers, loss, optimizer, targets); each clips or constrains enough to change the result
    "clipnorm_adam_dropout": (lambda: [_dense(16, 0, activation="relu"), L.Dropout(0.3, seed=5),
                                       _dense(4, 1, activation="softmax")],
                              "sparse_categorical_crossentropy", lambda: O.Adam(1e-2, clipnorm=0.05), _IDS),
    "clipvalue_sgd_batchnorm": (lambda: [_dense(16, 0, use_bias=False), _bn(), L.Activation("relu"),
                                         _dense(3, 1)],
                                "mse", lambda: O.SGD(0.1, momentum=0.9, clipvalue=0.01), _ROWS),
    "global_clipnorm_adamw_dropout": (lambda: [_dense(16, 0, activation="tanh"), L.Dropout(0.25, seed=2),
                                               _dense(4, 1, activation="softmax")],
                                      "sparse_categorical_crossentropy",
                                      lambda: O.AdamW(1e-2, global_clipnorm=0.1), _IDS),
    "max_norm_kernel_non_neg_bias_sgd": (lambda: [_dense(16, 0, activation="relu", kernel_constraint=C.MaxNorm(0.6),
                                                         bias_constraint=C.NonNeg()), L.Dropout(0.3, seed=1),
                                                  _dense(4, 1, activation="softmax", kernel_constraint=C.MaxNorm(0.8))],
                                         "sparse_categorical_crossentropy", lambda: O.SGD(0.5), _IDS),
    "unit_norm_batchnorm_gamma_beta_adam": (lambda: [_dense(16, 0, use_bias=False,
                                                            kernel_constraint=C.UnitNorm(axis=1)),
                                                     _bn(gamma_constraint=C.NonNeg(), beta_constraint=C.MaxNorm(0.05)),
                                                     L.Activation("relu"), _dense(4, 1, activation="softmax")],
                                            "sparse_categorical_crossentropy", lambda: O.Adam(5e-2), _IDS),
    "min_max_norm_and_clipnorm_sgd": (lambda: [_dense(12, 0, activation="sigmoid",
                                                      kernel_constraint=C.MinMaxNorm(0.5, 0.9, rate=0.7),
                                                      bias_constraint=C.UnitNorm()), _dense(3, 1)],
                                      "mse", lambda: O.SGD(0.2, momentum=0.5, nesterov=True, clipnorm=0.2), _ROWS),
    "max_norm_whole_kernel_global_clip_adam": (lambda: [_dense(16, 0, activation="relu",
                                                               kernel_constraint=C.MaxNorm(1.0, axis=(0, 1))),
                                                        _dense(4, 1, activation="softmax")],
                                               "sparse_categorical_crossentropy",
                                               lambda: O.Adam(3e-2, amsgrad=True, global_clipnorm=0.3), _IDS),
}


def _strip(model):
    """The model without its clipping and constraints (to show they matter)."""
    opt = model.optimizer
    opt.clipnorm = opt.clipvalue = opt.global_clipnorm = None
    for layer in model.layers:
        for s in layer.specs:
            s.constraint = None


def _train(monkeypatch, mode, case, dtype, epochs=2, model_hook=None):
    """(state, history, native steps) of one fit: test_native_step_reg's, on this file's case.
    mode: "python" (FASTNN_NATIVE_STEP=0), "batch" (try_step) or "epoch" (the native epoch)."""
    build, loss, opt, y = CASES[case]
    monkeypatch.setitem(_reg.CASES, case, (build, None, loss, opt, y))
    return _reg._train(monkeypatch, mode, case, dtype, epochs=epochs, model_hook=model_hook)


@pytest.mark.parametrize("case,dtype", [(c, d) for c in sorted(CASES) for d in ("float32", "float64")])
def test_clipped_constrained_native_step_bitwise_equal_to_python_step(monkeypatch, threads, dtype, case):
    ref = _train(monkeypatch, "python", case, dtype)
    assert ref[2] == 0
    plain = _train(monkeypatch, "python", case, dtype, model_hook=_strip)
    assert not np.array_equal(plain[0]["params"], ref[0]["params"])  # the clipping / constraints mattered
    for mode in ("batch", "epoch"):
        got = _train(monkeypatch, mode, case, dtype)
        assert got[2] == 12, mode  # every step native: 2 epochs of 6 (90 rows, batch 16)
        _same(got, ref)


def test_mixed_bfloat16_clipped_constrained(monkeypatch, threads):
    """mixed_bfloat16 Dense layers (float32 variables): clipping and constraints on the float32
    weights the bf16 products round from, as in the Python step."""
    monkeypatch.setitem(CASES, "mixed", (
        lambda: [_dense(16, 0, activation="relu", dtype="mixed_bfloat16", kernel_constraint=C.MaxNorm(0.6)),
                 _dense(4, 1, activation="softmax", dtype="mixed_bfloat16", bias_constraint=C.NonNeg())],
        "sparse_categorical_crossentropy", lambda: O.Adam(1e-2, clipnorm=0.05), _IDS))
    ref = _train(monkeypatch, "python", "mixed", "float32")
    for mode in ("batch", "epoch"):
        got = _train(monkeypatch, mode, "mixed", "float32")
        assert got[2] == 12, mode
        _same(got, ref)


def test_constraints_hold_after_native_fit(monkeypatch):
    """The projections really ran natively: every unit's incoming norm <= 0.6, biases >= 0."""
    state = _train(monkeypatch, "epoch", "max_norm_kernel_non_neg_bias_sgd", "float64")
    assert state[2] == 12
    w = state[0]["layer 0 kernel"]
    norms = np.sqrt((w ** 2).sum(0))
    assert norms.max() <= 0.6 * (1 + 1e-12) and norms.max() == pytest.approx(0.6, rel=1e-6)
    assert (state[0]["layer 0 bias"] >= 0).all()


def test_frozen_constrained_layer(monkeypatch, threads):
    """test_native_step_reg's frozen-layer check on a constrained model: a frozen layer's
    constraints are not applied (trainer.apply_constraints: trainable layers only)."""
    build, loss, opt, y = CASES["max_norm_kernel_non_neg_bias_sgd"]
    monkeypatch.setitem(_reg.CASES, "l1l2_dropout_adamw", (build, None, loss, opt, y))
    _reg.test_frozen_regularized_layer(monkeypatch, threads)


def _refit(monkeypatch, native, change, opt):
    """Two fits of one model, changed between them by change(model)."""
    monkeypatch.setenv("FASTNN_NATIVE_STEP", "1" if native else "0")
    count = count_native_steps(monkeypatch)
    x = (np.random.default_rng(0).normal(size=(64, 10)) * 2).astype(np.float32)
    model = fastnn.Sequential([L.Input((10,)), _dense(8, 0, activation="relu", kernel_constraint=C.MaxNorm(0.7)),
                               L.Dropout(0.2, seed=3), _dense(4, 1, activation="softmax")])
    model.compile(opt, "sparse_categorical_crossentropy")
    h1 = model.fit(x, _IDS[:64], batch_size=16, epochs=1, verbose=0, seed=1)
    change(model)
    h2 = model.fit(x, _IDS[:64], batch_size=16, epochs=1, verbose=0, seed=2)
    return _state(model), (h1.history, h2.history), count["n"]


CHANGES = {
    # (optimizer, change between the fits): each rebuilds the plan (_hyper_key, constraints_key)
    "clipnorm_value": (lambda: O.Adam(1e-2, clipnorm=0.05), lambda m: setattr(m.optimizer, "clipnorm", 0.01)),
    "clipnorm_to_clipvalue": (lambda: O.Adam(1e-2, clipnorm=0.05),
                              lambda m: (setattr(m.optimizer, "clipnorm", None),
                                         setattr(m.optimizer, "clipvalue", 1e-3))),
    "global_clipnorm_added": (lambda: O.SGD(0.3), lambda m: setattr(m.optimizer, "global_clipnorm", 0.05)),
    "max_value_in_place": (lambda: O.SGD(0.3), lambda m: setattr(m.layers[0].kernel_constraint, "max_value", 0.2)),
    "axis_in_place": (lambda: O.SGD(0.3), lambda m: setattr(m.layers[0].kernel_constraint, "axis", 1)),
    "constraint_replaced": (lambda: O.SGD(0.3), lambda m: setattr(m.layers[0].specs[0], "constraint", C.UnitNorm())),
    "constraint_added": (lambda: O.SGD(0.3), lambda m: setattr(m.layers[1 + 1].specs[1], "constraint", C.NonNeg())),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_clip_or_constraint_changed_between_fits(monkeypatch, change):
    opt, how = CHANGES[change]
    ref = _refit(monkeypatch, False, how, opt())
    got = _refit(monkeypatch, True, how, opt())
    unchanged = _refit(monkeypatch, False, lambda m: None, opt())
    assert ref[2] == 0 and got[2] == 8
    assert not np.array_equal(unchanged[0]["params"], ref[0]["params"])  # the change matters
    _same(got, ref)


class _Clamp(C.Constraint):
    """A constraint of its own: the native step does not know it."""

    def apply_(self, w):
        np.clip(w, -0.1, 0.1, out=w)


class _MaxNormSub(C.MaxNorm):
    pass


FALLBACK = {
    "own_class": lambda: _Clamp(),
    "subclass": lambda: _MaxNormSub(0.5),
    "apply_replaced_on_instance": lambda: _replaced(C.MaxNorm(0.5)),
    "axis_out_of_range": lambda: C.MaxNorm(0.5, axis=2),
}


def _replaced(c):
    c.apply_ = lambda w: np.multiply(w, 0.5, out=w)
    return c


@pytest.mark.parametrize("what", sorted(FALLBACK))
def test_other_constraints_fall_back(monkeypatch, what):
    def run(native):
        monkeypatch.setenv("FASTNN_NATIVE_STEP", "1" if native else "0")
        count = count_native_steps(monkeypatch)
        model = fastnn.Sequential([L.Input((10,)), _dense(8, 0, activation="relu", kernel_constraint=FALLBACK[what]()),
                                   _dense(4, 1, activation="softmax")])
        model.compile(O.Adam(1e-2, clipnorm=0.1), "sparse_categorical_crossentropy")
        x = np.random.default_rng(0).normal(size=(48, 10)).astype(np.float32)
        try:
            h = model.fit(x, _IDS[:48], batch_size=16, epochs=2, verbose=0, seed=1).history
        except ValueError as e:  # the Python step's own error (an axis out of range)
            h = str(e)
        return _state(model), h, count["n"]
    ref, got = run(False), run(True)
    assert got[2] == 0
    if what == "axis_out_of_range":
        assert "axis: 2 is out of range" in ref[1]
    _same(got, ref)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", ["min_max_norm_and_clipnorm_sgd", "unit_norm_batchnorm_gamma_beta_adam",
                                  "clipvalue_sgd_batchnorm"])
def test_train_on_batch(monkeypatch, dtype, case):
    build, loss, opt, y = CASES[case]
    y = y[:24].astype(dtype) if y.dtype.kind == "f" else y[:24]

    def run(native):
        monkeypatch.setenv("FASTNN_NATIVE_STEP", "1" if native else "0")
        count = count_native_steps(monkeypatch)
        model = fastnn.Sequential([L.Input((10,)), *build()], dtype=dtype)
        model.compile(opt(), loss)
        x = (np.random.default_rng(0).normal(size=(24, 10)) * 2).astype(dtype)
        logs = [model.train_on_batch(x, y, return_dict=True) for _ in range(3)]
        return _state(model), logs, count["n"]
    ref, got = run(False), run(True)
    assert ref[2] == 0 and got[2] == 3
    _same(got, ref)


def test_per_step_learning_rates_in_the_native_epoch(monkeypatch, threads):
    """A per-step schedule (one rate per step of each run_batches call) with clipping and constraints."""
    sched = fastnn.schedules.ExponentialDecay(0.3, decay_steps=2, decay_rate=0.7)

    def hook(model):
        model.optimizer.learning_rate = sched
    ref = _train(monkeypatch, "python", "min_max_norm_and_clipnorm_sgd", "float64", model_hook=hook)
    got = _train(monkeypatch, "epoch", "min_max_norm_and_clipnorm_sgd", "float64", model_hook=hook)
    assert got[2] == 12
    _same(got, ref)


def _clip_model(seed=0):
    """test_native_epoch's model (6 inputs, a Dropout, 3 classes), clipped and constrained."""
    init = fastnn.initializers.GlorotUniform
    m = fastnn.Sequential([L.Input((6,)), L.Dense(8, activation="relu", kernel_initializer=init(seed=seed),
                                                  kernel_constraint=C.MaxNorm(0.5), bias_constraint=C.NonNeg()),
                           L.Dropout(0.25, seed=4), L.Dense(3, activation="softmax", kernel_initializer=init(seed=1))])
    m.compile(O.Adam(1e-2, global_clipnorm=0.1), "sparse_categorical_crossentropy")
    return m


@pytest.mark.parametrize("bad", _epoch.test_run_batches_refuses_and_changes_nothing.pytestmark[0].args[1])
def test_run_batches_refuses_and_changes_nothing(monkeypatch, bad):
    """test_native_epoch's refusals, on a clipped, constrained model's plan: nothing changes."""
    monkeypatch.setattr(_epoch, "_model", _clip_model)
    _epoch.test_run_batches_refuses_and_changes_nothing(bad)


def test_native_step_checks_its_clip_and_constraint_arguments():
    f = np.float32
    W, y = np.zeros((3, 2), f), np.zeros((4, 2), f)
    layers = [(W, None, np.zeros((3, 2), f), None, y, None, "relu", 0.0)]
    step = _core.NativeStep(layers, 0, "mse", np.zeros((4, 2), f), "sgd", {"momentum": 0.0, "nesterov": False},
                            [], None)
    g = np.zeros(6, f)
    for args, err, match in [(("norm", 0.0, [[g]]), ValueError, "value: expected a finite value > 0"),
                             (("norm", np.inf, [[g]]), ValueError, "value"),
                             (("scale", 1.0, [[g]]), ValueError, "mode: expected"),
                             (("norm", 1.0, [[g.astype(np.float64)]]), TypeError, "grads"),
                             (("value", 1.0, [[g], [g[2:]]]), ValueError, "must not share memory"),
                             (("norm", 1.0, [[g[::2]]]), ValueError, "C-contiguous")]:
        with pytest.raises(err, match=match):
            step.set_clip(*args)
    for items, err, match in [([(W, "max_norm", 1, 3, 2, 0.0, 0.0, 1.0)], ValueError, "max_value"),
                              ([(W, "max_norm", 1, 3, 3, 0.0, 1.0, 1.0)], ValueError, "outer \\* r \\* inner = 6"),
                              ([(W, "min_max_norm", 1, 3, 2, 2.0, 1.0, 1.0)], ValueError, "min_value"),
                              ([(W, "min_max_norm", 1, 3, 2, 0.0, 1.0, 1.5)], ValueError, "rate"),
                              ([(W, "l2", 1, 3, 2, 0.0, 1.0, 1.0)], ValueError, "rule"),
                              ([(W, "non_neg", 1)], ValueError, "constraints: expected"),
                              ([(W.astype(np.float64), "non_neg")], TypeError, "w")]:
        with pytest.raises(err, match=match):
            step.set_constraints(items)


# ------------------------------------------------------------------ the constraint kernels
SHAPES = [((7, 5), 0), ((7, 5), 1), ((7, 5), (0, 1)), ((300, 130), 0), ((130, 300), 1), ((1000,), 0),
          ((4, 3, 5), (1, 2)), ((4, 3, 5), (0, 2)), ((4, 3, 5), -1), ((2, 0, 3), 1), ((6, 4), ())]
RULES = {"max_norm": dict(max_value=1.5), "unit_norm": {}, "min_max_norm": dict(min_value=0.8, max_value=1.5, rate=0.6)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", SHAPES)
def test_norm_constraint_matches_numpy_twin(threads, dtype, shape, axis):
    """Norms accumulated in float64 (NumPy: pairwise in the variable's dtype): within 2e-6
    (float32) and 1e-14 (float64) relative of the twin; constraints.py's classes are the kernel."""
    w = (np.random.default_rng(len(shape)).standard_normal(shape) * 2).astype(dtype)
    tol = 2e-6 if dtype == np.float32 else 1e-14
    for rule, kw in RULES.items():
        got = w.copy()
        ops.norm_constraint(got, rule, axis, **kw)
        np.testing.assert_allclose(got, _reference_constraints.norm_constraint(w, rule, axis, **kw), rtol=tol,
                                   atol=tol * 1e-3, err_msg=rule)
    cls = {"max_norm": C.MaxNorm(1.5, axis=axis), "unit_norm": C.UnitNorm(axis=axis),
           "min_max_norm": C.MinMaxNorm(0.8, 1.5, rate=0.6, axis=axis)}
    for rule, c in cls.items():
        want = w.copy()
        ops.norm_constraint(want, rule, axis, **RULES[rule])
        np.testing.assert_array_equal(c(w), want)  # the class is the kernel, bitwise
        assert c(w).dtype == dtype


def test_norm_constraint_bitwise_for_any_thread_count_and_layout():
    w = np.random.default_rng(3).standard_normal((513, 700)).astype(np.float32)
    old = fastnn.get_num_threads()
    try:
        got = []
        for t in (1, 2, 3):
            fastnn.set_num_threads(t)
            for axis in (0, 1):
                a = w.copy()
                ops.norm_constraint(a, "max_norm", axis, max_value=3.0)
                got.append(a)
    finally:
        fastnn.set_num_threads(old)
    for a, b in zip(got[:2], got[2:4]):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(got[:2], got[4:]):
        np.testing.assert_array_equal(a, b)
    f = np.asfortranarray(w)  # a non-contiguous variable: through a copy, written back
    ops.norm_constraint(f, "max_norm", 0, max_value=3.0)
    np.testing.assert_array_equal(f, got[0])
    h = w[:40, :30].astype(np.float16)  # another float dtype: in float64, rounded back
    want = h.astype(np.float64)
    ops.norm_constraint(want, "unit_norm", 0)
    c = h.copy()
    ops.norm_constraint(c, "unit_norm", 0)
    np.testing.assert_array_equal(c, want.astype(np.float16))


def test_non_neg_bitwise_numpy_maximum():
    w = np.array([-0.0, 0.0, np.nan, -np.nan, -1.0, 2.0, -np.inf, np.inf, -1e-45] * 5000, np.float32)
    for a in (w, w.astype(np.float64)):
        got, want = a.copy(), np.maximum(a, 0)
        ops.non_neg(got)
        assert got.tobytes() == want.tobytes()  # bitwise: -0.0 becomes 0.0, a NaN keeps its bits
        assert C.NonNeg()(a).tobytes() == want.tobytes()


def test_constraint_kernel_special_values_and_errors():
    w = np.array([[np.nan, 1.0], [0.0, np.inf], [0.0, 0.0]])
    a = w.copy()
    ops.norm_constraint(a, "max_norm", 0, max_value=1.0)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(a, _reference_constraints.norm_constraint(w, "max_norm", 0, max_value=1.0))
    z = np.zeros((3, 2))
    ops.norm_constraint(z, "unit_norm", 0)
    assert (z == 0).all()  # a zero slice stays zero (eps)
    with pytest.raises(ValueError, match="axis: 2 is out of range for a variable of shape \\(3, 2\\)"):
        ops.norm_constraint(z, "max_norm", 2)
    with pytest.raises(ValueError, match="axis: expected distinct axes"):
        ops.norm_constraint(z, "max_norm", (0, 0))
    with pytest.raises(TypeError, match="w: expected a floating-point array"):
        ops.norm_constraint(np.zeros((2, 2), np.int64), "max_norm", 0)
    with pytest.raises(ValueError, match="rule: expected"):
        ops.norm_constraint(z, "l2", 0)
    with pytest.raises(ValueError, match="writeable"):
        z.flags.writeable = False
        ops.non_neg(z)
    with pytest.raises(ValueError, match="max_value"):
        ops.norm_constraint(np.ones(3), "max_norm", 0, max_value=-1.0)
    for bad, match in [(dict(min_value=2.0, max_value=1.0), "min_value"), (dict(rate=1.5), "rate"),
                       (dict(max_value=0), "max_value")]:
        with pytest.raises(ValueError, match=match):
            C.MinMaxNorm(**bad)
    c = C.get({"class_name": "MinMaxNorm", "config": C.MinMaxNorm(0.1, 2.0, 0.5, (0, 1)).get_config()})
    assert (c.min_value, c.max_value, c.rate, c.axis) == (0.1, 2.0, 0.5, (0, 1))
    assert isinstance(C.get("min_max_norm"), C.MinMaxNorm)
