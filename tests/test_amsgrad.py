"""Adam(amsgrad=True): the fused kernel's AMSGrad branch against its NumPy twin, PyTorch and
Keras 3 over several steps; the optimizer in fit (Python step, bitwise with the native step
turned off), config and saved state."""
import os

import numpy as np
import pytest

import fastnn
from fastnn import ops, reference
from fastnn.layers import Dense


def _grads(n, steps, seed=0):
    """Gradients that shrink after the first steps, so that max(vmax, v) differs from v."""
    rng = np.random.default_rng(seed)
    return [rng.normal(size=n) * (3.0 if t < 2 else 0.1) for t in range(steps)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("wd,decoupled", [(0.0, False), (0.01, False), (0.01, True)])
def test_kernel_equals_its_numpy_twin(dtype, wd, decoupled):
    n = 37  # a vector tail too
    p0 = np.random.default_rng(1).normal(size=n).astype(dtype)
    p, q = p0.copy(), p0.copy()
    st = [np.zeros(n, dtype) for _ in range(6)]
    for t, g in enumerate(_grads(n, 6), start=1):
        g = g.astype(dtype)
        kw = dict(lr=0.01, beta1=0.9, beta2=0.99, eps=1e-7, step=t, weight_decay=wd, decoupled=decoupled)
        ops.adam_update(p, g, st[0], st[1], vmax=st[2], **kw)
        reference.adam_update(q, g, st[3], st[4], vmax=st[5], **kw)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(p, q, rtol=tol, atol=tol)
    np.testing.assert_allclose(st[2], st[5], rtol=tol)  # the running maximum (v's FMA rounding)
    assert (st[2] > st[1]).any()  # the maximum mattered


_ISA_CHECK = """
import numpy as np
from fastnn import ops, reference
rng = np.random.default_rng(5)
for dt in (np.float32, np.float64):
    p = rng.normal(size=53).astype(dt); q = p.copy()
    st = [np.zeros(53, dt) for _ in range(6)]
    for t in range(1, 5):
        g = (rng.normal(size=53) * (3 if t < 2 else 0.1)).astype(dt)
        ops.adam_update(p, g, st[0], st[1], lr=0.01, step=t, vmax=st[2])
        reference.adam_update(q, g, st[3], st[4], lr=0.01, step=t, vmax=st[5])
    tol = 1e-5 if dt == np.float32 else 1e-12
    np.testing.assert_allclose(p, q, rtol=tol, atol=tol)
print("ok")
"""


@pytest.mark.parametrize("isa", ["scalar", "avx2", "avx512"])
def test_kernel_on_every_isa_path(isa):
    import subprocess
    import sys
    from fastnn import _core
    if not _core.isa_supported(isa):
        pytest.skip(f"this CPU has no {isa}")
    env = dict(os.environ, FASTNN_ISA=isa)
    r = subprocess.run([sys.executable, "-c", _ISA_CHECK], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr


def test_kernel_refuses_bad_vmax_before_writing():
    p, g, m, v = np.ones(4), np.ones(4), np.zeros(4), np.zeros(4)
    for bad, err in [(m, ValueError), (np.zeros(3), ValueError), (np.zeros(4, np.float32), (TypeError, ValueError))]:
        with pytest.raises(err, match="vmax|m"):
            ops.adam_update(p, g, m, v, lr=0.1, step=1, vmax=bad)
        np.testing.assert_array_equal(p, 1)
        np.testing.assert_array_equal(m, 0)


def test_against_pytorch_amsgrad():
    torch = pytest.importorskip("torch")
    n = 20
    p0 = np.random.default_rng(2).normal(size=n)
    w = torch.tensor(p0.copy(), requires_grad=True)
    opt = torch.optim.Adam([w], lr=0.01, betas=(0.9, 0.99), eps=1e-7, amsgrad=True)
    p, m, v, vmax = p0.copy(), np.zeros(n), np.zeros(n), np.zeros(n)
    for t, g in enumerate(_grads(n, 8), start=1):
        w.grad = torch.tensor(g)
        opt.step()
        ops.adam_update(p, g, m, v, lr=0.01, beta1=0.9, beta2=0.99, eps=1e-7, step=t, vmax=vmax)
    np.testing.assert_allclose(p, w.detach().numpy(), rtol=1e-12, atol=1e-14)


def _model(opt, seed=0):
    fastnn.utils.set_random_seed(seed)
    m = fastnn.Sequential([Dense(8, activation="relu", input_dim=5), Dense(3)])
    m.compile(opt, fastnn.losses.SparseCategoricalCrossentropy(from_logits=True))
    return m


def _xy():
    rng = np.random.default_rng(3)
    return rng.normal(size=(64, 5)).astype(np.float32), rng.integers(0, 3, 64)


def test_fit_with_amsgrad_native_equals_python_step_and_differs_from_adam(monkeypatch):
    x, y = _xy()
    a = _model(fastnn.optimizers.Adam(0.05, amsgrad=True))
    a.fit(x, y, batch_size=16, epochs=3, verbose=0, seed=0)
    monkeypatch.setenv("FASTNN_NATIVE_STEP", "0")
    b = _model(fastnn.optimizers.Adam(0.05, amsgrad=True))
    b.fit(x, y, batch_size=16, epochs=3, verbose=0, seed=0)
    for p, q in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(p, q)
    c = _model(fastnn.optimizers.Adam(0.05))
    c.fit(x, y, batch_size=16, epochs=3, verbose=0, seed=0)
    assert not np.array_equal(a.get_weights()[0], c.get_weights()[0])
    assert set(a.optimizer.state) == {"m", "v", "vhat"}
    assert np.all(a.optimizer.state["vhat"] >= a.optimizer.state["v"])


def test_amsgrad_config_save_and_late_switch(tmp_path):
    opt = fastnn.optimizers.Adam(amsgrad=True)
    assert opt.get_config()["amsgrad"] is True
    assert "amsgrad" not in fastnn.optimizers.Adam().get_config()
    assert fastnn.optimizers.get(fastnn.optimizers.serialize(opt)).amsgrad is True
    assert fastnn.optimizers.AdamW(amsgrad=True).slots == ("m", "v", "vhat")
    assert fastnn.optimizers.Adam(amsgrad=True, use_ema=True).slots[:3] == ("m", "v", "vhat")
    with pytest.raises(TypeError, match="amsgrad"):
        fastnn.optimizers.Adam(amsgrad="yes")
    x, y = _xy()
    m = _model(fastnn.optimizers.Adam(0.05, amsgrad=True))
    m.fit(x, y, batch_size=16, epochs=1, verbose=0, seed=0)
    m.save(tmp_path / "m.npz")
    r = fastnn.load_model(tmp_path / "m.npz")
    assert r.optimizer.amsgrad
    np.testing.assert_array_equal(r.optimizer.state["vhat"], m.optimizer.state["vhat"])
    m.fit(x, y, batch_size=16, epochs=1, verbose=0, seed=1)
    r.fit(x, y, batch_size=16, epochs=1, verbose=0, seed=1)
    for p, q in zip(m.get_weights(), r.get_weights()):
        np.testing.assert_array_equal(p, q)
    late = _model(fastnn.optimizers.Adam(0.05))
    late.fit(x, y, batch_size=16, epochs=1, verbose=0, seed=0)
    late.optimizer.amsgrad = True  # set after build: vhat starts at zero, the native plan is dropped
    late.fit(x, y, batch_size=16, epochs=1, verbose=0, seed=1)
    assert "vhat" in late.optimizer.state and late.optimizer.state["vhat"].any()


def test_against_keras_amsgrad():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("Keras runs on another backend")
    n = 12
    p0 = np.random.default_rng(4).normal(size=n).astype(np.float32)
    var = keras.Variable(p0.copy())
    kopt = keras.optimizers.Adam(learning_rate=0.01, beta_2=0.99, epsilon=1e-12, amsgrad=True)
    opt = fastnn.optimizers.Adam(0.01, beta_2=0.99, epsilon=1e-12, amsgrad=True)
    opt.build(n, np.float32)
    p = p0.copy()
    for g in _grads(n, 6):
        g = g.astype(np.float32)
        kopt.apply_gradients([(g, var)])
        opt.apply(p, g, [(0, n)], [(0, n)])
    # Keras puts epsilon outside the bias correction (docs/PORTING_FROM_KERAS.md): a tiny epsilon
    np.testing.assert_allclose(p, np.asarray(var), rtol=1e-5, atol=1e-6)
