"""Keras 3 layers of the second round: GaussianDropout, ActivityRegularization, Minimum, Dot,
UnitNormalization, RMSNormalization, GroupNormalization, RepeatVector, Permute and the functional merge helpers
(add, ..., dot). Each: NumPy twin of the forward (float32 and float64), float64 gradient
check < 1e-7, config round trip, save/load, eager call, Sequential and functional use,
ONNX export or a clear refusal. Keras itself is not needed (tests/test_keras_parity_layers2.py
compares with it where installed)."""
import numpy as np
import pytest

import fastnn
from fastnn import layers as L
from fastnn.gradcheck import check_gradients, check_layer
from helpers import numeric_grad

rng = np.random.default_rng(0)


def _x(shape, n=5, seed=0):
    return np.random.default_rng(seed).normal(size=(n,) + tuple(shape))


def unit_twin(x, axis=-1):
    return x / np.sqrt(np.sum(x * x, axis=axis, keepdims=True))


def rms_twin(x, scale=1.0, axis=-1, eps=1e-6):
    return x / np.sqrt(np.mean(x * x, axis=axis, keepdims=True) + eps) * scale


def group_twin(x, groups, axis=-1, eps=1e-3):
    xt = np.moveaxis(x, axis, -1)
    g = xt.reshape(len(x), -1, groups, xt.shape[-1] // groups)
    g = (g - g.mean(axis=(1, 3), keepdims=True)) / np.sqrt(g.var(axis=(1, 3), keepdims=True) + eps)
    return np.moveaxis(g.reshape(xt.shape), -1, axis)


SINGLE = [  # (layer factory, twin, feature shape)
    (lambda: L.UnitNormalization(), unit_twin, (6,)),
    (lambda: L.UnitNormalization(axis=[1, 2]), lambda x: unit_twin(x, (1, 2)), (3, 4)),
    (lambda: L.UnitNormalization(axis=1), lambda x: unit_twin(x, 1), (3, 4)),
    (lambda: L.RMSNormalization(), rms_twin, (6,)),
    (lambda: L.RMSNormalization(axis=[-2, -1], epsilon=1e-3), lambda x: rms_twin(x, 1.0, (1, 2), 1e-3), (3, 4)),
    (lambda: L.GroupNormalization(groups=2), lambda x: group_twin(x, 2), (6,)),
    (lambda: L.GroupNormalization(groups=2, axis=1), lambda x: group_twin(x, 2, 1), (4, 3)),
    (lambda: L.GroupNormalization(groups=-1, epsilon=1e-2), lambda x: group_twin(x, 4, -1, 1e-2), (3, 4)),
    (lambda: L.GroupNormalization(groups=1, axis=2, center=False), lambda x: group_twin(x, 1, 2), (2, 3, 2)),
    (lambda: L.RepeatVector(3), lambda x: np.repeat(x[:, None, :], 3, axis=1), (4,)),
    (lambda: L.Permute((2, 1)), lambda x: x.transpose(0, 2, 1), (3, 4)),
    (lambda: L.Permute((3, 1, 2)), lambda x: x.transpose(0, 3, 1, 2), (2, 3, 4)),
    (lambda: L.ActivityRegularization(l1=0.1, l2=0.2), lambda x: x, (6,)),
    (lambda: L.GaussianDropout(0.3, seed=1), lambda x: x, (6,)),  # inference: the identity
]


@pytest.mark.parametrize("make,twin,shape", SINGLE)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_forward_vs_numpy_twin_in_sequential_and_eager(make, twin, shape, dtype):
    x = _x(shape)
    eager = make()
    eager.dtype_policy = dtype
    model = fastnn.Sequential([L.Input(shape), make()], dtype=dtype)
    for y in (model.predict(x.astype(dtype)), eager(x.astype(dtype))):
        assert y.dtype == dtype
        np.testing.assert_allclose(y, twin(x), **({"rtol": 1e-12, "atol": 1e-12} if dtype == "float64" else
                                                    {"rtol": 2e-6, "atol": 2e-6}))


@pytest.mark.parametrize("make,twin,shape", [c for c in SINGLE if not isinstance(c[0](), L.GaussianDropout)])
def test_gradient_check_float64(make, twin, shape):
    layer = make()
    x = _x(shape, seed=3)  # not check_layer's dy (seed 0): x . dy along x is a zero of UnitNormalization's gradient
    if isinstance(layer, (L.RMSNormalization, L.GroupNormalization)):  # non-trivial parameters
        layer.build(shape, "float64")
        for spec in layer.specs:
            layer.vars[spec.name] = rng.normal(size=spec.shape)
    report = check_layer(layer, x, eps=1e-6)
    assert all(c.rel_error < 1e-7 for c in report), str(report)
    assert [c.name.split("/")[1] for c in report] == [s.name for s in layer.specs] + ["input"]


def test_rms_normalization_scale_is_learned_and_used():
    layer = L.RMSNormalization()
    x = _x((4,))
    layer(x)
    assert [w.shape for w in layer.get_weights()] == [(4,)] and np.all(layer.scale == 1)
    s = np.array([0.5, -1.0, 2.0, 3.0], dtype=np.float32)
    layer.scale[...] = s
    np.testing.assert_allclose(layer(x), rms_twin(x, s), rtol=2e-6, atol=2e-6)


def test_unit_normalization_of_a_zero_sample_is_zero_with_a_finite_gradient():
    m = fastnn.Sequential([L.Input(3), L.UnitNormalization()], dtype="float64")
    x = np.array([[0.0, 0.0, 0.0], [3.0, 0.0, 4.0]])
    y = m.predict(x)
    np.testing.assert_array_equal(y[0], 0.0)
    np.testing.assert_allclose(y[1], [0.6, 0.0, 0.8])
    layer = m.layers[-1]
    layer.forward(x, True)
    dx = layer.backward(np.ones_like(x))
    assert np.all(np.isfinite(dx)) and np.allclose(dx[0], 1e12)  # Keras: x * min(1/||x||, 1e12)


# ---------------------------------------------------------------- GaussianDropout
def test_gaussian_dropout_noise_statistics_and_inference_identity():
    x = np.full((400, 50), 2.0, dtype=np.float32)
    layer = L.GaussianDropout(0.2, seed=3)
    y = layer(x, training=True)
    noise = y / 2.0
    assert abs(noise.mean() - 1.0) < 0.01 and abs(noise.var() - 0.25) < 0.01  # N(1, 0.2/0.8)
    np.testing.assert_array_equal(layer(x), x)
    np.testing.assert_array_equal(layer(x, training=False), x)
    np.testing.assert_array_equal(L.GaussianDropout(0.0, seed=3)(x, training=True), x)


def test_gaussian_dropout_is_reproducible_from_its_seed_and_fresh_each_call():
    x = _x((6,)).astype(np.float32)
    a, b = L.GaussianDropout(0.4, seed=7), L.GaussianDropout(0.4, seed=7)
    ya, yb = a(x, training=True), b(x, training=True)
    np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a(x, training=True), ya)
    assert not np.array_equal(L.GaussianDropout(0.4, seed=8)(x, training=True), ya)


def test_gaussian_dropout_gradient_is_the_noise_float64():
    """With the noise of one call held fixed (the call count rewound), d sum(y * dy) / dx
    by centred differences equals backward's dy * noise (< 1e-7)."""
    layer = L.GaussianDropout(0.3, seed=5)
    x = _x((4,))
    layer.build((4,), "float64")
    dy = rng.normal(size=x.shape)

    def f(xx):
        layer._calls = 0
        return float(np.sum(layer.forward(xx.copy(), True) * dy))
    num = numeric_grad(f, x)
    layer._calls = 0
    layer.forward(x.copy(), True)
    dx = layer.backward(dy.copy())
    assert np.max(np.abs(dx - num)) / np.max(np.abs(num)) < 1e-7
    with pytest.raises(ValueError, match="GaussianDropout"):
        check_layer(L.GaussianDropout(0.3), x)


def test_gaussian_dropout_training_resumes_its_noise_after_save_load(tmp_path):
    x, y = _x((4,), n=16, seed=1), _x((2,), n=16, seed=2)

    def make():
        m = fastnn.Sequential([L.Input(4), L.Dense(8, kernel_initializer="ones"), L.GaussianDropout(0.3, seed=9),
                               L.Dense(2, kernel_initializer="ones")], dtype="float64")
        m.compile(fastnn.optimizers.SGD(0.01), "mse")
        return m
    m = make()
    m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    m.save(tmp_path / "g.fnn")
    m2 = fastnn.models.load_model(tmp_path / "g.fnn")
    m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    m2.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(m.get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(a, b)
    fresh = make()  # the noise really acted: without it the run would differ
    fresh.layers[1].rate = 0.0
    fresh.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    assert not np.allclose(fresh.get_weights()[0], m.get_weights()[0])


def test_gaussian_dropout_is_skipped_by_model_gradient_checks():
    fastnn.utils.set_random_seed(0)  # the weights (else the global generator's state: order-dependent)
    m = fastnn.Sequential([L.Input(4), L.Dense(5, activation="tanh"), L.GaussianDropout(0.5),
                           L.Dense(3, activation="softmax")], dtype="float64")
    m.compile("sgd", "sparse_categorical_crossentropy")
    report = check_gradients(m, _x((4,), n=6), np.arange(6) % 3)
    assert report.ok and all(c.rel_error < 1e-7 for c in report)


# -------------------------------------------------------- ActivityRegularization
def _reg_model(l1, l2, dtype="float64"):
    m = fastnn.Sequential([L.Input(4), L.Dense(5, activation="tanh"), L.ActivityRegularization(l1=l1, l2=l2),
                           L.Dense(2)], dtype=dtype)
    r = np.random.default_rng(4)
    m.set_weights([r.normal(size=w.shape) for w in m.get_weights()])
    m.compile(fastnn.optimizers.SGD(learning_rate=0.1), "mse")
    return m


def _reg_twin(ws, x, y, l1, l2):
    W1, b1, W2, b2 = ws
    h = np.tanh(x @ W1 + b1)
    data = np.mean((h @ W2 + b2 - y) ** 2)
    return data, (l1 * np.abs(h).sum() + l2 * (h * h).sum()) / len(x)


def test_activity_regularization_one_sgd_step_and_reported_loss_vs_numpy_twin():
    x, y = _x((4,), n=8, seed=1), _x((2,), n=8, seed=2)
    m = _reg_model(0.05, 0.1)
    ws = [w.copy() for w in m.get_weights()]
    data, pen = _reg_twin(ws, x, y, 0.05, 0.1)
    assert pen > 0.01 * data  # a penalty that matters
    grads = []
    for i in range(4):
        def f(w, i=i):
            return sum(_reg_twin(ws[:i] + [w] + ws[i + 1:], x, y, 0.05, 0.1))
        grads.append(numeric_grad(f, ws[i]))
    hist = m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for w_new, w, g in zip(m.get_weights(), ws, grads):
        np.testing.assert_allclose(w_new, w - 0.1 * g, rtol=1e-7, atol=1e-9)
    assert hist.history["loss"][0] == pytest.approx(data + pen, rel=1e-12)
    assert hist.history["data_loss"][0] == pytest.approx(data, rel=1e-12)


def test_activity_regularization_in_evaluate_is_averaged_over_batches_as_keras():
    x, y = _x((4,), n=10, seed=3), _x((2,), n=10, seed=4)
    m = _reg_model(0.02, 0.3)
    ws = m.get_weights()
    data, _ = _reg_twin(ws, x, y, 0.02, 0.3)
    batches = [(0, 4), (4, 8), (8, 10)]  # Keras: each batch's loss weighted by its size
    pen = sum(_reg_twin(ws, x[a:b], y[a:b], 0.02, 0.3)[1] * (b - a) for a, b in batches) / 10
    logs = m.evaluate(x, y, batch_size=4, return_dict=True)
    assert logs["loss"] == pytest.approx(data + pen, rel=1e-12)
    assert logs["data_loss"] == pytest.approx(data, rel=1e-12)
    m.predict(x[:3])  # a forward pass elsewhere leaves no stale penalty behind
    assert m.evaluate(x, y, batch_size=4, return_dict=True)["loss"] == pytest.approx(data + pen, rel=1e-12)
    tb = m.train_on_batch(x, y, return_dict=True)
    assert tb["loss"] == pytest.approx(data + _reg_twin(ws, x, y, 0.02, 0.3)[1], rel=1e-12)


def test_activity_regularization_gradient_check_in_a_model_float64():
    m = _reg_model(0.1, 0.2)
    report = check_gradients(m, _x((4,), n=6), _x((2,), n=6, seed=5))
    assert report.ok and all(c.rel_error < 1e-7 for c in report), str(report)


def test_activity_regularization_shared_in_a_graph_counts_every_call():
    reg = L.ActivityRegularization(l2=0.5)
    xin = L.Input(3)
    d1, d2 = L.Dense(3, activation="tanh"), L.Dense(3, activation="tanh")
    a = reg(d1(xin))
    b = reg(d2(xin))
    out = L.Dense(1)(L.add([a, b]))
    m = fastnn.Model(xin, out, dtype="float64")
    m.compile("sgd", "mse")
    x, y = _x((3,), n=6, seed=6), _x((1,), n=6, seed=7)
    ha, hb = [np.tanh(x @ d.vars["kernel"] + d.vars["bias"]) for d in (d1, d2)]
    pen = 0.5 * ((ha ** 2).sum() + (hb ** 2).sum()) / 6
    logs = m.evaluate(x, y, batch_size=6, return_dict=True)
    assert logs["loss"] - logs["data_loss"] == pytest.approx(pen, rel=1e-12)
    report = check_gradients(m, x, y)
    assert report.ok and all(c.rel_error < 1e-7 for c in report), str(report)


def test_activity_regularization_eager_losses_and_identity():
    layer = L.ActivityRegularization(l1=0.5)
    assert layer.losses == []
    x = np.array([[1.0, -2.0], [0.5, 0.0]], dtype=np.float32)
    np.testing.assert_array_equal(layer(x), x)
    assert layer.losses == [pytest.approx(0.5 * 3.5 / 2)]


@pytest.mark.parametrize("kw,match", [({"l1": -0.1}, "l1"), ({"l2": float("nan")}, "l2"), ({"l1": "a"}, "l1"),
                                      ({"l2": True}, "l2")])
def test_activity_regularization_refuses_bad_factors(kw, match):
    with pytest.raises(ValueError, match=match):
        L.ActivityRegularization(**kw)


@pytest.mark.parametrize("rate", [1.0, -0.1, 1.5, "0.5", None, True])
def test_gaussian_dropout_refuses_bad_rates(rate):
    with pytest.raises(ValueError, match="rate"):
        L.GaussianDropout(rate)


# ---------------------------------------------------------------- merges
def _merge_inputs(n=3, seed=0):
    r = np.random.default_rng(seed)
    return [r.normal(size=(5, 4)).astype(np.float32) for _ in range(n)]


@pytest.mark.parametrize("fn,cls,twin", [
    (L.add, L.Add, lambda xs: xs[0] + xs[1] + xs[2]),
    (L.multiply, L.Multiply, lambda xs: xs[0] * xs[1] * xs[2]),
    (L.average, L.Average, lambda xs: (xs[0] + xs[1] + xs[2]) / 3),
    (L.maximum, L.Maximum, lambda xs: np.maximum(np.maximum(xs[0], xs[1]), xs[2])),
    (L.minimum, L.Minimum, lambda xs: np.minimum(np.minimum(xs[0], xs[1]), xs[2])),
    (L.concatenate, L.Concatenate, lambda xs: np.concatenate(xs, axis=-1)),
])
def test_functional_merge_helpers_on_arrays_and_tensors(fn, cls, twin):
    xs = _merge_inputs()
    np.testing.assert_allclose(fn(xs), twin(xs), rtol=1e-6)
    ins = [L.Input(4) for _ in range(3)]
    t = fn(ins, name=f"merged_{cls.__name__.lower()}")
    assert isinstance(t.layer, cls) and t.layer.name == f"merged_{cls.__name__.lower()}"
    m = fastnn.Model(ins, t)
    np.testing.assert_allclose(m.predict(xs), twin(xs), rtol=1e-6)


def test_functional_subtract_dot_and_concatenate_arguments():
    a, b = _merge_inputs(2)
    np.testing.assert_allclose(L.subtract([a, b]), a - b)
    np.testing.assert_allclose(L.dot([a, b], axes=1), np.sum(a * b, axis=1, keepdims=True), rtol=1e-6)
    x3 = [v.reshape(5, 2, 2) for v in (a, b)]
    np.testing.assert_allclose(L.concatenate(x3, axis=1), np.concatenate(x3, axis=1))
    assert L.dot([L.Input(4), L.Input(4)], axes=-1, normalize=True).layer.normalize is True


def test_minimum_gradient_goes_to_the_first_input_attaining_it():
    layer = L.Minimum()
    a = np.array([[1.0, 2.0, 3.0]])
    b = np.array([[1.0, 0.0, 4.0]])
    layer.build([(3,), (3,)], "float64")
    np.testing.assert_array_equal(layer.forward([a, b]), [[1.0, 0.0, 3.0]])
    da, db = layer.backward(np.ones((1, 3)))
    np.testing.assert_array_equal(da, [[1.0, 0.0, 1.0]])  # the tie at 0 stays with the first input
    np.testing.assert_array_equal(db, [[0.0, 1.0, 0.0]])


def dot_twin(x1, x2, a1, a2, normalize=False):
    if normalize:
        x1 = x1 / np.sqrt(np.sum(x1 * x1, axis=a1, keepdims=True))
        x2 = x2 / np.sqrt(np.sum(x2 * x2, axis=a2, keepdims=True))
    out = np.stack([np.tensordot(u, v, axes=(a1 - 1, a2 - 1)) for u, v in zip(x1, x2)])
    return out.reshape(len(x1), -1) if out.ndim == 1 else out


DOTS = [  # (axes, normalize, shape1, shape2, (a1, a2))
    (1, False, (4,), (4,), (1, 1)),
    (-1, True, (4,), (4,), (1, 1)),
    ((1, 2), False, (3, 5), (10, 3), (1, 2)),
    ((2, 1), True, (3, 5), (5, 2), (2, 1)),
    (2, False, (3, 4), (2, 4), (2, 2)),
    ((1, -1), False, (4,), (3, 4), (1, 2)),
]


@pytest.mark.parametrize("axes,normalize,s1,s2,ax", DOTS)
def test_dot_vs_numpy_twin_and_gradient(axes, normalize, s1, s2, ax):
    x1, x2 = _x(s1, seed=1), _x(s2, seed=2)
    want = dot_twin(x1, x2, *ax, normalize=normalize)
    layer = L.Dot(axes, normalize=normalize)
    got = layer([x1.astype(np.float32), x2.astype(np.float32)])
    assert got.shape == want.shape == (5,) + layer.output_shape
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)
    i1, i2 = L.Input(s1), L.Input(s2)
    d1, d2 = L.Dense(int(np.prod(s1))), L.Dense(int(np.prod(s2)))
    h = L.dot([L.Reshape(s1)(d1(i1 if len(s1) == 1 else L.Flatten()(i1))),
               L.Reshape(s2)(d2(i2 if len(s2) == 1 else L.Flatten()(i2)))], axes=axes, normalize=normalize)
    out = L.Dense(2)(L.Flatten()(h))
    m = fastnn.Model([i1, i2], out, dtype="float64")
    m.compile("sgd", "mse")
    np.testing.assert_allclose(m.predict([x1, x2]).shape, (5, 2))
    report = check_gradients(m, [x1, x2], _x((2,), seed=3))
    assert report.ok and all(c.rel_error < 1e-7 for c in report), str(report)


def test_dot_refuses_bad_axes():
    with pytest.raises(TypeError, match="axes"):
        L.Dot("1")
    with pytest.raises(ValueError, match="axes"):
        L.Dot((1, 2, 3))
    with pytest.raises(ValueError, match="axes"):
        L.Dot(0)([L.Input(3), L.Input(3)])
    with pytest.raises(ValueError, match="equal sizes"):
        L.Dot(1)([L.Input(3), L.Input(4)])
    with pytest.raises(ValueError, match="exactly 2"):
        L.Dot(1)([L.Input(3), L.Input(3), L.Input(3)])


def test_merge_layers_gradient_check_in_a_graph_float64():
    xin = L.Input(4)
    a, b, c = (L.Dense(4, activation="tanh")(xin) for _ in range(3))
    h = L.concatenate([L.minimum([a, b, c]), L.dot([a, b], axes=1, normalize=True)])
    m = fastnn.Model(xin, L.Dense(2)(h), dtype="float64")
    m.compile("sgd", "mse")
    report = check_gradients(m, _x((4,), n=6), _x((2,), n=6, seed=1))
    assert report.ok and all(c.rel_error < 1e-7 for c in report), str(report)


# ------------------------------------------------------------ reshaping
def test_repeat_vector_and_permute_refuse_bad_arguments():
    for n in (0, -1, 1.5, "2", True):
        with pytest.raises((ValueError, TypeError), match="n"):
            L.RepeatVector(n)
    with pytest.raises(ValueError, match="put a Flatten"):
        L.RepeatVector(2)(L.Input((2, 3)))
    for dims in ((1, 1), (0, 1), (2, 3), (1.0, 2)):
        with pytest.raises(ValueError, match="dims"):
            L.Permute(dims)
    with pytest.raises(TypeError, match="dims"):
        L.Permute(2)
    with pytest.raises(ValueError, match="permute 2 axes"):
        L.Permute((2, 1))(L.Input((2, 3, 4)))


def test_group_normalization_parameters_per_channel():
    layer = L.GroupNormalization(groups=2, axis=1)
    x = _x((4, 3), seed=4)
    layer(x)
    assert [w.shape for w in layer.get_weights()] == [(4,), (4,)]
    gamma, beta = np.array([1.0, 2.0, -1.0, 0.5]), np.array([0.1, 0.2, 0.3, 0.4])
    layer.gamma[...] = gamma
    layer.beta[...] = beta
    want = group_twin(x, 2, 1) * gamma[:, None] + beta[:, None]
    np.testing.assert_allclose(layer(x), want, rtol=2e-5, atol=2e-5)


def test_normalization_refuses_bad_arguments():
    with pytest.raises(TypeError, match="axis"):
        L.UnitNormalization(axis="1")
    with pytest.raises(ValueError, match="batch axis"):
        L.RMSNormalization(axis=0)(L.Input(3))
    with pytest.raises(ValueError, match="epsilon"):
        L.RMSNormalization(epsilon=0)
    for groups in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="groups"):
            L.GroupNormalization(groups)
    with pytest.raises(TypeError, match="axis"):
        L.GroupNormalization(axis=[1])
    with pytest.raises(ValueError, match="must divide"):
        L.GroupNormalization(groups=4)(L.Input(6))
    with pytest.raises(ValueError, match="must divide"):
        L.GroupNormalization()(L.Input(16))  # Keras's default 32 groups


def test_rejected_build_leaves_the_layer_unbuilt():
    layer = L.Permute((2, 1))
    with pytest.raises(ValueError):
        layer(np.ones((2, 3)))
    assert not layer.built
    assert layer(np.ones((2, 3, 4))).shape == (2, 4, 3)


# ------------------------------------------------------- config, save/load
ALL = [L.GaussianDropout(0.25, seed=3), L.ActivityRegularization(l1=0.01, l2=0.02), L.Minimum(), L.Dot((1, 2)),
       L.Dot(-1, normalize=True), L.UnitNormalization(axis=[1, 2]), L.RMSNormalization(axis=-1, epsilon=1e-4),
       L.GroupNormalization(groups=3, axis=1, epsilon=1e-2, center=False, gamma_regularizer="l2"),
       L.RepeatVector(3), L.Permute((2, 1))]


@pytest.mark.parametrize("layer", ALL, ids=lambda layer: type(layer).__name__)
def test_config_round_trip(layer):
    cfg = layer.get_config()
    again = L.deserialize({"class_name": type(layer).__name__, "config": cfg})
    assert type(again) is type(layer) and again.get_config() == cfg
    assert type(layer).from_config(cfg).get_config() == cfg


def test_default_names_as_keras():
    names = [layer.name.rsplit("_", 1)[0] if layer.name[-1].isdigit() else layer.name
             for layer in (L.RMSNormalization(), L.RMSNormalization(), L.GaussianDropout(0.1), L.RepeatVector(2),
                           L.ActivityRegularization(), L.UnitNormalization(), L.GroupNormalization())]
    assert names == ["rms_normalization"] * 2 + ["gaussian_dropout", "repeat_vector", "activity_regularization",
                                                 "unit_normalization", "group_normalization"]


def test_keras_argument_names_and_defaults():
    assert L.ActivityRegularization().get_config()["l1"] == 0.0 == L.ActivityRegularization().l2
    assert L.GaussianDropout(0.1).get_config()["rate"] == 0.1
    assert L.RMSNormalization().epsilon == 1e-6 and L.RMSNormalization().axis == -1
    assert L.UnitNormalization().axis == -1 and L.Dot(1).normalize is False


def _all_layers_model():
    xin = L.Input(4)
    h = L.Dense(6, activation="tanh")(xin)
    h = L.GaussianDropout(0.2, seed=1)(h)
    h = L.ActivityRegularization(l2=0.01)(h)
    h = L.GroupNormalization(groups=3)(L.RMSNormalization()(h))
    g = L.UnitNormalization()(L.Dense(6)(xin))
    h = L.minimum([h, g])
    r = L.Permute((2, 1))(L.RepeatVector(2)(h))
    d = L.Dot(axes=(1, 1))([r, L.Reshape((6, 1))(g)])
    out = L.Dense(2)(L.concatenate([L.Flatten()(d), h, L.dot([h, g], axes=1)]))
    return fastnn.Model(xin, out, dtype="float64")


def test_save_load_round_trip_of_a_graph_with_every_new_layer(tmp_path):
    m = _all_layers_model()
    r = np.random.default_rng(9)
    m.set_weights([r.normal(size=w.shape) for w in m.get_weights()])
    m.compile(fastnn.optimizers.SGD(0.01), "mse")
    x, y = _x((4,), n=8, seed=10), _x((2,), n=8, seed=11)
    m.fit(x, y, batch_size=4, epochs=1, verbose=0)
    m.save(tmp_path / "all.fnn")
    m2 = fastnn.models.load_model(tmp_path / "all.fnn")
    np.testing.assert_array_equal(m2.predict(x), m.predict(x))
    assert m2.evaluate(x, y, return_dict=True) == m.evaluate(x, y, return_dict=True)
    m.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    m2.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(m.get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(a, b)
    report = check_gradients(m, x, y)
    assert report.ok and all(c.rel_error < 1e-7 for c in report), str(report)


# ---------------------------------------------------------------- ONNX
def test_onnx_export_of_the_inference_identities_and_minimum(tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from fastnn.export import export_onnx
    xin = L.Input(4)
    a = L.Dense(5)(L.GaussianDropout(0.3)(xin))
    b = L.ActivityRegularization(l1=0.1)(L.Identity()(L.Dense(5)(xin)))
    m = fastnn.Model(xin, L.Dense(2)(L.minimum([a, b, L.Dense(5)(xin)])))
    x = _x((4,), n=7).astype(np.float32)
    path = export_onnx(m, tmp_path / "m.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, m.predict(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make", [lambda h: L.UnitNormalization()(h), lambda h: L.RMSNormalization()(h),
                                  lambda h: L.GroupNormalization(2)(h),
                                  lambda h: L.Dot(1)([h, h]), lambda h: L.Flatten()(L.RepeatVector(2)(h)),
                                  lambda h: L.Flatten()(L.Permute((2, 1))(L.Reshape((2, 2))(h)))])
def test_onnx_export_of_the_others(make, tmp_path):
    """Once refused, now exported (every option: tests/test_export_more_layers.py)."""
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from fastnn.export import export_onnx
    xin = L.Input(4)
    m = fastnn.Model(xin, make(L.Dense(4)(xin)))
    x = _x((4,), n=7).astype(np.float32)
    sess = ort.InferenceSession(str(export_onnx(m, tmp_path / "m.onnx")), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {sess.get_inputs()[0].name: x})[0], m.predict(x), rtol=1e-5,
                               atol=1e-6)
