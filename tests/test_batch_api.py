"""Keras 3's one-batch API and eager calls: model(x, training=...), layer(x),
layer.kernel / .bias / .gamma / .moving_mean ..., train_on_batch / test_on_batch /
predict_on_batch. Each behaviour is tested on its own, and against Keras 3 (JAX backend)
on the same weights and data when Keras is installed."""

import numpy as np
import pytest

import fastnn
from fastnn.layers import BatchNormalization, Dense, Dropout, Input
from helpers import keras_on_jax


@pytest.fixture(scope="module")
def keras():
    return keras_on_jax()


def _data(n=16, d=4, k=3, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype(np.float32) * 2 + 0.5, rng.integers(0, k, n)


def _model(seed=0, dropout=0.3, bn=True, opt="adam", metrics=("accuracy",)):
    fastnn.utils.set_random_seed(seed)
    layers = [Dense(5, input_dim=4, activation="relu")] + ([BatchNormalization()] if bn else [])
    layers += ([Dropout(dropout, seed=2)] if dropout else []) + [Dense(3, activation="softmax")]
    m = fastnn.Sequential(layers)
    m.compile(opt, "sparse_categorical_crossentropy", metrics=list(metrics))
    return m


def _same(a, b):
    return all(np.array_equal(p, q) for p, q in zip(a.get_weights(), b.get_weights()))


# ----------------------------------------------------------------- model(x)
def test_model_call_inference_equals_predict_and_training_uses_batch_stats():
    m = _model()
    x, _ = _data()
    before = m.get_weights()
    out = m(x)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_array_equal(out, m.predict(x))
    np.testing.assert_array_equal(m(x, training=False), out)
    assert _same_list(before, m.get_weights())  # inference changes nothing
    bn = m.layers[1]
    t = m(x, training=True)
    assert t.shape == out.shape and not np.allclose(t, out)
    # BatchNormalization updated its moving statistics (as Keras 3); the kernels did not move
    assert not np.array_equal(bn.moving_mean, before[4])
    for a, b in zip(before[:4] + before[6:], m.get_weights()[:4] + m.get_weights()[6:]):
        np.testing.assert_array_equal(a, b)


def _same_list(a, b):
    return all(np.array_equal(p, q) for p, q in zip(a, b))


def test_model_call_training_dropout_follows_the_seed_sequence():
    a, b = _model(bn=False), _model(bn=False)
    x, _ = _data()
    first, second = a(x, training=True), a(x, training=True)
    assert not np.array_equal(first, second)  # a fresh mask at each call
    np.testing.assert_array_equal(b(x, training=True), first)  # same seed, same sequence
    h = a.layers[0](x)
    mask = a.layers[1](h, training=True) != 0
    assert 0 < mask.mean() < 1


def test_model_call_functional_and_refusals():
    x_in = Input(4)
    h = Dense(6, activation="relu")(x_in)
    out = Dense(2)(BatchNormalization()(h))
    m = fastnn.Model(x_in, out)
    x, _ = _data()
    assert m(x, training=True).shape == (16, 2)
    snapshot = [np.array(l.moving_mean) for l in m.layers if isinstance(l, BatchNormalization)]
    with pytest.raises(ValueError, match="at least 2 samples"):
        m(x[:1], training=True)
    assert np.array_equal(snapshot[0], m.layers[1].moving_mean)  # refused before any change
    with pytest.raises(TypeError, match="training"):
        m(x, 32)  # an old positional batch_size
    with pytest.raises(ValueError, match="mask"):
        m(x, mask=np.ones(16))
    with pytest.raises(ValueError, match="expected shape"):
        m(x[:, :3], training=True)
    with pytest.raises(TypeError, match="called on arrays"):
        m(Input(4))


def test_unbuilt_sequential_is_built_by_a_training_call():
    m = fastnn.Sequential([Dense(3), BatchNormalization()])
    x, _ = _data()
    assert m(x, training=True).shape == (16, 3) and m.built


# ----------------------------------------------------------------- layer(x)
def test_layer_call_on_arrays():
    d = Dense(2, kernel_initializer="ones", bias_initializer="ones")
    x = np.ones((3, 4))
    y = d(x)
    assert isinstance(y, np.ndarray) and y.dtype == np.float32 and d.built
    np.testing.assert_array_equal(y, np.full((3, 2), 5, np.float32))
    y[...] = 0  # a new array, not the layer's buffer
    np.testing.assert_array_equal(d(x), np.full((3, 2), 5, np.float32))
    with pytest.raises(ValueError, match=r"built for inputs of shape \(batch, 4\)"):
        d(np.ones((3, 5)))
    with pytest.raises(ValueError, match="NaN"):
        d(np.full((1, 4), np.nan))
    with pytest.raises(ValueError, match="at least one sample"):
        d(np.ones(4))
    with pytest.raises(TypeError, match="expected one input"):
        d([x, x])
    with pytest.raises(TypeError, match="expected numbers"):
        d(np.array([["a"]]))
    # a model placing the layer later keeps the values it was built with
    m = fastnn.Sequential([Input(4), d])
    np.testing.assert_array_equal(m.predict(x), np.full((3, 2), 5, np.float32))
    assert np.shares_memory(d.kernel, m.arena.params)


def test_layer_call_batchnorm_training_updates_moving_statistics():
    bn = BatchNormalization(momentum=0.5)
    x = _data()[0].astype(np.float64)
    y = bn(x, training=True)
    assert y.dtype == np.float32  # the layer's dtype (the global policy's), as Keras
    np.testing.assert_allclose(bn.moving_mean, 0.5 * x.mean(0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(bn.moving_variance, 0.5 + 0.5 * x.var(0, ddof=1), rtol=1e-5)  # unbiased (notes)
    np.testing.assert_allclose(y, (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-3), rtol=1e-4, atol=1e-5)
    mm = np.array(bn.moving_mean)
    y = bn(x)  # inference: the moving statistics, unchanged
    np.testing.assert_array_equal(bn.moving_mean, mm)
    with pytest.raises(ValueError, match="at least 2 samples"):
        bn(x[:1], training=True)
    np.testing.assert_array_equal(bn.moving_mean, mm)
    with pytest.raises(ValueError, match="training= and mask= apply to calls on arrays"):
        BatchNormalization()(Input(3), training=True)


# ------------------------------------------------------------ variables
def test_dense_and_batchnorm_variables_are_live_views():
    m = _model()
    d, bn = m.layers[0], m.layers[1]
    assert d.kernel.shape == (4, 5) and d.bias.shape == (5,)
    assert np.shares_memory(d.kernel, m.arena.params) and np.shares_memory(bn.gamma, m.arena.params)
    x, _ = _data()
    d.kernel[...] = 0
    d.bias[...] = 1
    np.testing.assert_array_equal(m.get_weights()[0], 0)
    # relu(1) everywhere: BatchNormalization sees a constant column
    np.testing.assert_allclose(m.layer_outputs(x)[d.name], 1)
    assert all(w is getattr(bn, n) for w, n in zip(bn.weights, ["gamma", "beta", "moving_mean", "moving_variance"]))
    assert len(bn.trainable_weights) == 2 and len(bn.non_trainable_weights) == 2
    assert bn.non_trainable_weights[0] is bn.moving_mean
    bn.trainable = False
    assert bn.trainable_weights == [] and len(bn.non_trainable_weights) == 4
    assert len(m.trainable_weights) == 4 and len(m.non_trainable_weights) == 4
    with pytest.raises(AttributeError, match="cannot be replaced"):
        d.kernel = np.zeros((4, 5))
    # Keras's variable methods on the same live array
    assert d.kernel is d.kernel
    d.kernel.assign(np.full((4, 5), 2.0))
    d.bias.assign_sub(np.ones(5))
    np.testing.assert_array_equal(m.get_weights()[0], 2)
    np.testing.assert_array_equal(m.get_weights()[1], 0)
    copy = d.kernel.numpy()
    assert type(copy) is np.ndarray and not np.shares_memory(copy, m.arena.params)
    with pytest.raises(ValueError, match=r"expected shape \(4, 5\)"):
        d.kernel.assign(1.0)
    import copy as _copy
    c = _copy.deepcopy(m)
    c.layers[0].kernel.assign(np.zeros((4, 5)))  # the copy's own views
    np.testing.assert_array_equal(c.get_weights()[0], 0)
    np.testing.assert_array_equal(m.get_weights()[0], 2)


def test_variables_off_and_before_build():
    assert Dense(2, use_bias=False).bias is None
    bn = BatchNormalization(scale=False, center=False)
    assert bn.gamma is None and bn.beta is None
    with pytest.raises(AttributeError, match="before accessing `kernel`"):
        Dense(2).kernel
    with pytest.raises(AttributeError, match="before accessing `moving_mean`"):
        bn.moving_mean
    assert not hasattr(Dense(2), "kernel")


# ----------------------------------------------------------- *_on_batch
@pytest.mark.parametrize("opt", ["adam", "sgd"])
def test_train_on_batch_is_one_step_of_fit_bitwise(opt):
    x, y = _data(32)
    a, b = _model(opt=opt), _model(opt=opt)
    w = np.linspace(0.5, 1.5, 32)
    for _ in range(3):
        got = a.train_on_batch(x, y, sample_weight=w, return_dict=True)
        h = b.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0, sample_weight=w).history
        assert got == {k: v[0] for k, v in h.items()}
    assert _same(a, b)
    assert a.optimizer.iterations == b.optimizer.iterations == 3
    got = a.train_on_batch(x, y, class_weight={0: 2.0})
    b.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0, class_weight={0: 2.0})
    assert isinstance(got, list) and len(got) == 2 and _same(a, b)


def test_train_on_batch_returns_and_refusals():
    m = _model(metrics=())
    x, y = _data()
    loss = m.train_on_batch(x, y)
    assert isinstance(loss, float)
    assert isinstance(m.test_on_batch(x, y), float)
    before = m.get_weights()
    it = m.optimizer.iterations
    for bad, err in [(dict(x=x, y=y + 3), ValueError), (dict(x=x[:, :3], y=y), ValueError),
                     (dict(x=x, y=y, sample_weight=-np.ones(16)), ValueError),
                     (dict(x=x, y=y, class_weight={7: 1.0}), ValueError),
                     (dict(x=x[:1], y=y[:1]), ValueError),  # BatchNormalization: a batch of 1
                     (dict(x=x, y=None), ValueError), (dict(x=iter([(x, y)]), y=None), TypeError)]:
        with pytest.raises(err):
            m.train_on_batch(**bad)
        assert _same_list(before, m.get_weights()) and m.optimizer.iterations == it
    with pytest.raises(fastnn.models.NotCompiledError):
        fastnn.Sequential([Dense(2, input_dim=3)]).train_on_batch(np.ones((2, 3)), np.ones((2, 2)))


def test_test_and_predict_on_batch():
    m = _model()
    x, y = _data()
    np.testing.assert_array_equal(m.predict_on_batch(x), m.predict(x))
    assert m.test_on_batch(x, y) == m.evaluate(x, y, batch_size=16)
    assert m.test_on_batch(x, y, return_dict=True) == m.evaluate(x, y, batch_size=16, return_dict=True)
    before = m.get_weights()
    m.test_on_batch(x, y)
    assert _same_list(before, m.get_weights())


def test_train_on_batch_multi_output():
    x_in = Input(4)
    h = Dense(6, activation="relu")(x_in)
    m = fastnn.Model(x_in, [Dense(3, activation="softmax", name="c")(h), Dense(1, name="r")(h)])
    m.compile("sgd", ["sparse_categorical_crossentropy", "mse"], metrics=[["accuracy"], []])
    x, y = _data()
    logs = m.train_on_batch(x, [y, x[:, :1]], return_dict=True)
    assert set(logs) >= {"loss", "c_loss", "r_loss", "c_accuracy"}
    outs = m.predict_on_batch(x)
    assert [o.shape for o in outs] == [(16, 3), (16, 1)]
    assert [o.shape for o in m(x, training=True)] == [(16, 3), (16, 1)]


# ------------------------------------------------------ against Keras 3
def _keras_twin(keras, m, opt):
    k = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, activation="relu"),
                          keras.layers.BatchNormalization(), keras.layers.Dense(3, activation="softmax")])
    k.set_weights(m.get_weights())
    k.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return k


def test_against_keras_calls_variables_and_batches(keras):
    m = _model(dropout=0, opt=fastnn.optimizers.SGD(0.1))
    k = _keras_twin(keras, m, keras.optimizers.SGD(0.1))
    x, y = _data(32)
    np.testing.assert_allclose(m(x), np.asarray(k(x)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m(x, training=True), np.asarray(k(x, training=True)), rtol=1e-4, atol=1e-5)
    # both updated the moving mean the same way (fastnn's variance is the unbiased one)
    np.testing.assert_allclose(m.layers[1].moving_mean, np.asarray(k.layers[1].moving_mean), rtol=1e-5, atol=1e-7)
    for name in ("kernel", "bias"):
        np.testing.assert_array_equal(getattr(m.layers[0], name), np.asarray(getattr(k.layers[0], name)))
    for name in ("gamma", "beta", "moving_mean"):
        assert getattr(m.layers[1], name).shape == tuple(getattr(k.layers[1], name).shape)
    assert len(m.trainable_weights) == len(k.trainable_weights)
    assert len(m.non_trainable_weights) == len(k.non_trainable_weights)
    k.layers[1].moving_variance.assign(m.layers[1].moving_variance)
    for _ in range(2):
        got, want = m.train_on_batch(x, y), k.train_on_batch(x, y)
        np.testing.assert_allclose(got, want, rtol=1e-5)
    kw = k.get_weights()
    for i, a in enumerate(m.get_weights()):
        if i != 5:  # the moving variance: biased in Keras, unbiased in fastnn (docs/PORTING_FROM_KERAS.md)
            np.testing.assert_allclose(a, kw[i], rtol=1e-4, atol=1e-6)
    k.layers[1].moving_variance.assign(m.layers[1].moving_variance)
    np.testing.assert_allclose(m.test_on_batch(x, y), k.test_on_batch(x, y), rtol=1e-4)
    assert m.test_on_batch(x, y, return_dict=True).keys() == k.test_on_batch(x, y, return_dict=True).keys()
    np.testing.assert_allclose(m.predict_on_batch(x), k.predict_on_batch(x), rtol=1e-4, atol=1e-6)
    assert m.train_on_batch(x, y, return_dict=True).keys() == k.train_on_batch(x, y, return_dict=True).keys()


def test_against_keras_layer_calls(keras):
    x = _data()[0]
    d, kd = Dense(3, activation="tanh"), keras.layers.Dense(3, activation="tanh")
    d(x)
    kd.build((None, 4))
    kd.set_weights(d.get_weights())
    np.testing.assert_allclose(d(x), np.asarray(kd(x)), rtol=1e-5, atol=1e-6)
    bn, kbn = BatchNormalization(), keras.layers.BatchNormalization()
    np.testing.assert_allclose(bn(x, training=True), np.asarray(kbn(x, training=True)), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.moving_mean, np.asarray(kbn.moving_mean), rtol=1e-5)
    kbn.moving_variance.assign(bn.moving_variance)  # fastnn's is the unbiased one
    np.testing.assert_allclose(bn(x), np.asarray(kbn(x)), rtol=1e-5, atol=1e-5)


def test_training_calls_of_a_mixed_bfloat16_model_return_float32():
    m = fastnn.Sequential([Dense(8, activation="relu", input_dim=4, dtype="mixed_bfloat16"),
                           Dense(8, activation="relu", dtype="mixed_bfloat16"), Dense(3)])
    m.compile("adam", "mse")
    x = _data()[0]
    m.train_on_batch(x, np.zeros((16, 3)))  # plans the bfloat16-stored activations
    assert m.layers[0]._bf16_readers  # the first layer's training output is stored as bfloat16
    for out in (m(x, training=True), m.layers[0](x, training=True)):
        assert out.dtype == np.float32 and np.isfinite(out).all()
    h = m.layers[0](x, training=True)
    np.testing.assert_allclose(h, m.layers[0](x), rtol=1e-2, atol=1e-2)  # bfloat16-rounded copy


def _interleaved():
    fastnn.utils.set_random_seed(0)
    m = fastnn.Sequential([Dense(16, activation="relu", input_dim=4), BatchNormalization(), Dropout(0.5, seed=3),
                           Dense(3)])
    m.compile("adam", fastnn.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _data(32)
    m.train_on_batch(x, y)
    out = m(x, training=True)  # advances Dropout's sequence and the moving statistics between steps
    m.train_on_batch(x, y)
    m.fit(x, y, batch_size=32, shuffle=False, verbose=0)
    return m.get_weights() + [out]


def test_training_calls_between_native_steps_match_the_python_step(monkeypatch):
    from fastnn import native_step
    calls = []
    real = native_step.try_step
    monkeypatch.setattr(native_step, "try_step", lambda *a: calls.append(real(*a)) or calls[-1])
    native = _interleaved()
    assert calls and all(c is not None for c in calls)  # every step ran natively
    monkeypatch.setenv("FASTNN_NATIVE_STEP", "0")
    python = _interleaved()
    assert _same_list(native, python)
