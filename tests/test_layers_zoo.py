"""Keras 3 layers users expect: ReLU, LeakyReLU, ELU, Softmax, LayerNormalization, Reshape,
Identity. Each: float64 NumPy twin of the forward, one SGD step vs the twin, float64 gradient
check < 1e-7, config round trip and save/load."""
import numpy as np
import pytest

import fastnn
from fastnn import layers as L
from fastnn.gradcheck import check_layer
from helpers import numeric_grad


def relu_twin(x, max_value=None, negative_slope=0.0, threshold=0.0):
    y = np.where(x > threshold, x, 0.0)
    if max_value is not None:
        y = np.minimum(y, max_value)
    return y + negative_slope * np.minimum(x - threshold, 0.0)


def softmax_twin(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def layernorm_twin(x, gamma, beta, axis=(-1,), eps=1e-3):
    mean = x.mean(axis=axis, keepdims=True)
    var = x.var(axis=axis, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


CASES = [  # (layer factory, twin, input feature shape)
    (lambda: L.ReLU(), relu_twin, (6,)),
    (lambda: L.ReLU(max_value=1.0, negative_slope=0.1, threshold=0.5),
     lambda x: relu_twin(x, 1.0, 0.1, 0.5), (6,)),
    (lambda: L.ReLU(max_value=1.0), lambda x: relu_twin(x, 1.0), (6,)),
    (lambda: L.LeakyReLU(), lambda x: np.where(x >= 0, x, 0.3 * x), (6,)),
    (lambda: L.LeakyReLU(negative_slope=0.05), lambda x: np.where(x >= 0, x, 0.05 * x), (6,)),
    (lambda: L.ELU(), lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))), (6,)),
    (lambda: L.ELU(alpha=0.5), lambda x: np.where(x > 0, x, 0.5 * np.expm1(np.minimum(x, 0))), (6,)),
    (lambda: L.Softmax(), softmax_twin, (6,)),
    (lambda: L.Softmax(axis=1), lambda x: softmax_twin(x, 1), (3, 4)),
    (lambda: L.LayerNormalization(), lambda x: layernorm_twin(x, 1.0, 0.0), (6,)),
    (lambda: L.LayerNormalization(axis=[1, 2]), lambda x: layernorm_twin(x, 1.0, 0.0, (1, 2)), (3, 4)),
    (lambda: L.Reshape((-1, 2)), lambda x: x.reshape(len(x), 3, 2), (6,)),
    (lambda: L.Identity(), lambda x: x, (6,)),
]


def _x(shape, n=5, seed=0):
    x = np.random.default_rng(seed).normal(size=(n,) + shape)
    x[np.abs(x - 0.5) < 0.05] += 0.2  # away from ReLU's kinks (0, threshold 0.5, max 1.0)
    x[np.abs(x) < 0.05] += 0.2
    x[np.abs(x - 1.0) < 0.05] += 0.2
    return x


@pytest.mark.parametrize("make,twin,shape", CASES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_forward_vs_numpy_twin(make, twin, shape, dtype):
    x = _x(shape)
    m = fastnn.Sequential([L.Input(shape), make()], dtype=dtype)
    tol = 1e-12 if dtype == "float64" else 2e-6
    np.testing.assert_allclose(m.predict(x.astype(dtype)), twin(x), rtol=tol, atol=tol)


@pytest.mark.parametrize("make,twin,shape", CASES)
def test_gradient_check_float64(make, twin, shape):
    layer = make()
    report = check_layer(layer, _x(shape), eps=1e-6)
    assert all(c.rel_error < 1e-7 for c in report), str(report)


@pytest.mark.parametrize("make,twin,shape", CASES)
def test_one_sgd_step_vs_numpy_twin(make, twin, shape):
    """Dense -> layer -> Flatten -> Dense, MSE, one full-batch SGD step; the twin's gradient of the
    first kernel comes from centred differences of the float64 twin's loss (exact to ~1e-9)."""
    d = int(np.prod(shape))
    x, y = _x((4,), n=8, seed=1), np.random.default_rng(2).normal(size=(8, 2))
    m = fastnn.Sequential([L.Input(4), L.Dense(d), L.Reshape(shape), make(), L.Flatten(), L.Dense(2)],
                          dtype="float64")
    m.compile(fastnn.optimizers.SGD(learning_rate=0.1), "mse")
    ws = [w.copy() for w in m.get_weights()]
    W1, b1, W2, b2 = ws[0], ws[1], ws[-2], ws[-1]  # LayerNormalization: gamma 1, beta 0 between

    def loss(w1):
        h = twin((x @ w1 + b1).reshape((8,) + shape)).reshape(8, -1)
        return np.mean((h @ W2 + b2 - y) ** 2)
    g = numeric_grad(loss, W1)
    m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    np.testing.assert_allclose(m.get_weights()[0], W1 - 0.1 * g, rtol=1e-7, atol=1e-9)


def test_layernorm_one_sgd_step_vs_numpy_twin():
    x, y = _x((5,), n=8, seed=3), np.random.default_rng(4).normal(size=(8, 5))
    m = fastnn.Sequential([L.Input(5), L.LayerNormalization(epsilon=1e-3)], dtype="float64")
    rng = np.random.default_rng(5)
    gamma, beta = rng.normal(size=5), rng.normal(size=5)
    m.set_weights([gamma, beta])
    m.compile(fastnn.optimizers.SGD(learning_rate=0.5), "mse")
    xhat = layernorm_twin(x, 1.0, 0.0)
    r = 2 * (xhat * gamma + beta - y) / y.size  # dL/dy of the mean squared error
    m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    g2, b2 = m.get_weights()
    np.testing.assert_allclose(g2, gamma - 0.5 * (r * xhat).sum(0), rtol=1e-12)
    np.testing.assert_allclose(b2, beta - 0.5 * r.sum(0), rtol=1e-12)


def test_layernorm_matches_keras_formula_with_params_and_options():
    x = _x((3, 4), seed=6)
    ln = L.LayerNormalization(axis=1, epsilon=1e-2, center=False)
    m = fastnn.Sequential([L.Input((3, 4)), ln], dtype="float64")
    gamma = np.array([0.5, 2.0, -1.0])
    m.set_weights([gamma])
    expect = layernorm_twin(x, gamma[:, None], 0.0, (1,), eps=1e-2)
    np.testing.assert_allclose(m.predict(x), expect, rtol=1e-12)
    assert [s.name for s in ln.specs] == ["gamma"] and ln.specs[0].shape == (3,)
    assert check_layer(ln, x, eps=1e-6).worst.rel_error < 1e-7


def test_config_round_trip_and_save_load(tmp_path):
    layers = [L.ReLU(max_value=2.0, negative_slope=0.1, threshold=0.2), L.LeakyReLU(0.1), L.ELU(0.7),
              L.Softmax(axis=[1, 2]), L.LayerNormalization(axis=[-2, -1], epsilon=1e-5, center=False),
              L.Reshape((12,)), L.Identity(), L.Reshape((3, 4))]
    for layer in layers:
        again = L.deserialize({"class_name": type(layer).__name__, "config": layer.get_config()})
        assert type(again) is type(layer) and again.get_config() == layer.get_config()
    m = fastnn.Sequential([L.Input((3, 4))] + layers + [L.Flatten(), L.Dense(2)], dtype="float64")
    rng = np.random.default_rng(7)
    m.set_weights([rng.normal(size=w.shape) for w in m.get_weights()])
    x = _x((3, 4), seed=8)
    m.save(tmp_path / "m.fnn")
    m2 = fastnn.models.load_model(tmp_path / "m.fnn")
    np.testing.assert_array_equal(m2.predict(x), m.predict(x))


def test_arguments_refused():
    with pytest.raises(ValueError, match="max_value"):
        L.ReLU(max_value=-1)
    with pytest.raises(ValueError, match="negative_slope"):
        L.ReLU(negative_slope=-0.1)
    with pytest.raises(ValueError, match="threshold"):
        L.ReLU(threshold=None)
    with pytest.raises(ValueError, match="negative_slope"):
        L.LeakyReLU(-1)
    with pytest.raises(ValueError, match="epsilon"):
        L.LayerNormalization(epsilon=0)
    with pytest.raises(TypeError, match="axis"):
        L.LayerNormalization(axis="last")
    with pytest.raises(ValueError, match="batch axis"):
        fastnn.Sequential([L.Input(4), L.LayerNormalization(axis=0)])
    with pytest.raises(ValueError, match="batch axis"):
        fastnn.Sequential([L.Input(4), L.Softmax(axis=2)])
    with pytest.raises(ValueError, match="target_shape"):
        L.Reshape((-1, -1))
    with pytest.raises(ValueError, match="target_shape"):
        fastnn.Sequential([L.Input(6), L.Reshape((4,))])
    with pytest.raises(ValueError, match="cannot reshape"):
        fastnn.Sequential([L.Input(6), L.Reshape((-1, 4))])
    assert L.LeakyReLU().negative_slope == 0.3 and L.ELU().alpha == 1.0
    assert L.LayerNormalization().epsilon == 1e-3 and L.ReLU().max_value is None


def test_whole_model_gradient_check_float64():
    from fastnn.gradcheck import check_gradients
    m = fastnn.Sequential([L.Input(6), L.Dense(8), L.LayerNormalization(), L.ELU(), L.Reshape((2, 4)),
                           L.Softmax(axis=1), L.Flatten(), L.Identity(), L.Dense(5), L.LeakyReLU(), L.Dense(3),
                           L.Softmax()], dtype="float64")
    m.compile("sgd", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(9)
    report = check_gradients(m, rng.normal(size=(7, 6)), rng.integers(0, 3, 7), eps=1e-5)
    assert report.ok and report.worst.rel_error < 1e-7, str(report)
