"""CosineDecay with warmup, PolynomialDecay (Keras 3 formulas) and OneCycleLR (PyTorch's):
float64 twins, PyTorch and Keras on the same steps, use in fit, config round trips."""
import math
import os

import numpy as np
import pytest

import fastnn
from fastnn.optimizers import schedules as S


def cosine_warmup_twin(t, lr0, decay_steps, alpha=0.0, target=None, warm=0):
    if target is None:
        t = min(t, decay_steps)
        return lr0 * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * t / decay_steps)) + alpha)
    t = min(t, decay_steps + warm)
    if t < warm:
        return lr0 + (target - lr0) * t / warm
    return target * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * (t - warm) / decay_steps)) + alpha)


def poly_twin(t, lr0, steps, end, power, cycle):
    if cycle:
        steps = steps * (1 if t == 0 else math.ceil(t / steps))
    else:
        t = min(t, steps)
    return (lr0 - end) * (1 - t / steps) ** power + end


@pytest.mark.parametrize("kw", [dict(alpha=0.1), dict(warmup_target=0.5, warmup_steps=7),
                                dict(alpha=0.2, warmup_target=0.05, warmup_steps=3)])
def test_cosine_decay_warmup_vs_twin(kw):
    s = S.CosineDecay(0.01, 20, **kw)
    twin_kw = dict(alpha=kw.get("alpha", 0.0), target=kw.get("warmup_target"), warm=kw.get("warmup_steps", 0))
    for t in range(0, 40):
        assert s(t) == pytest.approx(cosine_warmup_twin(t, 0.01, 20, **twin_kw), rel=1e-14, abs=1e-16)
    assert S.CosineDecay(0.0, 10, warmup_target=0.1, warmup_steps=2)(1) == pytest.approx(0.05)


@pytest.mark.parametrize("power,cycle", [(1.0, False), (2.0, False), (0.5, True)])
def test_polynomial_decay_vs_twin(power, cycle):
    s = S.PolynomialDecay(0.1, 7, end_learning_rate=0.001, power=power, cycle=cycle)
    for t in range(0, 30):
        assert s(t) == pytest.approx(poly_twin(t, 0.1, 7, 0.001, power, cycle), rel=1e-14)
    assert S.PolynomialDecay(0.1, 10).end_learning_rate == 0.0001  # Keras's default


@pytest.mark.parametrize("kw", [dict(), dict(pct_start=0.25, anneal_strategy="linear"),
                                dict(three_phase=True, div_factor=10.0, final_div_factor=100.0),
                                dict(pct_start=0.4, three_phase=True, anneal_strategy="linear")])
def test_one_cycle_vs_pytorch(kw):
    torch = pytest.importorskip("torch")
    total = 37
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.3, total_steps=total, cycle_momentum=False, **kw)
    ref = []
    for _ in range(total):
        ref.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    s = S.OneCycleLR(max_lr=0.3, total_steps=total, **kw)
    np.testing.assert_allclose([s(t) for t in range(total)], ref, rtol=1e-12, atol=1e-15)
    assert s(total + 50) == s(total - 1)  # held at the end (PyTorch raises)
    assert S.OneCycle is S.OneCycleLR


def test_in_fit_and_config_round_trip(tmp_path):
    x = np.random.default_rng(0).normal(size=(40, 3))
    y = np.random.default_rng(1).normal(size=(40, 1))
    for sched in (S.CosineDecay(0.0, 10, warmup_target=0.1, warmup_steps=3),
                  S.PolynomialDecay(0.05, 8, power=2.0, cycle=True), S.OneCycleLR(0.1, 10, three_phase=True)):
        m = fastnn.Sequential([fastnn.layers.Dense(1, input_dim=3)], dtype="float64")
        m.compile(fastnn.optimizers.SGD(learning_rate=sched), "mse")
        lrs = []

        class Rec(fastnn.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                lrs.append(m.optimizer.current_learning_rate())
        m.fit(x, y, batch_size=10, epochs=2, verbose=0, callbacks=[Rec()])
        assert lrs == [sched(t) for t in range(1, 9)]  # read after each update: the next step's rate
        m.save(tmp_path / "m.fnn")
        again = fastnn.models.load_model(tmp_path / "m.fnn").optimizer.learning_rate
        assert type(again) is type(sched) and again.get_config() == sched.get_config()
    assert "warmup_target" not in S.CosineDecay(0.1, 10).get_config()  # older files stay identical


def test_refusals():
    with pytest.raises(ValueError, match="initial_learning_rate"):
        S.CosineDecay(0.0, 10)  # 0 only with a warmup, as Keras's use
    with pytest.raises(ValueError, match="warmup_steps"):
        S.CosineDecay(0.0, 10, warmup_target=0.1, warmup_steps=-1)
    with pytest.raises(ValueError, match="power"):
        S.PolynomialDecay(0.1, 10, power=0)
    with pytest.raises(ValueError, match="total_steps"):
        S.OneCycleLR(0.1, 0)
    with pytest.raises(ValueError, match="anneal_strategy"):
        S.OneCycleLR(0.1, 10, anneal_strategy="exp")


def test_keras_schedules_agree():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("Keras runs another backend in this process")
    pairs = [(S.CosineDecay(0.0, 20, alpha=0.1, warmup_target=0.5, warmup_steps=5),
              keras.optimizers.schedules.CosineDecay(0.0, 20, alpha=0.1, warmup_target=0.5, warmup_steps=5)),
             (S.PolynomialDecay(0.1, 7, power=2.0, cycle=True),
              keras.optimizers.schedules.PolynomialDecay(0.1, 7, power=2.0, cycle=True))]
    for ours, theirs in pairs:
        np.testing.assert_allclose([ours(t) for t in range(30)], [float(theirs(t)) for t in range(30)], rtol=2e-6,
                                   atol=1e-8)
