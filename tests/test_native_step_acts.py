"""Dense layers whose activation's gradient needs its input (gelu, swish, mish, ...) in the
native step (python/fastnn/native_step.py): the plan runs them as Dense.forward/backward
does, the product into the layer's z buffer, then the activation node (y = act(z); backward
dz = act'(z) * dy in place). Bitwise the Python step (FASTNN_NATIVE_STEP=0), float32 and
float64, every ISA path, 1 and 2 threads, batch by batch and in the native epoch;
mixed_bfloat16 too (every bf16 path)."""
import numpy as np
import pytest

import fastnn
from fastnn import layers as L
from fastnn import native_step, ops
from fastnn import optimizers as O
from test_native_step import _IDS, _ROWS, _dense, _train
from test_native_step_mixed import _dense as _mixed_dense
from test_native_step_mixed import check_native_equals_python

_EPOCH_STEPS = native_step.epoch_steps  # the real one (the tests patch the module's name)

# every activation of the registry whose gradient needs the forward input, and gelu's tanh form
X_ACTS = sorted({row["canonical"] for row in ops.REGISTRY.values() if row["grad_needs"] == "x"})
ACTS = X_ACTS + ["gelu_tanh"]


def _act(name):
    return fastnn.activations.GELU(approximate=True) if name == "gelu_tanh" else name


def _run(monkeypatch, mode, build, loss, opt, y, dtype, chunk_rows=48, **kw):
    """(state, history, native steps) and the native epochs run; mode: "python"
    (FASTNN_NATIVE_STEP=0), "batch" (the native step batch by batch) or "epoch" (run_batches)."""
    monkeypatch.setattr(native_step, "CHUNK_ROWS", chunk_rows)
    calls = {"n": 0}

    def epoch_steps(*a):
        run = _EPOCH_STEPS(*a) if mode == "epoch" else None
        calls["n"] += run is not None
        return run
    monkeypatch.setattr(native_step, "epoch_steps", epoch_steps)
    return _train(monkeypatch, mode != "python", build, loss, opt, y, dtype, **kw), calls["n"]


def _same(a, b):
    assert sorted(a[0]) == sorted(b[0])
    for k in a[0]:
        np.testing.assert_array_equal(a[0][k], b[0][k], err_msg=k)  # bitwise (NaN equal to NaN)
    assert a[1] == b[1]  # history


def _all_three(monkeypatch, build, loss, opt, y, dtype, steps=12, **kw):
    """The Python step, the native step batch by batch and the native epoch: bitwise the same,
    every step of the native ones native (90 rows, batch 16: 6 steps an epoch, 2 epochs)."""
    y = y.astype(dtype) if y.dtype.kind == "f" else y
    ref, _ = _run(monkeypatch, "python", build, loss, opt, y, dtype, **kw)
    batch, n_batch = _run(monkeypatch, "batch", build, loss, opt, y, dtype, **kw)
    epoch, n_epoch = _run(monkeypatch, "epoch", build, loss, opt, y, dtype, **kw)
    assert ref[2] == 0 and batch[2] == epoch[2] == steps
    assert n_batch == 0 and n_epoch == 2  # one native epoch per epoch
    _same(batch, ref)
    _same(epoch, ref)
    assert np.isfinite(ref[1]["loss"]).all()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("act", ACTS)
def test_x_needing_activation_runs_natively_bitwise(monkeypatch, isa_threads, dtype, act):
    def build():
        return [_dense(16, 0, activation=_act(act)), _dense(12, 1, activation=_act(act)),
                _dense(4, 2, activation=_act(act))]  # the last one: logits (its activation skipped)
    _all_three(monkeypatch, build, fastnn.losses.SparseCategoricalCrossentropy(from_logits=True),
               lambda: O.Adam(1e-2), _IDS, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("act", ["gelu", "swish", "softsign"])
def test_x_needing_activation_last_layer_under_mse(monkeypatch, threads, dtype, act):
    """The loss reads the activation node's output (the layer's y, not z)."""
    _all_three(monkeypatch, lambda: [_dense(12, 0, activation="tanh"), _dense(3, 1, activation=act)],
               "mse", lambda: O.SGD(0.1, momentum=0.9), _ROWS, dtype)


@pytest.mark.parametrize("batch_size", [1, 7, 90, 200])
def test_x_needing_activation_any_batch_size(monkeypatch, threads, batch_size):
    def build():
        return [_dense(16, 0, activation="gelu"), _dense(8, 1, activation="swish"), _dense(4, 2, activation="softmax")]
    steps = 2 * -(-90 // batch_size)  # 2 epochs of 90 rows (a batch over 90 takes the 90)
    _all_three(monkeypatch, build, "sparse_categorical_crossentropy", lambda: O.Adam(1e-2), _IDS, "float32",
               steps=steps, batch_size=batch_size)


def _mix():
    return [_dense(16, 0, activation="gelu"), L.Dropout(0.3, seed=5), L.BatchNormalization(),
            _dense(12, 1, activation="relu"),  # its dx product fuses relu' of nothing below (BN)
            _dense(12, 3, activation="swish", use_bias=False), _dense(10, 4, activation="sigmoid"),
            _dense(8, 5, activation="mish"),  # above sigmoid: its dx product takes sigmoid' (fused)
            L.Activation("softplus"), _dense(6, 6, activation="relu"),
            _dense(3, 2, activation="gelu")]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_mix_with_dropout_batchnorm_relu_and_gelu_last_under_mse(monkeypatch, threads, dtype):
    _all_three(monkeypatch, _mix, "mse", lambda: O.AdamW(1e-2, weight_decay=0.01), _ROWS, dtype)


def _frozen(layer):
    layer.trainable = False
    return layer


@pytest.mark.parametrize("frozen", [0, 1])
def test_frozen_x_needing_layer(monkeypatch, threads, frozen):
    """Frozen first layer: the backward stops above it (its activation node too); frozen in the
    middle: its activation gradient and dx, no weight gradients."""
    def build():
        layers = [_dense(16, 0, activation="gelu"), _dense(12, 1, activation="swish"), _dense(4, 2)]
        _frozen(layers[frozen])
        return layers
    _all_three(monkeypatch, build, fastnn.losses.SparseCategoricalCrossentropy(from_logits=True),
               lambda: O.Adam(1e-2), _IDS, "float32")


def test_activation_changed_to_and_from_x_needing_mid_epoch(monkeypatch):
    """A callback switching a Dense layer's activation between relu (fused) and gelu (two
    nodes) rebuilds the plan: still bitwise the Python step, every step native."""
    class Change(fastnn.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch in (2, 4):
                self.model.layers[0].activation = fastnn.activations.get("gelu" if batch == 2 else "relu")

    def build():
        return [_dense(16, 0, activation="relu"), _dense(8, 1, activation="gelu"), _dense(4, 2, activation="softmax")]
    y = _IDS
    ref = _train(monkeypatch, False, build, "sparse_categorical_crossentropy", lambda: O.Adam(1e-2), y, "float32",
                 callbacks=[Change()])
    nat = _train(monkeypatch, True, build, "sparse_categorical_crossentropy", lambda: O.Adam(1e-2), y, "float32",
                 callbacks=[Change()])
    assert ref[2] == 0 and nat[2] == 12
    _same(nat, ref)


MIXED_CASES = {
    # relu below gelu: stored as bfloat16 bits (gelu's product reads them); gelu's own output float32
    "relu_gelu_logits": (lambda: [_mixed_dense(16, 0, activation="relu"), _mixed_dense(12, 1, activation="gelu"),
                                  _mixed_dense(4, 2)],
                         fastnn.losses.SparseCategoricalCrossentropy(from_logits=True), lambda: O.Adam(1e-2), _IDS,
                         True),
    "swish_gelu_last_mse": (lambda: [_mixed_dense(16, 0, activation="swish"), L.Dropout(0.25, seed=3),
                                     _mixed_dense(12, 1, activation="tanh"), _mixed_dense(3, 2, activation="gelu")],
                            "mse", lambda: O.SGD(0.05, momentum=0.9), _ROWS, True),
}


@pytest.mark.parametrize("storage", [True, False], ids=["bf16_storage", "f32_storage"])
@pytest.mark.parametrize("case", list(MIXED_CASES))
def test_mixed_bfloat16_with_x_needing_activations(monkeypatch, bf16_path, threads, case, storage):
    nat, _ = check_native_equals_python(monkeypatch, MIXED_CASES[case], storage)
    assert np.isfinite(nat[1]["loss"]).all()
