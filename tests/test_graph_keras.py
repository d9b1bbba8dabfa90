"""The same graph in real Keras 3 and in fastnn, same weights: predictions, per-output logs
of evaluate and one SGD step agree (skipped where Keras is not installed)."""
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")

import fastnn  # noqa: E402
from fastnn import layers as F  # noqa: E402



def _build(L, Model):
    """Two inputs, every merge layer, a residual block, a shared layer, two outputs."""
    a, b = L.Input((3,), name="a"), L.Input((4,), name="b")
    ha = L.Dense(5, activation="tanh", name="ha")(a)
    hb = L.Dense(5, activation="sigmoid", name="hb")(b)
    merged = [getattr(L, k)(name=k.lower())([ha, hb]) for k in ("Add", "Subtract", "Multiply", "Average", "Maximum")]
    shared = L.Dense(5, activation="tanh", name="shared")
    m = L.Concatenate(name="cat")(merged + [shared(ha), shared(hb)])
    h = L.Dense(5, activation="tanh", name="h")(m)
    h = L.Add(name="res")([h, L.Dense(5, name="skip")(m)])
    cls = L.Dense(3, activation="softmax", name="cls")(h)
    reg = L.Dense(2, name="reg")(h)
    return Model([a, b], [cls, reg])


@pytest.mark.slow
def test_graph_matches_keras():
    rng = np.random.default_rng(0)
    km = _build(keras.layers, keras.Model)
    fm = _build(F, fastnn.Model)
    for layer in fm.layers:
        if layer.specs:
            km.get_layer(layer.name).set_weights(layer.get_weights())
    x = {"a": rng.normal(size=(16, 3)).astype(np.float32), "b": rng.normal(size=(16, 4)).astype(np.float32)}
    y = {"cls": rng.integers(0, 3, 16), "reg": rng.normal(size=(16, 2)).astype(np.float32)}
    for p, q in zip(km.predict(x, verbose=0), fm.predict(x)):
        np.testing.assert_allclose(q, p, rtol=1e-4, atol=1e-5)
    kw = dict(loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"}, loss_weights={"cls": 1.0, "reg": 0.5},
              metrics={"cls": ["accuracy"], "reg": ["mae"]})
    km.compile(keras.optimizers.SGD(learning_rate=0.1), **kw)
    fm.compile(fastnn.optimizers.SGD(learning_rate=0.1), **kw)
    k_logs = km.evaluate(x, y, verbose=0, return_dict=True)
    f_logs = fm.evaluate(x, y, return_dict=True)
    assert set(k_logs) == set(f_logs)
    for name, v in k_logs.items():
        assert f_logs[name] == pytest.approx(v, rel=1e-4, abs=1e-6), name
    km.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    fm.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    for layer in fm.layers:
        for w, kw_ in zip(layer.get_weights(), km.get_layer(layer.name).get_weights()):
            np.testing.assert_allclose(w, kw_, rtol=1e-4, atol=1e-5, err_msg=layer.name)
