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
    if bad is not None:  # Policy(None) is float32, as in Keras 3 (tests/test_audit_mixed.py)
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


# ----------------------------------------------------------------------------
# the policy in layers and models (issue 15: Dense through matmul_bf16)
# ----------------------------------------------------------------------------
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402

import fastnn  # noqa: E402
import fastnn.reference as ref  # noqa: E402
from fastnn import _core  # noqa: E402
from fastnn.layers import Dense, Input  # noqa: E402
from helpers import fastnn_pythonpath  # noqa: E402



@pytest.fixture
def path(bf16_path):
    """One bf16 path (conftest.bf16_path: an ISA and a bf16 implementation, forced and restored)."""
    return bf16_path


def test_layer_policy_defaults_to_the_global_policy_at_construction():
    mp.set_global_policy("mixed_bfloat16")
    d = Dense(3)
    mp.set_global_policy("float32")
    assert d.dtype_policy == mp.Policy("mixed_bfloat16") and Dense(3).dtype_policy.name == "float32"
    assert (d.compute_dtype, d.variable_dtype) == ("bfloat16", "float32")
    for given in ("mixed_bfloat16", mp.Policy("mixed_bfloat16"), {"name": "mixed_bfloat16"},
                  {"class_name": "DTypePolicy", "config": {"name": "mixed_bfloat16"}}):
        assert Dense(3, dtype=given).dtype_policy.name == "mixed_bfloat16"
    assert Dense(3, dtype=np.float64).dtype_policy.name == "float64"


def test_layer_policy_is_in_the_config_and_round_trips():
    d = Dense(3, dtype="mixed_bfloat16")
    cfg = d.get_config()
    assert cfg["dtype"] == {"class_name": "DTypePolicy", "config": {"name": "mixed_bfloat16"}}
    again = fastnn.layers.deserialize({"class_name": "Dense", "config": cfg})
    assert again.dtype_policy.name == "mixed_bfloat16"


@pytest.mark.parametrize("bad, err, msg", [("float16", ValueError, "dtype: expected one of"),
                                           ("nope", ValueError, "dtype: expected one of"),
                                           (3.5, TypeError, "dtype: expected a policy name"),
                                           ({"config": 1}, ValueError, "dtype: expected a policy config")])
def test_layer_refuses_bad_policies_naming_dtype(bad, err, msg):
    with pytest.raises(err, match=msg):
        Dense(3, dtype=bad)


def test_float64_model_refuses_the_mixed_policy_clearly():
    with pytest.raises(ValueError, match="mixed_bfloat16.*needs a float32 model.*float64"):
        fastnn.Sequential([Input(4), Dense(3, dtype="mixed_bfloat16")], dtype="float64")
    m = fastnn.Sequential([Input(4), Dense(3)], dtype="float64")
    with pytest.raises(ValueError, match="needs a float32 model"):
        m.layers[0].dtype_policy = "mixed_bfloat16"
    assert m.layers[0].dtype_policy.name == "float32"  # unchanged
    assert m.layers[0].variable_dtype == "float64" and m.layers[0].compute_dtype == "float64"


def test_mixed_model_stays_float32_and_summary_shows_the_policy():
    mp.set_global_policy("mixed_bfloat16")
    m = fastnn.Sequential([Input(4), Dense(3, activation="relu"), Dense(2)])
    assert m.dtype == np.float32 and all(w.dtype == np.float32 for w in m.get_weights())
    lines = []
    m.summary(print_fn=lines.append)
    assert "Dtype policy: mixed_bfloat16" in lines


def _dense_step(act, seed=0, m=37, k=70, n=19):
    rng = np.random.default_rng(seed)
    model = fastnn.Sequential([Input(k), Dense(n, activation=act, dtype="mixed_bfloat16",
                                                bias_initializer="random_normal")])
    layer = model.layers[0]
    model.predict(np.zeros((1, k), np.float32), verbose=0)  # places the arena
    x = rng.standard_normal((m, k)).astype(np.float32)
    dy = rng.standard_normal((m, n)).astype(np.float32)
    y = layer.forward(x, training=True).copy()
    dx = layer.backward(dy.copy(), need_dx=True).copy()
    return layer, x, dy, y, dx


def _assert_bf16_close(got, want_bf16, want_fp32, S, k):
    """Within K*2^-8*S of the bf16 twin, and closer to it than to the float32 product."""
    err = np.abs(got - want_bf16)
    assert np.all(err <= k * 2.0 ** -8 * S + 1e-6)
    assert err.max() < 0.1 * np.abs(want_fp32 - want_bf16).max()  # bf16 operands, really


@pytest.mark.parametrize("act", ["relu", "tanh", None])
def test_dense_forward_and_backward_equal_the_bf16_twin(path, act):
    layer, x, dy, y, dx = _dense_step(act)
    W, b = layer.vars["kernel"].copy(), layer.vars["bias"].copy()
    k = x.shape[1]
    z = ref.matmul_bf16(x, W, bias=b)
    act_f = fastnn.activations.get(act)
    y_twin = ref.matmul_bf16(x, W, bias=b, activation=None if act_f.is_linear else act_f.kernel)
    _assert_bf16_close(y, y_twin, ref.matmul(x, W, bias=b), np.abs(x) @ np.abs(W) + np.abs(b), k)
    dz = dy if act_f.is_linear else act_f.backward(dy.copy(), x=z, y=y_twin, out=dy.copy())
    dW = layer.grads["kernel"]
    _assert_bf16_close(dW, ref.matmul_bf16(x, dz, trans_a=True), x.T @ dz, np.abs(x.T) @ np.abs(dz), x.shape[0])
    _assert_bf16_close(dx, ref.matmul_bf16(dz, W, trans_b=True), dz @ W.T, np.abs(dz) @ np.abs(W.T), dz.shape[1])
    np.testing.assert_allclose(layer.grads["bias"], dz.sum(0), rtol=1e-4, atol=1e-4)  # float32, unrounded


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((512, 20)).astype(np.float32)
    y = np.argmax(x[:, :5] + 0.5 * x[:, 5:10], axis=1)
    return x, y


def _fit(policy, x, y, epochs=8, seed=0):
    fastnn.utils.set_random_seed(seed)
    m = fastnn.Sequential([Input(20), Dense(64, activation="relu", dtype=policy),
                           fastnn.layers.BatchNormalization(dtype=policy),
                           Dense(32, activation="relu", dtype=policy),
                           Dense(5, activation="softmax", dtype=policy)])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    h = m.fit(x, y, batch_size=64, epochs=epochs, shuffle=False, verbose=0)
    return m, np.array(h.history["loss"])


def test_mixed_training_tracks_float32(path):
    x, y = _problem()
    m32, l32 = _fit("float32", x, y)
    m16, l16 = _fit("mixed_bfloat16", x, y)
    assert l32[-1] < 0.5 * l32[0]  # it learns
    assert not np.array_equal(l16, l32)  # the bf16 path ran
    # band: 3% relative + 0.01 absolute per epoch (measured on this machine: < 0.06%)
    np.testing.assert_allclose(l16, l32, rtol=0.03, atol=0.01)
    assert all(w.dtype == np.float32 for w in m16.get_weights())


def test_model_trained_mixed_saves_float32_and_predicts_in_either_policy(tmp_path):
    x, y = _problem()
    m16, _ = _fit("mixed_bfloat16", x, y, epochs=2)
    p16 = m16.predict(x, verbose=0)
    f = str(tmp_path / "m.npz")
    m16.save(f)
    loaded = fastnn.models.load_model(f)
    assert all(l.dtype_policy.name == "mixed_bfloat16" for l in loaded.layers)
    for a, b in zip(loaded.get_weights(), m16.get_weights()):
        assert a.dtype == np.float32 and np.array_equal(a, b)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), p16)
    for l in loaded.layers:
        l.dtype_policy = "float32"
    p32 = loaded.predict(x, verbose=0)
    fastnn.utils.set_random_seed(0)
    twin = fastnn.Sequential([Input(20), Dense(64, activation="relu"), fastnn.layers.BatchNormalization(),
                              Dense(32, activation="relu"), Dense(5, activation="softmax")])
    twin.set_weights(m16.get_weights())
    np.testing.assert_allclose(p32, twin.predict(x, verbose=0), rtol=1e-6, atol=1e-7)
    assert not np.array_equal(p32, p16)
    np.testing.assert_allclose(p32, p16, atol=0.03)  # the same model, in float32


@pytest.mark.parametrize("isa", [i for i in ("scalar", "avx2") if _core.isa_supported(i)])
def test_fastnn_isa_env_trains_mixed_through_the_fallback(isa):
    code = ("import numpy as np, fastnn; from fastnn import _core, mixed_precision as mp\n"
            "mp.set_global_policy('mixed_bfloat16'); fastnn.utils.set_random_seed(0)\n"
            "rng = np.random.default_rng(0); x = rng.standard_normal((256, 8)).astype('float32')\n"
            "y = (x[:, 0] > 0).astype(int)\n"
            "m = fastnn.Sequential([fastnn.layers.Input(8), fastnn.layers.Dense(16, activation='relu'),"
            " fastnn.layers.Dense(2, activation='softmax')])\n"
            "m.compile(optimizer='adam', loss='sparse_categorical_crossentropy')\n"
            "h = m.fit(x, y, epochs=20, batch_size=32, verbose=0)\n"
            "print(_core.active_isa(), _core.bf16_kernel(), m.layers[0].compute_dtype, "
            "h.history['loss'][0], h.history['loss'][-1])")
    env = dict(os.environ, FASTNN_ISA=isa, PYTHONPATH=fastnn_pythonpath())
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    got = r.stdout.split()
    assert got[:3] == [isa, "fallback", "bfloat16"]
    assert float(got[4]) < 0.5 * float(got[3])
