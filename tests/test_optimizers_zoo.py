"""Nadam, Adamax, Lion and use_ema (weight averaging): float64 NumPy twins of Keras 3's formulas
over several steps, through fit, config round trips; Keras (jax backend) on a few steps."""
import os

import numpy as np
import pytest

import fastnn
from fastnn import optimizers as O


def adamax_twin(p, grads, lr=0.001, b1=0.9, b2=0.999, eps=1e-7, wd=0.0):
    m, u = np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, 1):
        p = p - lr * wd * p
        m = m + (g - m) * (1 - b1)
        u = np.maximum(b2 * u, np.abs(g))
        p = p - lr * m / ((1 - b1 ** t) * (u + eps))
    return p


def nadam_twin(p, grads, lr=0.001, b1=0.9, b2=0.999, eps=1e-7, wd=0.0):
    m, v, prod = np.zeros_like(p), np.zeros_like(p), 1.0
    for t, g in enumerate(grads, 1):
        p = p - lr * wd * p
        u_t, u_n = b1 * (1 - 0.5 * 0.96 ** t), b1 * (1 - 0.5 * 0.96 ** (t + 1))
        prod = prod * u_t
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        m_hat = u_n * m / (1 - prod * u_n) + (1 - u_t) * g / (1 - prod)
        p = p - lr * m_hat / (np.sqrt(v / (1 - b2 ** t)) + eps)
    return p


def lion_twin(p, grads, lr=0.001, b1=0.9, b2=0.99, wd=0.0):
    m = np.zeros_like(p)
    for g in grads:
        p = p - lr * wd * p
        p = p - lr * np.sign(m * b1 + g * (1 - b1))
        m = m * b2 + g * (1 - b2)
    return p


def _run(opt, p0, grads, ranges=None):
    p = p0.copy()
    opt.build(p.size, p.dtype)
    g = np.empty_like(p)
    ranges = ranges or [(0, p.size)]
    for gi in grads:
        g[...] = gi
        opt.apply(p, g, ranges, ranges)
    return p


CASES = [
    (lambda **k: O.Adamax(**k), adamax_twin, {}),
    (lambda **k: O.Adamax(**k), adamax_twin, dict(learning_rate=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-3)),
    (lambda **k: O.Nadam(**k), nadam_twin, {}),
    (lambda **k: O.Nadam(**k), nadam_twin, dict(learning_rate=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-3)),
    (lambda **k: O.Lion(**k), lion_twin, {}),
    (lambda **k: O.Lion(**k), lion_twin, dict(learning_rate=0.01, beta_1=0.5, beta_2=0.9)),
]
_KW = {"learning_rate": "lr", "beta_1": "b1", "beta_2": "b2", "epsilon": "eps", "weight_decay": "wd"}


@pytest.mark.parametrize("make,twin,kw", CASES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_steps_vs_numpy_twin(make, twin, kw, dtype):
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=50)
    grads = [rng.normal(size=50) for _ in range(7)]
    tkw = {_KW[k]: v for k, v in kw.items()}
    expect = twin(p0, grads, **tkw)
    got = _run(make(**kw), p0.astype(dtype), [g.astype(dtype) for g in grads])
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == "float64" else dict(rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(got, expect, **tol)
    # two trainable ranges (a frozen gap between) and weight decay
    ranges = [(0, 20), (30, 50)]
    got = _run(make(weight_decay=0.1, **kw), p0.copy(), grads, ranges)
    expect = p0.copy()
    for a, b in ranges:
        expect[a:b] = twin(p0[a:b], [g[a:b] for g in grads], wd=0.1, **tkw)
    np.testing.assert_allclose(got, expect, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ["nadam", "adamax", "lion"])
def test_one_fit_step_and_config(name, tmp_path):
    x = np.random.default_rng(1).normal(size=(16, 3))
    y = np.random.default_rng(2).normal(size=(16, 1))
    m = fastnn.Sequential([fastnn.layers.Dense(1, input_dim=3)], dtype="float64")
    m.compile(name, "mse")
    W, b = [w.copy() for w in m.get_weights()]
    m.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    r = 2 * (x @ W + b - y) / y.size
    twin = {"nadam": nadam_twin, "adamax": adamax_twin, "lion": lion_twin}[name]
    np.testing.assert_allclose(m.get_weights()[0], twin(W, [x.T @ r]), rtol=1e-12)
    np.testing.assert_allclose(m.get_weights()[1], twin(b, [r.sum(0)]), rtol=1e-12)
    opt = type(m.optimizer)(learning_rate=0.02, beta_1=0.5)
    again = O.get(O.serialize(opt))
    assert type(again) is type(opt) and again.get_config() == opt.get_config()
    m.fit(x, y, batch_size=8, epochs=2, verbose=0)
    m.save(tmp_path / "m.fnn")
    m2 = fastnn.models.load_model(tmp_path / "m.fnn")
    m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    m2.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    np.testing.assert_allclose(m2.get_weights()[0], m.get_weights()[0], rtol=1e-12)  # resumed exactly


def test_refusals():
    with pytest.raises(ValueError, match="beta_1"):
        O.Lion(beta_1=0.0)
    with pytest.raises(ValueError, match="beta_2"):
        O.Nadam(beta_2=1.0)
    with pytest.raises(ValueError, match="epsilon"):
        O.Adamax(epsilon=0)
    with pytest.raises(ValueError, match="ema_momentum"):
        O.Adam(use_ema=True, ema_momentum=1.5)
    with pytest.raises(ValueError, match="ema_overwrite_frequency"):
        O.SGD(use_ema=True, ema_overwrite_frequency=0)
    with pytest.raises(ValueError, match="use_ema"):
        O.SGD().swap_ema_weights()


# ------------------------------------------------------------------ use_ema
def ema_twin(p0, grads, lr, mom, freq=None):
    """SGD steps with Keras's EMA: average = weights at step 1, then mom*avg + (1-mom)*w."""
    p, avg = p0.copy(), None
    for t, g in enumerate(grads, 1):
        p = p - lr * g
        avg = p.copy() if t == 1 else mom * avg + (1 - mom) * p
        if freq and t % freq == 0:
            p = avg.copy()
    return p, avg


@pytest.mark.parametrize("freq", [None, 3])
def test_ema_vs_numpy_twin(freq):
    rng = np.random.default_rng(3)
    p0, grads = rng.normal(size=30), [rng.normal(size=30) for _ in range(8)]
    opt = O.SGD(learning_rate=0.1, use_ema=True, ema_momentum=0.9, ema_overwrite_frequency=freq)
    p = _run(opt, p0, grads)
    p_expect, avg_expect = ema_twin(p0, grads, 0.1, 0.9, freq)
    np.testing.assert_allclose(p, p_expect, rtol=1e-12)
    opt.finalize_variable_values()
    np.testing.assert_allclose(p, avg_expect, rtol=1e-12)


def test_ema_swapped_in_at_the_end_of_fit_and_frozen_layers_untouched():
    x = np.random.default_rng(4).normal(size=(32, 3))
    y = np.random.default_rng(5).normal(size=(32, 2))
    m = fastnn.Sequential([fastnn.layers.Dense(4, input_dim=3), fastnn.layers.Dense(2)], dtype="float64")
    m.layers[0].trainable = False
    m.compile(O.SGD(learning_rate=0.05, use_ema=True, ema_momentum=0.8), "mse")
    w0 = [w.copy() for w in m.get_weights()]
    # the twin: the same SGD steps without EMA, averaged by hand
    twin = fastnn.Sequential([fastnn.layers.Dense(4, input_dim=3), fastnn.layers.Dense(2)], dtype="float64")
    twin.set_weights(w0)
    twin.layers[0].trainable = False
    twin.compile(O.SGD(learning_rate=0.05), "mse")
    avg = None
    for step in range(4):
        twin.fit(x[8 * step:8 * step + 8], y[8 * step:8 * step + 8], batch_size=8, epochs=1, verbose=0,
                 shuffle=False)
        w = [a.copy() for a in twin.get_weights()[2:]]
        avg = w if avg is None else [0.8 * a + 0.2 * b for a, b in zip(avg, w)]
    m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    got = m.get_weights()
    np.testing.assert_array_equal(got[0], w0[0])  # frozen: never averaged, never written
    np.testing.assert_array_equal(got[1], w0[1])
    np.testing.assert_allclose(got[2], avg[0], rtol=1e-12)
    np.testing.assert_allclose(got[3], avg[1], rtol=1e-12)
    cfg = O.serialize(m.optimizer)
    assert cfg["config"]["use_ema"] is True and O.get(cfg).ema_momentum == 0.8
    assert "use_ema" not in O.Adam().get_config()  # files written before stay identical


def test_swap_ema_weights_round_trip():
    rng = np.random.default_rng(6)
    p0, grads = rng.normal(size=10), [rng.normal(size=10) for _ in range(3)]
    opt = O.Adam(use_ema=True)
    p = _run(opt, p0, grads)
    before, avg = p.copy(), opt.state["average"].copy()
    opt.swap_ema_weights()
    np.testing.assert_array_equal(p, avg)
    opt.swap_ema_weights()
    np.testing.assert_array_equal(p, before)


# ------------------------------------------------------------------ Keras 3 (jax backend)
def test_matches_keras_on_a_few_steps():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("Keras runs another backend in this process")
    rng = np.random.default_rng(7)
    p0 = rng.normal(size=(6, 4)).astype(np.float32)
    grads = [rng.normal(size=(6, 4)).astype(np.float32) for _ in range(5)]
    for ours, theirs in [(O.Nadam(learning_rate=0.01), keras.optimizers.Nadam(learning_rate=0.01)),
                         (O.Adamax(learning_rate=0.01), keras.optimizers.Adamax(learning_rate=0.01)),
                         (O.Lion(learning_rate=0.01), keras.optimizers.Lion(learning_rate=0.01)),
                         (O.SGD(learning_rate=0.1, use_ema=True, ema_momentum=0.9),
                          keras.optimizers.SGD(learning_rate=0.1, use_ema=True, ema_momentum=0.9))]:
        v = keras.Variable(p0)
        for g in grads:
            theirs.apply_gradients([(keras.ops.convert_to_tensor(g), v)])
        theirs.finalize_variable_values([v])
        p = _run(ours, p0.reshape(-1), [g.reshape(-1) for g in grads])
        ours.finalize_variable_values()
        np.testing.assert_allclose(p.reshape(6, 4), np.asarray(v), rtol=2e-5, atol=2e-6,
                                   err_msg=type(ours).__name__)


def test_ema_average_is_saved_and_training_resumes_exactly(tmp_path):
    x = np.random.default_rng(8).normal(size=(24, 3))
    y = np.random.default_rng(9).normal(size=(24, 2))

    def model():
        m = fastnn.Sequential([fastnn.layers.Dense(2, input_dim=3)], dtype="float64")
        m.set_weights([np.full((3, 2), 0.1), np.zeros(2)])
        m.compile(O.Adagrad(learning_rate=0.1, use_ema=True, ema_momentum=0.7), "mse")
        return m
    a = model()
    a.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    a.save(tmp_path / "m.fnn")
    b = fastnn.models.load_model(tmp_path / "m.fnn")
    np.testing.assert_array_equal(b.optimizer.state["average"], a.optimizer.state["average"])
    for m in (a, b):
        m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    np.testing.assert_allclose(b.get_weights()[0], a.get_weights()[0], rtol=1e-12)
    fresh = model()  # the same two epochs in one go
    fresh.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    assert not np.allclose(fresh.get_weights()[0], a.get_weights()[0])  # fit's end wrote the average once more


def _ema_model(use_ema=True):
    m = fastnn.Sequential([fastnn.layers.Dense(2, input_dim=3)], dtype="float64")
    m.set_weights([np.full((3, 2), 0.1), np.zeros(2)])
    m.compile(O.SGD(learning_rate=0.05, use_ema=use_ema, ema_momentum=0.6), "mse")
    return m


@pytest.mark.parametrize("stop_after_first", [False, True])
def test_swap_ema_weights_callback_on_epoch(stop_after_first):
    x = np.random.default_rng(10).normal(size=(16, 3))
    y = np.random.default_rng(11).normal(size=(16, 2))
    raw = _ema_model(use_ema=False)  # the raw trajectory, averaged by hand
    avgs, avg = [], None
    for epoch in range(2):
        for i in range(0, 16, 8):
            raw.fit(x[i:i + 8], y[i:i + 8], batch_size=8, epochs=1, shuffle=False, verbose=0)
            w = raw.get_weights()[0]
            avg = w.copy() if avg is None else 0.6 * avg + 0.4 * w
        avgs.append(avg.copy())
    m = _ema_model()
    seen = []

    class Rec(fastnn.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(self.model.get_weights()[0].copy())
            if stop_after_first:
                self.model.stop_training = True
    m.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0,
          callbacks=[fastnn.callbacks.SwapEMAWeights(swap_on_epoch=True), Rec()])
    n = 1 if stop_after_first else 2
    for k in range(n):
        np.testing.assert_allclose(seen[k], avgs[k], rtol=1e-12)  # checkpoints see the average
    np.testing.assert_allclose(m.get_weights()[0], avgs[n - 1], rtol=1e-12)  # and fit ends with it
    np.testing.assert_allclose(m.optimizer.state["average"][:6].reshape(3, 2), avgs[n - 1], rtol=1e-12)


def test_swap_ema_weights_around_evaluation_and_refusal():
    m = _ema_model()
    x, y = np.ones((8, 3)), np.zeros((8, 2))
    m.fit(x, y, batch_size=4, epochs=1, verbose=0)
    m.set_weights([np.full((3, 2), 7.0), np.zeros(2)])  # fit ended with the average in both: make them differ
    raw, avg = m.get_weights()[0].copy(), m.optimizer.state["average"][:6].reshape(3, 2).copy()
    cb = fastnn.callbacks.SwapEMAWeights()
    cb.set_model(m)
    cb.on_test_begin()
    np.testing.assert_array_equal(m.get_weights()[0], avg)
    cb.on_test_end()
    np.testing.assert_array_equal(m.get_weights()[0], raw)
    assert not np.allclose(raw, avg)
    plain = _ema_model(use_ema=False)
    with pytest.raises(ValueError, match="use_ema=True"):
        plain.fit(x, y, epochs=1, verbose=0, callbacks=[fastnn.callbacks.SwapEMAWeights()])
