"""Audit of the dtype-policy API against Keras 3's behaviour (defects found by the audit)."""
import numpy as np
import pytest

import fastnn
from fastnn import layers
from fastnn import mixed_precision as mp


@pytest.fixture(autouse=True)
def restore_global_policy():
    before = mp.global_policy()
    yield
    mp.set_global_policy(before)


def test_global_float64_policy_makes_float64_models():
    # Keras 3: set_global_policy("float64") makes layers with float64 variables that compute
    # in float64. fastnn built float32 models, so a layer's policy said float64 while it
    # trained in float32 (a silent change of precision).
    mp.set_global_policy("float64")
    seq = fastnn.Sequential([fastnn.Input((3,)), layers.Dense(2)])
    assert seq.dtype == np.float64
    assert seq.layers[0].compute_dtype == "float64"
    assert seq.predict(np.ones((2, 3))).dtype == np.float64
    i = fastnn.Input((3,))
    assert fastnn.Model(i, layers.Dense(2)(i)).dtype == np.float64
    mp.set_global_policy("mixed_bfloat16")  # variables float32
    assert fastnn.Sequential([fastnn.Input((3,)), layers.Dense(2)]).dtype == np.float32
    mp.set_global_policy("float64")
    assert fastnn.Sequential([layers.Dense(2)], dtype="float32").dtype == np.float32  # explicit wins


def test_layer_from_config_round_trips_the_policy():
    # Keras: ``type(layer).from_config(layer.get_config())``; fastnn's layers had no from_config
    d = layers.Dense(3, activation="relu", dtype="mixed_bfloat16", kernel_initializer="he_normal",
                     kernel_regularizer="l2")
    d2 = layers.Dense.from_config(d.get_config())
    assert type(d2) is layers.Dense and d2.dtype_policy == mp.Policy("mixed_bfloat16")
    assert d2.get_config() == d.get_config()
    bn = layers.BatchNormalization(momentum=0.9, dtype="float64")
    assert layers.BatchNormalization.from_config(bn.get_config()).get_config() == bn.get_config()
    drop = layers.Dropout(0.25, seed=3)
    assert layers.Dropout.from_config(drop.get_config()).get_config() == drop.get_config()


def test_policy_none_is_float32_as_keras():
    # Keras 3: DTypePolicy(None) (its default) is the float32 policy
    assert mp.Policy(None) == mp.Policy("float32")
    assert mp.DTypePolicy(name=None).name == "float32"


@pytest.mark.parametrize("bad", [3, None, 1.5, ["float32"]])
def test_non_string_policy_is_a_valueerror_as_keras_and_state_unchanged(bad):
    # Keras 3 raises ValueError for a set_global_policy / dtype= argument that is neither a
    # name nor a policy; fastnn raised TypeError only. Now the error is both.
    mp.set_global_policy("mixed_bfloat16")
    with pytest.raises(ValueError, match="policy"):
        mp.set_global_policy(bad)
    with pytest.raises(TypeError, match="policy"):
        mp.set_global_policy(bad)
    assert mp.global_policy() == mp.Policy("mixed_bfloat16")
    if bad is not None:  # dtype=None is the global policy
        with pytest.raises(ValueError, match="dtype"):
            layers.Dense(2, dtype=bad)
    d = layers.Dense(2, dtype="float32")
    with pytest.raises(ValueError, match="dtype_policy"):
        d.dtype_policy = 3
    assert d.dtype_policy == mp.Policy("float32")


@pytest.mark.parametrize("x", [np.arange(3), np.ones(3, np.float16), np.ones(3, np.float64),
                               np.ones(3, np.complex64)])
def test_bfloat16_round_names_float32_only(x):
    # bfloat16_round said "expected dtype float32 or float64" for an int or float16 array,
    # then refused float64 itself: the message now names what it takes
    from fastnn import ops
    with pytest.raises(TypeError, match=r"x: expected dtype float32 \(bfloat16 operations take float32"):
        ops.bfloat16_round(x)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", mp.Policy("mixed_bfloat16"), {"name": "mixed_bfloat16"}])
def test_layer_takes_dtype_policy_keyword(policy):
    # issue 15 asks for a per-layer ``dtype_policy=`` (Keras 3 layers take ``dtype=``); it was
    # "unexpected keyword argument"
    for layer in (layers.Dense(3, dtype_policy=policy), layers.BatchNormalization(dtype_policy=policy),
                  layers.Dropout(0.5, dtype_policy=policy)):
        assert layer.dtype_policy == mp.Policy("mixed_bfloat16")
        assert layer.compute_dtype == "bfloat16"
    assert layers.Dense(3, dtype="mixed_bfloat16", dtype_policy=policy).dtype_policy.name == "mixed_bfloat16"
    with pytest.raises(ValueError, match="dtype, dtype_policy"):
        layers.Dense(3, dtype="float32", dtype_policy=policy)
    with pytest.raises(ValueError, match="dtype_policy: expected one of"):
        layers.Dense(3, dtype_policy="mixed_float17")
