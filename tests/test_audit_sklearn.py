"""Audit of the scikit-learn estimators as scikit-learn users use them (defects found by the audit)."""
import copy
import pickle
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.datasets import make_classification, make_regression  # noqa: E402
from sklearn.exceptions import DataConversionWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from fastnn.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

X, Y = make_classification(120, 6, n_informative=4, n_classes=3, random_state=0)


@pytest.mark.parametrize("kw", [{}, {"dropout": 0.2}, {"batchnorm": True}, {"optimizer": "sgd"}])
def test_a_pickled_or_copied_classifier_trains_on_as_the_original(kw):
    # pickling kept the weights but not the optimizer's moments nor Dropout's counters: a copy's next
    # partial_fit drifted from the original's (scikit-learn keeps the solver state)
    a = MLPClassifier(hidden_layer_sizes=(8,), random_state=0, **kw).partial_fit(X, Y, classes=[0, 1, 2])
    a.partial_fit(X, Y)
    b, c = pickle.loads(pickle.dumps(a)), copy.deepcopy(a)
    for est in (a, b, c):
        est.partial_fit(X, Y)
    assert np.array_equal(a.predict_proba(X), b.predict_proba(X))
    assert np.array_equal(a.predict_proba(X), c.predict_proba(X))


def test_regressor_column_vector_target_predicts_1d_as_scikit_learn():
    xr, yr = make_regression(60, 4, random_state=0)
    with pytest.warns(DataConversionWarning):
        reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(xr, yr[:, None])
    flat = MLPRegressor(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(xr, yr)
    assert reg.predict(xr).shape == (60,)
    assert np.array_equal(reg.predict(xr), flat.predict(xr))
    assert MLPRegressor(max_iter=2, random_state=0).fit(xr, np.c_[yr, yr]).predict(xr).shape == (60, 2)


def test_pipeline_grid_search_and_probabilities():
    # checked fine (n_jobs=2 too, by hand: 12 s of process start-up, too slow here): a pipeline in
    # GridSearchCV, string labels, rows summing to 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gs = GridSearchCV(make_pipeline(StandardScaler(), MLPClassifier(max_iter=3, random_state=0)),
                          {"mlpclassifier__hidden_layer_sizes": [(4,), (8,)]}, cv=2).fit(X, Y)
    p = gs.predict_proba(X)
    assert p.shape == (120, 3) and np.allclose(p.sum(axis=1), 1.0, atol=1e-12)
    assert set(gs.predict(X)) <= {0, 1, 2}


def test_string_labels_keep_their_order_in_predict_proba():
    labels = np.array(["cat", "dog", "eel"])[Y]
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X, labels)
    assert list(clf.classes_) == ["cat", "dog", "eel"]
    assert np.array_equal(clf.classes_[clf.predict_proba(X).argmax(axis=1)], clf.predict(X))
