"""Optimizer configs between Keras 3 and fastnn: the configs Keras 3.15 writes (below, literal)
load in fastnn, Keras-only arguments at a value fastnn does not compute are refused naming the
argument, and fastnn's configs load in Keras (compared with Keras itself when installed)."""
import os

import pytest

from fastnn import optimizers as O

_COMMON = {"learning_rate": 0.0010000000474974513, "weight_decay": None, "clipnorm": None, "global_clipnorm": None,
           "clipvalue": None, "use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None,
           "loss_scale_factor": None, "gradient_accumulation_steps": None}
KERAS = {
    "Adam": dict(_COMMON, name="adam", beta_1=0.9, beta_2=0.999, epsilon=1e-07, amsgrad=False),
    "RMSprop": dict(_COMMON, name="rm_sprop", rho=0.9, momentum=0.0, epsilon=1e-07, centered=False),
    "SGD": dict(_COMMON, name="SGD", momentum=0.0, nesterov=False),
}


@pytest.mark.parametrize("name", sorted(KERAS))
def test_keras_optimizer_config_loads(name):
    opt = O.get({"module": "keras.optimizers", "class_name": name, "config": KERAS[name], "registered_name": None})
    assert type(opt).__name__ == name and opt.name == KERAS[name]["name"]
    assert opt.learning_rate == pytest.approx(1e-3)


@pytest.mark.parametrize("name, key, value", [
    ("Adam", "loss_scale_factor", 128.0), ("Adam", "gradient_accumulation_steps", 4),
    ("SGD", "gradient_accumulation_steps", 2)])
def test_keras_arguments_fastnn_does_not_compute_are_refused(name, key, value):
    with pytest.raises(ValueError, match=key):
        O.get({"class_name": name, "config": dict(KERAS[name], **{key: value})})


def test_sgd_config_writes_momentum_form_only_when_not_keras():
    assert "momentum_form" not in O.SGD(0.1, momentum=0.9).get_config()
    c = O.SGD(0.1, momentum=0.9, momentum_form="ema").get_config()
    assert c["momentum_form"] == "ema" and O.get({"class_name": "SGD", "config": c}).momentum_form == "ema"


@pytest.mark.parametrize("name", ["Adam", "AdamW", "SGD", "RMSprop", "Adagrad", "Nadam", "Adamax", "Lion"])
def test_configs_cross_load_with_keras(name):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    k = getattr(keras.optimizers, name)(learning_rate=0.01)
    ours = O.get({"class_name": name, "config": k.get_config()})
    back = getattr(keras.optimizers, name).from_config(ours.get_config())
    want = {key: v for key, v in k.get_config().items() if key != "name"}
    got = {key: v for key, v in back.get_config().items() if key != "name"}
    assert set(got) == set(want)
    for key in want:
        if isinstance(want[key], float):
            assert got[key] == pytest.approx(want[key], rel=1e-6), key
        else:
            assert got[key] == want[key], key


def test_keras_rmsprop_momentum_and_centered_load():
    opt = O.get({"class_name": "RMSprop", "config": dict(KERAS["RMSprop"], momentum=0.9, centered=True)})
    assert (opt.momentum, opt.centered, opt.slots) == (0.9, True, ("sq_avg", "momentum", "average_gradient"))
