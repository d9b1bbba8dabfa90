"""The Keras 3 activations beyond the classic set, end to end (csrc/fastnn/eltwise/
more_acts_impl.h, python/fastnn/_reference_acts.py): relu6, hard_sigmoid, hard_silu (alias
hard_swish), softsign, exponential, mish, log_sigmoid, celu, hard_tanh, squareplus (b = 4 as the
registry alpha), sparse_plus. For each: the
registry row, the op vs its NumPy twin (float64 rtol 1e-12; float32 in ulp of the float64
twin on dense sweeps of [-30, 30] and special values, on every ISA path), the gradient
(from x, and from y where the registry allows it), the fused GEMM epilogues bitwise equal
to the unfused op, layers, a float64 gradient check, save/load, the native step, ONNX
export and real Keras 3 (JAX backend) on the same weights.

float32 bounds (ULP below, ulp of the float64 result where it is >= FLT_MIN), measured on
the sweeps below with margin: the piecewise-linear ones are one or two roundings; softsign
two; exponential, log_sigmoid, celu and mish carry exp's error (the vector exp, ~1-2 ulp)
through a few operations."""
import functools
import os

import numpy as np
import pytest

import fastnn
from fastnn import ops, reference as ref
from fastnn import layers as L
from test_activations import ulp_error
from test_gradcheck_model import check as gradcheck_model

F32 = np.float32
NAMES = ("relu6", "hard_sigmoid", "hard_silu", "softsign", "exponential", "mish", "log_sigmoid", "celu",
         "hard_tanh", "squareplus", "sparse_plus")
NEED_X = ("hard_silu", "softsign", "mish", "log_sigmoid")
# max measured over every 13th float32 of +-[2^-30, 30] (scalar / avx2 / avx512): hard_sigmoid
# 1.0, hard_silu 1.87, softsign 1.49, exponential 1.21 / 0.91 / 0.91, celu 1.36 / 1.24 / 1.24,
# log_sigmoid 3.67 (as softplus: -softplus(-x)), mish 4.70 / 4.28 / 4.28, squareplus 2.75, sparse_plus 1.91
ULP = {"relu6": 0, "hard_tanh": 0, "hard_sigmoid": 1, "hard_silu": 2, "softsign": 2, "exponential": 2,
       "mish": 6, "log_sigmoid": 4, "celu": 2, "squareplus": 3, "sparse_plus": 2}
SPECIAL = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e30, -1e30, 3.0, -3.0, 6.0, 1.0, -1.0, 100.0, -100.0])


def _x(shape, dtype, scale=3.0, seed=0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def _grad_kw(name, x, y):
    return {"x": x} if name in NEED_X else {"y": y}


def test_registry_rows():
    for name in NAMES:
        want = {"canonical": name, "alpha": {"celu": 1.0, "squareplus": 4.0}.get(name),
                "grad_needs": "x" if name in NEED_X else "x_or_y"}
        assert ops.REGISTRY[name] == want, name
    assert ops.REGISTRY["hard_swish"] == ops.REGISTRY["hard_silu"]


@pytest.mark.parametrize("name", NAMES)
def test_float64_forward_and_gradient_equal_twin(isa, name):
    x = np.concatenate([_x(3001, np.float64, 5.0), np.linspace(-30, 30, 2001), SPECIAL])
    y, r = ops.activation(name, x), ref.activation(name, x)
    np.testing.assert_allclose(y, r, rtol=1e-12, atol=1e-300)
    dy = _x(x.shape, np.float64, 1.0, 1)
    got = ops.activation_grad(name, dy, x=x)
    np.testing.assert_allclose(got, ref.activation_grad(name, dy, x=x), rtol=1e-12, atol=1e-300)
    if name not in NEED_X:  # from y alone: the same numbers (celu: y / alpha + 1 = exp(x / alpha))
        fin = np.isfinite(x) & (np.abs(x) < 30)
        np.testing.assert_allclose(ops.activation_grad(name, dy[fin], y=y[fin]), got[fin], rtol=1e-12, atol=1e-15)
        np.testing.assert_array_equal(ops.activation_grad(name, dy, y=y), ref.activation_grad(name, dy, y=y))
    else:
        with pytest.raises(ValueError, match=f"x: activation '{name}' needs the forward input x"):
            ops.activation_grad(name, dy, y=y)


def _sweep():
    """Every 127th float32 in [2^-30, 30] by bit pattern (all exponents), both signs, and the kinks."""
    a, b = np.array([2.0 ** -30, 30.0], F32).view(np.uint32)
    pos = np.arange(a, b + 1, 127, dtype=np.uint32).view(F32)
    k = np.array([1, 3, 6], F32)
    kinks = np.concatenate([k, np.nextafter(k, F32(np.inf)), np.nextafter(k, F32(0))])
    return np.concatenate([pos, -pos, kinks, -kinks])


SWEEP = _sweep()


@functools.lru_cache(maxsize=None)
def _sweep_twin(name):
    return ref.activation(name, SWEEP.astype(np.float64))


@pytest.mark.parametrize("name", NAMES)
def test_float32_within_ulp_of_float64_twin(isa, name):
    y = ops.activation(name, SWEEP)
    assert y.dtype == F32
    assert ulp_error(y, _sweep_twin(name)) <= ULP[name]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_special_values_as_the_twin(isa, name, dtype):
    x = SPECIAL.astype(dtype)
    with np.errstate(over="ignore"):  # exp(100) as float32: inf
        y, r = ops.activation(name, x), ref.activation(name, SPECIAL).astype(dtype)
    assert np.isnan(y[4]) and np.isnan(r[4])
    tiny = np.finfo(dtype).tiny  # float32 results below FLT_MIN flush to 0
    np.testing.assert_allclose(y, r, rtol=4e-7 if dtype == F32 else 1e-15, atol=tiny)  # NaN == NaN here
    # from y where the registry allows it; the twin given the same operand (from y, celu's
    # y / alpha + 1 cancels for x << 0: 0 at x = -100, exp(-100) from x)
    kw = _grad_kw(name, x, y)
    d = ops.activation_grad(name, np.ones_like(x), **kw)
    rd = ref.activation_grad(name, np.ones_like(SPECIAL), **{k: v.astype(np.float64) for k, v in kw.items()})
    rd = rd.astype(dtype)
    assert np.isnan(d[4])
    np.testing.assert_allclose(d, rd, rtol=4e-7 if dtype == F32 else 1e-15, atol=tiny)


@pytest.mark.parametrize("name", NAMES)
def test_float32_gradient_close_to_float64_twin(isa, name):
    x = _x((64, 129), F32, 4.0)
    y = ops.activation(name, x)
    dy = np.ones_like(x)
    want = ref.activation_grad(name, dy.astype(np.float64), x=x.astype(np.float64))
    np.testing.assert_allclose(ops.activation_grad(name, dy, x=x), want, rtol=3e-6, atol=3e-6)
    if name not in NEED_X:
        np.testing.assert_allclose(ops.activation_grad(name, dy, y=y), want, rtol=3e-6, atol=3e-6)


@pytest.mark.parametrize("n", [1, 5, 8, 15, 16, 17, 31, 33])
def test_float32_tails_match_whole_vectors(isa, n):
    long = _x(4096, F32, 8.0, n)
    long[::17] = np.nan
    long[5::19] = -np.inf
    for name in NAMES:
        want = ops.activation(name, long)
        dwant = ops.activation_grad(name, np.ones_like(long), x=long)
        for start in (0, 1, 100):
            xs = long[start:start + n].copy()
            np.testing.assert_array_equal(ops.activation(name, xs).view(np.uint32),
                                          want[start:start + n].view(np.uint32), err_msg=name)
            np.testing.assert_array_equal(ops.activation_grad(name, np.ones_like(xs), x=xs).view(np.uint32),
                                          dwant[start:start + n].view(np.uint32), err_msg=name)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 7, 5), (64, 100, 48)])
def test_fused_gemm_equals_unfused(isa, name, dtype, shape):
    m, k, n = shape
    x, w, b = _x((m, k), dtype, 1.0, 1), _x((k, n), dtype, 0.5, 2), _x((n,), dtype, 1.0, 3)
    fused = ops.matmul(x, w, bias=b, activation=name)
    np.testing.assert_array_equal(fused, ops.activation(name, ops.matmul(x, w, bias=b)))
    dy, w2, z = _x((m, n), dtype, 1.0, 4), _x((k, n), dtype, 0.5, 5), _x((m, k), dtype, 2.0, 6)
    kw = _grad_kw(name, z, ops.activation(name, z))
    fused = ops.matmul_act_grad(dy, w2, trans_b=True, activation=name, **kw)
    np.testing.assert_array_equal(fused, ops.activation_grad(name, ops.matmul(dy, w2, trans_b=True), **kw))


@pytest.mark.parametrize("name", NAMES)
def test_bf16_gemm_epilogue_equals_unfused(bf16_path, name):
    x, w, b = _x((40, 70), F32, 1.0, 7), _x((70, 50), F32, 0.3, 8), _x((50,), F32, 1.0, 9)
    fused = ops.matmul_bf16(x, w, bias=b, activation=name)
    np.testing.assert_array_equal(fused, ops.activation(name, ops.matmul_bf16(x, w, bias=b)))


def test_celu_alpha():
    x = np.linspace(-6, 6, 241)
    a = fastnn.activations.celu
    np.testing.assert_allclose(a(x, alpha=0.5), np.where(x > 0, x, 0.5 * np.expm1(x / 0.5)), rtol=1e-14)
    np.testing.assert_allclose(a(x), np.where(x > 0, x, np.expm1(x)), rtol=1e-14)
    w = _x((6, 5), F32)
    out = np.full((4, 5), 7.0, F32)
    with pytest.raises(ValueError, match="alpha: celu's alpha divides x"):
        fastnn.activations.ActivationFunction("celu", alpha=0.0)
    with pytest.raises(ValueError, match="alpha: celu's alpha divides x"):
        ops.activation("celu", x, alpha=0.0)
    with pytest.raises(ValueError, match="activation_alpha: celu's alpha divides x"):
        ops.matmul(_x((4, 6), F32), w, out=out, activation="celu", activation_alpha=0.0)
    assert np.all(out == 7.0)
    with pytest.raises(ValueError, match="alpha: celu's alpha divides x"):
        ref.activation("celu", x, alpha=0.0)


def test_keras_formulas_and_functions():
    x = np.linspace(-8, 8, 321)
    A = fastnn.activations
    sp = np.log1p(np.exp(x))
    want = {"relu6": np.clip(x, 0, 6), "hard_sigmoid": np.clip(x + 3, 0, 6) / 6,
            "hard_silu": x * np.clip(x + 3, 0, 6) / 6, "softsign": x / (1 + np.abs(x)), "exponential": np.exp(x),
            "mish": x * np.tanh(sp), "log_sigmoid": -np.log1p(np.exp(-x)), "celu": np.where(x > 0, x, np.expm1(x)),
            "hard_tanh": np.clip(x, -1, 1), "squareplus": (x + np.sqrt(x * x + 4)) / 2,
            "sparse_plus": np.where(x <= -1, 0, np.where(x >= 1, x, (x + 1) ** 2 / 4))}
    for name in NAMES:
        np.testing.assert_allclose(getattr(A, name)(x), want[name], rtol=1e-13, atol=1e-15, err_msg=name)
        assert A.get(getattr(A, name)).name == name and A.get(name).name == name
    assert A.hard_swish is A.hard_silu and A.get("hard_swish").name == "hard_silu"


def test_squareplus_b():
    x = np.linspace(-6, 6, 241)
    A = fastnn.activations
    np.testing.assert_allclose(A.squareplus(x, b=1.0), (x + np.sqrt(x * x + 1)) / 2, rtol=1e-14)
    act = A.get(functools.partial(A.squareplus, b=1.0))
    assert act.name == "squareplus" and act.alpha == 1.0 and act.get_config() == {"name": "squareplus", "alpha": 1.0}
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match="alpha: squareplus's alpha is its b, expected b > 0"):
            A.ActivationFunction("squareplus", alpha=bad)
        with pytest.raises(ValueError, match="alpha: squareplus's alpha is its b, expected b > 0"):
            ops.activation("squareplus", x, alpha=bad)
        with pytest.raises(ValueError, match="alpha: squareplus's alpha is its b, expected b > 0"):
            ref.activation("squareplus", x, alpha=bad)
    # x << 0: b / (2 (s - x)), no cancellation (x + s would give 0 or noise in float32)
    np.testing.assert_allclose(ops.activation("squareplus", np.array([-1e4, -1e20], F32)), [1e-4, 1e-20], rtol=1e-6)


def _dense_model(activation, dtype="float32", units=16):
    fastnn.set_random_seed(3)
    return fastnn.Sequential([L.Input((6,)), L.Dense(units, activation=activation), L.Dense(3)], dtype=dtype)


@pytest.mark.parametrize("name", NAMES)
def test_layers_and_save_load(tmp_path, name):
    m = _dense_model(name)
    x = _x((9, 6), F32, 1.0, 10)
    z = ops.matmul(x, m.layers[0].vars["kernel"], bias=m.layers[0].vars["bias"])
    np.testing.assert_array_equal(m.layers[0](x), ops.activation(name, z))
    np.testing.assert_array_equal(L.Activation(name)(z), m.layers[0](x))
    m.save(tmp_path / "m.npz")
    back = fastnn.load_model(tmp_path / "m.npz")
    assert back.layers[0].activation == m.layers[0].activation
    np.testing.assert_array_equal(back.predict(x), m.predict(x))


@pytest.mark.parametrize("name", NAMES)
def test_dense_and_activation_float64_gradient_check(name):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 5)), rng.integers(0, 3, 7)
    fastnn.set_random_seed(1)
    m = fastnn.Sequential([L.Input(5), L.Dense(6, activation=name), L.Dense(6), L.Activation(name),
                           L.Dense(3, activation="softmax")], dtype="float64")
    gradcheck_model(m, x, y, "sparse_categorical_crossentropy")  # relative error < 1e-7


@pytest.mark.parametrize("name", ["relu6", "mish", "celu", "hard_silu"])
def test_native_step_bitwise_equal_to_python_step(monkeypatch, name):
    from test_native_step import _IDS, _both, _dense
    from fastnn import optimizers as O
    native = _both(monkeypatch, lambda: [_dense(16, 0), L.Activation(name), _dense(4, 1, activation="softmax")],
                   "sparse_categorical_crossentropy", lambda: O.Adam(1e-2), _IDS, "float32")
    assert native > 0


@pytest.mark.parametrize("name", NAMES)
def test_predictions_equal_keras(name):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("needs KERAS_BACKEND=jax")
    m = _dense_model(name, units=32)
    x = _x((50, 6), F32, 2.0, 11)
    k = keras.Sequential([keras.Input((6,)), keras.layers.Dense(32, activation=name), keras.layers.Dense(3)])
    k.set_weights(m.get_weights())
    got, want = m.predict(x), np.asarray(k.predict(x, verbose=0))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    z = np.linspace(-30, 30, 6001, dtype=F32)
    kz = np.asarray(getattr(keras.activations, name)(z))
    np.testing.assert_allclose(ops.activation(name, z), kz, rtol=2e-6, atol=1e-6 * max(1.0, np.abs(kz).max()))


@pytest.mark.parametrize("name", NAMES + ("hard_swish",))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_onnx_export_matches(tmp_path, name, dtype):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from fastnn.export import export_onnx
    m = fastnn.Sequential([L.Input((6,)), L.Dense(16, activation=name), L.Activation(name), L.Dense(3)], dtype=dtype)
    x = _x((20, 6), dtype, 2.0, 12)
    path = export_onnx(m, tmp_path / "m.onnx")
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(["output"], {"input": x})[0]
    want = m.predict(x)
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())
