"""fastnn.mixed_precision: Keras's policy names, properties and global policy."""
import copy
import pickle

import pytest

from fastnn import mixed_precision as mp


@pytest.fixture(autouse=True)
def restore_global_policy():
    before = mp.global_policy()
    yield
    mp.set_global_policy(before)


@pytest.mark.parametrize("name, compute, variable", [
    ("float32", "float32", "float32"),
    ("float64", "float64", "float64"),
    ("mixed_bfloat16", "bfloat16", "float32"),
])
def test_policy_names_and_dtypes_as_keras(name, compute, variable):
    p = mp.Policy(name)
    assert (p.name, p.compute_dtype, p.variable_dtype) == (name, compute, variable)
    assert repr(p) == f'<DTypePolicy "{name}">'
    assert p.is_mixed == (compute != variable)
    assert p.quantization_mode is None


def test_policy_is_dtypepolicy_and_round_trips_through_config_pickle_and_copy():
    assert mp.Policy is mp.DTypePolicy
    p = mp.Policy("mixed_bfloat16")
    assert p.get_config() == {"name": "mixed_bfloat16"}
    assert mp.Policy.from_config(p.get_config()) == p
    assert pickle.loads(pickle.dumps(p)) == p
    assert copy.deepcopy(p) == p
    assert mp.Policy(p) == p
    assert p != mp.Policy("float32") and p != "mixed_bfloat16"
    assert len({p, mp.Policy("mixed_bfloat16"), mp.Policy("float32")}) == 2


def test_default_global_policy_is_float32():
    assert mp.global_policy() == mp.Policy("float32")
    assert mp.Policy().name == "float32"  # Keras's default name


def test_set_global_policy_takes_a_name_or_a_policy():
    mp.set_global_policy("mixed_bfloat16")
    assert mp.global_policy().compute_dtype == "bfloat16"
    assert mp.global_policy().variable_dtype == "float32"
    mp.set_global_policy(mp.Policy("float64"))
    assert mp.global_policy().name == "float64"
    assert mp.dtype_policy() is mp.global_policy()  # Keras 3's other names
    mp.set_dtype_policy("float32")
    assert mp.global_policy().name == "float32"


@pytest.mark.parametrize("name, why", [
    ("bfloat16", "float32 variables"),
    ("float16", "no float16 kernels"),
    ("mixed_float16", "no float16 kernels"),
    ("foo", "expected one of"),
    ("Mixed_BFloat16", "expected one of"),
    ("", "expected one of"),
])
def test_unknown_or_unsupported_names_are_refused_clearly(name, why):
    with pytest.raises(ValueError, match=why) as e:
        mp.Policy(name)
    assert "mixed_bfloat16" in str(e.value) and repr(name) in str(e.value)


@pytest.mark.parametrize("bad", [None, 3, 1.5, b"float32", ["float32"]])
def test_non_string_policies_are_type_errors(bad):
    with pytest.raises(TypeError, match="name: expected a policy name"):
        mp.Policy(bad)
    with pytest.raises(TypeError, match="policy: expected a policy name"):
        mp.set_global_policy(bad)


def test_refused_policy_leaves_the_global_policy_unchanged():
    mp.set_global_policy("mixed_bfloat16")
    for bad in ("mixed_float16", None, "nope"):
        with pytest.raises((TypeError, ValueError)):
            mp.set_global_policy(bad)
        assert mp.global_policy().name == "mixed_bfloat16"


def test_properties_are_read_only():
    p = mp.Policy("float32")
    with pytest.raises(AttributeError):
        p.compute_dtype = "bfloat16"
    with pytest.raises(AttributeError):
        p.name = "mixed_bfloat16"
    assert p.name == "float32"
