import math
import warnings

import numpy as np
import pytest

from fastnn.tuning import (Trial, choice, format_trials, intlog, loguniform, process_executor,
                           random_search, refine, sample, uniform)


# A tiny, deterministic, picklable "model": softmax regression trained with
# plain gradient descent in NumPy, so these tests need no fastnn model API and
# run the same in worker processes.
class SoftmaxRegression:
    def __init__(self, lr, l2=0.0, seed=0):
        self.lr, self.l2, self.seed = lr, l2, seed

    def fit(self, x, y, epochs=1, batch_size=32, validation_data=None, verbose=0):
        rng = np.random.default_rng(self.seed)
        k = int(y.max()) + 1
        self.w = rng.normal(0, 0.01, size=(x.shape[1], k))
        hist = {"loss": [], "val_loss": [], "val_accuracy": []}
        for _ in range(epochs):
            for i in range(0, len(x), batch_size):
                xb, yb = x[i:i + batch_size], y[i:i + batch_size]
                p = self._proba(xb)
                p[np.arange(len(yb)), yb] -= 1
                self.w -= self.lr * (xb.T @ p / len(yb) + self.l2 * self.w)
            hist["loss"].append(self._loss(x, y))
            xv, yv = validation_data
            hist["val_loss"].append(self._loss(xv, yv))
            hist["val_accuracy"].append(float((self._proba(xv).argmax(1) == yv).mean()))
        return hist

    def _proba(self, x):
        z = x @ self.w
        z -= z.max(1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(1, keepdims=True)

    def _loss(self, x, y):
        with np.errstate(all="ignore"):
            return float(-np.log(self._proba(x)[np.arange(len(y)), y] + 1e-12).mean())


def build_softmax(params, seed=0):
    return SoftmaxRegression(params["lr"], params.get("l2", 0.0), seed)


def build_failing(params):
    raise RuntimeError("boom")


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, size=(3, 5))
    y = rng.integers(0, 3, size=600)
    x = centres[y] + rng.normal(size=(600, 5))
    return x[:400], y[:400], (x[400:], y[400:])


SPACE = {"lr": loguniform(1e-4, 1.0), "l2": uniform(0.0, 0.01)}


# ------------------------------------------------------------- distributions

def test_loguniform_is_uniform_in_log_space():
    rng = np.random.default_rng(0)
    v = np.array([loguniform(1e-4, 1).sample(rng) for _ in range(4000)])
    assert v.min() >= 1e-4 and v.max() <= 1
    # each decade gets about a quarter of the draws
    counts = np.histogram(np.log10(v), bins=[-4, -3, -2, -1, 0])[0]
    assert np.all(np.abs(counts / 4000 - 0.25) < 0.03)


def test_intlog_draws_integers_within_bounds_spread_over_decades():
    rng = np.random.default_rng(1)
    v = [intlog(10, 1000).sample(rng) for _ in range(2000)]
    assert all(isinstance(i, int) and 10 <= i <= 1000 for i in v)
    assert 0.4 < np.mean(np.array(v) < 100) < 0.6


def test_choice_and_constants_in_sample():
    p = sample({"act": choice(["relu", "tanh"]), "epochs": 3, "p": uniform(0, 0.5)}, 0)
    assert p["act"] in ("relu", "tanh") and p["epochs"] == 3 and 0 <= p["p"] <= 0.5


@pytest.mark.parametrize("make, match", [
    (lambda: loguniform(0, 1), "low must be > 0"),
    (lambda: uniform(1, 1), "low < high"),
    (lambda: intlog(1.5, 10), "intlog: low must be an int"),
    (lambda: choice([]), "must not be empty"),
    (lambda: choice("abc"), "must be a list"),
])
def test_distribution_arguments_are_checked(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


# ------------------------------------------------------------- random search

def test_random_search_is_reproducible_with_seed(blobs):
    x, y, val = blobs
    a = random_search(build_softmax, SPACE, 6, x, y, val, epochs=2, seed=3)
    b = random_search(build_softmax, SPACE, 6, x, y, val, epochs=2, seed=3)
    c = random_search(build_softmax, SPACE, 6, x, y, val, epochs=2, seed=4)
    assert [t.params for t in a] == [t.params for t in b]
    assert [t.score for t in a] == [t.score for t in b]
    assert [t.params for t in a] != [t.params for t in c]


def test_random_search_sorts_best_first_on_the_monitored_metric(blobs):
    x, y, val = blobs
    trials = random_search(build_softmax, SPACE, 8, x, y, val, epochs=2, seed=0)
    scores = [t.score for t in trials]
    assert trials[0].monitor == "val_accuracy" and trials[0].mode == "max"
    assert scores == sorted(scores, reverse=True)
    assert all(t.score == t.history["val_accuracy"][-1] for t in trials)
    by_loss = random_search(build_softmax, SPACE, 8, x, y, val, epochs=2, seed=0,
                            monitor="val_loss")
    losses = [t.score for t in by_loss]
    assert by_loss[0].mode == "min" and losses == sorted(losses)


def test_random_search_finds_a_working_learning_rate(blobs):
    x, y, val = blobs
    best = random_search(build_softmax, SPACE, 10, x, y, val, epochs=3, seed=0)[0]
    assert best.score > 0.9 and best.params["lr"] > 1e-3


def test_failed_trials_are_kept_last_with_their_error(blobs):
    x, y, val = blobs
    trials = random_search(build_failing, SPACE, 2, x, y, val, epochs=1)
    assert all(t.error == "RuntimeError: boom" for t in trials)
    # NaN losses (far too large a learning rate) rank after finite ones
    space = {"lr": choice([1e-2, 1e6])}
    trials = random_search(build_softmax, space, 6, x, y, val, epochs=2, seed=0,
                           monitor="val_loss")
    finite = [t for t in trials if math.isfinite(t.score)]
    assert trials[:len(finite)] == finite


def test_params_epochs_and_batch_size_go_to_fit(blobs):
    x, y, val = blobs
    t = random_search(build_softmax, {"lr": uniform(0.01, 0.1), "epochs": 4}, 1, x, y, val,
                      epochs=1)[0]
    assert len(t.history["loss"]) == 4


def test_random_search_argument_errors(blobs):
    x, y, val = blobs
    with pytest.raises(TypeError, match="build_fn"):
        random_search(None, SPACE, 1, x, y, val)
    with pytest.raises(ValueError, match="n_trials"):
        random_search(build_softmax, SPACE, 0, x, y, val)
    with pytest.raises(TypeError, match="space"):
        random_search(build_softmax, [("lr", 1)], 1, x, y, val)
    with pytest.raises(ValueError, match="monitor"):
        random_search(build_softmax, SPACE, 1, x, y, val, monitor="nope")


def test_format_trials_lists_rank_score_and_params(blobs):
    x, y, val = blobs
    trials = random_search(build_softmax, SPACE, 3, x, y, val, epochs=1, seed=0)
    text = format_trials(trials)
    lines = text.splitlines()
    assert lines[0].split() == ["rank", "score", "lr", "l2"] and len(lines) == 4


# ------------------------------------------------------------- executors

def test_process_pool_returns_the_same_trials_as_sequential(blobs):
    x, y, val = blobs
    seq = random_search(build_softmax, SPACE, 4, x, y, val, epochs=1, seed=5)
    with process_executor(2) as ex:
        assert ex._mp_context.get_start_method() == "spawn"
        par = random_search(build_softmax, SPACE, 4, x, y, val, epochs=1, seed=5, executor=ex)
    assert [(t.index, t.params, t.score) for t in seq] == [(t.index, t.params, t.score)
                                                           for t in par]


def test_dask_cluster_returns_the_same_trials_as_sequential(blobs):
    distributed = pytest.importorskip("dask.distributed")
    import cloudpickle
    import sys
    x, y, val = blobs
    # workers may not import this test module: ship build_fn by value
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        seq = random_search(build_softmax, SPACE, 4, x, y, val, epochs=1, seed=9)
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      host="127.0.0.1", dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client:
            assert len(client.scheduler_info()["workers"]) == 2
            par = random_search(build_softmax, SPACE, 4, x, y, val, epochs=1, seed=9,
                                executor=client.get_executor())
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert [(t.index, t.params, t.score) for t in seq] == [(t.index, t.params, t.score)
                                                           for t in par]


# ------------------------------------------------------------- refine

def test_refine_narrows_log_range_around_the_best():
    space = {"lr": loguniform(1e-6, 1.0), "act": choice(["relu", "tanh", "sigmoid"]),
             "epochs": 5}
    trials = [Trial(0, {"lr": 1e-3, "act": "relu", "epochs": 5}, score=0.9),
              Trial(1, {"lr": 4e-3, "act": "tanh", "epochs": 5}, score=0.85),
              Trial(2, {"lr": 2e-3, "act": "relu", "epochs": 5}, score=0.8),
              Trial(3, {"lr": 1e-5, "act": "sigmoid", "epochs": 5}, score=0.2)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fine = refine(space, trials, top_k=3)
    lo, hi = fine["lr"].low, fine["lr"].high
    assert isinstance(fine["lr"], loguniform)
    assert 1e-6 < lo < 1e-3 and 4e-3 < hi < 1.0
    # margin 0.1 of the log span on each side
    span = math.log(4e-3) - math.log(1e-3)
    assert math.isclose(math.log(lo), math.log(1e-3) - 0.1 * span)
    assert fine["act"] == choice(["relu", "tanh"])  # sigmoid only in a poor trial
    assert fine["epochs"] == 5


def test_refine_warns_when_the_best_is_at_a_range_edge():
    space = {"lr": loguniform(1e-4, 1.0), "units": intlog(16, 1024)}
    trials = [Trial(0, {"lr": 0.9, "units": 100}, score=0.9),
              Trial(1, {"lr": 0.3, "units": 120}, score=0.8)]
    with pytest.warns(UserWarning, match="best lr=0.9 sits at the upper edge"):
        fine = refine(space, trials, top_k=2)
    assert fine["lr"].high == pytest.approx(1.0) and fine["lr"].low > 0.2
    assert isinstance(fine["units"], intlog) and 16 < fine["units"].low <= 100 <= 120 <= \
        fine["units"].high < 1024


def test_refine_skips_failed_trials_and_requires_one_success():
    space = {"lr": uniform(0.0, 1.0)}
    ok = Trial(1, {"lr": 0.5}, score=0.7)
    bad = Trial(0, {"lr": 0.99}, error="RuntimeError: boom")
    fine = refine(space, [bad, ok], top_k=2)
    assert fine["lr"].low < 0.5 < fine["lr"].high < 0.99
    with pytest.raises(ValueError, match="trials"):
        refine(space, [bad])


def test_search_then_refine_then_search_improves_focus(blobs):
    x, y, val = blobs
    coarse = random_search(build_softmax, {"lr": loguniform(1e-5, 1e1)}, 8, x, y, val,
                           epochs=1, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fine_space = refine({"lr": loguniform(1e-5, 1e1)}, coarse, top_k=3)
    fine = random_search(build_softmax, fine_space, 4, x, y, val, epochs=1, seed=1)
    assert all(fine_space["lr"].low <= t.params["lr"] <= fine_space["lr"].high for t in fine)
    assert fine[0].score >= coarse[2].score


# ------------------------------------------------------------- lr_range_test

def test_lr_range_test_finds_the_fall_and_the_explosion(blobs):
    import fastnn.models  # noqa: F401
    import fastnn
    from fastnn.layers import Dense
    from fastnn.tuning import lr_range_test
    x, y, _ = blobs

    def build():
        m = fastnn.Sequential([Dense(32, activation="relu", input_dim=5),
                               Dense(3, activation="softmax")])
        m.compile(fastnn.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
        return m

    r = lr_range_test(build, x.astype(np.float32), y, lr_min=1e-5, lr_max=100, steps=150,
                      batch_size=32)
    assert r.diverged_lr is not None and r.diverged_lr > r.min_loss_lr
    assert 1e-4 < r.steepest_lr <= r.min_loss_lr < 100
    assert len(r.lrs) == len(r.losses) < 150  # stopped early at the explosion
    assert np.all(np.diff(r.lrs) > 0)
    # the loss at the suggested rate is clearly below the starting loss
    i = int(np.searchsorted(r.lrs, r.min_loss_lr))
    assert r.smoothed[i] < 0.7 * r.smoothed[0]
    r2 = lr_range_test(build, x.astype(np.float32), y, lr_min=1e-5, lr_max=100, steps=150,
                       batch_size=32)
    np.testing.assert_array_equal(r.losses, r2.losses)  # seeded: reproducible
    with pytest.raises(ValueError, match="steps"):
        lr_range_test(build, x, y, steps=3)


# -- the notes' search on log(1 - beta) (issue 12) ------------------------------------------
def test_log1m_samples_momentum_uniformly_on_log_one_minus_beta():
    from fastnn.tuning import log1m
    d = log1m(0.9, 0.999)
    rng = np.random.default_rng(0)
    b = np.array([d.sample(rng) for _ in range(4000)])
    assert b.min() >= 0.9 and b.max() <= 0.999
    u = np.log10(1 - b)  # uniform on [-3, -1]
    assert abs(np.mean(b > 0.99) - 0.5) < 0.03 and abs(np.mean(u) + 2) < 0.03
    assert abs(np.mean(u < -2.5) - 0.25) < 0.03
    with pytest.raises(ValueError, match="log1m"):
        log1m(0.9, 1.0)


def test_refine_narrows_log1m_on_its_own_scale():
    from fastnn.tuning import log1m, refine
    space = {"beta": log1m(0.9, 0.999)}
    trials = [Trial(0, {"beta": 0.99}, 0.9), Trial(1, {"beta": 0.995}, 0.8)]
    out = refine(space, trials, top_k=2, margin=0.1)["beta"]
    assert type(out) is log1m
    lo, hi = -np.log(1 - 0.99), -np.log(1 - 0.995)
    pad = 0.1 * (hi - lo)
    assert out.low == pytest.approx(1 - np.exp(-(lo - pad)), rel=1e-12)
    assert out.high == pytest.approx(1 - np.exp(-(hi + pad)), rel=1e-12)
    # clipped to the old range, never past 1
    with pytest.warns(UserWarning, match="upper edge"):
        edge = refine(space, [Trial(0, {"beta": 0.9989}, 0.9), Trial(1, {"beta": 0.998}, 0.8)],
                      top_k=2, margin=5.0)["beta"]
    assert edge.high == 0.999 and edge.low >= 0.9
