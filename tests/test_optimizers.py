"""Every optimizer against a NumPy computation written out by hand, for a few steps."""
import numpy as np
import pytest

import fastnn
from fastnn import optimizers as O
from fastnn import schedules

GRADS = [np.array([0.5, -1.0, 2.0, 0.1]), np.array([-0.3, 0.4, 1.0, -2.0]), np.array([1.0, 1.0, -1.0, 0.5])]
P0 = np.array([1.0, -2.0, 0.5, 3.0])


def run(opt, grads=GRADS, p0=P0, ranges=None, variables=None):
    p = p0.copy()
    opt.build(p.size, p.dtype)
    ranges = ranges or [(0, p.size)]
    for g in grads:
        g = g.copy()
        opt.apply(p, g, ranges, variables or ranges)
    return p


def test_sgd_plain():
    p = P0.copy()
    for g in GRADS:
        p = p - 0.1 * g
    np.testing.assert_allclose(run(O.SGD(0.1)), p, rtol=1e-12)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_and_nesterov(nesterov):
    p, v = P0.copy(), np.zeros(4)
    for g in GRADS:
        v = 0.9 * v - 0.1 * g
        p = p + (0.9 * v - 0.1 * g if nesterov else v)
    np.testing.assert_allclose(run(O.SGD(0.1, momentum=0.9, nesterov=nesterov)), p, rtol=1e-12)


def test_rmsprop():
    p, s = P0.copy(), np.zeros(4)
    for g in GRADS:
        s = 0.8 * s + 0.2 * g * g
        p = p - 0.01 * g / (np.sqrt(s) + 1e-7)
    np.testing.assert_allclose(run(O.RMSprop(0.01, rho=0.8)), p, rtol=1e-12)


def test_adagrad_starts_from_initial_accumulator():
    p, a = P0.copy(), np.full(4, 0.1)
    for g in GRADS:
        a = a + g * g
        p = p - 0.5 * g / (np.sqrt(a) + 1e-7)
    np.testing.assert_allclose(run(O.Adagrad(0.5)), p, rtol=1e-12)


def adam_reference(lr, b1=0.9, b2=0.999, eps=1e-7, wd=0.0):
    p, m, v = P0.copy(), np.zeros(4), np.zeros(4)
    for t, g in enumerate(GRADS, start=1):
        p = p * (1 - lr * wd)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    return p


def test_adam():
    np.testing.assert_allclose(run(O.Adam(0.01, beta_1=0.8, beta_2=0.99)), adam_reference(0.01, 0.8, 0.99),
                               rtol=1e-12)


def test_adamw_decays_decoupled():
    np.testing.assert_allclose(run(O.AdamW(0.01, weight_decay=0.1)), adam_reference(0.01, wd=0.1), rtol=1e-12)
    assert O.AdamW().weight_decay == 0.004


def test_weight_decay_is_decoupled_for_sgd():
    p = P0.copy()
    for g in GRADS:
        p = p * (1 - 0.1 * 0.5) - 0.1 * g
    np.testing.assert_allclose(run(O.SGD(0.1, weight_decay=0.5)), p, rtol=1e-12)


def test_global_clipnorm_scales_all_gradients_together():
    g = np.array([3.0, 4.0, 0.0, 0.0])  # norm 5
    p = run(O.SGD(1.0, global_clipnorm=1.0), grads=[g])
    np.testing.assert_allclose(p, P0 - g / 5, rtol=1e-12)


def test_clipnorm_clips_each_variable_on_its_own():
    g = np.array([3.0, 4.0, 0.3, 0.4])  # variable 1 norm 5, variable 2 norm 0.5
    p = run(O.SGD(1.0, clipnorm=1.0), grads=[g], variables=[(0, 2), (2, 4)])
    np.testing.assert_allclose(p, P0 - np.array([0.6, 0.8, 0.3, 0.4]), rtol=1e-12)


def test_clipvalue_clamps_elements():
    p = run(O.SGD(1.0, clipvalue=0.5), grads=[np.array([3.0, -4.0, 0.3, 0.0])])
    np.testing.assert_allclose(p, P0 - np.array([0.5, -0.5, 0.3, 0.0]), rtol=1e-12)


def test_only_one_clipping_option():
    with pytest.raises(ValueError, match="at most one"):
        O.Adam(clipnorm=1.0, clipvalue=1.0)


def test_steps_only_the_given_ranges():
    p = run(O.SGD(0.1), grads=[np.ones(4)], ranges=[(0, 1), (3, 4)])
    np.testing.assert_allclose(p, P0 - 0.1 * np.array([1, 0, 0, 1]))


def test_schedule_gives_the_rate_of_each_step():
    s = schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    p = P0.copy()
    for t, g in enumerate(GRADS):
        p = p - 0.1 * 0.5 ** t * g
    np.testing.assert_allclose(run(O.SGD(s)), p, rtol=1e-12)


def test_per_epoch_schedule_uses_the_epoch():
    s = schedules.InverseTimeDecay(0.1, decay_steps=1, decay_rate=1.0, per_epoch=True)
    opt = O.SGD(s)
    opt.epoch = 3  # the trainer's 0-based index: the notes' 4th epoch, 0.1 / (1 + 4)
    assert opt.current_learning_rate() == pytest.approx(0.1 / 5)


def test_fit_matches_hand_computed_adam_on_linear_regression():
    """End to end: full-batch fit of a linear model = NumPy gradient of the MSE + Adam."""
    r = np.random.default_rng(0)
    x, y = r.normal(size=(20, 3)), r.normal(size=(20, 1))
    m = fastnn.Sequential([fastnn.layers.Dense(1, input_dim=3, kernel_initializer="ones")], dtype="float64")
    m.compile(O.Adam(0.05), "mse")
    m.fit(x, y, epochs=4, batch_size="full", shuffle=False, verbose=0)
    W, b = np.ones((3, 1)), np.zeros(1)
    mw, vw, mb, vb = np.zeros((3, 1)), np.zeros((3, 1)), np.zeros(1), np.zeros(1)
    for t in range(1, 5):
        d = 2 * (x @ W + b - y) / 20
        gW, gb = x.T @ d, d.sum(0)
        for p, g, mm, vv in ((W, gW, mw, vw), (b, gb, mb, vb)):
            mm[...] = 0.9 * mm + 0.1 * g
            vv[...] = 0.999 * vv + 0.001 * g * g
            p -= 0.05 * (mm / (1 - 0.9 ** t)) / (np.sqrt(vv / (1 - 0.999 ** t)) + 1e-7)
    np.testing.assert_allclose(m.layers[0].get_weights()[0], W, rtol=1e-10)
    np.testing.assert_allclose(m.layers[0].get_weights()[1], b, rtol=1e-10, atol=1e-14)
    assert m.optimizer.iterations == 4


def test_optimizer_by_name_and_unknown_name():
    assert isinstance(O.get("adam"), O.Adam)
    with pytest.raises(ValueError, match="known: sgd, rmsprop"):
        O.get("adamq")  # adamax exists since the Nadam/Adamax/Lion addition


# -- the notes' momentum form v = b v + (1 - b) g, p -= lr v (issue 12) ----------------------
def notes_momentum(lrs, b=0.9, nesterov=False, grads=GRADS):
    p, v = P0.copy(), np.zeros(4)
    for lr, g in zip(lrs, grads):
        v = b * v + (1 - b) * g
        p = p - lr * ((b * v + (1 - b) * g) if nesterov else v)
    return p


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_ema_momentum_is_the_notes_form(nesterov):
    opt = O.SGD(0.1, momentum=0.9, momentum_form="ema", nesterov=nesterov)
    np.testing.assert_allclose(run(opt), notes_momentum([0.1] * 3, nesterov=nesterov), rtol=1e-12)
    keras = run(O.SGD(0.1, momentum=0.9, nesterov=nesterov))
    assert not np.allclose(keras, notes_momentum([0.1] * 3, nesterov=nesterov))


def test_sgd_ema_momentum_follows_a_schedule_exactly_over_ranges():
    s = schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    grads = GRADS * 3
    opt = O.SGD(s, momentum=0.8, momentum_form="ema")
    # two ranges: the rescale of the velocity happens once per step, for each range
    got = run(opt, grads=grads, ranges=[(0, 2), (2, 4)])
    want = notes_momentum([0.1 * 0.5 ** t for t in range(len(grads))], b=0.8, grads=grads)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_sgd_momentum_form_is_checked_and_round_trips():
    with pytest.raises(ValueError, match="momentum_form"):
        O.SGD(0.1, momentum=0.9, momentum_form="pytorch")
    opt = O.get(O.serialize(O.SGD(0.1, momentum=0.9, momentum_form="ema")))
    assert opt.momentum_form == "ema"


def test_adam_docstring_states_the_notes_epsilon():
    assert "1e-8" in O.Adam.__doc__ and O.Adam().epsilon == 1e-7
