"""Whole-model float64 gradient checks: centered differences over every parameter,
relative error < 1e-7, for every layer, loss and regularizer (dropout off)."""
import numpy as np
import pytest

import fastnn
from fastnn import layers as L
from fastnn import losses, regularizers

H = 1e-5


def numeric_gradient(model, x, y):
    xp, yp = model._prepare_xy(x, y)
    p = model._params
    g = np.zeros_like(p)
    ranges, _, _ = model._trainable_layout()
    for i in (i for a, b in ranges for i in range(a, b)):
        old = p[i]
        p[i] = old + H
        fp = model._loss_value(xp, yp)
        p[i] = old - H
        fm = model._loss_value(xp, yp)
        p[i] = old
        g[i] = (fp - fm) / (2 * H)
    return g


def check(model, x, y, loss, regularizer=None, tol=1e-7):
    model.compile(optimizer="sgd", loss=loss, regularizer=regularizer)
    _, analytic = model.compute_loss_and_gradients(x, y)
    numeric = numeric_gradient(model, x, y)
    ranges, _, _ = model._trainable_layout()
    keep = np.zeros(analytic.size, bool)
    for a, b in ranges:
        keep[a:b] = True
    analytic, numeric = analytic[keep], numeric[keep]
    err = np.linalg.norm(analytic - numeric) / max(np.linalg.norm(analytic) + np.linalg.norm(numeric), 1e-30)
    assert err < tol, f"relative error {err:.3g}"
    assert np.linalg.norm(analytic) > 0


def data(n=7, d=5, classes=3, seed=0):
    r = np.random.default_rng(seed)
    x = r.normal(size=(n, d))
    return x, r.integers(0, classes, n)


def seq(layers, d=5):
    fastnn.set_random_seed(1)
    return fastnn.Sequential([L.Input(d)] + layers, dtype="float64")


@pytest.mark.parametrize("act", ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "swish",
                                 "softplus", "linear"])
def test_dense_every_activation(act):
    x, y = data()
    m = seq([L.Dense(6, activation=act), L.Dense(3, activation="softmax")])
    check(m, x, y, "sparse_categorical_crossentropy")


def test_dense_softmax_output_with_mse_is_not_fused():
    x, y = data()
    m = seq([L.Dense(4, activation="tanh"), L.Dense(3, activation="softmax")])
    check(m, x, np.eye(3)[y], "mse")


def test_activation_layers_and_objects():
    x, y = data()
    m = seq([L.Dense(6), L.Activation("elu"), L.Dense(6, activation=fastnn.activations.LeakyReLU(0.3)),
             L.Activation(fastnn.activations.ELU(0.5)), L.Dense(3), L.Activation("softmax")])
    check(m, x, y, "sparse_categorical_crossentropy")


@pytest.mark.parametrize("center,scale", [(True, True), (False, True), (True, False)])
def test_batch_normalization_training_mode(center, scale):
    x, y = data(n=9)
    m = seq([L.Dense(6, activation="relu"), L.BatchNormalization(center=center, scale=scale),
             L.Dense(3, activation="softmax")])
    m.layers[1].set_weights([w + 0.1 * np.arange(w.size) for w in m.layers[1].get_weights()])
    check(m, x, y, "sparse_categorical_crossentropy")


def test_batch_normalization_frozen_is_inference_mode():
    x, y = data(n=9)
    m = seq([L.Dense(6, activation="tanh"), L.BatchNormalization(), L.Dense(3, activation="softmax")])
    bn = m.layers[1]
    bn.set_weights([np.linspace(0.5, 1.5, 6), np.linspace(-0.2, 0.2, 6), np.linspace(-0.1, 0.1, 6),
                    np.linspace(0.5, 2.0, 6)])
    bn.trainable = False
    check(m, x, y, "sparse_categorical_crossentropy")


def test_prelu():
    x, y = data()
    m = seq([L.Dense(6), L.PReLU(alpha_initializer=fastnn.initializers.Constant(0.25)),
             L.Dense(3, activation="softmax")])
    check(m, x, y, "sparse_categorical_crossentropy")


def test_maxout():
    x, y = data()
    m = seq([L.Maxout(4, pieces=3), L.Dense(3, activation="softmax")])
    check(m, x, y, "sparse_categorical_crossentropy")


def test_flatten_on_image_input():
    r = np.random.default_rng(0)
    x = r.normal(size=(5, 3, 4))
    fastnn.set_random_seed(1)
    m = fastnn.Sequential([L.Input((3, 4)), L.Flatten(), L.Dense(5, activation="tanh"), L.Dense(2)],
                          dtype="float64")
    check(m, x, r.normal(size=(5, 2)), "mse")


def test_dropout_at_rate_zero_and_inference_passes_gradients():
    x, y = data()
    m = seq([L.Dense(6, activation="tanh"), L.Dropout(0.0), L.Dense(3, activation="softmax")])
    check(m, x, y, "sparse_categorical_crossentropy")


def test_functional_model():
    x, y = data()
    fastnn.set_random_seed(2)
    inp = L.Input(5)
    out = L.Dense(3, activation="softmax")(L.Dense(6, activation="sigmoid")(inp))
    check(fastnn.Model(inp, out, dtype="float64"), x, y, "sparse_categorical_crossentropy")


@pytest.mark.parametrize("loss,kind", [
    ("mse", "regression"), ("mae", "regression"),
    ("binary_crossentropy", "binary_sigmoid"), (losses.BinaryCrossentropy(from_logits=True), "binary_logits"),
    ("categorical_crossentropy", "onehot_softmax"),
    (losses.CategoricalCrossentropy(from_logits=True), "onehot_logits"),
    ("sparse_categorical_crossentropy", "sparse_softmax"),
    (losses.SparseCategoricalCrossentropy(from_logits=True), "sparse_logits"),
])
def test_every_loss(loss, kind):
    x, c = data()
    r = np.random.default_rng(3)
    out = {"regression": (2, None), "binary_sigmoid": (2, "sigmoid"), "binary_logits": (2, None),
           "onehot_softmax": (3, "softmax"), "onehot_logits": (3, None),
           "sparse_softmax": (3, "softmax"), "sparse_logits": (3, None)}[kind]
    y = {"regression": r.normal(size=(7, 2)), "binary_sigmoid": r.integers(0, 2, (7, 2)).astype(float),
         "binary_logits": r.integers(0, 2, (7, 2)).astype(float), "onehot_softmax": np.eye(3)[c],
         "onehot_logits": np.eye(3)[c], "sparse_softmax": c, "sparse_logits": c}[kind]
    m = seq([L.Dense(6, activation="tanh"), L.Dense(out[0], activation=out[1])])
    check(m, x, y, loss)


@pytest.mark.parametrize("name", ["binary_crossentropy", "categorical_crossentropy",
                                  "sparse_categorical_crossentropy"])
def test_losses_from_probabilities(name):
    """The unfused paths: the loss takes probabilities directly."""
    r = np.random.default_rng(4)
    p = r.uniform(0.05, 0.95, size=(6, 3))
    if name == "binary_crossentropy":
        y = r.integers(0, 2, (6, 3)).astype(float)
    elif name == "categorical_crossentropy":
        y = np.eye(3)[r.integers(0, 3, 6)]
    else:
        y = r.integers(0, 3, 6)
    loss = losses.get(name)
    _, g = loss.value_and_grad(p, y, False)
    num = np.zeros_like(p)
    for i in np.ndindex(p.shape):
        q = p.copy(); q[i] += H
        fp = loss.value_and_grad(q, y, False)[0]
        q[i] -= 2 * H
        num[i] = (fp - loss.value_and_grad(q, y, False)[0]) / (2 * H)
    assert np.linalg.norm(g - num) / np.linalg.norm(g + num) < 1e-7


@pytest.mark.parametrize("reg", [regularizers.L1(0.01), regularizers.L2(0.02), regularizers.L1L2(0.01, 0.02)])
def test_layer_regularizers(reg):
    x, y = data()
    m = seq([L.Dense(6, activation="tanh", kernel_regularizer=reg), L.Dense(3, activation="softmax")])
    check(m, x, y, "sparse_categorical_crossentropy")


def test_model_wide_regularizer_plus_layer_one():
    x, y = data()
    m = seq([L.Dense(6, activation="tanh", kernel_regularizer=regularizers.L1(0.01)),
             L.Dense(3, activation="softmax")])
    check(m, x, y, "sparse_categorical_crossentropy", regularizer=regularizers.L2(0.05))
