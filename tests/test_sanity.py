import pytest

from fastnn.sanity import diagnose


@pytest.mark.parametrize("train, dev, base, verdict", [
    (0.01, 0.11, 0.0, "high variance"),                 # the notes' four cases
    (0.15, 0.16, 0.0, "high bias"),
    (0.15, 0.30, 0.0, "high bias and high variance"),
    (0.005, 0.01, 0.0, "fine"),
    (0.15, 0.16, 0.14, "fine"),                         # base error counts
    (0.08, 0.095, 0.075, "fine"),
    (0.08, 0.15, 0.075, "high variance"),
])
def test_diagnose_gives_the_notes_verdicts(train, dev, base, verdict):
    d = diagnose(train, dev, base)
    assert d.verdict == verdict
    assert d.avoidable_bias == pytest.approx(train - base)
    assert d.variance == pytest.approx(dev - train)


def test_diagnose_recommends_the_basic_recipe_step():
    bias = diagnose(0.2, 0.21)
    assert bias.high_bias and not bias.high_variance
    assert any("bigger network" in s for s in bias.next_steps)
    var = diagnose(0.01, 0.2)
    assert any("more training data" in s for s in var.next_steps)
    assert any("regularization" in s for s in var.next_steps)
    both = diagnose(0.2, 0.4)
    assert both.next_steps[0].startswith("first reduce the bias")
    assert "high variance" in str(var) and "variance 19.00%" in str(var)


def test_diagnose_tolerance_sets_what_counts_as_high():
    assert diagnose(0.05, 0.06, tolerance=0.02).verdict == "high bias"
    assert diagnose(0.05, 0.06, tolerance=0.1).verdict == "fine"


def test_diagnose_flags_dev_much_better_than_train():
    d = diagnose(0.2, 0.05, base_error=0.19)
    assert any("same distribution" in s for s in d.next_steps)


@pytest.mark.parametrize("kwargs, exc, name", [
    (dict(train_error=15, dev_error=0.2), ValueError, "train_error"),
    (dict(train_error=0.1, dev_error=-0.1), ValueError, "dev_error"),
    (dict(train_error=0.1, dev_error=0.1, base_error="0"), TypeError, "base_error"),
    (dict(train_error=0.1, dev_error=0.1, tolerance=2), ValueError, "tolerance"),
])
def test_diagnose_rejects_bad_arguments_by_name(kwargs, exc, name):
    with pytest.raises(exc, match=name):
        diagnose(**kwargs)


# ------------------------------------------------------------- sanity_check

def _needs_api():
    import fastnn.models
    return fastnn.models


@pytest.fixture
def blobs():
    import numpy as np
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 2, size=(5, 12))
    y = rng.integers(0, 5, size=300)
    x = centres[y] + rng.normal(size=(300, 12))
    return ((x - x.mean(0)) / x.std(0)).astype("float32"), y  # standardized, as the notes ask


def _mlp(init=None, lr=0.01, reg=None, dropout=0.0):
    _needs_api()
    import fastnn
    from fastnn.layers import Dense, Dropout
    kw = {"kernel_initializer": init} if init is not None else {}
    layers = [Dense(64, activation="relu", input_dim=12, **kw)]
    if dropout:
        layers.append(Dropout(dropout))
    # small output weights, as the notes' W = 0.01 * randn: the initial loss is then ln C
    out_init = init if init is not None else fastnn.initializers.RandomNormal(stddev=0.01)
    layers.append(Dense(5, activation="softmax", kernel_initializer=out_init))
    m = fastnn.Sequential(layers)
    m.compile(fastnn.optimizers.Adam(lr), "sparse_categorical_crossentropy", metrics=["accuracy"],
              regularizer=reg)
    return m


def test_sanity_check_passes_a_healthy_model(blobs):
    from fastnn.sanity import sanity_check
    x, y = blobs
    m = _mlp(reg="l2", dropout=0.3)
    before = [w.copy() for w in m.get_weights()]
    report = sanity_check(m, x, y)
    assert report.ok, str(report)
    init, reg, overfit = report
    assert init.values["expected"] == pytest.approx(__import__("math").log(5))
    assert abs(init.values["loss"] - init.values["expected"]) < 0.25 * init.values["expected"]
    assert reg.values["with"] > reg.values["without"]
    assert overfit.values["accuracy"] == 1.0 and overfit.values["epochs"] <= 200
    for a, b in zip(before, m.get_weights()):  # the model itself is not trained
        assert (a == b).all()


def test_sanity_check_catches_a_bad_init_and_a_too_small_learning_rate(blobs):
    import fastnn
    from fastnn.sanity import sanity_check
    x, y = blobs
    _needs_api()
    m = _mlp(init=fastnn.initializers.RandomNormal(stddev=3.0), lr=1e-7)
    report = sanity_check(m, x, y, max_epochs=30)
    init, reg, overfit = report
    assert init.passed is False and init.values["loss"] > 2 * init.values["expected"]
    assert reg.passed  # no regularizer in the model: an L2 is added for the check
    assert overfit.passed is False and "cannot overfit" in overfit.detail
    assert not report.ok and "FAIL" in str(report)


def test_sanity_check_regression_has_no_expected_initial_loss():
    _needs_api()
    import numpy as np
    import fastnn
    from fastnn.layers import Dense
    from fastnn.sanity import sanity_check
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 3)).astype("float32")
    m = fastnn.Sequential([Dense(32, activation="tanh", input_dim=3), Dense(1)])
    m.compile(fastnn.optimizers.Adam(0.01), "mse")
    report = sanity_check(m, x, x[:, :1] * 2 - x[:, 1:2], max_epochs=300)
    assert report[0].passed is None and report.ok


def test_sanity_check_requires_a_compiled_model(blobs):
    _needs_api()
    import fastnn
    from fastnn.layers import Dense
    from fastnn.sanity import sanity_check
    x, y = blobs
    with pytest.raises(ValueError, match="model: compile"):
        sanity_check(fastnn.Sequential([Dense(5, input_dim=12)]), x, y)
