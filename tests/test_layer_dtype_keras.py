"""``layer.dtype``, ``compute_dtype`` and ``variable_dtype`` before and after the build and
under dtype policies, as Keras 3 reports them (Keras itself compared when installed)."""
import os

import numpy as np
import pytest

import fastnn
from fastnn import layers as L
from fastnn import mixed_precision

# (constructor keywords, global policy) -> (dtype, compute_dtype, variable_dtype) before the build
CASES = [
    ({}, "float32", ("float32", "float32", "float32")),
    ({"dtype": "float64"}, "float32", ("float64", "float64", "float64")),
    ({"dtype": "mixed_bfloat16"}, "float32", ("float32", "bfloat16", "float32")),
    ({}, "mixed_bfloat16", ("float32", "bfloat16", "float32")),
    ({}, "float64", ("float64", "float64", "float64")),
]


@pytest.fixture
def policy():
    before = mixed_precision.global_policy()
    yield mixed_precision.set_global_policy
    mixed_precision.set_global_policy(before)


def _report(layer):
    return str(layer.dtype), layer.compute_dtype, layer.variable_dtype


@pytest.mark.parametrize("case", range(len(CASES)))
def test_dtypes_before_build(policy, case):
    kw, glob, expected = CASES[case]
    policy(glob)
    for layer in (L.Dense(3, **kw), L.Dropout(0.1, **kw), L.BatchNormalization(**kw)):
        assert _report(layer) == expected
        assert layer.dtype == expected[0] and isinstance(layer.dtype, np.dtype)
        assert not layer.built


def test_dtypes_after_build_are_the_models():
    d = L.Dense(3)
    fastnn.Sequential([L.Input((4,)), d], dtype="float64")
    assert _report(d) == ("float64", "float64", "float64")
    m = L.Dense(3, dtype="mixed_bfloat16")
    fastnn.Sequential([L.Input((4,)), m])
    assert _report(m) == ("float32", "bfloat16", "float32")
    e = L.Dense(2)
    e(np.ones((2, 5)))  # built on its own: the policy's dtype
    assert _report(e) == ("float32", "float32", "float32") and e.kernel.dtype == np.float32


def test_eager_call_before_build_uses_the_policy_dtype():
    out = L.Dense(2, dtype="float64")(np.ones((3, 4), np.float32))
    assert out.dtype == np.float64


@pytest.mark.parametrize("case", range(len(CASES)))
def test_against_keras(policy, case):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    kw, glob, expected = CASES[case]
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(glob)
    try:
        for cls in ("Dense", "Dropout", "BatchNormalization"):
            args = (3,) if cls == "Dense" else (0.1,) if cls == "Dropout" else ()
            k = getattr(keras.layers, cls)(*args, **kw)
            assert (k.dtype, k.compute_dtype, k.variable_dtype) == expected
            k.build((None, 4))
            assert (k.dtype, k.compute_dtype, k.variable_dtype) == expected
    finally:
        keras.config.set_dtype_policy(before)
