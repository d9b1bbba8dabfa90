"""mixed_bfloat16: activations between mixed Dense layers stored in bfloat16 (layers/_mixed.py).

A mixed Dense layer whose output is read only by mixed Dense layers stores it as
bfloat16 bits (uint16) while training; its readers take it as their bf16 operand.
The forward numbers are those of float32 storage bit for bit (the readers round
while packing anyway); relu/leaky_relu gradients are exact (sign of y), the other
activations take their derivative from the rounded y. Every value the user sees
stays float32. These tests run the Python step. ``storage_off`` builds the control: the same model with the plan
cleared (float32 storage, i.e. the code before bfloat16 storage).
"""
import numpy as np
import pytest

import fastnn
import fastnn.reference as ref
from fastnn.layers import Activation, Add, Dense, Dropout, Input

MIXED = "mixed_bfloat16"


@pytest.fixture(autouse=True)
def python_step(monkeypatch):
    """The Python step, which keeps each layer's _y to look at (the native step stores the
    same way: tests/test_native_step_mixed.py)."""
    monkeypatch.setenv("FASTNN_NATIVE_STEP", "0")


def _mlp(act, policy=MIXED, widths=(48, 32), seed=0):
    fastnn.utils.set_random_seed(seed)
    layers = [Input(20)] + [Dense(w, activation=act, dtype=policy) for w in widths]
    m = fastnn.Sequential(layers + [Dense(5, activation="softmax", dtype=policy)])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    m.build((20,))
    return m


def storage_off(m):
    for layer in m.layers:
        layer._bf16_readers = ()
    return m


def _problem(seed=0, n=512):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 20)).astype(np.float32)
    return x, np.argmax(x[:, :5] + 0.5 * x[:, 5:10], axis=1)


def _fit(m, epochs=4):
    x, y = _problem()
    return np.array(m.fit(x, y, batch_size=64, epochs=epochs, shuffle=False, verbose=0).history["loss"])


def flags(m):
    return [bool(layer._bf16_readers) for layer in m.layers]


# ---------------------------------------------------------------- the plan
def test_plan_stores_dense_to_dense_values_only():
    assert flags(_mlp("relu")) == [True, True, False]  # the output layer is float32
    fastnn.utils.set_random_seed(0)
    m = fastnn.Sequential([Input(20), Dense(8, activation="relu", dtype=MIXED), Dropout(0.1),
                           Dense(8, dtype=MIXED), Activation("relu"), Dense(4, dtype=MIXED),
                           Dense(2, activation="softmax", dtype=MIXED)])
    m.build((20,))
    assert flags(m) == [False, False, False, False, True, False]


def test_plan_in_a_dag_skips_values_read_by_other_layers_outputs_and_shared_layers():
    x = Input(6)
    a = Dense(8, activation="relu", dtype=MIXED)
    h = a(x)
    two = Dense(8, activation="relu", dtype=MIXED)        # read by two Dense layers: stored bf16
    t = two(h)
    p, q = Dense(8, dtype=MIXED)(t), Dense(8, dtype=MIXED)(t)
    s = Add()([p, q])                                       # p, q read by Add: float32
    shared = Dense(8, activation="relu", dtype=MIXED)      # a shared layer: float32
    u = shared(shared(s))
    out_also_read = Dense(3, dtype=MIXED)                  # a model output that a Dense reads too
    o1 = out_also_read(u)
    o2 = Dense(2, dtype=MIXED)(o1)
    m = fastnn.Model([x], [o1, o2])
    m.build()
    got = {layer.name: bool(layer._bf16_readers) for layer in m.layers}
    assert got[a.name] and got[two.name]
    assert not any(got[layer.name] for layer in (shared, out_also_read))
    assert not any(v for k, v in got.items() if k not in (a.name, two.name))


def test_float32_layers_never_store_bf16_and_a_policy_change_after_build_is_seen():
    m = _mlp("relu", policy="float32")
    x, y = _problem(n=64)
    m._forward(x, True, True)  # the training forward (fit runs the native step here)
    assert all(layer._y.dtype == np.float32 for layer in m.layers)
    m = _mlp("relu")
    m.fit(x, y, batch_size=64, epochs=1, verbose=0)
    assert [layer._y.dtype for layer in m.layers] == [np.uint16, np.uint16, np.float32]
    m.layers[1].dtype_policy = "float32"  # reader of layer 0 now float32: layer 0 stores float32
    m.fit(x, y, batch_size=64, epochs=1, verbose=0)
    assert [layer._y.dtype for layer in m.layers] == [np.float32, np.float32, np.float32]
    m = _mlp("swish")  # its gradient needs the input z: not fused, stored float32
    m._forward(x, True, True)
    assert flags(m) == [True, True, False] and all(layer._y.dtype == np.float32 for layer in m.layers)


# ------------------------------------------------------- numbers and parity
@pytest.mark.parametrize("act", ["relu", "leaky_relu"])
def test_relu_training_is_bitwise_the_float32_storage(bf16_path, act):
    a, b = _mlp(act), storage_off(_mlp(act))
    la, lb = _fit(a), _fit(b)
    assert la[-1] < 0.9 * la[0]  # it learns
    np.testing.assert_array_equal(la, lb)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert a.layers[0]._y.dtype == np.uint16 and b.layers[0]._y.dtype == np.float32


@pytest.mark.parametrize("act", ["tanh", "sigmoid"])
def test_other_activations_track_float32_storage_and_float32(bf16_path, act):
    l16 = _fit(_mlp(act), epochs=6)
    l_off = _fit(storage_off(_mlp(act)), epochs=6)
    l32 = _fit(_mlp(act, policy="float32"), epochs=6)
    assert not np.array_equal(l16, l_off)  # the derivative really comes from the rounded y
    np.testing.assert_allclose(l16, l_off, rtol=0.01, atol=0.005)
    # the band of test_mixed_precision: 3% relative + 0.01 absolute per epoch
    np.testing.assert_allclose(l16, l32, rtol=0.03, atol=0.01)


@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_forward_and_gradients_equal_the_numpy_twins(bf16_path, act):
    m = _mlp(act, widths=(24,))
    x, _ = _problem(n=33)
    (W1, b1, W2, b2) = m.get_weights()
    logits = m._forward(x, True, True)
    l1 = m.layers[0]
    y16 = l1._y
    assert y16.dtype == np.uint16 and logits.dtype == np.float32
    want16 = ref.matmul_bf16(x, W1, bias=b1, activation=act, out=np.empty((33, 24), np.uint16))
    # float32 accumulation order may flip the last bf16 bit of a few values
    y, want_y = ref.bfloat16_unpack(y16), ref.bfloat16_unpack(want16)
    assert np.all(np.abs(y - want_y) <= 2.0 ** -7 * np.abs(want_y) + 1e-6)
    z2 = ref.matmul_bf16(y16, W2, bias=b2)  # the reader on the bits: twin of the reader on the same bits
    S = np.abs(y) @ np.abs(W2) + np.abs(b2)
    assert np.all(np.abs(logits - z2) <= 24 * 2.0 ** -8 * S + 1e-6)
    rng = np.random.default_rng(1)
    d = rng.standard_normal(logits.shape).astype(np.float32)
    m.arena.grads.fill(0)
    m._backward(d.copy())
    gW2, gb2 = m.layers[1].grads["kernel"], m.layers[1].grads["bias"]
    np.testing.assert_allclose(gW2, ref.matmul_bf16(y16, d, trans_a=True), rtol=1e-4, atol=1e-4 * np.abs(d).sum())
    np.testing.assert_allclose(gb2, d.sum(0), rtol=1e-5, atol=1e-5)
    dy = ref.matmul_bf16(d, W2, trans_b=True)
    dz = ref.activation_grad(act, dy, y=y)  # from the stored (rounded) y
    np.testing.assert_allclose(l1.grads["kernel"], ref.matmul_bf16(x, dz, trans_a=True), rtol=1e-3,
                               atol=1e-3 * np.abs(dz).sum(0).max())
    assert all(np.isfinite(g).all() and np.any(g != 0) for g in (gW2, l1.grads["kernel"], l1.grads["bias"]))


# ------------------------------------------------------------ what users see
def test_user_visible_values_are_float32_and_memory_of_saved_activations_halves(tmp_path):
    m = _mlp("relu")
    _fit(m, epochs=1)
    x, _ = _problem(n=64)
    p = m.predict(x, verbose=0)
    assert p.dtype == np.float32
    outs = m.layer_outputs(x, training=True)
    assert all(v.dtype == np.float32 for v in outs.values())
    outs_eval = m.layer_outputs(x)
    for name in outs:  # training mode == inference for Dense: the same float32 values, bf16-rounded
        np.testing.assert_array_equal(outs[name], ref.bfloat16_round(outs_eval[name]) if name != m.layers[-1].name
                                      else outs_eval[name])
    stats = fastnn.monitor.activation_stats(m, x, training=True)
    assert set(stats) == {layer.name for layer in m.layers}
    # saved activations after a training step: 2 bytes per stored value
    assert m.layers[0]._y.nbytes == 64 * 48 * 2 and m.layers[1]._x is m.layers[0]._y


def test_mixed_model_saves_float32_loads_and_predicts_in_both_policies(tmp_path):
    m = _mlp("relu")
    _fit(m, epochs=2)
    x, _ = _problem(n=100)
    p16 = m.predict(x, verbose=0)
    f = str(tmp_path / "m.npz")
    m.save(f)
    loaded = fastnn.models.load_model(f)
    assert all(w.dtype == np.float32 for w in loaded.get_weights())
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), p16)
    assert flags(loaded) == [True, True, False]
    for layer in loaded.layers:
        layer.dtype_policy = "float32"
    twin = _mlp("relu", policy="float32")
    twin.set_weights(m.get_weights())
    np.testing.assert_allclose(loaded.predict(x, verbose=0), twin.predict(x, verbose=0), rtol=1e-6, atol=1e-7)
    _fit(loaded, epochs=1)  # and trains in float32 (nothing stored in bf16)
    loaded._forward(x, True, True)
    assert all(layer._y.dtype == np.float32 for layer in loaded.layers)
