"""Huber, Hinge, SquaredHinge, KLDivergence and label smoothing: Keras 3 formulas, float64 NumPy
twins of the value and gradient, one training step through the model, config round trips."""
import numpy as np
import pytest

import fastnn
from fastnn import losses as Ls
from helpers import numeric_grad


def huber_twin(y, p, d=1.0):
    e = p - y
    return np.mean(np.where(np.abs(e) <= d, 0.5 * e ** 2, d * np.abs(e) - 0.5 * d ** 2))


def hinge_labels(y):
    return 2 * y - 1 if np.all((y == 0) | (y == 1)) else y


def hinge_twin(y, p):
    return np.mean(np.maximum(1 - hinge_labels(y) * p, 0))


def sq_hinge_twin(y, p):
    return np.mean(np.maximum(1 - hinge_labels(y) * p, 0) ** 2)


def kl_twin(y, p):
    t, q = np.clip(y, 1e-7, 1), np.clip(p, 1e-7, 1)
    return np.mean(np.sum(t * np.log(t / q), axis=-1))


def cce_twin(y, p, ls=0.0):
    y = y * (1 - ls) + ls / y.shape[-1]
    return np.mean(-np.sum(y * np.log(np.clip(p, 1e-7, 1 - 1e-7)), axis=-1))


def bce_twin(y, p, ls=0.0):
    y = y * (1 - ls) + 0.5 * ls
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))


rng = np.random.default_rng(0)
P = rng.uniform(0.05, 0.95, size=(6, 4))
PSM = P / P.sum(1, keepdims=True)
Y01 = (rng.uniform(size=(6, 4)) > 0.5).astype(float)
YPM = 2 * Y01 - 1
YOH = np.eye(4)[rng.integers(0, 4, 6)]
Z = rng.normal(size=(6, 4)) * 2

CASES = [
    (Ls.Huber(), huber_twin, Y01 * 3, Z),
    (Ls.Huber(delta=0.3), lambda y, p: huber_twin(y, p, 0.3), Y01 * 3, Z),
    (Ls.Hinge(), hinge_twin, Y01, Z * 0.7),
    (Ls.Hinge(), hinge_twin, YPM, Z * 0.7),
    (Ls.SquaredHinge(), sq_hinge_twin, Y01, Z * 0.7),
    (Ls.KLDivergence(), kl_twin, PSM[::-1].copy(), PSM),
    (Ls.CategoricalCrossentropy(label_smoothing=0.1), lambda y, p: cce_twin(y, p, 0.1), YOH, PSM),
    (Ls.BinaryCrossentropy(label_smoothing=0.2), lambda y, p: bce_twin(y, p, 0.2), Y01, P),
]


@pytest.mark.parametrize("loss,twin,y,p", CASES)
def test_value_and_gradient_vs_numpy_twin(loss, twin, y, p):
    value, grad = loss.value_and_grad(p.copy(), y.copy(), False)
    assert value == pytest.approx(twin(y, p), rel=1e-12)
    np.testing.assert_allclose(grad, numeric_grad(lambda q: twin(y, q), p), rtol=1e-6, atol=1e-9)
    g32 = loss.value_and_grad(p.astype(np.float32), y.astype(np.float32), False)[1]
    assert g32.dtype == np.float32
    np.testing.assert_allclose(g32, grad, rtol=1e-4, atol=1e-6)


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_label_smoothing_on_the_fused_logits_paths():
    cce = Ls.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)
    v, g = cce.value_and_grad(Z.copy(), YOH.copy(), True)
    assert v == pytest.approx(cce_twin(YOH, _softmax(Z), 0.1), rel=1e-9)
    np.testing.assert_allclose(g, numeric_grad(lambda z: cce_twin(YOH, _softmax(z), 0.1), Z), rtol=1e-6, atol=1e-9)
    bce = Ls.BinaryCrossentropy(from_logits=True, label_smoothing=0.2)
    v, g = bce.value_and_grad(Z.copy(), Y01.copy(), True)
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    assert v == pytest.approx(bce_twin(Y01, sig(Z), 0.2), rel=1e-9)
    np.testing.assert_allclose(g, numeric_grad(lambda z: bce_twin(Y01, sig(z), 0.2), Z), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("loss,twin,out_act,y", [
    (Ls.Huber(0.5), lambda y, p: huber_twin(y, p, 0.5), None, Y01 * 3),
    (Ls.Hinge(), hinge_twin, "tanh", Y01),
    (Ls.SquaredHinge(), sq_hinge_twin, "tanh", YPM),
    (Ls.KLDivergence(), kl_twin, "softmax", PSM),
    (Ls.CategoricalCrossentropy(label_smoothing=0.1), lambda y, p: cce_twin(y, p, 0.1), "softmax", YOH),
    (Ls.BinaryCrossentropy(label_smoothing=0.2), lambda y, p: bce_twin(y, p, 0.2), "sigmoid", Y01),
])
def test_one_sgd_step_vs_numpy_twin(loss, twin, out_act, y):
    x = np.random.default_rng(1).normal(size=(6, 3))
    m = fastnn.Sequential([fastnn.layers.Dense(4, activation=out_act, input_dim=3)], dtype="float64")
    m.compile(fastnn.optimizers.SGD(learning_rate=0.3), loss)
    W, b = [w.copy() for w in m.get_weights()]
    act = {None: lambda z: z, "tanh": np.tanh, "softmax": _softmax, "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
           }[out_act]
    gW = numeric_grad(lambda w: twin(y, act(x @ w + b)), W)
    gb = numeric_grad(lambda c: twin(y, act(x @ W + c)), b)
    hist = m.fit(x, y, batch_size=6, epochs=1, shuffle=False, verbose=0)
    assert hist.history["loss"][0] == pytest.approx(twin(y, act(x @ W + b)), rel=1e-10)
    np.testing.assert_allclose(m.get_weights()[0], W - 0.3 * gW, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(m.get_weights()[1], b - 0.3 * gb, rtol=1e-7, atol=1e-9)


def test_names_config_and_refusals(tmp_path):
    for name, cls in [("huber", Ls.Huber), ("hinge", Ls.Hinge), ("squared_hinge", Ls.SquaredHinge),
                      ("kl_divergence", Ls.KLDivergence), ("kld", Ls.KLDivergence)]:
        assert type(Ls.get(name)) is cls
    for loss in (Ls.Huber(0.25), Ls.CategoricalCrossentropy(label_smoothing=0.1),
                 Ls.BinaryCrossentropy(True, label_smoothing=0.05), Ls.SquaredHinge()):
        again = Ls.get(Ls.serialize(loss))
        assert type(again) is type(loss) and again.get_config() == loss.get_config()
    assert Ls.CategoricalCrossentropy().get_config() == {"from_logits": False}  # old files unchanged
    with pytest.raises(TypeError):
        Ls.SparseCategoricalCrossentropy(label_smoothing=0.1)  # Keras 3 has none for sparse labels
    with pytest.raises(ValueError, match="label_smoothing"):
        Ls.CategoricalCrossentropy(label_smoothing=1.5)
    with pytest.raises(ValueError, match="delta"):
        Ls.Huber(delta=0)
    m = fastnn.Sequential([fastnn.layers.Dense(4, activation="softmax", input_dim=3)])
    m.compile("sgd", Ls.KLDivergence())
    with pytest.raises(ValueError, match="range"):
        m.fit(np.zeros((2, 3), np.float32), np.full((2, 4), -0.5), verbose=0)
    m.compile("adam", Ls.CategoricalCrossentropy(label_smoothing=0.1))
    m.fit(np.ones((4, 3), np.float32), YOH[:4], verbose=0)
    m.save(tmp_path / "m.fnn")
    again = fastnn.models.load_model(tmp_path / "m.fnn")
    assert again.loss.get_config() == {"from_logits": False, "label_smoothing": 0.1}
