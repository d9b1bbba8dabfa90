"""RMSprop with Keras 3's momentum and centered form: the fused kernel against its NumPy twin
(fastnn.reference.rmsprop_update) on awkward sizes, float32 and float64, every ISA, 1 and 2
threads; the optimizer against Keras 3 (JAX) on the same gradients; slots only when used,
configs and saved files (old ones without the new slots still load)."""
import numpy as np
import pytest

import fastnn
import fastnn.ops as ops
import fastnn.reference as ref
from fastnn import layers as L
from fastnn import optimizers as O
from helpers import keras_on_jax
from test_optim import SIZES, close, make, rms

KW = {
    "momentum": dict(lr=1e-3, rho=0.9, eps=1e-7, momentum=0.9),
    "centered": dict(lr=1e-3, rho=0.8, eps=1e-6, centered=True),
    "both_wd": dict(lr=1e-2, rho=0.9, eps=1e-7, momentum=0.5, centered=True, weight_decay=1e-2),
}


def _state(n, dtype, kw):
    s = {"sq_avg": np.abs(make(n, dtype, 2)) * 0.1}
    if kw.get("momentum"):
        s["momentum_buffer"] = make(n, dtype, 3) * 0.01
    if kw.get("centered"):
        s["grad_avg"] = make(n, dtype, 4) * 0.01  # |grad_avg|^2 may exceed sq_avg: the max(., 0)
    return s


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(KW))
def test_kernel_matches_twin_over_several_steps(isa_threads, name, dtype):
    kw = KW[name]
    for n in SIZES:
        p_ref, st_ref = make(n, dtype, 1), _state(n, dtype, kw)
        p, st = p_ref.copy(), {k: v.copy() for k, v in st_ref.items()}
        for step in range(4):
            g = make(n, dtype, 10 + step)
            assert ops.rmsprop_update(p, g, st["sq_avg"], **kw, **{k: v for k, v in st.items() if k != "sq_avg"}) \
                is None
            ref.rmsprop_update(p_ref, g, st_ref["sq_avg"], **kw,
                               **{k: v for k, v in st_ref.items() if k != "sq_avg"})
            assert close(p, p_ref, dtype, scale=rms(p_ref)), (n, step)
            for k in st:
                assert close(st[k], st_ref[k], dtype, scale=rms(st_ref[k])), (k, n, step)


def test_centered_with_a_constant_gradient_stays_finite():
    """s - mg^2 tends to 0 with a constant gradient and rounds below it in float32: the
    denominator is sqrt(max(s - mg^2, 0)) + eps, never NaN."""
    for dtype in (np.float32, np.float64):
        p, s, mg = np.zeros(33, dtype), np.zeros(33, dtype), np.zeros(33, dtype)
        g = np.linspace(-3, 3, 33).astype(dtype)
        for _ in range(400):
            ops.rmsprop_update(p, g, s, lr=1e-3, rho=0.9, eps=1e-7, centered=True, grad_avg=mg)
        assert np.isfinite(p).all()


def test_kernel_refuses_and_writes_nothing():
    p, g, s, b = np.ones(5), np.ones(5), np.zeros(5), np.zeros(5)
    with pytest.raises(ValueError, match="momentum_buffer"):
        ops.rmsprop_update(p, g, s, lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="grad_avg"):
        ops.rmsprop_update(p, g, s, lr=0.1, centered=True, momentum_buffer=b)
    with pytest.raises(ValueError, match="momentum"):
        ops.rmsprop_update(p, g, s, lr=0.1, momentum=1.0, momentum_buffer=b)
    with pytest.raises(TypeError, match="centered"):
        ops.rmsprop_update(p, g, s, lr=0.1, centered="yes", grad_avg=b)
    with pytest.raises(ValueError, match="grad_avg"):
        ops.rmsprop_update(p, g, s, lr=0.1, centered=True, grad_avg=np.zeros(4))
    with pytest.raises(ValueError, match="momentum_buffer"):  # two state arrays sharing memory
        ops.rmsprop_update(p, g, s, lr=0.1, momentum=0.5, momentum_buffer=s)
    with pytest.raises(ValueError, match="momentum"):  # the core's own check
        fastnn._core.rmsprop_update(p, g, s, 0.1, 0.9, 1e-7, 0.0, momentum=0.5)
    assert (p == 1).all() and not s.any() and not b.any()


@pytest.mark.parametrize("momentum, centered, wd", [(0.9, False, None), (0.0, True, None), (0.8, True, None),
                                                    (0.9, True, 0.05)])
def test_against_keras(momentum, centered, wd):
    keras = keras_on_jax()
    n = 13
    rng = np.random.default_rng(4)
    p0 = rng.normal(size=n).astype(np.float32)
    var = keras.Variable(p0.copy())
    kw = dict(learning_rate=0.01, rho=0.8, momentum=momentum, centered=centered, epsilon=1e-12, weight_decay=wd)
    kopt = keras.optimizers.RMSprop(**kw)
    opt = O.RMSprop(**kw)
    opt.build(n, np.float32)
    p = p0.copy()
    for _ in range(8):
        g = rng.normal(size=n).astype(np.float32)
        kopt.apply_gradients([(g, var)])
        opt.apply(p, g.copy(), [(0, n)], [(0, n)])
    # Keras puts epsilon inside the square root (docs/PORTING_FROM_KERAS.md): a tiny epsilon
    np.testing.assert_allclose(p, np.asarray(var), rtol=2e-5, atol=1e-6)
    assert not np.allclose(p, p0, atol=1e-3)


def test_slots_only_when_used():
    assert O.RMSprop().slots == ("sq_avg",)
    assert O.RMSprop(momentum=0.9).slots == ("sq_avg", "momentum")
    assert O.RMSprop(centered=True, use_ema=True).slots == ("sq_avg", "average_gradient", fastnn._ema.SLOT)
    opt = O.RMSprop(centered=True)
    opt.build(4, np.float64)
    assert sorted(opt.state) == ["average_gradient", "sq_avg"]


@pytest.mark.parametrize("bad, err", [(dict(momentum=1.0), ValueError), (dict(momentum=-0.1), ValueError),
                                      (dict(centered="yes"), TypeError)])
def test_constructor_refuses(bad, err):
    with pytest.raises(err, match=next(iter(bad))):
        O.RMSprop(**bad)


def test_config_round_trip_and_keras():
    opt = O.RMSprop(0.01, momentum=0.9, centered=True)
    c = opt.get_config()
    assert c["momentum"] == 0.9 and c["centered"] is True
    back = O.get({"class_name": "RMSprop", "config": c})
    assert (back.momentum, back.centered, back.slots) == (0.9, True, opt.slots)
    assert "momentum" not in O.RMSprop().get_config()  # older files stay identical
    keras = keras_on_jax()
    k = keras.optimizers.RMSprop.from_config(c)
    assert k.momentum == pytest.approx(0.9) and k.centered is True
    ours = O.get({"class_name": "RMSprop", "config": k.get_config()})
    assert (ours.momentum, ours.centered) == (pytest.approx(0.9), True)


def _model(opt):
    m = fastnn.Sequential([L.Input((5,)), L.Dense(6, activation="relu",
                                                  kernel_initializer=fastnn.initializers.GlorotUniform(seed=1)),
                           L.Dense(2)])
    m.compile(opt, "mse")
    return m


@pytest.mark.parametrize("kw", [dict(), dict(momentum=0.9, centered=True)])
def test_save_load_resumes_bitwise(tmp_path, kw):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 5)), rng.normal(size=(40, 2))
    a = _model(O.RMSprop(1e-2, **kw))
    a.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    a.save(tmp_path / "m.npz")
    b = fastnn.models.load_model(tmp_path / "m.npz")
    assert sorted(b.optimizer.state) == sorted(a.optimizer.state)
    for m in (a, b):
        m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for u, v in zip(a.get_weights() + list(a.optimizer.state.values()),
                    b.get_weights() + list(b.optimizer.state.values())):
        np.testing.assert_array_equal(u, v)


def test_momentum_set_after_build_adds_its_slot():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 5)), rng.normal(size=(16, 2))
    m = _model(O.RMSprop(1e-2))
    m.fit(x, y, batch_size=8, epochs=1, verbose=0)
    m.optimizer.momentum, m.optimizer.centered = 0.9, True
    m.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert m.optimizer.state["momentum"].any() and m.optimizer.state["average_gradient"].any()
    m.optimizer.centered = "no"
    with pytest.raises(TypeError, match="centered"):
        m.fit(x, y, batch_size=8, epochs=1, verbose=0)
