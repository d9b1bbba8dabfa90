"""Audit of the ways out (files written, exports) with hostile conditions (defects found by the audit)."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastnn
from fastnn import layers as L

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))  # the fastnn under test

# A child process whose files may grow to LIMIT bytes at most (RLIMIT_FSIZE): a write past it
# fails with EFBIG, as a full disk fails a write with ENOSPC.
_FULL_DISK = textwrap.dedent("""
    import os, resource, signal, sys
    import numpy as np
    import fastnn
    from fastnn import layers as L
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    m = fastnn.Sequential([fastnn.Input((8,)), L.Dense(64, activation="relu"), L.Dense(3)])
    target, how = sys.argv[1], sys.argv[2]
    resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))
    try:
        if how == "onnx":
            fastnn.export.export_onnx(m, target)
        elif how == "predict":
            from fastnn import cli_predict
            cli_predict.write_outputs(target, np.ones((500, 3), np.float32))
        else:
            m.save(target)
    except OSError as e:
        print("refused", e.errno)
        sys.exit(0)
    print("written")
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE as a full disk: Linux")
@pytest.mark.parametrize("how, name", [("onnx", "m.onnx"), ("predict", "p.npz"), ("predict", "p.csv"),
                                       ("save", "m.npz")])
def test_a_write_that_fails_midway_leaves_the_previous_file_intact(tmp_path, how, name):
    # export_onnx and `fastnn predict -o` wrote in place: a full disk left a torn file
    target = tmp_path / name
    target.write_bytes(b"previous contents")
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR)
    r = subprocess.run([sys.executable, "-c", _FULL_DISK, str(target), how], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("refused"), r.stdout
    assert target.read_bytes() == b"previous contents"
    assert os.listdir(tmp_path) == [name]  # no temporary left behind


def test_float64_layer_normalization_exports_exactly():
    # the ONNX op's epsilon is a float32 attribute: 1e-3 became 1.0000000475e-3 in the double graph
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    m = fastnn.Sequential([fastnn.Input((6,)), L.LayerNormalization(), L.Dense(3)], dtype="float64")
    x = np.random.default_rng(0).normal(size=(9, 6)) * 5 + 3
    s = ort.InferenceSession(fastnn.export.to_onnx(m).SerializeToString(), providers=["CPUExecutionProvider"])
    got = s.run(None, {"input": x})[0]
    np.testing.assert_allclose(got, m.predict(x, verbose=0), rtol=1e-13, atol=1e-13)


def _fit_with(callbacks, epochs=2, **kw):
    x = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    y = np.arange(20) % 3
    m = fastnn.Sequential([fastnn.Input((4,)), L.Dense(3, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m, m.fit(x, y, epochs=epochs, verbose=0, callbacks=callbacks, **kw)


def test_model_checkpoint_creates_its_folder(tmp_path):
    # Keras creates the checkpoint's folder; fastnn failed after the first epoch
    # (FileNotFoundError on its temporary file name)
    _fit_with([fastnn.callbacks.ModelCheckpoint(str(tmp_path / "ckpt" / "m{epoch:02d}.npz"), monitor="loss")])
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["m01.npz", "m02.npz"]
    assert fastnn.load_model(str(tmp_path / "ckpt" / "m02.npz")).built


def test_model_checkpoint_bad_format_refused_at_construction(tmp_path):
    with pytest.raises(ValueError, match=r"filepath: .* is not a valid format string"):
        fastnn.callbacks.ModelCheckpoint(str(tmp_path / "m{epoch:zz}.npz"))


def test_model_checkpoint_unknown_log_key_names_the_logs(tmp_path):
    cb = fastnn.callbacks.ModelCheckpoint(str(tmp_path / "m{val_loss:.2f}.npz"))
    with pytest.raises(KeyError, match=r"names the log key 'val_loss', but epoch 1's logs hold \['accuracy', 'loss'\]"):
        _fit_with([cb])


def test_csv_logger_keeps_validation_columns_of_later_epochs(tmp_path):
    # with validation_freq=2 the val_ columns (absent from epoch 1's logs) were dropped silently
    import csv
    f = tmp_path / "log.csv"
    x = np.random.default_rng(1).normal(size=(8, 4)).astype(np.float32)
    _, h = _fit_with([fastnn.callbacks.CSVLogger(f)], epochs=2, validation_data=(x, np.arange(8) % 3),
                     validation_freq=2)
    rows = list(csv.reader(open(f)))
    assert rows[0] == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert rows[1][3:] == ["NA", "NA"]
    assert float(rows[2][4]) == pytest.approx(h.history["val_loss"][-1])


def test_tensorboard_writes_a_per_class_metric_readable_by_tensorboard(tmp_path):
    # F1Score()'s default (one score per class) crashed the callback after the first epoch's training
    acc_mod = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    from fastnn.metrics_classification import F1Score
    from fastnn.tensorboard import TensorBoard
    x = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    m = fastnn.Sequential([fastnn.Input((4,)), L.Dense(3, activation="softmax")])
    m.compile(optimizer="adam", loss="categorical_crossentropy", metrics=[F1Score()])
    h = m.fit(x, np.eye(3)[np.arange(20) % 3], epochs=2, verbose=0,
              callbacks=[TensorBoard(str(tmp_path), histogram_freq=1)])
    acc = acc_mod.EventAccumulator(str(tmp_path / "train"), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    for c in range(3):
        got = [e.value for e in acc.Scalars(f"epoch_f1_score/{c}")]
        assert got == pytest.approx([v[c] for v in h.history["f1_score"]], rel=1e-6)
    assert [e.step for e in acc.Scalars("epoch_loss")] == [0, 1]


# ---------------------------------------------------------- preprocessing files
def _scaler_file(tmp_path, **changes):
    from fastnn.preprocessing import StandardScaler
    x = np.random.default_rng(0).normal(size=(10, 3))
    state = StandardScaler().fit(x).get_state()
    state.update(changes)
    np.savez(tmp_path / "s.npz", **state)
    return tmp_path / "s.npz"


@pytest.mark.parametrize("changes, why", [
    ({"mean_": np.zeros(1)}, r"mean_: expected shape \(3,\)"),  # broadcast: a silently wrong transform
    ({"mean_": np.array(0.0)}, r"mean_: expected shape \(3,\)"),
    ({"scale_": np.zeros(3)}, r"scale_: expected values > 0"),  # divided by zero: inf outputs
    ({"scale_": np.full(3, np.nan)}, r"scale_: expected finite float numbers"),
    ({"mean_": np.array(["a", "b", "c"])}, r"mean_: expected finite float numbers"),
    ({"input_shape_": np.array([-3])}, r"input_shape_: expected positive sizes"),
    ({"input_shape_": np.array(["3"])}, r"input_shape_: expected a 1-D array of ints"),
    ({"param_with_mean": np.ones(5)}, r"param_with_mean: expected one value"),
])
def test_a_damaged_transform_file_is_refused_naming_the_entry(tmp_path, changes, why):
    from fastnn.preprocessing import StandardScaler
    with pytest.raises(ValueError, match=r"s\.npz: not a valid StandardScaler file \(" + why):
        StandardScaler.load(_scaler_file(tmp_path, **changes))


def test_set_state_refused_leaves_the_transform_unchanged():
    from fastnn.preprocessing import StandardScaler
    x = np.random.default_rng(0).normal(size=(10, 3))
    s = StandardScaler().fit(x)
    good = s.transform(x)
    bad = dict(s.get_state(), mean_=np.zeros(5))
    with pytest.raises(ValueError, match="mean_"):
        s.set_state(bad)
    assert np.array_equal(s.transform(x), good)


def test_every_transform_round_trips_its_file(tmp_path):
    from fastnn.preprocessing import PCA, ZCA, ChannelMeanSubtraction, StandardScaler
    x = np.random.default_rng(0).normal(size=(6, 2, 2, 3))
    for t in (ChannelMeanSubtraction(channel_axis=1, with_std=True), ChannelMeanSubtraction(), PCA(n_components=3),
              PCA(n_components=0.5, whiten=True), ZCA(), StandardScaler(), StandardScaler(per_feature=False)):
        t.fit(x).save(tmp_path / "t.npz")
        assert np.array_equal(type(t).load(tmp_path / "t.npz").transform(x), t.transform(x))


def test_pca_fraction_of_no_variance_keeps_one_component():
    # "n_components: 4 is more than min(n_samples, n_features) = 3" for a fraction on constant data
    from fastnn.preprocessing import PCA
    assert PCA(n_components=0.5).fit(np.ones((5, 3))).n_components_ == 1


# ------------------------------------------------------------------- IDX files
def _idx(tmp_path, raw, gz=False):
    import gzip
    p = tmp_path / ("x.idx.gz" if gz else "x.idx")
    p.write_bytes(gzip.compress(raw, compresslevel=1) if gz else raw)
    return p


def test_idx_header_whose_size_overflows_int64_is_named(tmp_path):
    # 2**93 bytes wrapped to 0 in an int64 product, passed the size check and failed in reshape
    import struct
    from fastnn.datasets import read_idx
    p = _idx(tmp_path, b"\0\0\x08\x03" + struct.pack(">III", 2**31, 2**31, 2**31))
    with pytest.raises(ValueError, match=r"x\.idx: the header promises shape \(2147483648, 2147483648, 2147483648\)"):
        read_idx(p)


def test_idx_gzip_bomb_is_read_only_as_far_as_its_header_declares(tmp_path):
    # the whole stream was decompressed into memory before the header was compared with it
    import struct
    import tracemalloc
    from fastnn.datasets import read_idx
    p = _idx(tmp_path, b"\0\0\x08\x01" + struct.pack(">I", 10) + bytes(64 << 20), gz=True)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"promises shape \(10,\) \(18 bytes\), the file holds more than 18"):
            read_idx(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < (8 << 20), peak
    ok = _idx(tmp_path, b"\0\0\x08\x01" + struct.pack(">I", 3) + b"\x01\x02\x03", gz=True)
    assert read_idx(ok).tolist() == [1, 2, 3]


# ------------------------------------------------------------ crafted backups
class _StopAt(fastnn.callbacks.Callback):
    def __init__(self, at=None):
        super().__init__()
        self.at = at

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at:
            raise KeyboardInterrupt


def _backup_model():
    m = fastnn.Sequential([fastnn.Input((4,)), L.Dense(5, activation="relu"), L.Dropout(0.2, seed=1),
                           L.Dense(3, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def _fit_backup(m, folder, stop_at):
    from fastnn.backup import BackupAndRestore
    x = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
    return m.fit(x, np.arange(40) % 3, epochs=4, verbose=0,
                 callbacks=[BackupAndRestore(str(folder), delete_checkpoint=False),
                            fastnn.callbacks.EarlyStopping(monitor="loss", patience=9), _StopAt(stop_at)])


@pytest.mark.parametrize("key, value, why", [
    ("learning_rate", float("nan"), r"learning_rate is nan, expected a number > 0"),
    ("learning_rate", "abc", r"learning_rate is 'abc'"),
    ("seeds", ["x", "y", "z"], r"seeds is \['x', 'y', 'z'\], expected a list of ints"),
    ("seeds", 5, r"seeds is 5"),
    ("callbacks", 5, r"callbacks is not a list of \[name, state\] pairs"),
    ("callbacks", [["EarlyStopping", {"evil": 1}], ["_StopAt", None], ["History", None]],
     r"a callback's saved state cannot be restored \(EarlyStopping: KeyError"),
])
def test_a_crafted_backup_is_refused_before_anything_changes(tmp_path, key, value, why):
    # a bad learning rate, seed or callback state failed (TypeError, KeyError, InvalidParameterError)
    # after the weights had been restored: a model half from the backup, half fresh
    import json
    with pytest.raises(KeyboardInterrupt):
        _fit_backup(_backup_model(), tmp_path, stop_at=1)
    path = tmp_path / "backup.npz"
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["__backup__"]))
    meta[key] = value
    arrays["__backup__"] = np.array(json.dumps(meta))
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    m = _backup_model()
    before = [w.copy() for w in m.get_weights()]
    with pytest.raises(ValueError, match=why):
        _fit_backup(m, tmp_path, stop_at=None)
    assert all(np.array_equal(a, b) for a, b in zip(before, m.get_weights()))
    assert m.optimizer.iterations == 0


def test_a_model_file_with_a_negative_step_count_is_refused_at_load(tmp_path):
    # it loaded, and the next fit failed with "step: expected an integer >= 1, got -4"
    m = fastnn.Sequential([fastnn.Input((4,)), L.Dense(3, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    m.fit(np.ones((4, 4), np.float32), np.arange(4) % 3, verbose=0)
    m.save(str(tmp_path / "m.npz"))
    with np.load(tmp_path / "m.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["optimizer/iterations"] = np.array(-5)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=r"bad\.npz: corrupted model file \(optimizer/iterations is -5"):
        fastnn.load_model(str(tmp_path / "bad.npz"))
    assert fastnn.load_model(str(tmp_path / "bad.npz"), compile=False).built  # the weights alone are fine


# ------------------------------------------------------------ fastnn predict
@pytest.mark.parametrize("name, content, why", [
    ("empty.csv", "", r"input: .*empty\.csv holds no rows"),  # was "x: expected shape (n, 3), got (0, 1)"
    ("header.csv", "a,b,c\n", r"input: .*header\.csv holds no rows"),
    ("text.csv", "a,b,c\n1,2,x\n", r"input: .*text\.csv: could not convert string 'x'"),  # the file was not named
])
def test_predict_input_errors_name_the_file(tmp_path, name, content, why):
    import warnings
    from fastnn import cli_predict
    (tmp_path / name).write_text(content)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NumPy's "input contained no data"
        with pytest.raises(ValueError, match=why):
            cli_predict.read_inputs(str(tmp_path / name))


def test_predict_parquet_columns_checked_against_the_schema(tmp_path):
    # a missing column gave "__filename: string"; a text column a TypeError traceback (exit status 1)
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    from fastnn import cli_predict
    pq.write_table(pa.table({"a": [1.0, 2.0], "b": ["x", "y"], "c": [1, 2]}), tmp_path / "s.parquet")
    with pytest.raises(ValueError, match=r"--columns: .*s\.parquet has no column 'zz'; it has a, b, c"):
        cli_predict.read_inputs(str(tmp_path / "s.parquet"), columns="a,zz")
    with pytest.raises(ValueError, match=r"--columns: column 'b' of .*s\.parquet has type string, not numbers"):
        cli_predict.read_inputs(str(tmp_path / "s.parquet"), columns="a,b")
    assert cli_predict.read_inputs(str(tmp_path / "s.parquet")).tolist() == [[1.0, 1.0], [2.0, 2.0]]


def test_predict_npz_input_with_a_huge_declared_shape_is_refused_without_allocating(tmp_path):
    # np.load allocated the declared 8 TB array before reading 16 bytes
    import io
    import zipfile
    from fastnn import cli_predict
    b = io.BytesIO()
    np.lib.format.write_array_header_1_0(b, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)})
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as z:
        z.writestr("x.npy", b.getvalue() + bytes(16))
    with pytest.raises(ValueError, match=r"huge\.npz: .*declares float64 \(1000000, 1000000\)"):
        cli_predict.read_inputs(str(tmp_path / "huge.npz"))


def test_saving_into_a_missing_folder_names_the_folder(tmp_path):
    # the error named the temporary file fastnn would have written ('.fastnn-<host>-<pid>-....tmp')
    m = fastnn.Sequential([fastnn.Input((3,)), L.Dense(2)])
    with pytest.raises(FileNotFoundError, match=r"filepath: the folder '.*nowhere' does not exist"):
        m.save(str(tmp_path / "nowhere" / "m.npz"))


def test_tensorboard_batch_steps_continue_over_a_second_fit(tmp_path):
    # each fit restarted the batch_ series at step 1: a second fit wrote over the first one's steps
    acc_mod = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    from fastnn.tensorboard import TensorBoard
    x = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    m = fastnn.Sequential([fastnn.Input((4,)), L.Dense(3, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    tb = TensorBoard(str(tmp_path), update_freq=1)
    for _ in range(2):
        m.fit(x, np.arange(20) % 3, batch_size=10, epochs=1, verbose=0, callbacks=[tb])
    acc = acc_mod.EventAccumulator(str(tmp_path / "train"), size_guidance={"scalars": 0})
    acc.Reload()
    assert [e.step for e in acc.Scalars("batch_loss")] == [1, 2, 3, 4]


def test_saving_into_a_read_only_folder_names_the_folder(tmp_path, monkeypatch):
    # the PermissionError named the temporary file; (a patched os.open: the tests may run as root)
    from fastnn import _safe_files
    real_open = os.open

    def refuse_temporaries(path, *args, **kw):
        if os.path.basename(str(path)).startswith(".fastnn-"):
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, *args, **kw)

    monkeypatch.setattr(_safe_files.os, "open", refuse_temporaries)
    (tmp_path / "m.npz").write_bytes(b"previous")
    m = fastnn.Sequential([fastnn.Input((3,)), L.Dense(2)])
    with pytest.raises(PermissionError, match=r"filepath: cannot write in the folder '.*' \(Permission denied\)"):
        m.save(str(tmp_path / "m.npz"))
    assert (tmp_path / "m.npz").read_bytes() == b"previous"
