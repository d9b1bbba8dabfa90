import pickle

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_iris, make_regression  # noqa: E402
from sklearn.model_selection import cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

from fastnn.sklearn import MLPClassifier, MLPRegressor  # noqa: E402


@pytest.fixture(scope="module")
def iris():
    x, y = load_iris(return_X_y=True)
    return (x - x.mean(0)) / x.std(0), y


@pytest.mark.parametrize("est", [MLPClassifier(random_state=0), MLPRegressor(random_state=0)],
                         ids=["classifier", "regressor"])
def test_passes_scikit_learns_check_estimator(est):
    failed = [r for r in check_estimator(est, on_fail=None) if r["status"] == "failed"]
    assert not failed, [(r["check_name"], str(r["exception"])[:200]) for r in failed]


def test_classifier_learns_iris_and_exposes_sklearn_api(iris):
    x, y = iris
    clf = MLPClassifier(hidden_layer_sizes=(32,), learning_rate_init=0.01, max_iter=100,
                        random_state=0).fit(x, y)
    assert clf.score(x, y) > 0.95
    p = clf.predict_proba(x)
    assert p.shape == (150, 3)
    np.testing.assert_allclose(p.sum(1), 1, atol=1e-6)
    np.testing.assert_array_equal(clf.classes_[p.argmax(1)], clf.predict(x))
    assert clf.n_iter_ == len(clf.loss_curve_) <= 100
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    assert clf.get_params()["hidden_layer_sizes"] == (32,)


def test_string_labels_and_batchnorm_dropout_options(iris):
    x, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = MLPClassifier(hidden_layer_sizes=(32, 16), batchnorm=True, dropout=0.2,
                        learning_rate_init=0.01, batch_size=30, max_iter=60,
                        random_state=0).fit(x, names)
    assert list(clf.classes_) == ["setosa", "versicolor", "virginica"]
    assert clf.score(x, names) > 0.9
    kinds = [type(layer).__name__ for layer in clf.model_.layers]
    assert "BatchNormalization" in kinds and "Dropout" in kinds


def test_same_random_state_gives_the_same_model(iris):
    x, y = iris
    a = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=3).fit(x, y)
    b = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=3).fit(x, y)
    np.testing.assert_array_equal(a.predict_proba(x), b.predict_proba(x))


def test_partial_fit_continues_training(iris):
    x, y = iris
    clf = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, random_state=0)
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(x, y)
    clf.partial_fit(x[:50], y[:50], classes=[0, 1, 2])
    for _ in range(30):
        clf.partial_fit(x, y)
    assert clf.n_iter_ == 31 and clf.score(x, y) > 0.9


def test_pickle_round_trip_keeps_predictions(iris):
    x, y = iris
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=10, random_state=0).fit(x, y)
    back = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(back.predict_proba(x), clf.predict_proba(x))


def test_regressor_fits_multi_output_and_reports_r2():
    x, y = make_regression(n_samples=300, n_features=5, n_targets=2, noise=1.0, random_state=0)
    y = y / y.std(0)
    reg = MLPRegressor(hidden_layer_sizes=(64,), learning_rate_init=0.01, max_iter=200,
                       random_state=0).fit(x, y)
    assert reg.predict(x).shape == (300, 2)
    assert reg.score(x, y) > 0.95


def test_works_in_pipelines_and_cross_validation(iris):
    x, y = iris
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(16,),
                                                         learning_rate_init=0.02, max_iter=60,
                                                         random_state=0))
    scores = cross_val_score(pipe, x, y, cv=3)
    assert scores.mean() > 0.85
    assert clone(pipe).get_params()["mlpclassifier__max_iter"] == 60


@pytest.mark.parametrize("kwargs, match", [
    (dict(hidden_layer_sizes=(0,)), "hidden_layer_sizes"),
    (dict(optimizer="lbfgs"), "optimizer"),
    (dict(learning_rate_init=-1), "learning_rate_init"),
    (dict(dropout=1.5), "dropout"),
    (dict(max_iter=0), "max_iter"),
])
def test_bad_parameters_raise_naming_the_parameter(iris, kwargs, match):
    x, y = iris
    with pytest.raises((ValueError, TypeError), match=match):
        MLPClassifier(**kwargs).fit(x, y)


def _kernels(model):
    return [l.vars["kernel"] for l in model.layers if "kernel" in getattr(l, "vars", {})]


def test_alpha_is_scikit_learns_penalty_half_alpha_sum_w2_over_batch(iris):
    x, y = iris
    alpha, m = 0.5, 30
    est = MLPClassifier(hidden_layer_sizes=(8,), alpha=alpha, batch_size=m, max_iter=2,
                        random_state=0).fit(x, y)
    if hasattr(est, "_penalty_"):
        est._penalty_.batch_size = m
    model = est.model_
    xb, yb = x[:m].astype(np.float32), y[:m].astype(np.int64)
    loss = model.compute_loss_and_gradients(xb, yb)[0]
    p = model.predict(xb).astype(np.float64)
    data = -np.mean(np.log(p[np.arange(m), yb]))
    ssq = sum(float(np.sum(w.astype(np.float64) ** 2)) for w in _kernels(model))  # no biases
    assert loss == pytest.approx(data + 0.5 * alpha * ssq / m, rel=1e-5)


def test_alpha_penalty_follows_every_batch_size_the_last_smaller_one_too(monkeypatch):
    from fastnn import regularizers
    seen = []
    orig = regularizers.Regularizer.add_gradient

    def spy(self, w, grad, scratch=None):
        seen.append(getattr(self, "batch_size", None))
        return orig(self, w, grad, scratch)

    monkeypatch.setattr(regularizers.Regularizer, "add_gradient", spy)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(250, 3)), rng.integers(0, 2, 250)
    MLPClassifier(hidden_layer_sizes=(4,), alpha=0.3, batch_size=100, max_iter=2,
                  n_iter_no_change=5, random_state=0).fit(x, y)
    # two kernels per step; batches of 100, 100, 50 in each of 2 epochs
    assert seen == [m for m in [100, 100, 50] * 2 for _ in range(2)]


def test_regressor_alpha_keeps_scikit_learns_objective_up_to_mses_factor_two():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 3)), rng.normal(size=40)
    alpha = 0.2
    est = MLPRegressor(hidden_layer_sizes=(5,), alpha=alpha, batch_size=40, max_iter=1,
                       random_state=0).fit(x, y)
    model = est.model_
    xb = x.astype(np.float32)
    loss = model.compute_loss_and_gradients(xb, y.astype(np.float32).reshape(-1, 1))[0]
    pred = model.predict(xb)[:, 0].astype(np.float64)
    sk_loss = 0.5 * np.mean((y - pred) ** 2)
    ssq = sum(float(np.sum(w.astype(np.float64) ** 2)) for w in _kernels(model))
    assert loss == pytest.approx(2 * (sk_loss + 0.5 * alpha * ssq / 40), rel=1e-5)
