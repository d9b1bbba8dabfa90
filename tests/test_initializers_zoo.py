"""Orthogonal(gain, seed) and Identity(gain) initializers: Keras 3 formulas vs a NumPy twin."""
import numpy as np
import pytest

import fastnn
from fastnn import initializers as I


def orthogonal_twin(shape, gain, seed):
    rows, cols = int(np.prod(shape[:-1])), shape[-1]
    a = np.random.default_rng(seed).standard_normal(size=(max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))
    return gain * (q.T if rows < cols else q).reshape(shape)


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (5, 5), (2, 3, 4)])
def test_orthogonal_vs_twin_and_orthogonality(shape):
    w = I.Orthogonal(gain=1.5, seed=3)(shape, "float64")
    np.testing.assert_allclose(w, orthogonal_twin(shape, 1.5, 3), rtol=1e-12, atol=1e-15)
    m = w.reshape(-1, shape[-1])
    small = min(m.shape)
    gram = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
    np.testing.assert_allclose(gram, 1.5 ** 2 * np.eye(small), atol=1e-12)
    assert I.Orthogonal(seed=3)(shape, "float32").dtype == np.float32


def test_identity_initializer():
    np.testing.assert_array_equal(I.Identity()((3, 3), "float64"), np.eye(3))
    np.testing.assert_array_equal(I.get("identity")((2, 4)), np.eye(2, 4, dtype=np.float32))
    np.testing.assert_array_equal(I.Identity(gain=0.5)((4, 2), "float64"), 0.5 * np.eye(4, 2))
    with pytest.raises(ValueError, match="2-D"):
        I.Identity()((3,))
    with pytest.raises(ValueError, match="two-dimensional"):
        I.Orthogonal()((3,))
    with pytest.raises(ValueError, match="gain"):
        I.Orthogonal(gain=float("nan"))


def test_names_serialization_and_dense_training_step():
    for init in (I.Orthogonal(gain=2.0, seed=1), I.Identity(gain=3.0)):
        again = I.get(I.serialize(init))
        assert type(again) is type(init) and again.get_config() == init.get_config()
    assert isinstance(I.get("orthogonal"), I.Orthogonal)
    assert isinstance(I.get({"class_name": "OrthogonalInitializer", "config": {"seed": 1}}), I.Orthogonal)
    m = fastnn.Sequential([fastnn.layers.Dense(4, kernel_initializer=I.Orthogonal(seed=5), input_dim=4),
                           fastnn.layers.Dense(4, kernel_initializer="identity", use_bias=False)],
                          dtype="float64")
    W1, b1, W2 = m.get_weights()
    np.testing.assert_allclose(W1, orthogonal_twin((4, 4), 1.0, 5), rtol=1e-12)
    np.testing.assert_array_equal(W2, np.eye(4))
    x, y = np.random.default_rng(0).normal(size=(8, 4)), np.random.default_rng(1).normal(size=(8, 4))
    m.compile(fastnn.optimizers.SGD(learning_rate=0.1), "mse")
    m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    r = 2 * (x @ W1 + b1 - y) / y.size  # W2 = I, so dL/dh = dL/dy
    np.testing.assert_allclose(m.get_weights()[2], np.eye(4) - 0.1 * (x @ W1 + b1).T @ r, rtol=1e-10,
                               atol=1e-12)
    np.testing.assert_allclose(m.get_weights()[0], W1 - 0.1 * x.T @ r, rtol=1e-10, atol=1e-12)
