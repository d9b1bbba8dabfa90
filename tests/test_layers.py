"""Layers on their own: shapes, values, configs."""
import numpy as np
import pytest

import fastnn
from fastnn import layers as L


def test_dense_forward_is_act_of_affine():
    m = fastnn.Sequential([L.Dense(3, activation="tanh", input_dim=4)], dtype="float64")
    W, b = m.get_weights()
    x = np.random.default_rng(0).normal(size=(5, 4))
    np.testing.assert_allclose(m.predict(x), np.tanh(x @ W + b), rtol=1e-12)


@pytest.mark.parametrize("act,f", [
    ("relu", lambda z: np.maximum(z, 0)), ("sigmoid", lambda z: 1 / (1 + np.exp(-z))),
    ("elu", lambda z: np.where(z > 0, z, np.expm1(z))), ("leaky_relu", lambda z: np.where(z > 0, z, 0.2 * z)),
    ("softplus", lambda z: np.log1p(np.exp(z))), ("swish", lambda z: z / (1 + np.exp(-z))),
    ("softmax", lambda z: np.exp(z) / np.exp(z).sum(1, keepdims=True)), ("linear", lambda z: z),
])
def test_activation_values(act, f):
    z = np.random.default_rng(1).normal(size=(4, 5))
    m = fastnn.Sequential([L.Input(5), L.Activation(act)], dtype="float64")
    np.testing.assert_allclose(m.predict(z), f(z), rtol=1e-12, atol=1e-15)


def test_prelu_and_maxout_values():
    x = np.array([[-2.0, 3.0]])
    m = fastnn.Sequential([L.Input(2), L.PReLU(alpha_initializer=fastnn.initializers.Constant(0.1))],
                          dtype="float64")
    np.testing.assert_allclose(m.predict(x), [[-0.2, 3.0]])
    mo = fastnn.Sequential([L.Maxout(2, pieces=3, input_dim=2)], dtype="float64")
    W, b = mo.get_weights()
    z = (x @ W + b).reshape(1, 2, 3)
    np.testing.assert_allclose(mo.predict(x), z.max(axis=2))


def test_batchnorm_inference_uses_moving_statistics():
    m = fastnn.Sequential([L.Input(2), L.BatchNormalization(epsilon=0.0 + 1e-3)], dtype="float64")
    m.set_weights([np.array([2.0, 1.0]), np.array([0.5, 0.0]), np.array([1.0, -1.0]), np.array([4.0, 1.0])])
    x = np.array([[3.0, 0.0]])
    expect = (x - [1.0, -1.0]) / np.sqrt(np.array([4.0, 1.0]) + 1e-3) * [2.0, 1.0] + [0.5, 0.0]
    np.testing.assert_allclose(m.predict(x), expect, rtol=1e-12)


def test_flatten_and_input_shapes():
    m = fastnn.Sequential([L.Input((28, 28)), L.Flatten(), L.Dense(10)])
    assert m.output_shape == (None, 10) and m.input_shape == (None, 28, 28)
    assert m.predict(np.zeros((3, 28, 28), np.float32)).shape == (3, 10)


def test_dense_needs_flat_input():
    with pytest.raises(ValueError, match="Flatten"):
        fastnn.Sequential([L.Input((28, 28)), L.Dense(10)]).build()


def test_layer_config_round_trip():
    d = L.Dense(7, activation=fastnn.activations.LeakyReLU(0.1), kernel_initializer="he_uniform",
                kernel_regularizer=fastnn.regularizers.L1L2(0.1, 0.2), use_bias=False)
    e = L.deserialize({"class_name": "Dense", "config": d.get_config()})
    assert e.get_config() == d.get_config()
    with pytest.raises(ValueError, match="known: Dense"):
        L.deserialize({"class_name": "Lambda", "config": {}})


def test_functional_model_rejects_unconnected_tensors():
    a, b = L.Input(3), L.Input(3)
    out = L.Dense(2)(a)
    with pytest.raises(ValueError, match="not computed from these inputs"):
        fastnn.Model(b, out)


def test_dropout_rate_validated():
    with pytest.raises(ValueError, match="rate"):
        L.Dropout(1.0)
