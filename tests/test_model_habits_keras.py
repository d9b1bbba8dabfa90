"""Keras habits on models: ``model.trainable`` (freezes / unfreezes every layer, as Keras 3),
``get_layer`` errors, ``Sequential.pop`` (rebuilds, keeps the other weights); compared with
Keras itself when installed."""
import os

import numpy as np
import pytest

import fastnn
from fastnn import layers as L

RNG = np.random.default_rng(0)
X = RNG.normal(size=(64, 4)).astype(np.float32)
Y = RNG.normal(size=(64, 2)).astype(np.float32)


def _model():
    fastnn.utils.set_random_seed(2)
    return fastnn.Sequential([L.Input((4,)), L.Dense(5, activation="tanh", name="d1"),
                              L.BatchNormalization(momentum=0.5, name="bn"), L.Dense(2, name="d2")])


def _weights():
    m = _model()
    w = m.get_weights()
    w[4], w[5] = np.full(5, 0.3, np.float32), np.full(5, 2.0, np.float32)  # moving statistics
    return w


def test_model_trainable_false_freezes_every_layer():
    m = _model()
    m.set_weights(_weights())
    m.compile(fastnn.optimizers.SGD(0.1), "mse")
    assert m.trainable is True
    m.trainable = False
    assert m.trainable is False and not any(l.trainable for l in m.layers)
    assert m.trainable_weights == [] and len(m.non_trainable_weights) == 8
    before = m.get_weights()
    m.fit(X, Y, batch_size=16, epochs=2, verbose=0)
    for a, b in zip(m.get_weights(), before):  # nothing learned, BatchNormalization in inference mode
        np.testing.assert_array_equal(a, b)
    m.layers[1].trainable = False
    m.trainable = True  # as Keras: every layer, the one frozen on its own too
    assert all(l.trainable for l in m.layers) and len(m.trainable_weights) == 6
    m.fit(X, Y, batch_size=16, epochs=1, verbose=0)
    assert not np.array_equal(m.get_weights()[0], before[0]) and not np.array_equal(m.get_weights()[4], before[4])


def test_get_layer_errors():
    m = _model()
    assert m.get_layer("bn") is m.layers[1] and m.get_layer(index=-1) is m.layers[2]
    with pytest.raises(ValueError, match="index"):
        m.get_layer(index=3)
    with pytest.raises(ValueError, match="name or index"):
        m.get_layer()
    with pytest.raises(ValueError, match="not both"):
        m.get_layer("bn", index=0)
    with pytest.raises(ValueError, match="no layer 'x'"):
        m.get_layer("x")


def test_pop_rebuilds_and_keeps_weights():
    m = _model()
    w = m.get_weights()
    assert m.pop().name == "d2"
    assert m.output_shape == (None, 5) and m.built
    for a, b in zip(m.get_weights(), w[:6]):
        np.testing.assert_array_equal(a, b)
    assert m.predict(X).shape == (64, 5)
    m.pop(rebuild=False)
    assert not m.built
    m.pop()
    with pytest.raises(TypeError, match="no layers"):
        m.pop()


def test_against_keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    k = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, activation="tanh", name="d1"),
                          keras.layers.BatchNormalization(momentum=0.5, name="bn"), keras.layers.Dense(2, name="d2")])
    f = _model()
    w = _weights()
    k.set_weights(w)
    f.set_weights(w)
    for m in (k, f):
        m.layers[0].trainable = False
        m.trainable = False
        m.trainable = True
    assert [l.trainable for l in k.layers] == [l.trainable for l in f.layers]
    k.layers[1].trainable = False  # a frozen BatchNormalization: inference mode in fit (Keras)
    f.layers[1].trainable = False
    k.compile(keras.optimizers.SGD(0.1), "mse")
    f.compile(fastnn.optimizers.SGD(0.1), "mse")
    hk = k.fit(X, Y, batch_size=64, epochs=3, shuffle=False, verbose=0)
    hf = f.fit(X, Y, batch_size=64, epochs=3, shuffle=False, verbose=0)
    np.testing.assert_allclose(hf.history["loss"], hk.history["loss"], rtol=1e-5)
    for a, b in zip(f.get_weights(), k.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for m in (k, f):
        m.pop()
    assert f.output_shape == k.output_shape
    with pytest.raises(ValueError):
        k.get_layer(index=3)


def test_variable_names_and_functional_input_by_name():
    m = _model()
    assert [w.name for w in m.trainable_weights] == ["kernel", "bias", "gamma", "beta", "kernel", "bias"]
    assert [w.path for w in m.non_trainable_weights] == ["bn/moving_mean", "bn/moving_variance"]
    assert m.layers[0].kernel.name == "kernel"
    x = L.Input((4,), name="features")
    f = fastnn.Model(x, L.Dense(2, name="out")(x))
    assert f.get_layer("features").name == "features" and f.get_layer("out") is f.layers[0]


def test_sequential_add_refuses_a_layer_twice_and_duplicate_names():
    m = _model()
    for bad, what in ((m.layers[2], "already in this model"), (L.Dense(2, name="d2"), "unique names")):
        with pytest.raises(ValueError, match=what):
            m.add(bad)
        assert [l.name for l in m.layers] == ["d1", "bn", "d2"] and m.built
    with pytest.raises(ValueError, match="unique names"):
        fastnn.Sequential([L.Dense(2, name="a"), L.Dense(2, name="a")])


def test_count_params_refused_before_the_build():
    m = fastnn.Sequential([L.Dense(3), L.Dense(2)])
    with pytest.raises(ValueError, match="not built"):
        m.count_params()
    with pytest.raises(ValueError, match="count_params"):
        m.layers[0].count_params()
    m.build((None, 4))
    assert m.count_params() == 4 * 3 + 3 + 3 * 2 + 2 and m.layers[1].count_params() == 8
    assert L.Dropout(0.1)(np.ones((2, 3))) is not None and m.pop(rebuild=False).count_params() == 8


def test_a_refused_first_layer_takes_its_declared_input_shape_with_it():
    """Sequential.add of a first layer that declares an input shape and cannot build on it: the
    model is as it was, with no input shape, so the next layer's declared shape is the one used."""
    m = fastnn.Sequential()
    with pytest.raises(ValueError, match="target_shape"):
        m.add(L.Reshape((7,), input_shape=(3,)))
    assert m.layers == [] and m._input_shape is None and not m.built
    m.add(L.Dense(2, input_shape=(4,)))
    assert [w.shape for w in m.get_weights()] == [(4, 2), (2,)]
