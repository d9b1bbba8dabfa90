"""Keras 3's tanh_shrink, hard_shrink and soft_shrink end to end (csrc/fastnn/eltwise/
shrink_acts_impl.h, python/fastnn/_reference_acts.py, _export_acts.py): the registry rows,
the op against its NumPy twin on every ISA path (float64 rtol 1e-12, the shrinks bitwise;
float32 tanh_shrink in ulp of the float64 twin), sizes 0, 1, 15, 17 and 1000003, NaN and
inf, the gradient (from x, and from y for the shrinks), the fused GEMM epilogues (bfloat16
too), a float64 gradient check, save/load, the native step, real Keras 3 (JAX backend) and
ONNX export.
keras.activations.threshold(x, threshold, default_value) is not here: it has two
parameters, the registry one alpha.

tanh_shrink = x - tanh(x) cancels near 0 (x^3 / 3); the kernels use a polynomial for
|x| < 1.25 (tools/fit_tanh_shrink.py). float32 error in ulp of the exact result, measured
over every float32 of [1e-13, 3.4e38] (results below FLT_MIN not counted; the function is
odd): scalar 3.63, avx2 / avx512 2.17 (the vector paths' fused multiply-adds make x^3
exact). float64 against mpmath: 1 ulp (avx2 / avx512), 2 (scalar). Tested bounds: ULP
and ULP64 below."""
import functools

import numpy as np
import pytest

import fastnn
from fastnn import ops, reference as ref
from fastnn import layers as L
from test_activations import ulp_error
from test_gradcheck_model import check as gradcheck_model
from helpers import keras_on_jax

F32, F64 = np.float32, np.float64
NAMES = ("tanh_shrink", "hard_shrink", "soft_shrink")
SHRINKS = ("hard_shrink", "soft_shrink")
THRESHOLDS = (0.5, 0.0, 1.5, -0.25)  # 0.5: Keras's default; any real number is taken, as Keras
ULP = 4  # float32 tanh_shrink, every ISA (measured: 3.63 scalar, 2.17 avx2 / avx512)
ULP64 = 3  # float64 tanh_shrink against mpmath (measured: 2 scalar, 1 avx2 / avx512)
SPECIAL = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 0.5, -0.5, 1.5, -1.5, 0.25, -0.25, 1.25, -1.25,
                    1e-30, -1e-30, 1e30, -1e30, 3.0, -3.0, 100.0, -100.0])


def _x(shape, dtype, scale=3.0, seed=0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def _alphas(name):
    return (None,) if name == "tanh_shrink" else THRESHOLDS


def _points(dtype):
    """Random values, a grid, the special values and every threshold with its neighbours."""
    t = np.array(THRESHOLDS + tuple(-v for v in THRESHOLDS), dtype)
    near = np.concatenate([t, np.nextafter(t, dtype(np.inf)), np.nextafter(t, dtype(-np.inf))])
    return np.concatenate([_x(3001, dtype, 3.0), np.linspace(-30, 30, 2001, dtype=dtype), SPECIAL.astype(dtype),
                           near])


def test_registry_rows():
    assert ops.REGISTRY["tanh_shrink"] == {"canonical": "tanh_shrink", "alpha": None, "grad_needs": "x"}
    for name in SHRINKS:
        assert ops.REGISTRY[name] == {"canonical": name, "alpha": 0.5, "grad_needs": "x_or_y"}
    assert set(NAMES) <= set(fastnn.activations.KNOWN)


def test_keras_formulas_and_functions():
    A = fastnn.activations
    x = np.linspace(-3, 3, 241)  # steps of 0.025: the thresholds +-0.5 and +-1.5 are on it
    np.testing.assert_allclose(A.tanh_shrink(x), x - np.tanh(x), rtol=1e-13, atol=1e-15)
    for t in (0.5, 1.5, 0.0):
        np.testing.assert_array_equal(A.hard_shrink(x, threshold=t), np.where(np.abs(x) > t, x, 0.0))
        np.testing.assert_array_equal(A.soft_shrink(x, threshold=t),
                                      np.where(x > t, x - t, np.where(x < -t, x + t, 0.0)))
    np.testing.assert_array_equal(A.hard_shrink(x), A.hard_shrink(x, threshold=0.5))
    # Keras's docstring examples
    np.testing.assert_array_equal(A.soft_shrink(np.array([-1.0, 0.0, 1.0])), [-0.5, 0.0, 0.5])
    np.testing.assert_array_equal(A.hard_shrink(np.array([-0.5, 0.0, 1.0])), [0.0, 0.0, 1.0])
    for name in NAMES:
        f = getattr(A, name)
        assert A.get(f).name == name and A.get(name).name == name and A.get(name.upper()).name == name
    for name in SHRINKS:
        act = A.get(functools.partial(getattr(A, name), threshold=0.25))
        assert act == A.ActivationFunction(name, 0.25) and act.get_config() == {"name": name, "alpha": 0.25}
        assert A.get({"name": name, "alpha": 0.25}) == act
        with pytest.raises(TypeError):  # a keyword the function does not have
            A.get(functools.partial(getattr(A, name), alpha=0.25))
    assert A.get("tanh_shrink").get_config() == {"name": "tanh_shrink", "alpha": None}
    with pytest.raises(ValueError, match="alpha: activation 'tanh_shrink' takes no alpha"):
        A.ActivationFunction("tanh_shrink", 0.5)
    with pytest.raises(ValueError, match="finite"):
        ops.activation("hard_shrink", x, alpha=np.inf)


@pytest.mark.parametrize("name", NAMES)
def test_float64_forward_and_gradient_equal_twin(isa, name):
    x = _points(F64)
    dy = _x(x.shape, F64, 1.0, 1)
    for a in _alphas(name):
        y, r = ops.activation(name, x, alpha=a), ref.activation(name, x, alpha=a)
        if name == "tanh_shrink":
            np.testing.assert_allclose(y, r, rtol=1e-12, atol=1e-300)
        else:  # selections and one subtraction: the same bits
            np.testing.assert_array_equal(y, r)
        got = ops.activation_grad(name, dy, x=x, alpha=a)
        np.testing.assert_allclose(got, ref.activation_grad(name, dy, x=x, alpha=a), rtol=1e-12, atol=1e-300)
        if name in SHRINKS:  # from y: the same numbers, thresholds and their neighbours included
            np.testing.assert_array_equal(ops.activation_grad(name, dy, y=y, alpha=a), got)
            np.testing.assert_array_equal(ref.activation_grad(name, dy, y=r, alpha=a), got)
    if name == "tanh_shrink":
        with pytest.raises(ValueError, match="x: activation 'tanh_shrink' needs the forward input x"):
            ops.activation_grad(name, dy, y=y)


@pytest.mark.parametrize("name", SHRINKS)
def test_float32_shrinks_bitwise_equal_float32_twin(isa, name):
    x = _points(F32)
    for a in THRESHOLDS:
        y = ops.activation(name, x, alpha=a)
        assert y.dtype == F32
        np.testing.assert_array_equal(y, ref.activation(name, x, alpha=a))
        d = ops.activation_grad(name, np.ones_like(x), x=x, alpha=a)
        np.testing.assert_array_equal(d, ref.activation_grad(name, np.ones_like(x), x=x, alpha=a))
        np.testing.assert_array_equal(ops.activation_grad(name, np.ones_like(x), y=y, alpha=a), d)


def _sweep():
    """Every 251st float32 of [2^-42, 2^64] by bit pattern (all exponents), every float32 of
    [1.2, 1.3] (around the split at 1.25, where the measured maximum is), both signs."""
    a, b = np.array([2.0 ** -42, 2.0 ** 64], F32).view(np.uint32)
    c, d = np.array([1.2, 1.3], F32).view(np.uint32)
    pos = np.concatenate([np.arange(a, b, 251, dtype=np.uint32), np.arange(c, d, dtype=np.uint32)]).view(F32)
    return np.concatenate([pos, -pos])


def test_float32_tanh_shrink_within_ulp_of_float64_twin(isa):
    x = _sweep()
    y = ops.activation("tanh_shrink", x)
    assert y.dtype == F32
    assert ulp_error(y, ref.activation("tanh_shrink", x.astype(F64))) <= ULP
    # the smallest: x^3 / 3, no cancellation (Keras's float32 x - tanh(x) is 0 or noise there)
    tiny = np.array([1e-12, 1e-6, 1e-3, -1e-3], F32).astype(F64)
    np.testing.assert_allclose(ops.activation("tanh_shrink", tiny.astype(F32)), tiny ** 3 / 3 - 2 * tiny ** 5 / 15,
                               rtol=3e-7)


def test_twin_and_float64_tanh_shrink_against_mpmath(isa):
    mp = pytest.importorskip("mpmath")
    rng = np.random.default_rng(5)
    x = np.concatenate([np.exp(rng.uniform(np.log(1e-100), np.log(1e-3), 200)), rng.uniform(1e-3, 3, 600),
                        np.exp(rng.uniform(np.log(3), np.log(1e300), 100)), [1.25, np.nextafter(1.25, 0), 0.5]])
    x = np.concatenate([x, -x])

    def exact(v):
        with mp.workdps(int(max(0, -3 * np.log10(abs(v)))) + 40):  # the subtraction cancels digits
            return float(mp.mpf(v) - mp.tanh(mp.mpf(v)))
    r = np.array([exact(v) for v in x])
    y = ops.activation("tanh_shrink", x)
    assert np.max(np.abs(y - r) / np.spacing(np.abs(r))) <= ULP64
    # the twin: its series below 0.5, x - tanh(x) above (12 eps of cancellation at most)
    np.testing.assert_allclose(ref.activation("tanh_shrink", x), r, rtol=3e-15, atol=0)


@pytest.mark.parametrize("n", [0, 1, 15, 17, 1000003])
@pytest.mark.parametrize("dtype", [F32, F64])
def test_sizes_equal_twin(isa, n, dtype):
    x = _x(n, dtype, 2.0, n)
    x[::97] = 0.5
    x[1::89] = np.nan
    dy = _x(n, dtype, 1.0, n + 1)
    for name in NAMES:
        y = ops.activation(name, x)
        assert y.shape == (n,) and y.dtype == dtype
        kw = {"x": x} if name == "tanh_shrink" else {"y": y}
        d = ops.activation_grad(name, dy, **kw)
        if name == "tanh_shrink":
            r = ref.activation(name, x.astype(F64))
            if dtype == F32:
                assert ulp_error(y, r) <= ULP
            else:
                np.testing.assert_allclose(y, r, rtol=1e-12, atol=1e-300)
            np.testing.assert_allclose(d, ref.activation_grad(name, dy.astype(F64), x=x.astype(F64)),
                                       rtol=3e-6 if dtype == F32 else 1e-12, atol=1e-30)
        else:
            np.testing.assert_array_equal(y, ref.activation(name, x))
            np.testing.assert_array_equal(d, ref.activation_grad(name, dy, x=x))
        # in place: out is x (forward) and dy (gradient)
        xc, dc = x.copy(), dy.copy()
        ops.activation(name, xc, out=xc)
        np.testing.assert_array_equal(xc, y)
        ops.activation_grad(name, dc, **kw, out=dc)
        np.testing.assert_array_equal(dc, d)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [F32, F64])
def test_nan_and_inf(isa, name, dtype):
    """NaN gives NaN (forward and gradient, as the other activations; Keras's where() gives 0
    for the shrinks); +-inf gives +-inf with gradient 1."""
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0], dtype)
    y = ops.activation(name, x)
    assert np.isnan(y[0]) and y[1] == np.inf and y[2] == -np.inf and y[3] == 0 and y[4] == 0
    assert not np.signbit(y[3]) and not np.signbit(y[4])  # x - tanh(x) at -0 is +0
    d = ops.activation_grad(name, np.ones_like(x), x=x)
    assert np.isnan(d[0]) and d[1] == 1 and d[2] == 1 and d[3] == 0 and d[4] == 0
    r = ref.activation(name, x)
    np.testing.assert_array_equal(y, r)  # NaN equal to NaN here
    np.testing.assert_array_equal(d, ref.activation_grad(name, np.ones_like(x), x=x))
    if name in SHRINKS:
        np.testing.assert_array_equal(ops.activation_grad(name, np.ones_like(x), y=y), d)


@pytest.mark.parametrize("name", NAMES)
def test_float32_gradient_close_to_float64_twin(isa, name):
    x = _x((64, 129), F32, 4.0)
    dy = np.ones_like(x)
    want = ref.activation_grad(name, dy.astype(F64), x=x.astype(F64))
    np.testing.assert_allclose(ops.activation_grad(name, dy, x=x), want, rtol=3e-6, atol=3e-6)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("shape", [(3, 7, 5), (64, 100, 48)])
def test_fused_gemm_equals_unfused(isa, name, dtype, shape):
    m, k, n = shape
    a = None if name == "tanh_shrink" else 0.3
    x, w, b = _x((m, k), dtype, 1.0, 1), _x((k, n), dtype, 0.5, 2), _x((n,), dtype, 1.0, 3)
    fused = ops.matmul(x, w, bias=b, activation=name, activation_alpha=a)
    np.testing.assert_array_equal(fused, ops.activation(name, ops.matmul(x, w, bias=b), alpha=a))
    dy, w2, z = _x((m, n), dtype, 1.0, 4), _x((k, n), dtype, 0.5, 5), _x((m, k), dtype, 2.0, 6)
    kw = {"x": z} if name == "tanh_shrink" else {"y": ops.activation(name, z, alpha=a)}
    fused = ops.matmul_act_grad(dy, w2, trans_b=True, activation=name, activation_alpha=a, **kw)
    want = ops.activation_grad(name, ops.matmul(dy, w2, trans_b=True), alpha=a, **kw)
    np.testing.assert_array_equal(fused, want)


@pytest.mark.parametrize("name", NAMES)
def test_bf16_gemm_epilogue_equals_unfused(bf16_path, name):
    a = None if name == "tanh_shrink" else 0.3
    x, w, b = _x((40, 70), F32, 1.0, 7), _x((70, 50), F32, 0.3, 8), _x((50,), F32, 1.0, 9)
    fused = ops.matmul_bf16(x, w, bias=b, activation=name, activation_alpha=a)
    np.testing.assert_array_equal(fused, ops.activation(name, ops.matmul_bf16(x, w, bias=b), alpha=a))


def _act(name, a=None):
    return fastnn.activations.ActivationFunction(name, a)


@pytest.mark.parametrize("name,a", [("tanh_shrink", None), ("hard_shrink", None), ("hard_shrink", 0.3),
                                    ("soft_shrink", None), ("soft_shrink", 0.3)])
def test_layers_and_save_load(tmp_path, name, a):
    fastnn.set_random_seed(3)
    m = fastnn.Sequential([L.Input((6,)), L.Dense(16, activation=_act(name, a)), L.Dense(3)])
    x = _x((9, 6), F32, 1.0, 10)
    z = ops.matmul(x, m.layers[0].vars["kernel"], bias=m.layers[0].vars["bias"])
    np.testing.assert_array_equal(m.layers[0](x), ops.activation(name, z, alpha=a))
    np.testing.assert_array_equal(L.Activation(_act(name, a))(z), m.layers[0](x))
    m.save(tmp_path / "m.npz")
    back = fastnn.load_model(tmp_path / "m.npz")
    assert back.layers[0].activation == m.layers[0].activation == _act(name, a)
    np.testing.assert_array_equal(back.predict(x), m.predict(x))


@pytest.mark.parametrize("name,a", [("tanh_shrink", None), ("hard_shrink", None), ("soft_shrink", None),
                                    ("soft_shrink", 0.2)])
def test_dense_and_activation_float64_gradient_check(name, a):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 5)), rng.integers(0, 3, 7)
    fastnn.set_random_seed(1)
    m = fastnn.Sequential([L.Input(5), L.Dense(6, activation=_act(name, a)), L.Dense(6), L.Activation(_act(name, a)),
                           L.Dense(3, activation="softmax")], dtype="float64")
    if name != "tanh_shrink":  # away from the kinks: every pre-activation 1e-4 or more from +-t (steps: 1e-5)
        z1 = ops.matmul(x, m.layers[0].vars["kernel"], bias=m.layers[0].vars["bias"])
        for z in (z1, m.layers[1](m.layers[0](x))):
            assert np.min(np.abs(np.abs(z) - (0.5 if a is None else a))) > 1e-4
    gradcheck_model(m, x, y, "sparse_categorical_crossentropy")  # relative error < 1e-7


def test_dense_tanh_shrink_trains_in_the_native_step(monkeypatch):
    """Its gradient needs the pre-activation: Dense(activation="tanh_shrink") runs natively
    as a product into z and an activation node (test_native_step_acts), bitwise the Python
    step, and learns."""
    from test_native_step import _IDS, _both, _dense, _train
    from fastnn import optimizers as O
    build = lambda: [_dense(16, 0, activation="tanh_shrink"), _dense(4, 1, activation="softmax")]  # noqa: E731
    native = _both(monkeypatch, build, "sparse_categorical_crossentropy", lambda: O.Adam(1e-2), _IDS, "float32")
    assert native == 12  # every step (2 epochs of 6 batches)
    _, hist, _ = _train(monkeypatch, True, build, "sparse_categorical_crossentropy", lambda: O.Adam(3e-2), _IDS,
                        "float32", epochs=8)
    assert hist["loss"][-1] < 0.9 * hist["loss"][0]


@pytest.mark.parametrize("layers", [
    lambda d: [d(16, 0), L.Activation("tanh_shrink"), d(4, 1, activation="softmax")],
    lambda d: [d(16, 0, activation="hard_shrink"), d(4, 1, activation="softmax")],
    lambda d: [d(16, 0, activation=_act("soft_shrink", 0.2)), d(8, 1, activation="soft_shrink"),
               d(4, 2, activation="softmax")],
    lambda d: [d(16, 0), L.Activation(_act("hard_shrink", 0.1)), d(4, 1, activation="softmax")],
])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_native_step_bitwise_equal_to_python_step(monkeypatch, layers, dtype):
    from test_native_step import _IDS, _both, _dense
    from fastnn import optimizers as O
    native = _both(monkeypatch, lambda: layers(_dense), "sparse_categorical_crossentropy", lambda: O.Adam(1e-2),
                   _IDS, dtype)
    assert native > 0


def _keras():
    return keras_on_jax()


@pytest.mark.parametrize("name", NAMES)
def test_predictions_and_gradients_equal_keras(name):
    keras = _keras()
    import jax
    fastnn.set_random_seed(3)
    m = fastnn.Sequential([L.Input((6,)), L.Dense(32, activation=name), L.Dense(3)])
    x = _x((50, 6), F32, 2.0, 11)
    k = keras.Sequential([keras.Input((6,)), keras.layers.Dense(32, activation=name), keras.layers.Dense(3)])
    k.set_weights(m.get_weights())
    got, want = m.predict(x), np.asarray(k.predict(x, verbose=0))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    z = np.concatenate([np.linspace(-30, 30, 6001, dtype=F32), np.array([0.5, -0.5, 1.5, -1.5, 0.25, -0.25], F32)])
    for a in _alphas(name):
        kw = {} if a is None else {"threshold": a}
        f = getattr(keras.activations, name)
        kz = np.asarray(f(z, **kw))
        # Keras's float32 x - tanh(x) is off by an ulp of x near 0: atol
        np.testing.assert_allclose(getattr(fastnn.activations, name)(z, **kw), kz, rtol=2e-6, atol=1e-6)
        kd = np.asarray(jax.vmap(jax.grad(lambda v: f(v, **kw)))(z))  # thresholds included: 0 there
        d = ops.activation_grad(name, np.ones_like(z), x=z, alpha=a)
        np.testing.assert_allclose(d, kd, rtol=3e-6, atol=1e-6)


@pytest.mark.parametrize("name,a", [("tanh_shrink", None), ("hard_shrink", None), ("hard_shrink", 1.0),
                                    ("soft_shrink", None), ("soft_shrink", 0.3)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_onnx_export_matches(tmp_path, name, a, dtype):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from fastnn.export import export_onnx
    fastnn.set_random_seed(4)
    m = fastnn.Sequential([L.Input((6,)), L.Dense(16, activation=_act(name, a)), L.Activation(_act(name, a)),
                           L.Dense(3)], dtype=dtype)
    x = _x((20, 6), dtype, 2.0, 12)
    path = export_onnx(m, tmp_path / "m.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got, want = sess.run(["output"], {"input": x})[0], m.predict(x)
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())
    if name != "tanh_shrink":  # the activation alone, NaN and the thresholds included: the same bits
        m1 = fastnn.Sequential([L.Input((8,)), L.Activation(_act(name, a))], dtype=dtype)
        t = 0.5 if a is None else a
        v = np.array([[np.nan, t, -t, np.nextafter(t, 9), -np.nextafter(t, 9), 0.0, 3.0, -3.0]], dtype)
        s1 = ort.InferenceSession(str(export_onnx(m1, tmp_path / "a.onnx")), providers=["CPUExecutionProvider"])
        np.testing.assert_array_equal(s1.run(["output"], {"input": v})[0], ops.activation(name, v, alpha=a))
