"""Model files are data, never code, and saving never destroys the previous file.

load_model on a truncated, corrupted, foreign, wrong-version or malicious file
(a pickle payload inside the .npz, a config naming classes that are not
fastnn's) raises a ValueError that names the file, and executes nothing;
save writes a temporary file and renames it, so a crash mid-save leaves the
old checkpoint intact and no debris.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastnn
from fastnn import io as fio
from fastnn.layers import BatchNormalization, Dense, Dropout


def small_model(seed=0):
    m = fastnn.Sequential([Dense(8, input_dim=5, activation="relu"), BatchNormalization(), Dropout(0.2),
                           Dense(3, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy")
    r = np.random.default_rng(seed)
    x, y = r.standard_normal((64, 5)).astype(np.float32), r.integers(0, 3, 64)
    m.fit(x, y, epochs=1, batch_size=16, verbose=0)
    return m, x


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    m, x = small_model()
    path = tmp_path_factory.mktemp("model") / "m.npz"
    m.save(path)
    return path, path.read_bytes(), m.predict(x, verbose=0), x


def write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def arrays_of(raw):
    with np.load(io.BytesIO(raw), allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def npz_bytes(arrays, allow_pickle=False):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for k, v in arrays.items():
            b = io.BytesIO()
            np.lib.format.write_array(b, np.asanyarray(v), allow_pickle=allow_pickle)
            z.writestr(k + ".npy", b.getvalue())
    return buf.getvalue()


def assert_refused(path, *words):
    with pytest.raises(ValueError) as e:
        fastnn.load_model(path)
    msg = str(e.value)
    assert str(path) in msg, msg
    for w in words:
        assert w in msg, msg
    return msg


def test_round_trip_predicts_identically(saved):
    path, _, pred, x = saved
    np.testing.assert_array_equal(fastnn.load_model(path).predict(x, verbose=0), pred)


@pytest.mark.parametrize("keep", [0, 1, 10, 22, 100, 0.25, 0.5, 0.9, -1])
def test_truncated_file_is_refused(saved, tmp_path, keep):
    _, raw, _, _ = saved
    n = keep if isinstance(keep, int) and keep >= 0 else (len(raw) - 1 if keep == -1 else int(len(raw) * keep))
    assert_refused(write(tmp_path, "t.npz", raw[:n]))


def test_corrupted_bytes_are_refused(saved, tmp_path):
    _, raw, _, _ = saved
    rng = np.random.default_rng(0)
    for i in range(40):
        b = bytearray(raw)
        for pos in rng.integers(0, len(b), size=1 + i % 4):
            b[pos] ^= 1 << int(rng.integers(0, 8))
        p = write(tmp_path, f"c{i}.npz", bytes(b))
        try:
            fastnn.load_model(p)  # a flip in a byte nobody reads may still load
        except ValueError as e:
            assert str(p) in str(e)


@pytest.mark.parametrize("data", [b"", b"hello", b"PK\x03\x04" + b"\0" * 40, b"\x93NUMPY" + b"\0" * 100])
def test_foreign_bytes_are_refused(tmp_path, data):
    assert_refused(write(tmp_path, "f.npz", data))


def test_single_npy_array_is_refused(tmp_path):
    p = tmp_path / "a.npy"
    np.save(p, np.zeros(3))
    assert_refused(p, "not a fastnn model file")


def test_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        fastnn.load_model(tmp_path / "nope.npz")


class _Payload:
    """Unpickling this would create the marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_payload_in_a_weight_executes_nothing(saved, tmp_path):
    _, raw, _, _ = saved
    marker = tmp_path / "pwned"
    arrays = arrays_of(raw)
    arrays["layer0/kernel"] = np.array([_Payload(str(marker))], dtype=object)
    p = write(tmp_path, "evil.npz", npz_bytes(arrays, allow_pickle=True))
    assert_refused(p)
    assert not marker.exists()


def test_pickle_payload_as_config_executes_nothing(saved, tmp_path):
    _, raw, _, _ = saved
    marker = tmp_path / "pwned"
    arrays = arrays_of(raw)
    arrays["__config__"] = np.array([_Payload(str(marker))], dtype=object)
    assert_refused(write(tmp_path, "evil.npz", npz_bytes(arrays, allow_pickle=True)))
    assert not marker.exists()


def test_raw_pickle_file_executes_nothing(tmp_path):
    marker = tmp_path / "pwned"
    p = write(tmp_path, "evil.npz", pickle.dumps(_Payload(str(marker))))
    assert_refused(p)
    assert not marker.exists()


def _with_config(raw, edit):
    arrays = arrays_of(raw)
    cfg = json.loads(str(arrays["__config__"]))
    cfg = edit(cfg)
    arrays["__config__"] = np.array(json.dumps(cfg) if not isinstance(cfg, str) else cfg)
    return npz_bytes(arrays)


def _set(path, value):
    def edit(cfg):
        d = cfg
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = value
        return cfg
    return edit


CONFIG_EDITS = {
    "newer_version": (_set(["version"], 99), "newer"),
    "version_zero": (_set(["version"], 0), "version"),
    "version_text": (_set(["version"], "1"), "version"),
    "other_format": (_set(["format"], "keras"), "format"),
    "config_is_a_list": (lambda c: [1, 2], "format"),
    "not_json": (lambda c: "{not json", "JSON"),
    "deep_json": (lambda c: "[" * 100000 + "]" * 100000, ""),
    "layer_class_import": (_set(["config", "layers", 0, "class_name"], "__import__"), "unknown"),
    "layer_class_os_system": (_set(["config", "layers", 0, "class_name"], "os.system"), "unknown"),
    "initializer_class": (_set(["config", "layers", 0, "config", "kernel_initializer", "class_name"],
                               "subprocess.Popen"), ""),
    "optimizer_class": (_set(["compile", "optimizer", "class_name"], "eval"), "unknown"),
    "extra_layer_argument": (_set(["config", "layers", 0, "config", "__class__"], "x"), ""),
    "missing_layers": (lambda c: (c["config"].pop("layers"), c)[1], ""),
    "model_class": (_set(["class_name"], "Popen"), "unknown"),
    "units_mismatch": (_set(["config", "layers", 0, "config", "units"], 9), "shape"),
    "units_negative": (_set(["config", "layers", 0, "config", "units"], -3), ""),
    "units_text": (_set(["config", "layers", 0, "config", "units"], "8; rm -rf /"), ""),
}


@pytest.mark.parametrize("case", sorted(CONFIG_EDITS))
def test_malicious_or_broken_config_is_refused(saved, tmp_path, case):
    _, raw, _, _ = saved
    edit, word = CONFIG_EDITS[case]
    assert_refused(write(tmp_path, f"{case}.npz", _with_config(raw, edit)), word)


@pytest.mark.parametrize("dtype", [np.complex64, np.int32, np.bool_])
def test_weights_of_a_non_float_dtype_are_refused(saved, tmp_path, dtype):
    _, raw, _, _ = saved
    arrays = arrays_of(raw)
    arrays["layer0/kernel"] = arrays["layer0/kernel"].astype(dtype)
    assert_refused(write(tmp_path, "w.npz", npz_bytes(arrays)), "layer0/kernel")


def test_missing_or_misshapen_weights_are_refused(saved, tmp_path):
    _, raw, _, _ = saved
    arrays = arrays_of(raw)
    del arrays["layer3/kernel"]
    assert_refused(write(tmp_path, "m1.npz", npz_bytes(arrays)), "layer3/kernel")
    arrays = arrays_of(raw)
    arrays["layer0/bias"] = np.zeros(9, np.float32)
    assert_refused(write(tmp_path, "m2.npz", npz_bytes(arrays)), "layer0/bias")
    arrays = arrays_of(raw)
    arrays["optimizer/m"] = np.zeros(3, np.float32)
    assert_refused(write(tmp_path, "m3.npz", npz_bytes(arrays)), "optimizer")


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_fuzzed_files_load_or_raise_value_error(saved, tmp_path, data):
    """Random truncations, byte flips and splices of a valid file: load_model returns a
    model or raises ValueError naming the file -- no other exception, no crash."""
    _, raw, _, _ = saved
    b = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "cut", "insert", "zero"]))
        pos = data.draw(st.integers(0, max(0, len(b) - 1)))
        if kind == "flip" and b:
            b[pos] ^= data.draw(st.integers(1, 255))
        elif kind == "cut":
            del b[pos:pos + data.draw(st.integers(1, 64))]
        elif kind == "insert":
            b[pos:pos] = data.draw(st.binary(min_size=1, max_size=16))
        else:
            b[pos:pos + 8] = bytes(min(8, len(b) - pos))
    p = write(tmp_path, "fz.npz", bytes(b))
    try:
        fastnn.load_model(p)
    except ValueError as e:
        assert str(p) in str(e)


# ----------------------------------------------------------------------------
# atomic save
# ----------------------------------------------------------------------------


def test_crash_mid_save_keeps_the_previous_file(saved, tmp_path, monkeypatch):
    path, raw, pred, x = saved
    target = tmp_path / "ckpt.npz"
    target.write_bytes(raw)
    m, _ = small_model(seed=1)

    def dying_savez(f, **arrays):
        f.write(b"PK\x03\x04 half a file")
        raise KeyboardInterrupt("killed mid-save")

    monkeypatch.setattr(fio.np, "savez", dying_savez)
    with pytest.raises(KeyboardInterrupt):
        m.save(target)
    monkeypatch.undo()
    assert target.read_bytes() == raw
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"], "a temporary file was left behind"
    np.testing.assert_array_equal(fastnn.load_model(target).predict(x, verbose=0), pred)


def test_save_replaces_the_file_in_one_step(saved, tmp_path):
    _, raw, _, x = saved
    target = tmp_path / "ckpt.npz"
    target.write_bytes(raw)
    m, _ = small_model(seed=2)
    m.save(target)
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]
    np.testing.assert_array_equal(fastnn.load_model(target).predict(x, verbose=0), m.predict(x, verbose=0))
