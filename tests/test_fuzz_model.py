"""The model API under hostile input and under load.

* fit / predict / evaluate fuzzed (hypothesis): random dtypes, ndim, 0 rows,
  wrong widths, NaN/inf, out-of-range labels, mismatched lengths, bad batch
  sizes and epochs. A valid call trains, and predict equals a NumPy forward
  pass of the weights; an invalid one raises TypeError/ValueError naming the
  argument and leaves weights and optimizer state bitwise unchanged.
* determinism: two seeded fits give bitwise identical weights for a fixed
  thread count (what changes with the thread count is printed and documented).
* numerical guards: an exploding learning rate stops training through
  TerminateOnNaN / DivergenceStop with a message, and the last good weights
  are restorable from ModelCheckpoint(save_best_only=True).
* 4 Python threads: independent models trained at once equal the same models
  trained alone; one model predicted from 4 threads gives the results of one.
* memory: 2,000 train steps and 10,000 predicts keep the RSS flat.
"""
from __future__ import annotations

import collections
import os
import threading
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastnn
from fastnn.callbacks import DivergenceStop, LearningRateScheduler, ModelCheckpoint, TerminateOnNaN
from fastnn.layers import Dense
from helpers import rss_bytes

FUZZ = settings(max_examples=int(os.environ.get("FASTNN_FUZZ_EXAMPLES", "120")) // 2, deadline=None,
                derandomize=os.environ.get("FASTNN_FUZZ_RANDOM", "0") != "1",
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
CASES: collections.Counter = collections.Counter()

LOSSES = {  # loss: (output units, output activation)
    "mse": (2, "linear"),
    "sparse_categorical_crossentropy": (3, "softmax"),
    "categorical_crossentropy": (3, "softmax"),
    "binary_crossentropy": (1, "sigmoid"),
}


@pytest.fixture(scope="module", autouse=True)
def _report_cases():
    yield
    print(f"\nfuzzed {sum(CASES.values())} model cases: " + ", ".join(f"{k} {v}" for k, v in sorted(CASES.items())))


def make_model(loss, width=4, dtype="float32", seed=0, hidden=6):
    fastnn.set_random_seed(seed)
    units, act = LOSSES[loss]
    m = fastnn.Sequential([Dense(hidden, input_dim=width, activation="tanh"), Dense(units, activation=act)],
                          dtype=dtype)
    m.compile("adam", loss)
    return m


def targets(rng, loss, n):
    units, _ = LOSSES[loss]
    if loss == "mse":
        return rng.standard_normal((n, units))
    if loss == "sparse_categorical_crossentropy":
        return rng.integers(0, units, n)
    if loss == "categorical_crossentropy":
        return np.eye(units)[rng.integers(0, units, n)]
    return rng.integers(0, 2, n).astype(np.float64)


def numpy_forward(model, x):
    """The twin of predict for Dense(tanh) -> Dense(act), in float64."""
    w0, b0, w1, b1 = [w.astype(np.float64) for w in model.get_weights()]
    z = np.tanh(x.astype(np.float64) @ w0 + b0) @ w1 + b1
    act = model.layers[-1].activation.name
    if act == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if act == "sigmoid":
        return 1 / (1 + np.exp(-z))
    return z


def model_state(model):
    ws = [w.tobytes() for w in model.get_weights()]
    opt = model.optimizer
    st_ = {k: v.tobytes() for k, v in opt.state.items()} if opt is not None else {}
    return ws, st_, getattr(opt, "iterations", None)


@FUZZ
@given(data=st.data())
def test_fit_predict_evaluate_fuzz(data):
    draw = data.draw
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    loss = draw(st.sampled_from(sorted(LOSSES)))
    dtype = draw(st.sampled_from(["float32", "float64"]))
    model = make_model(loss, dtype=dtype, seed=draw(st.integers(0, 100)))
    n = draw(st.integers(1, 40))
    x = rng.standard_normal((n, 4)) * draw(st.sampled_from([1.0, 100.0]))
    x = x.astype(draw(st.sampled_from([np.float32, np.float64, np.float16, np.int32])))
    y = targets(rng, loss, n)
    kw = {"batch_size": draw(st.sampled_from([None, 1, 7, 32, 1000])), "epochs": draw(st.integers(0, 2))}
    model.fit(rng.standard_normal((8, 4)), targets(rng, loss, 8), epochs=1, verbose=0)  # optimizer state exists
    fault = draw(st.sampled_from([None] * 5 + ["x", "y", "x, y", "batch_size", "epochs", "validation_split"]))
    if fault == "x":
        x = draw(st.sampled_from([
            x.astype(np.complex64), x.astype(object), x[:, :3], x[:, :, None], x.ravel(), x[:0], None, "x",
            np.where(rng.random(x.shape) < 0.2, np.nan, x), np.full_like(x, np.inf, dtype=np.float64)]))
    elif fault == "y":
        units = LOSSES[loss][0]
        if loss == "sparse_categorical_crossentropy":
            bad = [np.full(n, units), np.full(n, -1), y.astype(np.float64) + 0.5, y.astype(np.complex64)]
        elif loss in ("binary_crossentropy", "categorical_crossentropy"):
            bad = [y * 3.0, y - 2.0, np.full(y.shape, np.nan), y.astype(object)]
        else:
            bad = [np.full(y.shape, np.inf), y[:, :1] if units > 1 else y[:, None, None], y.astype(object)]
        y = draw(st.sampled_from(bad + [None]))
    elif fault == "x, y":
        y = y[:-1] if n > 1 else np.concatenate([y, y])
    elif fault == "batch_size":
        kw["batch_size"] = draw(st.sampled_from([0, -3, 1.5, True, "32"]))
    elif fault == "epochs":
        kw["epochs"] = draw(st.sampled_from([-1, 1.0, True, "2", None]))
    elif fault == "validation_split":
        kw["validation_split"] = draw(st.sampled_from([-0.1, 1.0, 2.0]))
    before = model_state(model)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(x, y, verbose=0, **kw)
    except (TypeError, ValueError) as e:
        assert fault is not None, f"valid fit raised {e!r}"
        named = fault.split(", ") if fault != "x, y" else ["x", "y"]
        assert any(str(e).startswith(a) or f"{a}:" in str(e) or f"{a} " in str(e) for a in named), \
            f"the error should name {fault!r}: {e!r}"
        assert model_state(model) == before, f"a refused fit changed the model ({e!r})"
        CASES["fit error"] += 1
        return
    assert fault is None, f"fault in {fault!r} not detected"
    CASES["fit ok"] += 1
    # predict and evaluate on valid data equal the NumPy forward pass
    xp = rng.standard_normal((draw(st.integers(1, 50)), 4))
    pred = model.predict(xp, batch_size=draw(st.sampled_from([None, 1, 5])))
    tol = 1e-4 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(pred, numpy_forward(model, xp), rtol=tol, atol=tol)
    assert pred.dtype == np.dtype(dtype)
    ev = model.evaluate(xp, targets(rng, loss, xp.shape[0]))
    assert np.isfinite(ev)
    CASES["predict/evaluate ok"] += 1
    # predict on invalid x: named error, nothing changes
    bad_x = draw(st.sampled_from([xp[:, :3], xp.astype(object), xp[:0], np.full((2, 4), np.nan), None]))
    before = model_state(model)
    with pytest.raises((TypeError, ValueError), match=r"^x"):
        model.predict(bad_x)
    assert model_state(model) == before
    CASES["predict error"] += 1


# ----------------------------------------------------------------------------
# determinism
# ----------------------------------------------------------------------------


def seeded_fit(nthreads, seed=3, loss="sparse_categorical_crossentropy", epochs=3):
    before = fastnn.get_num_threads()
    fastnn.set_num_threads(nthreads)
    try:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((600, 20)).astype(np.float32)
        y = targets(rng, loss, 600)
        fastnn.set_random_seed(seed)
        m = fastnn.Sequential([Dense(128, input_dim=20, activation="relu"), Dense(64, activation="relu"),
                               Dense(LOSSES[loss][0], activation=LOSSES[loss][1])])
        m.compile("adam", loss)
        m.fit(x, y, batch_size=64, epochs=epochs, verbose=0, seed=seed)
        return m.get_weights()
    finally:
        fastnn.set_num_threads(before)


@pytest.mark.parametrize("nthreads", [1, 2])
def test_two_seeded_fits_are_bitwise_identical(nthreads):
    a, b = seeded_fit(nthreads), seeded_fit(nthreads)
    assert all(x.tobytes() == y.tobytes() for x, y in zip(a, b))


def test_what_changes_with_the_thread_count():
    """Documented in docs/RELIABILITY.md: printed here; the weights agree to rounding at most."""
    one, two = seeded_fit(1), seeded_fit(2)
    same = [x.tobytes() == y.tobytes() for x, y in zip(one, two)]
    diff = max(float(np.max(np.abs(x - y))) for x, y in zip(one, two))
    print(f"\nweights bitwise equal between 1 and 2 threads: {same}; max |diff| = {diff:.3g}")
    for x, y in zip(one, two):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------
# numerical guards
# ----------------------------------------------------------------------------


def exploding(tmp_path, callbacks):
    """5 good epochs (lr 1e-3), then the learning rate explodes (lr 5)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((256, 8)).astype(np.float32) * 10
    y = rng.standard_normal((256, 1)).astype(np.float32) * 10
    fastnn.set_random_seed(0)
    m = fastnn.Sequential([Dense(32, input_dim=8, activation="relu"), Dense(1)])
    m.compile(fastnn.optimizers.SGD(learning_rate=1e-3), "mse")
    ckpt = tmp_path / "best.npz"
    explode = LearningRateScheduler(lambda epoch: 1e-3 if epoch < 5 else 5.0)
    hist = m.fit(x, y, batch_size=32, epochs=50, verbose=0, seed=0,
                 callbacks=[explode, ModelCheckpoint(ckpt, monitor="loss", save_best_only=True)] + callbacks)
    return m, hist, ckpt, x


def test_exploding_lr_stops_on_nan_and_the_last_good_weights_load(tmp_path, capsys):
    m, hist, ckpt, x = exploding(tmp_path, [TerminateOnNaN()])
    out = capsys.readouterr().out
    assert "invalid loss, terminating training" in out
    assert len(hist.history["loss"]) < 50
    assert not np.isfinite(hist.history["loss"][-1]) or not all(np.isfinite(w).all() for w in m.get_weights())
    good = fastnn.load_model(ckpt)
    assert all(np.isfinite(w).all() for w in good.get_weights())
    assert np.isfinite(good.predict(x)).all()


def test_exploding_lr_stops_on_divergence_with_a_message(tmp_path, capsys):
    stop = DivergenceStop(factor=3.0, verbose=1)
    m, hist, ckpt, x = exploding(tmp_path, [stop])
    out = capsys.readouterr().out
    assert stop.stopped_epoch is not None and len(hist.history["loss"]) < 50
    assert "diverging, stopping" in out and "learning rate" in out
    good = fastnn.load_model(ckpt)
    assert all(np.isfinite(w).all() for w in good.get_weights())


# ----------------------------------------------------------------------------
# 4 Python threads
# ----------------------------------------------------------------------------


def _run_threads(fns, timeout=120):
    results, errors = [None] * len(fns), []

    def run(i):
        try:
            results[i] = fns[i]()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    ts = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout)
    assert not any(t.is_alive() for t in ts), "a thread did not finish: deadlock?"
    assert not errors, errors
    return results


@pytest.mark.parametrize("nthreads", [1, 2])
def test_independent_models_trained_in_four_threads_match_alone(nthreads):
    before = fastnn.get_num_threads()
    fastnn.set_num_threads(nthreads)
    try:
        losses = sorted(LOSSES)

        def train(i):
            rng = np.random.default_rng(i)
            x = rng.standard_normal((200, 4)).astype(np.float32)
            y = targets(rng, losses[i], 200)
            m = make_model(losses[i], seed=i)  # the seed is taken while building, under the GIL
            return m, x, y

        setups = [train(i) for i in range(4)]
        alone = []
        for m, x, y in setups:
            c = fastnn.clone_model(m)
            c.set_weights(m.get_weights())
            c.compile("adam", m.loss)
            c.fit(x, y, batch_size=16, epochs=3, verbose=0, seed=0)
            alone.append(c.get_weights())

        def fit(i):
            m, x, y = setups[i]
            m.fit(x, y, batch_size=16, epochs=3, verbose=0, seed=0)
            return m.get_weights()

        together = _run_threads([lambda i=i: fit(i) for i in range(4)])
    finally:
        fastnn.set_num_threads(before)
    for a, b in zip(alone, together):
        assert all(x.tobytes() == y.tobytes() for x, y in zip(a, b))


def test_one_model_predicted_from_four_threads_matches_alone():
    """The same model and the same batch size from 4 threads (the layers' buffers are shared:
    predict calls on one model are serialized, so none reads another's activations)."""
    m = make_model("sparse_categorical_crossentropy", width=20, hidden=64)
    rng = np.random.default_rng(0)
    m.fit(rng.standard_normal((64, 20)), rng.integers(0, 3, 64), epochs=1, verbose=0)
    xs = [rng.standard_normal((100, 20)).astype(np.float32) for _ in range(4)]
    alone = [m.predict(x) for x in xs]

    def work(i):
        return all(np.array_equal(m.predict(xs[i]), alone[i]) for _ in range(100))

    assert all(_run_threads([lambda i=i: work(i) for i in range(4)]))


# ----------------------------------------------------------------------------
# memory
# ----------------------------------------------------------------------------


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
def test_rss_flat_over_2000_train_steps_and_10000_predicts():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((320, 20)).astype(np.float32)
    y = rng.integers(0, 3, 320)
    m = make_model("sparse_categorical_crossentropy", width=20, hidden=64)
    m.fit(x, y, batch_size=32, epochs=20, verbose=0)  # warm-up: 200 steps
    xp = x[:17]
    for _ in range(500):
        m.predict(xp)
    r0 = rss_bytes()
    m.fit(x, y, batch_size=32, epochs=200, verbose=0)  # 10 steps per epoch: 2,000 steps
    r1 = rss_bytes()
    for _ in range(10_000):
        m.predict(xp)
    r2 = rss_bytes()
    print(f"\nRSS growth: 2,000 train steps {(r1 - r0) / 2**20:.2f} MiB, "
          f"10,000 predicts {(r2 - r1) / 2**20:.2f} MiB")
    assert r1 - r0 < 4 * 2**20 and r2 - r1 < 4 * 2**20
