"""LayerNorm over the last axis on the core kernels (ops.layernorm_forward / layernorm_backward)
against the NumPy twins (reference.layernorm_*), every ISA x 1/2 threads, and the
LayerNormalization layer on them: float64 gradient check, Keras parity.

Tolerances: float64 1e-10 (relative and absolute); float32 1e-4 for the per-row values
(y, xhat, inv, dx: sums of up to 4099 features in float32, in another order than NumPy's
pairwise sums) and 1e-4 * sqrt(m) absolute for the column sums (dgamma, dbeta: m rows
added in order)."""
import numpy as np
import pytest

import fastnn
from fastnn import layers as L
from fastnn import ops, reference as ref
from fastnn.gradcheck import check_layer
from helpers import keras_on_jax

SHAPES = [(1, 1), (1, 7), (5, 1), (3, 17), (33, 100), (300, 513), (16, 4099)]


def _data(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    n = shape[1]
    x = (rng.normal(size=shape) * 3 + 1).astype(dtype)
    return (x, rng.normal(size=n).astype(dtype), rng.normal(size=n).astype(dtype),
            rng.normal(size=shape).astype(dtype))


def _tol(dtype, m=1):
    return (1e-10, 1e-10) if dtype == np.float64 else (1e-4, 1e-4 * np.sqrt(m))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("affine", [(True, True), (False, True), (True, False), (False, False)])
def test_forward_backward_match_twin(isa_threads, shape, dtype, affine):
    x, gamma, beta, dy = _data(shape, dtype)
    g = gamma if affine[0] else None
    b = beta if affine[1] else None
    got = ops.layernorm_forward(x, g, b, eps=1e-3)
    want = ref.layernorm_forward(x, g, b, eps=1e-3)
    rtol, atol = _tol(dtype)
    for a, w in zip(got, want):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, w, rtol=rtol, atol=atol)
    dgot = ops.layernorm_backward(dy, got[1], got[2], g)
    dwant = ref.layernorm_backward(dy, got[1], got[2], g)
    np.testing.assert_allclose(dgot[0], dwant[0], rtol=rtol, atol=atol)
    rtol, atol = _tol(dtype, shape[0])
    for a, w in zip(dgot[1:], dwant[1:]):
        np.testing.assert_allclose(a, w, rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bitwise_independent_of_thread_count(isa, dtype):
    x, gamma, beta, dy = _data((300, 513), dtype, seed=1)  # 2 threads split both passes at this size
    before = fastnn.get_num_threads()
    runs = []
    try:
        for t in (1, 2):
            fastnn.set_num_threads(t)
            y, xhat, inv = ops.layernorm_forward(x, gamma, beta)
            runs.append((y, xhat, inv) + ops.layernorm_backward(dy, xhat, inv, gamma))
    finally:
        fastnn.set_num_threads(before)
    for a, b in zip(*runs):
        assert np.array_equal(a, b)


def test_in_place_and_given_buffers():
    x, gamma, beta, dy = _data((9, 13), np.float64, seed=2)
    y, xhat, inv = ops.layernorm_forward(x, gamma, beta)
    x2, dy2 = x.copy(), dy.copy()
    bufs = (np.empty_like(x), np.empty(9))
    out = ops.layernorm_forward(x2, gamma, beta, out=(x2,) + bufs)
    assert out[0] is x2 and out[1] is bufs[0] and np.array_equal(x2, y) and np.array_equal(bufs[1], inv)
    dx, dg, db = ops.layernorm_backward(dy, xhat, inv, gamma)
    out = ops.layernorm_backward(dy2, xhat, inv, gamma, out=dy2)
    assert out[0] is dy2 and np.array_equal(dy2, dx) and np.array_equal(out[1], dg)


def test_default_eps_is_keras_and_constant_rows_are_finite():
    x = np.array([[2.0, 2.0, 2.0], [1.0, 2.0, 3.0]])
    y, xhat, inv = ops.layernorm_forward(x)
    assert inv[0] == 1 / np.sqrt(1e-3) and np.all(y[0] == 0)
    np.testing.assert_allclose(inv[1], 1 / np.sqrt(2 / 3 + 1e-3), rtol=1e-14)


def _refused(call, exc, match, *written):
    before = [w.copy() for w in written]
    with pytest.raises(exc, match=match):
        call()
    for w, b in zip(written, before):
        assert np.array_equal(w, b, equal_nan=True)


def test_forward_refusals_name_the_argument_and_write_nothing():
    x, gamma, beta, _ = _data((4, 5), np.float32)
    y, xhat, inv = np.full((4, 5), 7.0, np.float32), np.full((4, 5), 7.0, np.float32), np.full(4, 7.0, np.float32)
    outs = (y, xhat, inv)
    _refused(lambda: ops.layernorm_forward(x, gamma.astype(np.float64), beta, out=outs), TypeError, "gamma",
             *outs)
    _refused(lambda: ops.layernorm_forward(x, gamma[:4], beta, out=outs), ValueError, "gamma", *outs)
    _refused(lambda: ops.layernorm_forward(x, gamma, beta[:, None], out=outs), ValueError, "beta", *outs)
    _refused(lambda: ops.layernorm_forward(x, gamma, beta, eps=0.0, out=outs), ValueError, "eps", *outs)
    _refused(lambda: ops.layernorm_forward(x, gamma, beta, eps=1e-50, out=outs), ValueError, "eps", *outs)
    _refused(lambda: ops.layernorm_forward(x, gamma, beta, out=(y, xhat, inv[:3])), ValueError, r"out\[2\]",
             *outs)
    _refused(lambda: ops.layernorm_forward(x, gamma, beta, out=(y, y, inv)), ValueError,
             r"out\[1\] \(xhat\): must not share memory with out", *outs)
    _refused(lambda: ops.layernorm_forward(x, gamma, beta, out=(y, xhat, y[0, :4])), ValueError,
             "must not share memory", *outs)
    _refused(lambda: ops.layernorm_forward(x[:, :0], None, None), ValueError, "x: expected at least 1 feature")
    _refused(lambda: ops.layernorm_forward(x[0], gamma, beta), ValueError, "x: expected 2 dimensions")
    _refused(lambda: ops.layernorm_forward(x.tolist(), gamma, beta), TypeError, "x: expected a numpy.ndarray")


def test_backward_refusals_name_the_argument_and_write_nothing():
    x, gamma, beta, dy = _data((4, 5), np.float64)
    _, xhat, inv = ops.layernorm_forward(x, gamma, beta)
    outs = (np.full((4, 5), 7.0), np.full(5, 7.0), np.full(5, 7.0))
    _refused(lambda: ops.layernorm_backward(dy[:3], xhat, inv, gamma, out=outs), ValueError, "dy", *outs)
    _refused(lambda: ops.layernorm_backward(dy, xhat, inv[:3], gamma, out=outs), ValueError, "inv", *outs)
    _refused(lambda: ops.layernorm_backward(dy, xhat, inv, gamma.astype(np.float32), out=outs), TypeError,
             "gamma", *outs)
    _refused(lambda: ops.layernorm_backward(dy, xhat, inv, gamma, out=(outs[0], outs[1], outs[1])), ValueError,
             r"out\[2\] \(dbeta\): must not share memory", *outs)
    _refused(lambda: ops.layernorm_backward(dy, xhat, inv, gamma, out=(outs[0], outs[1], outs[0][0])),
             ValueError, "must not share memory", *outs)


# ---- the layer ---------------------------------------------------------------------------------


@pytest.mark.parametrize("center,scale", [(True, True), (False, True), (True, False), (False, False)])
def test_layer_uses_the_kernels_and_passes_gradient_check(center, scale, monkeypatch):
    calls = []
    real = ops.layernorm_backward
    monkeypatch.setattr(ops, "layernorm_backward", lambda *a, **k: calls.append(1) or real(*a, **k))
    layer = L.LayerNormalization(center=center, scale=scale)
    rng = np.random.default_rng(3)
    report = check_layer(layer, rng.normal(size=(6, 9)) * 2 + 1, eps=1e-6)
    assert calls and all(c.rel_error < 1e-7 for c in report), str(report)


def test_layer_kernel_path_equals_numpy_path():
    rng = np.random.default_rng(4)
    x, dy = rng.normal(size=(7, 11)), rng.normal(size=(7, 11))
    m = fastnn.Sequential([L.Input(11), L.LayerNormalization(epsilon=1e-2)], dtype="float64")
    m.compile("sgd", "mse")
    layer = m.layers[-1]
    m.set_weights([rng.normal(size=11), rng.normal(size=11)])
    y = layer.forward(x, training=True).copy()
    assert layer._fast
    dx = layer.backward(dy.copy()).copy()
    grads = [layer.grads[k].copy() for k in ("gamma", "beta")]
    y0 = layer._forward_numpy(x).copy()
    dx0 = layer._backward_numpy(dy.copy(), True).copy()
    np.testing.assert_allclose(y, y0, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, dx0, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads[0], (dy * layer._xhat).sum(0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads[1], dy.sum(0), rtol=1e-12, atol=1e-12)


def test_frozen_layer_writes_no_gradient():
    rng = np.random.default_rng(5)
    m = fastnn.Sequential([L.Input(6), L.LayerNormalization()], dtype="float64")
    m.compile("sgd", "mse")
    layer = m.layers[-1]
    layer.trainable = False
    for k in layer.grads:
        layer.grads[k][...] = 42.0
    layer.forward(rng.normal(size=(3, 6)), training=True)
    dx = layer.backward(rng.normal(size=(3, 6)))
    assert dx.shape == (3, 6) and all(np.all(layer.grads[k] == 42.0) for k in layer.grads)


@pytest.mark.parametrize("center,scale", [(True, True), (False, False)])
def test_layer_keras_parity_forward_backward_float32(center, scale):
    keras = keras_on_jax()
    import jax
    import jax.numpy as jnp
    rng = np.random.default_rng(6)
    x, dy = rng.normal(size=(8, 13)).astype(np.float32), rng.normal(size=(8, 13)).astype(np.float32)
    k = keras.layers.LayerNormalization(center=center, scale=scale)
    k.build((None, 13))
    kw = [rng.normal(size=w.shape).astype(np.float32) for w in k.get_weights()]
    k.set_weights(kw)
    m = fastnn.Sequential([L.Input(13), L.LayerNormalization(center=center, scale=scale)])
    m.compile("sgd", "mse")
    m.set_weights(kw)
    layer = m.layers[-1]

    def f(xx, ws):
        return k.stateless_call(ws, [], xx)[0]
    yk, vjp = jax.vjp(f, jnp.asarray(x), [jnp.asarray(w) for w in kw])
    dxk, dwk = vjp(jnp.asarray(dy))
    y = layer.forward(x, training=True)
    assert layer._fast
    np.testing.assert_allclose(y, np.asarray(yk), rtol=2e-5, atol=2e-5)
    dx = layer.backward(dy.copy())
    np.testing.assert_allclose(dx, np.asarray(dxk), rtol=1e-4, atol=1e-4)
    ours = [layer.grads[k_] for k_ in ("gamma", "beta") if k_ in layer.grads]
    assert len(ours) == len(dwk)
    for a, b in zip(ours, dwk):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-4, atol=1e-4)
