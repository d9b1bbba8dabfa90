"""The second round of Keras 3 layers against Keras itself (jax backend) on the same weights
and inputs: outputs, configs, GaussianDropout's training noise statistics, and
ActivityRegularization's loss in evaluate and in one fit step."""
import os

import numpy as np
import pytest

import fastnn
from fastnn import layers as L

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "jax":
    pytest.skip("Keras runs another backend in this process", allow_module_level=True)

rng = np.random.default_rng(0)


def _x(shape, n=6, seed=0):
    return np.random.default_rng(seed).normal(size=(n,) + tuple(shape)).astype(np.float32)


SINGLE = [  # (ours, theirs, feature shape)
    (lambda: L.UnitNormalization(), lambda: keras.layers.UnitNormalization(), (5,)),
    (lambda: L.UnitNormalization(axis=[1, 2]), lambda: keras.layers.UnitNormalization(axis=[1, 2]), (3, 4)),
    (lambda: L.RMSNormalization(), lambda: keras.layers.RMSNormalization(), (5,)),
    (lambda: L.RMSNormalization(axis=-1, epsilon=1e-2), lambda: keras.layers.RMSNormalization(epsilon=1e-2),
     (3, 4)),
    (lambda: L.RMSNormalization(axis=[1, 2]), lambda: keras.layers.RMSNormalization(axis=[1, 2]), (3, 4)),
    (lambda: L.GroupNormalization(2), lambda: keras.layers.GroupNormalization(2), (6,)),
    (lambda: L.GroupNormalization(2, axis=1, epsilon=1e-2), lambda: keras.layers.GroupNormalization(
        2, axis=1, epsilon=1e-2), (4, 3)),
    (lambda: L.GroupNormalization(-1, center=False), lambda: keras.layers.GroupNormalization(-1, center=False),
     (3, 4)),
    (lambda: L.RepeatVector(3), lambda: keras.layers.RepeatVector(3), (4,)),
    (lambda: L.Permute((2, 1)), lambda: keras.layers.Permute((2, 1)), (3, 4)),
    (lambda: L.Permute((3, 1, 2)), lambda: keras.layers.Permute((3, 1, 2)), (2, 3, 4)),
    (lambda: L.GaussianDropout(0.3), lambda: keras.layers.GaussianDropout(0.3), (5,)),
    (lambda: L.ActivityRegularization(l1=0.1), lambda: keras.layers.ActivityRegularization(l1=0.1), (5,)),
    (lambda: L.Identity(), lambda: keras.layers.Identity(), (5,)),
]


@pytest.mark.parametrize("ours,theirs,shape", SINGLE)
def test_single_input_layers_match_keras_on_the_same_weights(ours, theirs, shape):
    x = _x(shape)
    mine, k = ours(), theirs()
    y_k = np.asarray(k(x))  # inference
    y = mine(x)
    if k.weights:
        w = [rng.normal(size=v.shape).astype(np.float32) for v in k.get_weights()]
        k.set_weights(w)
        mine.set_weights(w)
        y_k, y = np.asarray(k(x)), mine(x)
    assert y.shape == y_k.shape
    np.testing.assert_allclose(y, y_k, rtol=2e-5, atol=2e-6)
    # the same keys (name, trainable, dtype and the arguments); constraints: saved by fastnn only when set
    assert set(mine.get_config()) | set(mine._optional_config_keys) == set(k.get_config())


MERGES = [  # (ours, theirs, shapes)
    (lambda: L.Minimum(), lambda: keras.layers.Minimum(), [(4,), (4,), (4,)]),
    (lambda: L.Dot(1), lambda: keras.layers.Dot(1), [(4,), (4,)]),
    (lambda: L.Dot(-1, normalize=True), lambda: keras.layers.Dot(-1, normalize=True), [(4,), (4,)]),
    (lambda: L.Dot((1, 2)), lambda: keras.layers.Dot((1, 2)), [(3, 5), (10, 3)]),
    (lambda: L.Dot((2, 1), normalize=True), lambda: keras.layers.Dot((2, 1), normalize=True), [(3, 5), (5, 2)]),
    (lambda: L.Dot(2), lambda: keras.layers.Dot(2), [(3, 4), (2, 4)]),
    (lambda: L.Dot((1, 2)), lambda: keras.layers.Dot((1, 2)), [(4,), (3, 4)]),
]


@pytest.mark.parametrize("ours,theirs,shapes", MERGES)
def test_merge_layers_match_keras(ours, theirs, shapes):
    xs = [_x(s, seed=i) for i, s in enumerate(shapes)]
    mine, k = ours(), theirs()
    y_k = np.asarray(k(xs))
    y = mine(xs)
    assert y.shape == y_k.shape
    np.testing.assert_allclose(y, y_k, rtol=2e-5, atol=2e-6)
    base = {"name", "trainable", "dtype"}
    assert set(mine.get_config()) - base == set(k.get_config()) - base


@pytest.mark.parametrize("name", ["add", "subtract", "multiply", "average", "maximum", "minimum", "concatenate",
                                  "dot"])
def test_functional_helpers_match_keras(name):
    xs = [_x((4,), seed=1), _x((4,), seed=2)]
    kw = {"axes": 1} if name == "dot" else {}
    np.testing.assert_allclose(getattr(L, name)(xs, **kw), np.asarray(getattr(keras.layers, name)(xs, **kw)),
                               rtol=2e-6, atol=1e-6)


def test_gaussian_dropout_training_noise_has_keras_distribution():
    x = np.full((300, 40), 3.0, dtype=np.float32)
    ours = L.GaussianDropout(0.4, seed=1)(x, training=True) / 3.0
    theirs = np.asarray(keras.layers.GaussianDropout(0.4, seed=1)(x, training=True)) / 3.0
    for n in (ours, theirs):  # N(1, rate / (1 - rate)) in both
        assert abs(n.mean() - 1.0) < 0.02 and abs(n.var() - 0.4 / 0.6) < 0.03
    np.testing.assert_allclose(ours.var(), theirs.var(), rtol=0.06)


def _pair(l1, l2):
    r = np.random.default_rng(4)
    ours = fastnn.Sequential([L.Input(4), L.Dense(5, activation="tanh"), L.ActivityRegularization(l1=l1, l2=l2),
                              L.Dense(2)])
    theirs = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, activation="tanh"),
                               keras.layers.ActivityRegularization(l1=l1, l2=l2), keras.layers.Dense(2)])
    w = [r.normal(size=v.shape).astype(np.float32) for v in theirs.get_weights()]
    ours.set_weights(w)
    theirs.set_weights(w)
    ours.compile(fastnn.optimizers.SGD(learning_rate=0.1), "mse")
    theirs.compile(keras.optimizers.SGD(learning_rate=0.1), "mse")
    return ours, theirs


def test_activity_regularization_loss_and_training_step_match_keras():
    x, y = _x((4,), n=10, seed=1), _x((2,), n=10, seed=2)
    ours, theirs = _pair(0.05, 0.2)
    ev_k = theirs.evaluate(x, y, batch_size=4, verbose=0)
    ev = ours.evaluate(x, y, batch_size=4)
    assert ev == pytest.approx(ev_k, rel=2e-5)
    h_k = theirs.fit(x, y, batch_size=10, epochs=1, shuffle=False, verbose=0).history["loss"][0]
    h = ours.fit(x, y, batch_size=10, epochs=1, shuffle=False, verbose=0).history["loss"][0]
    assert h == pytest.approx(h_k, rel=2e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


def _graph(lib):
    """The same functional model in fastnn (lib=L) or Keras (lib=keras.layers), and its layers
    holding variables in the order they were made."""
    inp = (L.Input(4) if lib is L else keras.Input((4,)))
    d1, d2, d3 = lib.Dense(6, activation="tanh"), lib.Dense(6), lib.Dense(2)
    rms, gn = lib.RMSNormalization(), lib.GroupNormalization(groups=3)
    h = d1(inp)
    g = lib.UnitNormalization()(d2(inp))
    h = lib.minimum([gn(rms(h)), g])
    r = lib.Permute((2, 1))(lib.RepeatVector(2)(h))
    d = lib.Dot(axes=(1, 1))([r, lib.Reshape((6, 1))(g)])
    out = d3(lib.concatenate([lib.Flatten()(d), h, lib.dot([h, g], axes=1, normalize=True)]))
    return (fastnn.Model if lib is L else keras.Model)(inp, out), [d1, d2, d3, rms, gn]


def test_one_training_step_of_a_graph_of_the_new_layers_matches_keras():
    x, y = _x((4,), n=12, seed=5), _x((2,), n=12, seed=6)
    (ours, mine), (theirs, keras_layers) = _graph(L), _graph(keras.layers)
    r = np.random.default_rng(8)
    for a, b in zip(mine, keras_layers):
        w = [r.normal(size=v.shape).astype(np.float32) for v in b.get_weights()]
        a.set_weights(w)
        b.set_weights(w)
    np.testing.assert_allclose(ours.predict(x), np.asarray(theirs.predict(x, verbose=0)), rtol=2e-5, atol=2e-5)
    ours.compile(fastnn.optimizers.SGD(learning_rate=0.1), "mse")
    theirs.compile(keras.optimizers.SGD(learning_rate=0.1), "mse")
    h = ours.fit(x, y, batch_size=12, epochs=1, shuffle=False, verbose=0).history["loss"][0]
    h_k = theirs.fit(x, y, batch_size=12, epochs=1, shuffle=False, verbose=0).history["loss"][0]
    assert h == pytest.approx(h_k, rel=2e-5)
    for a, b in zip(mine, keras_layers):
        for u, v in zip(a.get_weights(), b.get_weights()):
            np.testing.assert_allclose(u, v, rtol=1e-4, atol=2e-5)
