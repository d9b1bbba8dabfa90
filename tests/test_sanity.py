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
