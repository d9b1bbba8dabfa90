"""fastnn._validate: declared hyperparameter constraints, and their use in constructors (issue 11)."""
import numpy as np
import pytest

import fastnn
from fastnn import callbacks, layers as L, optimizers, regularizers, schedules
from fastnn._validate import Integral, Interval, InvalidParameterError, Options, Real, validate


def test_interval_bounds_and_closedness():
    half_open = Interval(Real, 0, 1, closed="left")
    assert half_open.accepts(0) and half_open.accepts(0.5) and not half_open.accepts(1)
    assert Interval(Real, 0, 1, closed="both").accepts(1.0)
    assert not Interval(Real, 0, None, closed="neither").accepts(0.0)
    assert Interval(Real, None, None, closed="both").accepts(-3e300)
    assert Interval(Integral, 1, None, closed="left").accepts(np.int64(3))
    assert Interval(Real, 0, 1, closed="left").accepts(np.float32(0.25))


@pytest.mark.parametrize("value", [True, False, float("nan"), float("inf"), "0.5", None, 2.5])
def test_interval_refuses_bools_non_finite_strings_and_out_of_range(value):
    assert not Interval(Real, 0, 1, closed="both").accepts(value)


def test_integral_interval_refuses_floats():
    assert not Interval(Integral, 1, None, closed="left").accepts(2.0)


def test_message_names_argument_expected_received_and_owner():
    with pytest.raises(InvalidParameterError,
                       match=r"^momentum: expected a number in \[0, 1\), got 1\.5 \(in SGD\)$"):
        validate({"momentum": 1.5}, {"momentum": [Interval(Real, 0, 1, closed="left")]}, "SGD")
    with pytest.raises(InvalidParameterError, match=r"mode: expected one of 'max', 'min' or None, got 'up'"):
        validate({"mode": "up"}, {"mode": [Options(str, {"min", "max"}), None]}, "X")


def test_error_is_both_value_and_type_error():
    assert issubclass(InvalidParameterError, ValueError) and issubclass(InvalidParameterError, TypeError)


def test_undeclared_and_absent_parameters_are_left_alone():
    validate({"other": object()}, {"rate": [Interval(Real, 0, 1, closed="left")]}, "X")


def test_interval_declaration_is_checked():
    with pytest.raises(ValueError, match="closed"):
        Interval(Real, 0, 1, closed="open")
    with pytest.raises(ValueError, match="left"):
        Interval(Real, 2, 1, closed="both")


@pytest.mark.parametrize("make, name", [
    (lambda: optimizers.SGD(momentum=1.0), "momentum"),
    (lambda: optimizers.SGD(learning_rate=True), "learning_rate"),
    (lambda: optimizers.Adam(beta_2=1.0), "beta_2"),
    (lambda: optimizers.Adam(epsilon=0.0), "epsilon"),
    (lambda: optimizers.RMSprop(rho=-0.1), "rho"),
    (lambda: optimizers.Adagrad(initial_accumulator_value=-1), "initial_accumulator_value"),
    (lambda: optimizers.Adam(clipnorm=0), "clipnorm"),
    (lambda: optimizers.Adam(weight_decay=-1e-4), "weight_decay"),
    (lambda: L.Dense(True), "units"),
    (lambda: L.Dense(2.0), "units"),
    (lambda: L.Dropout(1.0), "rate"),
    (lambda: L.BatchNormalization(momentum=1.01), "momentum"),
    (lambda: L.BatchNormalization(epsilon=0.0), "epsilon"),
    (lambda: L.Maxout(3, pieces=0), "pieces"),
    (lambda: regularizers.L2(-0.1), "l2"),
    (lambda: regularizers.L1L2(l1=float("nan")), "l1"),
    (lambda: callbacks.EarlyStopping(patience=-1), "patience"),
    (lambda: callbacks.EarlyStopping(mode="up"), "mode"),
    (lambda: callbacks.ReduceLROnPlateau(factor=1.0), "factor"),
    (lambda: callbacks.ReduceLROnPlateau(min_lr=-1.0), "min_lr"),
    (lambda: schedules.ExponentialDecay(0.1, 10, 0.0), "decay_rate"),
    (lambda: schedules.CosineDecay(0.1, 10, alpha=2.0), "alpha"),
])
def test_constructors_refuse_out_of_range_naming_the_argument(make, name):
    with pytest.raises(InvalidParameterError, match=rf"^{name}: expected .*, got "):
        make()


def test_batchnorm_momentum_range_is_the_ops_range():
    # [0, 1] in the layer and in ops.batchnorm_forward: momentum 1 keeps the moving statistics
    bn = L.BatchNormalization(momentum=1.0)
    m = fastnn.Sequential([L.Input(3), bn])
    m.compile("sgd", "mse")
    x = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    m.fit(x, x, batch_size=4, epochs=1, verbose=0)
    np.testing.assert_array_equal(bn.get_weights()[2], np.zeros(3, np.float32))  # moving_mean unchanged


def test_batchnorm_layer_with_one_row_in_training_is_refused_by_the_op():
    bn = L.BatchNormalization()
    fastnn.Sequential([L.Input(3), bn])
    with pytest.raises(ValueError, match="at least 2 rows"):
        bn.forward(np.ones((1, 3), np.float32), training=True)


def test_validate_module_imports_nothing_of_ours():
    import ast
    import pathlib
    import fastnn._validate as v
    tree = ast.parse(pathlib.Path(v.__file__).read_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level >= 1]


def test_options_keep_the_declared_order():
    with pytest.raises(InvalidParameterError, match="one of 'b', 'a', got 'c'"):
        validate({"k": "c"}, {"k": [Options(str, ("b", "a"))]}, "X")
