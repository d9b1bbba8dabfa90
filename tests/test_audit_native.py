"""Audit of the native training step and the thread-count API (defects found by the audit)."""
import numpy as np
import pytest

import fastnn
from fastnn import layers, optimizers


def _model():
    fastnn.utils.set_random_seed(5)
    m = fastnn.Sequential([fastnn.Input((6,)), layers.Dense(8, activation="relu"), layers.Dense(3)])
    m.compile(optimizers.SGD(0.1), fastnn.losses.SparseCategoricalCrossentropy(from_logits=True))
    return m


@pytest.mark.parametrize("native", ["1", "0"])
def test_sgd_momentum_switched_on_after_training_starts(monkeypatch, native):
    # SGD built without momentum keeps no velocity; momentum set later crashed the next fit
    # (native step: "slot0: expected dtype float32 or float64, got object"; Python step:
    # "velocity: expected an array ... got None"). Keras trains on. Now the velocity starts
    # at zero, as a new optimizer's would, in both steps alike.
    monkeypatch.setenv("FASTNN_NATIVE_STEP", native)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 6)).astype(np.float32), rng.integers(0, 3, 40)
    m = _model()
    m.fit(x, y, batch_size=8, verbose=0, shuffle=False)
    m.optimizer.momentum = 0.9
    m.fit(x, y, batch_size=8, verbose=0, shuffle=False)
    # the same as an optimizer with momentum 0.9 from the start of the second fit
    ref = _model()
    ref.fit(x, y, batch_size=8, verbose=0, shuffle=False)
    ref.compile(optimizers.SGD(0.1, momentum=0.9), fastnn.losses.SparseCategoricalCrossentropy(from_logits=True))
    ref.fit(x, y, batch_size=8, verbose=0, shuffle=False)
    for a, b in zip(m.get_weights(), ref.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_sgd_momentum_switched_on_native_equals_python(monkeypatch):
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((40, 6)).astype(np.float32), rng.integers(0, 3, 40)
    out = []
    for native in ("1", "0"):
        monkeypatch.setenv("FASTNN_NATIVE_STEP", native)
        m = _model()
        m.fit(x, y, batch_size=16, verbose=0, seed=2)
        m.optimizer.momentum, m.optimizer.nesterov = 0.5, True
        m.fit(x, y, batch_size=16, verbose=0, seed=3)
        out.append(m.get_weights())
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n", [np.int64(2), np.int32(1), np.uint8(2)])
def test_set_num_threads_takes_numpy_integers(n):
    # NumPy integers (from a config, np.arange, ...) were refused: "expected an int, got int64"
    before = fastnn.get_num_threads()
    try:
        fastnn.set_num_threads(n)
        assert fastnn.get_num_threads() == int(n)
    finally:
        fastnn.set_num_threads(before)


@pytest.mark.parametrize("bad, err", [(np.float64(2.0), TypeError), (True, TypeError), (np.bool_(True), TypeError),
                                      (np.int64(0), ValueError), (np.int64(-3), ValueError)])
def test_set_num_threads_still_refuses_non_integers_and_counts_below_one(bad, err):
    before = fastnn.get_num_threads()
    with pytest.raises(err, match="n: expected"):
        fastnn.set_num_threads(bad)
    assert fastnn.get_num_threads() == before


def _fit_twice(monkeypatch, native, opt, change):
    monkeypatch.setenv("FASTNN_NATIVE_STEP", native)
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((32, 6)).astype(np.float32), rng.integers(0, 3, 32)
    m = _model()
    m.compile(opt, fastnn.losses.SparseCategoricalCrossentropy(from_logits=True))
    m.fit(x, y, batch_size=8, verbose=0, shuffle=False)
    change(m.optimizer)
    try:
        m.fit(x, y, batch_size=8, verbose=0, shuffle=False)
        return "trained", m.get_weights()
    except (TypeError, ValueError) as e:
        return type(e).__name__, str(e)


def test_nesterov_set_to_an_int_trains_in_both_steps(monkeypatch):
    # ``opt.nesterov = 1`` (truthy, as Keras reads it): the native step trained with Nesterov,
    # the Python step raised TypeError after counting an iteration
    out = [_fit_twice(monkeypatch, native, optimizers.SGD(0.1, momentum=0.9), lambda o: setattr(o, "nesterov", 1))
           for native in ("1", "0")]
    assert out[0][0] == out[1][0] == "trained"
    for a, b in zip(out[0][1], out[1][1]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("opt, attr", [(optimizers.SGD(0.1, momentum=0.5), "momentum"),
                                       (optimizers.Adam(0.01), "beta_1"), (optimizers.Adam(0.01), "epsilon")])
def test_a_string_hyperparameter_is_refused_by_both_steps(monkeypatch, opt, attr):
    # the native step converted "0.9" with float() and trained; the Python step refused it
    import copy
    out = [_fit_twice(monkeypatch, native, copy.deepcopy(opt), lambda o: setattr(o, attr, "0.9"))
           for native in ("1", "0")]
    assert out[0][0] == out[1][0] != "trained"
    assert out[0][1] == out[1][1]


@pytest.mark.parametrize("value", ["99999", "99999999999999999999"])
def test_a_huge_fastnn_num_threads_names_the_variable(value):
    # FASTNN_NUM_THREADS past the limit failed the import with "n: expected an integer in
    # [1, 4096], got ..." (a ValueError naming an argument the user never passed)
    import os
    import subprocess
    import sys
    from helpers import fastnn_pythonpath
    env = {**os.environ, "FASTNN_NUM_THREADS": value, "PYTHONPATH": fastnn_pythonpath()}
    env.pop("OMP_THREAD_LIMIT", None)
    r = subprocess.run([sys.executable, "-c", "import fastnn"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("RuntimeError: FASTNN_NUM_THREADS: expected an integer in [1, 4096]") and value in last
