import numpy as np
import pytest


import fastnn  # noqa: E402
from fastnn.gradcheck import check_gradients, check_layer, verdict  # noqa: E402
from fastnn.layers import Activation, BatchNormalization, Dense, Dropout  # noqa: E402


class BrokenDense(Dense):
    """Dense whose kernel gradient is 5% too large: the bug gradcheck must catch."""

    def backward(self, dy, need_dx=True):
        dx = super().backward(dy, need_dx)
        self.grads["kernel"] *= 1.05
        return dx


class BrokenInputGradient(Dense):
    """Dense whose input gradient is missing a term (transposed weights used wrong)."""

    def backward(self, dy, need_dx=True):
        dx = super().backward(dy, need_dx)
        if dx is not None:
            dx *= 0.5
        return dx


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(6, 5)), rng.integers(0, 3, 6)


def test_verdicts_follow_the_notes_thresholds():
    assert [verdict(e) for e in (1e-9, 1e-6, 1e-4, 1e-2, np.nan)] == \
        ["great", "ok", "check", "wrong", "wrong"]


def checked_net(first, data):
    """check_gradients on ``first`` (input_dim 5) followed by a softmax Dense(3); (model, report)."""
    m = fastnn.Sequential([first, Dense(3, activation="softmax")])
    m.compile("sgd", "sparse_categorical_crossentropy")
    return m, check_gradients(m, *data)


def test_correct_network_passes_in_float64(data):
    _, report = checked_net(Dense(7, activation="tanh", input_dim=5), data)
    assert [c.name.split("/")[1] for c in report] == ["kernel", "bias", "kernel", "bias"]
    assert report.ok and all(c.rel_error < 1e-7 for c in report)
    assert all(c.checked == c.size for c in report)


def test_deliberately_broken_kernel_gradient_is_flagged_wrong(data):
    m, report = checked_net(BrokenDense(6, activation="relu", input_dim=5), data)
    by_name = {c.name.split("/", 1)[1] if "/" in c.name else c.name: c for c in report}
    broken = [c for c in report if c.name.startswith(m.layers[0].name + "/kernel")][0]
    assert broken.verdict == "wrong" and broken.rel_error > 1e-3
    assert not report.ok and report.worst is broken
    # the other tensors are still right: the report points at the culprit
    assert all(c.verdict == "great" for c in report if c is not broken), by_name


def test_broken_input_gradient_shows_in_the_layers_below(data):
    x, y = data
    m = fastnn.Sequential([Dense(6, activation="tanh", input_dim=5),
                           BrokenInputGradient(4, activation="tanh"),
                           Dense(3, activation="softmax")])
    m.compile("sgd", "sparse_categorical_crossentropy")
    report = check_gradients(m, x, y)
    first = [c for c in report if c.name.startswith(m.layers[0].name + "/")]
    assert all(c.verdict == "wrong" for c in first)


def test_regularization_is_on_and_its_gradient_checked(data):
    x, y = data
    m = fastnn.Sequential([Dense(6, activation="sigmoid", input_dim=5, kernel_regularizer="l2"),
                           Dense(3, activation="softmax")])
    m.compile("sgd", "sparse_categorical_crossentropy", regularizer=fastnn.regularizers.L2(0.5))
    report = check_gradients(m, x, y)
    assert report.ok and report.worst.rel_error < 1e-6


def test_dropout_is_off_and_batchnorm_is_checked_in_training_mode(data):
    x, y = data
    m = fastnn.Sequential([Dense(6, input_dim=5, use_bias=False), BatchNormalization(),
                           Activation("tanh"), Dropout(0.5), Dense(3, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy")
    report = check_gradients(m, x, y)
    names = [c.name.split("/")[1] for c in report]
    assert names == ["kernel", "gamma", "beta", "kernel", "bias"]
    assert report.ok and report.worst.rel_error < 1e-6


def test_the_model_is_left_untouched(data):
    x, y = data
    m = fastnn.Sequential([Dense(4, activation="tanh", input_dim=5), Dense(3, activation="softmax")])
    m.compile("sgd", "sparse_categorical_crossentropy")
    before = [w.copy() for w in m.get_weights()]
    check_gradients(m, x, y)
    assert m.dtype == np.float32 and all(w.dtype == np.float32 for w in m.get_weights())
    for a, b in zip(before, m.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_mse_regression_and_sampled_elements():
    rng = np.random.default_rng(1)
    m = fastnn.Sequential([Dense(20, activation="elu", input_dim=4), Dense(2)])
    m.compile("sgd", "mse")
    report = check_gradients(m, rng.normal(size=(5, 4)), rng.normal(size=(5, 2)),
                             max_per_tensor=7)
    assert [c.checked for c in report] == [7, 7, 7, 2]
    assert report.ok


def test_check_layer_covers_parameters_and_input():
    rng = np.random.default_rng(2)
    report = check_layer(Dense(4, activation="sigmoid"), rng.normal(size=(3, 5)))
    assert [c.name.split("/")[1] for c in report] == ["kernel", "bias", "input"]
    assert report.ok
    bn = check_layer(BatchNormalization(), rng.normal(size=(6, 4)))
    assert bn.ok


def test_check_layer_flags_a_broken_layer():
    rng = np.random.default_rng(3)
    report = check_layer(BrokenInputGradient(4, activation="tanh"), rng.normal(size=(3, 5)))
    verdicts = {c.name.split("/")[1]: c.verdict for c in report}
    assert verdicts == {"kernel": "great", "bias": "great", "input": "wrong"}


def test_argument_errors_name_the_argument(data):
    x, y = data
    m = fastnn.Sequential([Dense(3, activation="softmax", input_dim=5)])
    with pytest.raises(ValueError, match="model: compile"):
        check_gradients(m, x, y)
    m.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="eps"):
        check_gradients(m, x, y, eps=0)
    with pytest.raises(ValueError, match="x: 1000 examples"):
        check_gradients(m, np.zeros((1000, 5)), np.zeros(1000, int))
    with pytest.raises(TypeError, match="layer"):
        check_layer("dense", x)
    with pytest.raises(ValueError, match="Dropout"):
        check_layer(Dropout(0.5), x)


# -- round-off zeros and kinks (issue 12) ----------------------------------------
def _bias_before_bn():
    m = fastnn.Sequential([Dense(5, input_dim=4), BatchNormalization(), Activation("relu"),
                           Dense(3, activation="softmax")])
    m.compile("sgd", "sparse_categorical_crossentropy")
    return m


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_truly_zero_gradient_is_zero_not_wrong(seed):
    """A Dense bias before BatchNorm has gradient exactly 0: the notes' Keras pattern."""
    rng = np.random.default_rng(seed)
    report = check_gradients(_bias_before_bn(), rng.normal(size=(6, 4)), rng.integers(0, 3, 6))
    bias = report[1]
    assert bias.name.endswith("/bias") and bias.verdict == "zero", str(report)
    assert "zero (both below 1e-10)" in str(report)
    assert report.ok, str(report)


def test_a_gradient_wrongly_zero_is_still_wrong(monkeypatch):
    """Without BatchNorm the bias gradient is not zero; a backward that forgets it is caught."""
    orig = Dense.backward

    def no_bias_grad(self, dy, need_dx=True):
        dx = orig(self, dy, need_dx)
        self.grads["bias"][...] = 0
        return dx

    monkeypatch.setattr(Dense, "backward", no_bias_grad)
    m = fastnn.Sequential([Dense(5, activation="tanh", input_dim=4), Dense(3, activation="softmax")])
    m.compile("sgd", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    report = check_gradients(m, rng.normal(size=(6, 4)), rng.integers(0, 3, 6))
    assert [c.verdict for c in report if c.name.endswith("bias")] == ["wrong", "wrong"], str(report)
    assert not report.ok


def _check_relu_net_with_zero_rows():
    """check_gradients of a ReLU net on six inputs, two of them zero rows (ReLU on its kink)."""
    rng = np.random.default_rng(0)
    m = fastnn.Sequential([Dense(5, activation="relu", input_dim=4), Dense(3, activation="softmax")])
    m.compile("sgd", "sparse_categorical_crossentropy")
    x = rng.normal(size=(6, 4))
    x[:2] = 0
    return check_gradients(m, x, rng.integers(0, 3, 6))


def test_relu_kink_is_reported_as_kink_not_wrong():
    """Two of six inputs are zero rows: with a zero bias their ReLU sits exactly on its kink,
    and perturbing the bias by +-eps crosses it."""
    report = _check_relu_net_with_zero_rows()
    bias = report[1]
    assert bias.verdict == "kink" and bias.kinks > 0, str(report)
    assert "cross a kink" in str(report) and report.ok


def test_maxout_tie_is_a_kink_not_wrong():
    from fastnn.layers import Maxout
    rng = np.random.default_rng(0)
    m = fastnn.Sequential([Maxout(3, pieces=2, input_dim=4), Dense(2, activation="softmax")])
    m.compile("sgd", "sparse_categorical_crossentropy")
    k = m.layers[0].vars["kernel"]
    k3 = k.reshape(4, 3, 2)
    k3[..., 1] = k3[..., 0]  # both pieces equal: every unit is a tie
    report = check_gradients(m, rng.normal(size=(5, 4)), rng.integers(0, 2, 5))
    assert report[0].verdict == "kink", str(report)
    assert report.ok


def test_a_wrong_gradient_is_caught_even_where_kinks_are_present(monkeypatch):
    orig = Dense.backward

    def scaled(self, dy, need_dx=True):
        dx = orig(self, dy, need_dx)
        self.grads["kernel"] *= 1.5
        return dx

    monkeypatch.setattr(Dense, "backward", scaled)
    report = _check_relu_net_with_zero_rows()
    assert [c.verdict for c in report if c.name.endswith("kernel")] == ["wrong", "wrong"], str(report)
    assert not report.ok
