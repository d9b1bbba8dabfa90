"""Model.recompute_batchnorm_statistics: the notes' population statistics, vs NumPy."""
import numpy as np
import pytest

import fastnn
from fastnn.layers import Activation, BatchNormalization, Dense, Dropout


def _model(dtype="float64"):
    fastnn.set_random_seed(4)
    return fastnn.Sequential([Dense(6, input_dim=5), BatchNormalization(momentum=0.9), Activation("relu"),
                              Dropout(0.5, seed=3), Dense(4), BatchNormalization(center=False),
                              Activation("tanh"), Dense(3, activation="softmax")], dtype=dtype)


def _numpy_population(model, x, bs):
    """float64: per batch, BN layers on the batch's own (biased) statistics, dropout off;
    moving = sum_b m_b mean_b / n, sum_b m_b * m_b/(m_b-1) * var_b / n."""
    W = [np.asarray(v, np.float64) for v in model.get_weights()]
    W1, b1, g1, be1, _, _, W2, b2, g2, _, _, _, _ = W
    sums = [np.zeros(6), np.zeros(6), np.zeros(4), np.zeros(4)]
    n = len(x)
    for s in range(0, n, bs):
        xb = x[s:s + bs].astype(np.float64)
        m = len(xb)
        h = xb @ W1 + b1
        mu, var = h.mean(0), h.var(0)
        sums[0] += m * mu
        sums[1] += m * var * m / (m - 1)
        a = np.maximum((h - mu) / np.sqrt(var + 1e-3) * g1 + be1, 0)
        h2 = a @ W2 + b2
        mu2, var2 = h2.mean(0), h2.var(0)
        sums[2] += m * mu2
        sums[3] += m * var2 * m / (m - 1)
    return [s / n for s in sums]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n,bs", [(96, 32), (100, 32), (64, 64), (64, 1000)])
def test_population_statistics_vs_numpy(dtype, n, bs):
    x = np.random.default_rng(1).normal(size=(n, 5)) * 2 + 1
    m = _model(dtype)
    m.compile("adam", "sparse_categorical_crossentropy")
    m.fit(x, np.arange(n) % 3, epochs=1, batch_size=16, verbose=0, seed=0)  # moving stats off their init
    weights = [w.copy() for w in m.get_weights()]
    calls = m.layers[3]._calls
    assert m.recompute_batchnorm_statistics(x, batch_size=bs) == 2
    ref = _numpy_population(m, x, bs)
    got = [m.layers[1].get_weights()[2], m.layers[1].get_weights()[3],
           m.layers[5].get_weights()[1], m.layers[5].get_weights()[2]]
    tol = 1e-5 if dtype == "float32" else 1e-12
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g, r, rtol=tol, atol=tol)
    after = m.get_weights()  # only the moving statistics changed; the dropout counter too is kept
    for k, (a, b) in enumerate(zip(weights, after)):
        if k not in (4, 5, 9, 10):
            np.testing.assert_array_equal(a, b)
    assert m.layers[3]._calls == calls


def test_equal_batches_give_the_notes_plain_average():
    """With equal batches: E[x] = mean_B mu_B, Var[x] = m/(m-1) mean_B sigma2_B (the notes)."""
    fastnn.set_random_seed(0)
    m = fastnn.Sequential([BatchNormalization(input_shape=(3,))], dtype="float64")
    x = np.random.default_rng(2).normal(size=(40, 3))
    m.recompute_batchnorm_statistics(x, batch_size=8)
    b = x.reshape(5, 8, 3)
    np.testing.assert_allclose(m.layers[0].get_weights()[2], b.mean(1).mean(0), rtol=1e-13)
    np.testing.assert_allclose(m.layers[0].get_weights()[3], 8 / 7 * b.var(1).mean(0), rtol=1e-13)
    # one batch of everything: the full data's unbiased variance
    m.recompute_batchnorm_statistics(x, batch_size=40)
    np.testing.assert_allclose(m.layers[0].get_weights()[3], x.var(0, ddof=1), rtol=1e-13)


def test_refusals_leave_the_model_unchanged():
    m = _model()
    x = np.ones((33, 5))
    before = m.get_weights()
    with pytest.raises(ValueError, match="batch_size: 32 on 33 samples leaves a batch of 1"):
        m.recompute_batchnorm_statistics(x, batch_size=32)
    for bad in (1, 0, 2.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            m.recompute_batchnorm_statistics(x, batch_size=bad)
    with pytest.raises(ValueError, match="x: expected shape"):
        m.recompute_batchnorm_statistics(np.ones((40, 4)))
    with pytest.raises(ValueError, match="NaN"):
        m.recompute_batchnorm_statistics(np.full((40, 5), np.nan))
    for a, b in zip(before, m.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_no_batchnorm_and_unbuilt():
    m = fastnn.Sequential([Dense(2, input_dim=3)])
    assert m.recompute_batchnorm_statistics(np.ones((4, 3))) == 0
    u = fastnn.Sequential([Dense(2), BatchNormalization()])
    assert u.recompute_batchnorm_statistics(np.random.default_rng(0).normal(size=(8, 3)), batch_size=4) == 1
