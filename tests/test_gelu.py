"""gelu end to end, as keras.activations.gelu(x, approximate=False): the op and its NumPy
twin (float32, float64), the approximate flag as the registry's alpha (0 or 1, nothing
else), the fused GEMM epilogues, layers and configs, a float64 gradient check, the native
step, ONNX export and real Keras 3 on the same weights.

Tolerances: float64 op vs twin rtol 1e-12 (both libm erfc / exp, the twin by other
formulas; the rounding of x/sqrt2 is amplified by x^2 in the far tail: x = -38: 2e-13); float32 gradient vs the float64 twin rtol = atol = 3e-6 (as for the other
activations, tests/test_activations.py); float32 values: ulp bounds in test_gelu_erf.py."""
import functools
import os

import numpy as np
import pytest

import fastnn
from fastnn import _core, ops, reference as ref
from fastnn import layers as L
from fastnn.activations import GELU, gelu
from test_gradcheck_model import check as gradcheck_model

RNG = np.random.default_rng(0)


def _x(shape, dtype, scale=3.0, seed=0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def test_registry_row():
    row = ops.REGISTRY["gelu"]
    assert row == {"canonical": "gelu", "alpha": 0.0, "grad_needs": "x"}


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_float64_forward_and_gradient_equal_twin(isa, alpha):
    x = np.concatenate([_x(3001, np.float64), [0.0, -0.0, 30.0, -30.0, -38.0, 1e5, -1e5]])
    np.testing.assert_allclose(ops.activation("gelu", x, alpha=alpha), ref.activation("gelu", x, alpha=alpha),
                               rtol=1e-12, atol=1e-300)
    dy = _x(x.shape, np.float64, 1.0, 1)
    np.testing.assert_allclose(ops.activation_grad("gelu", dy, x=x, alpha=alpha),
                               ref.activation_grad("gelu", dy, x=x, alpha=alpha), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_float32_gradient_close_to_float64_twin(isa, alpha):
    x = _x((64, 129), np.float32)
    dy = np.ones_like(x)
    np.testing.assert_allclose(ops.activation_grad("gelu", dy, x=x, alpha=alpha),
                               ref.activation_grad("gelu", dy.astype(np.float64), x=x.astype(np.float64), alpha=alpha),
                               rtol=3e-6, atol=3e-6)


def test_exact_and_approximate_are_the_keras_formulas():
    x = np.linspace(-5, 5, 101)
    from math import erf, pi, sqrt, tanh
    exact = [0.5 * v * (1 + erf(v / sqrt(2))) for v in x]
    approx = [0.5 * v * (1 + tanh(sqrt(2 / pi) * (v + 0.044715 * v ** 3))) for v in x]
    np.testing.assert_allclose(gelu(x), exact, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(gelu(x, approximate=True), approx, rtol=1e-14, atol=1e-15)
    assert np.max(np.abs(gelu(x) - gelu(x, approximate=True))) > 1e-4  # two different functions


@pytest.mark.parametrize("bad", [0.5, 2.0, -1.0])
def test_alpha_other_than_0_or_1_is_refused_everywhere(bad):
    x = _x((4, 6), np.float32)
    w = _x((6, 5), np.float32)
    out = np.full((4, 5), 7.0, np.float32)
    with pytest.raises(ValueError, match="alpha: gelu's alpha is its approximate flag"):
        ops.activation("gelu", x, alpha=bad)
    with pytest.raises(ValueError, match="alpha: gelu's alpha is its approximate flag"):
        ops.activation_grad("gelu", x, x=x, alpha=bad)
    with pytest.raises(ValueError, match="activation_alpha: gelu's alpha"):
        ops.matmul(x, w, out=out, activation="gelu", activation_alpha=bad)
    with pytest.raises(ValueError, match="activation_alpha: gelu's alpha"):
        ops.matmul_act_grad(out, w, trans_b=True, activation="gelu", x=x, activation_alpha=bad, out=x.copy())
    assert np.all(out == 7.0)  # untouched
    with pytest.raises(ValueError, match="alpha: gelu's alpha"):
        ref.activation("gelu", x, alpha=bad)


def test_activation_objects_refuse_wrong_options():
    with pytest.raises(ValueError, match="alpha: activation 'gelu' takes no alpha"):
        fastnn.activations.ActivationFunction("gelu", alpha=1.0)
    with pytest.raises(TypeError, match="approximate: expected True or False, got str"):
        GELU(approximate="tanh")
    with pytest.raises(ValueError, match="approximate: only gelu takes it"):
        fastnn.activations.ActivationFunction("elu", approximate=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 7, 5), (64, 100, 48), (200, 33, 300), (1, 4, 1)])
@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_fused_gemm_forward_equals_unfused(isa, dtype, shape, alpha):
    m, k, n = shape
    x, w, b = _x((m, k), dtype, 1.0, 1), _x((k, n), dtype, 0.5, 2), _x((n,), dtype, 1.0, 3)
    fused = ops.matmul(x, w, bias=b, activation="gelu", activation_alpha=alpha)
    unfused = ops.activation("gelu", ops.matmul(x, w, bias=b), alpha=alpha)
    np.testing.assert_array_equal(fused, unfused)
    np.testing.assert_allclose(fused, ref.matmul(x, w, bias=b, activation="gelu", activation_alpha=alpha),
                               rtol=2e-4 if dtype == np.float32 else 1e-10, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 7, 5), (64, 100, 48), (200, 33, 300)])
@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_fused_matmul_act_grad_equals_unfused(isa, dtype, shape, alpha):
    m, k, n = shape
    dy, w, z = _x((m, n), dtype, 1.0, 4), _x((k, n), dtype, 0.5, 5), _x((m, k), dtype, 2.0, 6)
    fused = ops.matmul_act_grad(dy, w, trans_b=True, activation="gelu", x=z, activation_alpha=alpha)
    unfused = ops.activation_grad("gelu", ops.matmul(dy, w, trans_b=True), x=z, alpha=alpha)
    np.testing.assert_array_equal(fused, unfused)
    with pytest.raises(ValueError, match="x: activation 'gelu' needs the forward input x"):
        ops.matmul_act_grad(dy, w, trans_b=True, activation="gelu", y=z, activation_alpha=alpha)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_bf16_gemm_epilogue_equals_unfused(bf16_path, alpha):
    x, w, b = _x((40, 70), np.float32, 1.0, 7), _x((70, 50), np.float32, 0.3, 8), _x((50,), np.float32, 1.0, 9)
    fused = ops.matmul_bf16(x, w, bias=b, activation="gelu", activation_alpha=alpha)
    unfused = ops.activation("gelu", ops.matmul_bf16(x, w, bias=b), alpha=alpha)
    np.testing.assert_array_equal(fused, unfused)


def _dense_model(activation, dtype="float32", units=16):
    fastnn.set_random_seed(3)
    return fastnn.Sequential([L.Input((6,)), L.Dense(units, activation=activation), L.Dense(3)], dtype=dtype)


@pytest.mark.parametrize("spec,approximate", [
    ("gelu", False), ("GELU", False), (gelu, False), (GELU(), False), (GELU(approximate=True), True),
    (functools.partial(gelu, approximate=True), True), ({"name": "gelu", "approximate": True}, True)])
def test_the_ways_to_ask_for_gelu(spec, approximate):
    for layer in (L.Dense(4, activation=spec), L.Activation(spec)):
        act = layer.activation
        assert act.name == "gelu" and act.approximate is approximate and act.alpha == float(approximate)
        assert act.get_config() == {"name": "gelu", "approximate": approximate}


@pytest.mark.parametrize("approximate", [False, True])
def test_layers_compute_gelu_and_save_load(tmp_path, approximate):
    m = _dense_model(GELU(approximate))
    x = _x((9, 6), np.float32, 1.0, 10)
    z = ops.matmul(x, m.layers[0].vars["kernel"], bias=m.layers[0].vars["bias"])
    np.testing.assert_array_equal(m.layers[0](x), ops.activation("gelu", z, alpha=float(approximate)))
    np.testing.assert_array_equal(L.Activation(GELU(approximate))(z), m.layers[0](x))
    m.save(tmp_path / "m.npz")
    back = fastnn.load_model(tmp_path / "m.npz")
    assert back.layers[0].activation == m.layers[0].activation
    np.testing.assert_array_equal(back.predict(x), m.predict(x))
    cfg = L.Dense.from_config(m.layers[0].get_config())
    assert cfg.activation.approximate is approximate


@pytest.mark.parametrize("approximate", [False, True])
def test_dense_gelu_float64_gradient_check(approximate):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 5)), rng.integers(0, 3, 7)
    fastnn.set_random_seed(1)
    m = fastnn.Sequential([L.Input(5), L.Dense(6, activation=GELU(approximate)), L.Dense(6),
                           L.Activation(GELU(approximate)), L.Dense(3, activation="softmax")], dtype="float64")
    gradcheck_model(m, x, y, "sparse_categorical_crossentropy")  # relative error < 1e-7


@pytest.mark.parametrize("approximate", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_native_step_bitwise_equal_to_python_step(monkeypatch, approximate, dtype):
    """Activation(gelu) layers run in the native step (an activation node given x); so does
    a Dense(activation=gelu) (its product into z, then the activation node: test_native_step_acts)."""
    from test_native_step import _IDS, _both, _dense
    from fastnn import optimizers as O
    g = GELU(approximate)
    native = _both(monkeypatch, lambda: [_dense(16, 0), L.Activation(g), _dense(8, 1), L.Activation(g),
                                         _dense(4, 2, activation="softmax")],
                   "sparse_categorical_crossentropy", lambda: O.Adam(1e-2), _IDS, dtype)
    assert native > 0
    dense = _both(monkeypatch, lambda: [_dense(16, 0, activation=g), _dense(4, 1, activation="softmax")],
                  "sparse_categorical_crossentropy", lambda: O.Adam(1e-2), _IDS, dtype)
    assert dense == 12  # every step (2 epochs of 6 batches)


@pytest.mark.parametrize("approximate", [False, True])
def test_predictions_equal_keras(approximate):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("needs KERAS_BACKEND=jax")
    m = _dense_model(GELU(approximate), units=32)
    x = _x((50, 6), np.float32, 2.0, 11)
    act = functools.partial(keras.activations.gelu, approximate=approximate)
    k = keras.Sequential([keras.Input((6,)), keras.layers.Dense(32, activation=act), keras.layers.Dense(3)])
    k.set_weights(m.get_weights())
    got, want = m.predict(x), np.asarray(k.predict(x, verbose=0))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    # the activation alone on a wide range: Keras computes 1 + erf and 1 + tanh in float32, which
    # cancel for x << 0 (it gives -0 where gelu is -5e-7): an absolute tolerance of 1e-6
    z = np.linspace(-8, 8, 4001, dtype=np.float32)
    np.testing.assert_allclose(gelu(z, approximate=approximate),
                               np.asarray(keras.activations.gelu(z, approximate=approximate)), rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("approximate", [False, True])
def test_onnx_export_matches(tmp_path, approximate):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from fastnn.export import export_onnx
    m = fastnn.Sequential([L.Input((6,)), L.Dense(16, activation=GELU(approximate)), L.Activation(GELU(approximate)),
                           L.Dense(3)])
    x = _x((20, 6), np.float32, 2.0, 12)
    path = export_onnx(m, tmp_path / "m.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got, want = sess.run(["output"], {"input": x})[0], m.predict(x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_onnx_export_float64(tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from fastnn.export import export_onnx
    m = _dense_model(GELU(True), dtype="float64")
    x = _x((20, 6), np.float64, 2.0, 13)
    path = export_onnx(m, tmp_path / "m.onnx")
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(["output"], {"input": x})[0]
    np.testing.assert_allclose(got, m.predict(x), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="'gelu' \\(exact\\), which has no float64 ONNX export"):
        export_onnx(_dense_model("gelu", dtype="float64"), tmp_path / "e.onnx")
