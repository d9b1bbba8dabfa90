"""Weight constraints (Keras semantics) applied after each optimizer update, vs NumPy."""
import numpy as np
import pytest

import fastnn
from fastnn import constraints
from fastnn.layers import Dense, Dropout

EPS = 1e-7


def np_max_norm(w, m, axis=0):
    n = np.sqrt((w ** 2).sum(axis=axis, keepdims=True))
    return w * np.clip(n, 0, m) / (EPS + n)


def np_unit_norm(w, axis=0):
    return w / (EPS + np.sqrt((w ** 2).sum(axis=axis, keepdims=True)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("axis", [0, 1, (0, 1)])
def test_constraint_values_vs_numpy(dtype, axis):
    w = np.random.default_rng(0).normal(size=(7, 5)).astype(dtype) * 2
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(constraints.MaxNorm(1.5, axis=axis)(w), np_max_norm(w, 1.5, axis), rtol=tol)
    np.testing.assert_allclose(constraints.UnitNorm(axis=axis)(w), np_unit_norm(w, axis), rtol=tol)
    np.testing.assert_array_equal(constraints.NonNeg()(w), w * (w >= 0))
    assert constraints.MaxNorm(1.5, axis=axis)(w).dtype == dtype


def test_keras_defaults_and_errors():
    c = constraints.MaxNorm()
    assert (c.max_value, c.axis) == (2.0, 0) and constraints.UnitNorm().axis == 0
    for bad in (0, -1, float("inf"), True, "3"):
        with pytest.raises(ValueError, match="max_value"):
            constraints.MaxNorm(bad)
    with pytest.raises(TypeError, match="axis"):
        constraints.UnitNorm(axis=0.5)
    with pytest.raises(ValueError, match="axis: 2 is out of range"):
        constraints.MaxNorm(1, axis=2)(np.ones((2, 2)))
    with pytest.raises(ValueError, match="constraint: unknown"):
        Dense(3, kernel_constraint="max")
    assert isinstance(constraints.get("max_norm"), constraints.MaxNorm)
    assert constraints.get(None) is None


def test_one_sgd_step_then_projection_vs_numpy():
    """After one step: W = constraint(W0 - lr * dW) for the kernel, bias alike."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(16, 6)), rng.normal(size=(16, 4))
    m = fastnn.Sequential([Dense(4, input_dim=6, kernel_initializer=fastnn.initializers.RandomNormal(stddev=2.0),
                                 bias_initializer="ones", kernel_constraint=constraints.MaxNorm(1.0),
                                 bias_constraint=constraints.NonNeg())], dtype="float64")
    m.compile(fastnn.optimizers.SGD(0.5), "mse")
    w0, b0 = m.get_weights()
    _, g = m.compute_loss_and_gradients(x, y)
    gw, gb = g[:24].reshape(6, 4), g[24:]
    m.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    w1, b1 = m.get_weights()
    np.testing.assert_allclose(w1, np_max_norm(w0 - 0.5 * gw, 1.0), rtol=1e-12)
    np.testing.assert_allclose(b1, np.maximum(b0 - 0.5 * gb, 0), rtol=1e-12, atol=1e-15)
    assert np.all(np.sqrt((w0 ** 2).sum(0)) > 1.0)  # the constraint had something to do


def test_max_norm_3_with_dropout_as_cs231n_keeps_every_unit_norm_bounded():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(256, 20)).astype(np.float32) * 3
    y = rng.integers(0, 3, 256)
    fastnn.set_random_seed(0)
    mn = constraints.MaxNorm(3)
    m = fastnn.Sequential([Dense(64, activation="relu", input_dim=20, kernel_constraint=mn), Dropout(0.5, seed=1),
                           Dense(3, activation="softmax", kernel_constraint=mn)])
    m.compile(fastnn.optimizers.SGD(1.0), "sparse_categorical_crossentropy")  # a big step: norms grow
    m.fit(x, y, epochs=3, batch_size=32, verbose=0, seed=0)
    for layer in (m.layers[0], m.layers[2]):
        norms = np.sqrt((layer.get_weights()[0].astype(np.float64) ** 2).sum(0))
        assert norms.max() <= 3 * (1 + 1e-5)
    assert np.isclose(norms.max(), 3, rtol=1e-4)  # the bound was reached and enforced


def test_frozen_layer_not_projected():
    m = fastnn.Sequential([Dense(3, input_dim=2, kernel_initializer=fastnn.initializers.RandomNormal(stddev=5.0),
                                 kernel_constraint=constraints.UnitNorm()), Dense(1)])
    m.layers[0].trainable = False
    w0 = m.layers[0].get_weights()[0]
    m.compile("sgd", "mse")
    m.fit(np.ones((4, 2)), np.ones(4), epochs=1, verbose=0)
    np.testing.assert_array_equal(m.layers[0].get_weights()[0], w0)


def test_serialized_with_the_model(tmp_path):
    m = fastnn.Sequential([Dense(3, input_dim=2, kernel_constraint=constraints.MaxNorm(3, axis=(0, 1)),
                                 bias_constraint="non_neg"), Dense(2, kernel_constraint=constraints.UnitNorm(1))])
    m.compile("sgd", "mse")
    m.save(tmp_path / "m.npz")
    m2 = fastnn.load_model(tmp_path / "m.npz")
    a, b = m2.layers[0], m2.layers[1]
    assert isinstance(a.kernel_constraint, constraints.MaxNorm) and a.kernel_constraint.max_value == 3
    assert a.kernel_constraint.axis == (0, 1) and isinstance(a.bias_constraint, constraints.NonNeg)
    assert b.kernel_constraint.axis == 1 and b.bias_constraint is None
    assert m2.get_config() == m.get_config()
    assert fastnn.Sequential.from_config(m.get_config()).layers[0].kernel_constraint.max_value == 3
