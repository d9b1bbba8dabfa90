"""AlphaDropout, GaussianNoise, RandomFlip, RandomTranslation: Keras semantics, NumPy twins,
seeded, identity at inference, float64 gradient checks, config round trips."""
import os

import numpy as np
import pytest

import fastnn
from fastnn.layers import (AlphaDropout, Dense, Flatten, GaussianNoise, Input, RandomFlip, RandomTranslation,
                           deserialize)
from helpers import numeric_grad

ALPHA_P = -1.6732632423543772848170429916717 * 1.0507009873554804934193349852946


def _built(layer, shape, dtype="float64"):
    layer.build(shape, dtype)
    return layer


def _gradcheck(layer, x, eps=1e-4):
    """max relative error of backward vs centred differences of sum(forward(x) * dy), with
    the layer's randomness fixed (call counter reset before every forward). The layers are
    linear (affine) in x, so the differences are exact up to round-off at any step."""
    rng = np.random.default_rng(0)
    dy = rng.normal(size=x.shape)

    def f(xx):
        layer._calls = 0
        return float(np.sum(layer.forward(xx, True) * dy))
    layer._calls = 0
    layer.forward(x.copy(), True)
    g = np.array(layer.backward(dy.copy(), True))
    num = numeric_grad(f, x, eps)
    return np.max(np.abs(g - num) / np.maximum(np.abs(g) + np.abs(num), 1e-12))


# ------------------------------------------------------------------ AlphaDropout
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_alpha_dropout_vs_numpy_twin(dtype):
    rate, seed = 0.2, 7
    x = np.random.default_rng(1).normal(size=(50, 30)).astype(dtype)
    layer = _built(AlphaDropout(rate, seed=seed), (30,), dtype)
    assert layer.forward(x, False) is x  # inference: identity
    y = layer.forward(x, True)
    kept = np.random.default_rng([seed, 0]).random(x.shape, dtype=np.dtype(dtype)) >= rate
    a = ((1 - rate) * (1 + rate * ALPHA_P ** 2)) ** -0.5
    b = -a * ALPHA_P * rate
    ref = a * (x.astype(np.float64) * kept + ALPHA_P * (1 - kept)) + b
    np.testing.assert_allclose(y, ref, rtol=1e-6 if dtype == "float32" else 1e-14, atol=1e-6)
    assert y.dtype == np.dtype(dtype)
    assert not np.array_equal(layer.forward(x, True), ref.astype(dtype))  # next call: a fresh mask


def test_alpha_dropout_keeps_selu_mean_and_variance():
    x = np.random.default_rng(2).normal(size=(2000, 200))
    y = _built(AlphaDropout(0.1, seed=0), (200,)).forward(x, True)
    assert abs(y.mean()) < 0.01 and abs(y.var() - 1) < 0.01


def test_alpha_dropout_and_gaussian_noise_gradients_float64():
    x = np.random.default_rng(3).normal(size=(6, 5))
    assert _gradcheck(_built(AlphaDropout(0.3, seed=1), (5,)), x) < 1e-7
    assert _gradcheck(_built(GaussianNoise(0.5, seed=1), (5,)), x) < 1e-7


# ------------------------------------------------------------------ GaussianNoise
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gaussian_noise_vs_numpy_twin(dtype):
    x = np.random.default_rng(4).normal(size=(20, 8)).astype(dtype)
    layer = _built(GaussianNoise(0.3, seed=11), (8,), dtype)
    assert layer.forward(x, False) is x
    y = layer.forward(x, True)
    noise = np.random.default_rng([11, 0]).standard_normal(x.shape, dtype=np.dtype(dtype))
    np.testing.assert_allclose(y, x + np.dtype(dtype).type(0.3) * noise, rtol=1e-6)
    big = _built(GaussianNoise(0.3, seed=0), (1000,)).forward(np.zeros((100, 1000)), True)
    assert abs(big.std() - 0.3) < 0.003


# ------------------------------------------------------------------ RandomFlip
@pytest.mark.parametrize("mode", ["horizontal", "vertical", "horizontal_and_vertical"])
@pytest.mark.parametrize("shape", [(5, 6), (5, 6, 3)])
def test_random_flip_vs_numpy(mode, shape):
    x = np.random.default_rng(5).normal(size=(40,) + shape)
    layer = _built(RandomFlip(mode, seed=3), shape)
    assert layer.forward(x, False) is x
    y = layer.forward(x, True)
    rng = np.random.default_rng([3, 0])
    h = rng.random(40) < 0.5 if mode != "vertical" else np.zeros(40, bool)
    v = rng.random(40) < 0.5 if mode != "horizontal" else np.zeros(40, bool)
    for i in range(40):
        ref = x[i]
        ref = ref[:, ::-1] if h[i] else ref
        ref = ref[::-1] if v[i] else ref
        np.testing.assert_array_equal(y[i], ref)
    assert 0 < (h | v).sum() < 40
    assert _gradcheck(_built(RandomFlip(mode, seed=3), shape), x[:4].copy()) < 1e-7


# ------------------------------------------------------------------ RandomTranslation
@pytest.mark.parametrize("fill_mode,scipy_mode", [("constant", "grid-constant"), ("reflect", "reflect"),
                                                  ("wrap", "grid-wrap"), ("nearest", "nearest")])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_random_translation_vs_scipy(fill_mode, scipy_mode, interpolation):
    nd = pytest.importorskip("scipy.ndimage")
    x = np.random.default_rng(6).normal(size=(8, 7, 9, 2))
    layer = _built(RandomTranslation(0.3, (-0.2, 0.4), fill_mode=fill_mode, interpolation=interpolation,
                                     seed=5, fill_value=0.5), (7, 9, 2))
    assert layer.forward(x, False) is x
    y = layer.forward(x, True)
    rng = np.random.default_rng([5, 0])
    dy, dx = rng.uniform(-0.3, 0.3, 8) * 7, rng.uniform(-0.2, 0.4, 8) * 9
    for i in range(8):
        if interpolation == "nearest":  # round half up, as fastnn and Keras do
            sy, sx = -np.floor(-dy[i] + 0.5), -np.floor(-dx[i] + 0.5)
            ref = nd.shift(x[i], (sy, sx, 0), order=0, mode=scipy_mode, cval=0.5)
        else:
            ref = nd.shift(x[i], (dy[i], dx[i], 0), order=1, mode=scipy_mode, cval=0.5)
        np.testing.assert_allclose(y[i], ref, atol=1e-12)


def test_random_translation_matches_keras_for_a_fixed_shift():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    x = np.random.default_rng(7).normal(size=(3, 7, 9, 1)).astype(np.float32)
    for mode, interp in (("constant", "bilinear"), ("reflect", "nearest")):  # all modes: the scipy twin
        k = keras.layers.RandomTranslation((0.3, 0.3), (-0.25, -0.25), fill_mode=mode, interpolation=interp,
                                           fill_value=0.0)
        f = _built(RandomTranslation((0.3, 0.3), (-0.25, -0.25), fill_mode=mode, interpolation=interp, seed=0),
                   (7, 9, 1), "float32")
        np.testing.assert_allclose(f.forward(x, True), np.asarray(k(x, training=True)), atol=2e-6)


@pytest.mark.parametrize("fill_mode", ["constant", "reflect"])
def test_random_translation_gradient_float64(fill_mode):
    x = np.random.default_rng(8).normal(size=(3, 5, 6))
    layer = _built(RandomTranslation(0.4, 0.4, fill_mode=fill_mode, seed=2, fill_value=0.3), (5, 6))
    assert _gradcheck(layer, x) < 1e-7


def test_integer_shift_with_zero_fill_is_a_roll():
    x = np.arange(2 * 4 * 5, dtype=np.float64).reshape(2, 4, 5) + 1
    layer = _built(RandomTranslation((0.5, 0.5), (-0.2, -0.2), fill_mode="constant", seed=0), (4, 5))
    y = layer.forward(x, True)  # down 2 rows, left 1 column
    ref = np.zeros_like(x)
    ref[:, 2:, :4] = x[:, :2, 1:]
    np.testing.assert_allclose(y, ref, atol=1e-12)


# ------------------------------------------------------------------ models, config, errors
def _image_model(seed=0):
    fastnn.set_random_seed(seed)
    return fastnn.Sequential([Input((6, 6)), RandomFlip("horizontal", seed=1),
                              RandomTranslation(0.2, 0.2, fill_mode="constant", seed=2), GaussianNoise(0.1, seed=3),
                              Flatten(), Dense(16, activation="selu", kernel_initializer="lecun_normal"),
                              AlphaDropout(0.1, seed=4), Dense(3, activation="softmax")])


def test_fit_is_deterministic_and_inference_is_identity(tmp_path):
    rng = np.random.default_rng(9)
    x, y = rng.normal(size=(64, 6, 6)).astype(np.float32), rng.integers(0, 3, 64)
    ws = []
    for _ in range(2):
        m = _image_model()
        m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        m.fit(x, y, epochs=2, batch_size=16, verbose=0, seed=0)
        ws.append(m.get_weights())
    for a, b in zip(*ws):
        np.testing.assert_array_equal(a, b)
    plain = fastnn.Sequential([Input((6, 6)), Flatten(), m.layers[4], m.layers[6]])
    np.testing.assert_allclose(m.predict(x), plain.predict(x), rtol=1e-6)  # the random layers: identity
    m.save(tmp_path / "m.npz")
    m2 = fastnn.load_model(tmp_path / "m.npz")
    assert m2.get_config() == m.get_config()
    assert [l._calls for l in m2.layers if hasattr(l, "_calls")] == [8, 8, 8, 8]
    np.testing.assert_array_equal(m2.predict(x), m.predict(x))


def test_config_round_trip():
    for layer in (AlphaDropout(0.2, seed=1), GaussianNoise(0.5, seed=2), RandomFlip("vertical", seed=3),
                  RandomTranslation((-0.1, 0.2), 0.3, fill_mode="wrap", interpolation="nearest", seed=4,
                                    fill_value=1.0)):
        d = {"class_name": type(layer).__name__, "config": layer.get_config()}
        again = deserialize(d)
        assert type(again) is type(layer) and again.get_config() == layer.get_config()


def test_arguments_refused():
    with pytest.raises(ValueError, match="rate"):
        AlphaDropout(1.0)
    with pytest.raises(ValueError, match="stddev"):
        GaussianNoise(-1)
    with pytest.raises(ValueError, match="mode"):
        RandomFlip("diagonal")
    with pytest.raises(ValueError, match="height_factor"):
        RandomTranslation(1.5, 0.1)
    with pytest.raises(ValueError, match="width_factor"):
        RandomTranslation(0.1, (0.3, 0.1))
    with pytest.raises(ValueError, match="fill_mode"):
        RandomTranslation(0.1, 0.1, fill_mode="mirror")
    with pytest.raises(ValueError, match="seed"):
        RandomFlip(seed=-1)
    with pytest.raises(ValueError, match="expected images"):
        fastnn.Sequential([Input(10), RandomFlip(), Dense(2)])
    assert RandomTranslation(0.1, 0.1).fill_mode == "reflect"  # Keras's default
    assert RandomFlip().mode == "horizontal_and_vertical"


def test_onnx_export_drops_the_training_only_layers(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from fastnn.export import export_onnx
    m = _image_model()
    x = np.random.default_rng(10).normal(size=(5, 6, 6)).astype(np.float32)
    export_onnx(m, tmp_path / "m.onnx")
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    out = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(out, m.predict(x), rtol=1e-5, atol=1e-6)


def test_model_gradient_check_leaves_out_the_random_layers():
    from fastnn.gradcheck import check_gradients, check_layer
    m = _image_model()
    m.compile("sgd", "sparse_categorical_crossentropy")
    x = np.random.default_rng(11).normal(size=(4, 6, 6))
    assert check_gradients(m, x, np.array([0, 1, 2, 0])).ok
    with pytest.raises(ValueError, match="fresh randomness"):
        check_layer(RandomFlip(), x)
