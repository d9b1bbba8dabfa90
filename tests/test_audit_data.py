"""Audit of the data inputs with hostile and everyday-but-awkward data (defects found by the audit).

Each test names what a NumPy / pandas / Keras user takes for granted: the right answer, or an
error naming the argument before anything changes.
"""
import numpy as np
import pytest

import fastnn
from fastnn import layers

pd = pytest.importorskip("pandas")


def _xy(n=20, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)).astype(np.float32), rng.integers(0, 3, n)


def _model(seed=0):
    init = fastnn.initializers.GlorotUniform
    m = fastnn.Sequential([fastnn.Input((4,)), layers.Dense(5, activation="relu", kernel_initializer=init(seed)),
                           layers.Dense(3, activation="softmax", kernel_initializer=init(seed + 1))])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def _weights(m):
    return [w.copy() for w in m.get_weights()]


def _same(a, b):
    return all(np.array_equal(p, q) for p, q in zip(a, b))


# --------------------------------------------------------------------- pandas
def test_dataframe_with_default_integer_column_names_trains_like_its_array():
    # pd.DataFrame(x) names its columns 0..n-1; fastnn refused them ("expected column names (str)")
    x, y = _xy()
    a, b = _model(), _model()
    a.fit(x, y, epochs=2, seed=1, verbose=0)
    b.fit(pd.DataFrame(x), pd.Series(y), epochs=2, seed=1, verbose=0)
    assert _same(_weights(a), _weights(b))
    assert np.array_equal(b.predict(pd.DataFrame(x), verbose=0), a.predict(x, verbose=0))


def test_series_input_for_a_one_feature_model():
    x, y = _xy()
    m = fastnn.Sequential([fastnn.Input((1,)), layers.Dense(3, activation="softmax")])
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    m.fit(pd.Series(x[:, 0]), y, verbose=0)
    assert np.array_equal(m.predict(pd.Series(x[:, 0]), verbose=0), m.predict(x[:, :1], verbose=0))


def test_nullable_columns_without_missing_values_are_numbers():
    # Int64 / Float64 / boolean columns (pandas' nullable dtypes) holding no NA are numbers
    x, y = _xy()
    df = pd.DataFrame(x, columns=list("abcd")).assign(y=y)
    nullable = df.astype({"a": "Float64", "y": "Int64"})
    a, b = _model(), _model()
    a.fit(df, "y", epochs=2, seed=3, verbose=0)
    b.fit(nullable, "y", epochs=2, seed=3, verbose=0)
    assert _same(_weights(a), _weights(b))
    flags = df.assign(b=df["b"] > 0)
    c, d = _model(), _model()
    c.fit(flags, "y", seed=4, verbose=0)
    d.fit(flags.astype({"b": "boolean"}), "y", seed=4, verbose=0)
    assert _same(_weights(c), _weights(d))
    e = _model()
    e.fit(df[list("abcd")], df["y"].astype("Int64"), seed=3, epochs=2, verbose=0)
    assert _same(_weights(a), _weights(e))


def test_nullable_label_with_missing_values_is_refused_naming_the_column():
    x, y = _xy()
    df = pd.DataFrame(x, columns=list("abcd")).assign(y=pd.array(y, dtype="Int64"))
    df.loc[3, "y"] = pd.NA
    m = _model()
    before = _weights(m)
    with pytest.raises(ValueError, match=r"label: column 'y' holds 1 null values"):
        m.fit(df, "y", verbose=0)
    assert _same(before, _weights(m))


def test_categorical_column_refused_with_a_hint():
    x, y = _xy()
    df = pd.DataFrame(x, columns=list("abcd")).assign(y=y)
    df["c"] = pd.Categorical(np.where(x[:, 2] > 0, "p", "n"))
    with pytest.raises(TypeError, match=r"features: column 'c' has dtype category.*cat.codes"):
        _model().fit(df, "y", verbose=0)


def test_duplicate_column_names_are_a_clear_error():
    # an AttributeError ("'DataFrame' object has no attribute 'dtype'") before
    x, y = _xy()
    df = pd.DataFrame(x, columns=["a", "a", "c", "d"]).assign(y=y)
    with pytest.raises(ValueError, match=r"\['a'\] appear more than once"):
        _model().fit(df, "y", verbose=0)


def test_dataframe_checked_whole_before_training():
    # a NaN or a bad label in a late row stopped fit after it had trained on the batches before
    x, y = _xy()
    df = pd.DataFrame(x, columns=list("abcd")).assign(y=y)
    m = _model()
    m.fit(x[:4], y[:4], verbose=0)
    before = _weights(m)
    bad_x = df.copy()
    bad_x.loc[17, "a"] = np.nan
    with pytest.raises(ValueError, match=r"x: contains NaN or infinity \(first at index \(17, 0\)\)"):
        m.fit(bad_x, "y", batch_size=4, shuffle=False, verbose=0)
    bad_y = df.copy()
    bad_y.loc[17, "y"] = 7
    with pytest.raises(ValueError, match=r"y: labels out of range"):
        m.fit(bad_y, "y", batch_size=4, shuffle=False, verbose=0)
    assert _same(before, _weights(m))


def test_dataframe_validation_split_holds_out_the_last_rows():
    # Keras takes validation_split for DataFrames; fastnn refused it ("only for in-memory arrays")
    x, y = _xy(40)
    a, b = _model(), _model()
    ha = a.fit(x, y, validation_split=0.25, epochs=2, seed=2, verbose=0)
    hb = b.fit(pd.DataFrame(x).assign(y=y), "y", validation_split=0.25, epochs=2, seed=2, verbose=0)
    assert ha.history == hb.history
    assert _same(_weights(a), _weights(b))


# ----------------------------------------------------------------------- dask
def test_dask_dataframe_with_a_label_column_name_trains():
    # fit(ddf, "y") took the label column as a feature: "expected shape (n, 4), got (20, 5)"
    dd = pytest.importorskip("dask.dataframe")
    x, y = _xy()
    ddf = dd.from_pandas(pd.DataFrame(x, columns=list("abcd")).assign(y=y), npartitions=1)
    a, b = _model(), _model()
    a.fit(x, y, epochs=2, shuffle=False, verbose=0)
    b.fit(ddf, "y", epochs=2, shuffle=False, verbose=0)
    assert _same(_weights(a), _weights(b))
    assert np.allclose(b.evaluate(ddf, "y", verbose=0), a.evaluate(x, y, verbose=0))
    nullable = dd.from_pandas(pd.DataFrame(x, columns=list("abcd")).assign(y=pd.array(y, dtype="Int64")),
                              npartitions=1)
    c = _model()
    c.fit(nullable, "y", epochs=2, shuffle=False, verbose=0)
    assert _same(_weights(a), _weights(c))


def test_dask_arrays_stream_and_take_unknown_chunk_sizes():
    # a y with unknown chunk sizes (after boolean indexing) failed in len(); x with unknown sizes was
    # materialized whole; the arrays given are left as they were
    da = pytest.importorskip("dask.array")
    x, y = _xy()
    dx, dy = da.from_array(x, chunks=7), da.from_array(y, chunks=7)
    ux, uy = dx[dx[:, 0] > -100], dy[dy > -1]
    a, b = _model(), _model()
    a.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    b.fit(ux, uy, batch_size=4, epochs=2, shuffle=False, verbose=0)
    assert _same(_weights(a), _weights(b))
    assert np.array_equal(b.predict(ux, verbose=0), a.predict(x, verbose=0))
    assert all(np.isnan(c) for c in ux.chunks[0]) and all(np.isnan(c) for c in uy.chunks[0])


def test_dask_array_is_never_materialized_whole():
    da = pytest.importorskip("dask.array")
    from fastnn import _sources
    assert _sources.is_streamed(da.zeros((10, 4), chunks=5))


# -------------------------------------------------------------------- Parquet
def _parquet(path, x, y, **kw):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    cols = {c: x[:, j] for j, c in enumerate("abcd")}
    cols["y"] = y
    table = pa.table(cols)
    pq.write_table(table, path, **kw)
    return table


def test_parquet_schema_drift_in_a_later_file_refused_before_training(tmp_path):
    # a label column that is text in the second file stopped fit mid-epoch, the model changed
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    x, y = _xy()
    t = _parquet(tmp_path / "a.parquet", x, y)
    pq.write_table(t.set_column(4, "y", pa.array(y.astype(str))), tmp_path / "b.parquet")
    with pytest.raises(TypeError, match=r"label: column 'y' has type string.*b\.parquet"):
        fastnn.data.from_parquet([tmp_path / "a.parquet", tmp_path / "b.parquet"], label="y")


def test_parquet_nulls_in_a_late_row_group_refused_before_training(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    x, y = _xy()
    a = pa.array([None if i == 17 else float(v) for i, v in enumerate(x[:, 0])])
    t = _parquet(tmp_path / "ok.parquet", x, y)
    pq.write_table(t.set_column(0, "a", a), tmp_path / "n.parquet", row_group_size=7)
    with pytest.raises(ValueError, match=r"features: column 'a' holds 1 null values .*n\.parquet', row group 2"):
        fastnn.data.from_parquet(tmp_path / "n.parquet", label="y", batch_size=4)


@pytest.mark.parametrize("damage", ["empty", "truncated", "not parquet"])
def test_unreadable_parquet_file_named_in_a_value_error(tmp_path, damage):
    x, y = _xy()
    _parquet(tmp_path / "good.parquet", x, y)
    raw = (tmp_path / "good.parquet").read_bytes()
    bad = tmp_path / "bad.parquet"
    bad.write_bytes({"empty": b"", "truncated": raw[:len(raw) // 2], "not parquet": b"a,b\n1,2\n"}[damage])
    with pytest.raises(ValueError, match=r"paths: '.*bad\.parquet' is not a readable Parquet file"):
        fastnn.data.from_parquet([tmp_path / "good.parquet", bad], label="y")


def test_parquet_corrupted_pages_name_the_file_and_row_group(tmp_path):
    x, y = _xy(200)
    _parquet(tmp_path / "c.parquet", x, y, row_group_size=50, compression="none")
    raw = bytearray((tmp_path / "c.parquet").read_bytes())
    raw[len(raw) // 2:len(raw) // 2 + 400] = b"\xff" * 400  # pages of a middle row group, footer intact
    (tmp_path / "c.parquet").write_bytes(bytes(raw))
    src = fastnn.data.from_parquet(tmp_path / "c.parquet", label="y", batch_size=50)
    with pytest.raises((OSError, ValueError), match=r"reading '.*c\.parquet', row group \d"):
        for _ in src.get_epoch_iterator():
            pass


def test_validation_split_of_the_wrong_type_is_named():
    # "'<=' not supported between instances of 'int' and 'str'"
    x, y = _xy()
    with pytest.raises(TypeError, match=r"validation_split: expected a fraction in \[0, 1\), got '0.2'"):
        _model().fit(x, y, validation_split="0.2", verbose=0)


def test_finite_inputs_beyond_float32_are_not_called_nan():
    # 1e39 (finite float64) became inf in the float32 model: "x: contains NaN or infinity"
    m = _model()
    x = np.zeros((3, 4))
    x[1, 2] = 1e39
    with pytest.raises(ValueError, match=r"x: 1e\+39 at index \(1, 2\) is beyond the range of float32"):
        m.predict(x, verbose=0)


def test_a_batch_without_targets_in_fit_or_evaluate_is_named():
    # "labels: expected a numpy.ndarray of class ids or target rows, got NoneType" from inside the loss
    x, y = _xy()
    m = _model()
    with pytest.raises(ValueError, match=r"y: expected targets in every batch, got batch 1 with inputs only"):
        m.fit(iter([(x[:4], y[:4]), (x[4:8], None)]), verbose=0)
    with pytest.raises(ValueError, match=r"y: expected targets in every batch, got batch 0"):
        m.evaluate(iter([(x[:4],), (x[4:8],)]), verbose=0)
    assert m.predict(iter([x[:4], x[4:8]]), verbose=0).shape == (8, 3)


def test_sample_weight_of_text_is_refused():
    # strings were parsed as numbers ("1.0" -> 1.0), anything else failed inside NumPy
    x, y = _xy()
    with pytest.raises(TypeError, match=r"sample_weight: expected numbers, got an array of dtype <U"):
        _model().fit(x, y, sample_weight=np.ones(20).astype(str), verbose=0)


def test_multiindex_columns_are_names_too():
    x, y = _xy()
    df = pd.DataFrame(x, columns=pd.MultiIndex.from_product([["a", "b"], [1, 2]]))
    a, b = _model(), _model()
    a.fit(x, y, seed=0, verbose=0)
    b.fit(df, y, seed=0, verbose=0)
    assert _same(_weights(a), _weights(b))


@pytest.mark.parametrize("kind", ["memmap", "dask", "parquet"])
def test_known_size_source_with_a_last_batch_of_one_refused_before_training(tmp_path, kind):
    # BatchNormalization refused the last batch of 1 at the end of the epoch, after training on the rest
    x, y = _xy(9)
    m = fastnn.Sequential([fastnn.Input((4,)), layers.Dense(5), layers.BatchNormalization(),
                           layers.Dense(3, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    before = _weights(m)
    if kind == "memmap":
        np.save(tmp_path / "x.npy", x)
        args = (np.load(tmp_path / "x.npy", mmap_mode="r"), y)
    elif kind == "dask":
        da = pytest.importorskip("dask.array")
        args = (da.from_array(x, chunks=3), y)
    else:
        _parquet(tmp_path / "d.parquet", x, y)
        args = (fastnn.data.from_parquet(tmp_path / "d.parquet", label="y", batch_size=4), None)
    with pytest.raises(ValueError, match=r"batch_size=4 on 9 samples leaves a batch of 1"):
        m.fit(*args, batch_size=4 if kind != "parquet" else None, verbose=0)
    assert _same(before, _weights(m))


class _KerasStylePyDataset:
    """Keras's PyDataset protocol without keras: batches by index, an epoch hook, iterable."""

    def __init__(self, x, y):
        self.x, self.y, self.ends = x, y, 0

    def __len__(self):
        return 5

    def __getitem__(self, i):
        if not 0 <= i < 5:
            raise IndexError(i)
        return self.x[4 * i:4 * i + 4], self.y[4 * i:4 * i + 4]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def on_epoch_end(self):  # where Keras users reshuffle their data
        self.ends += 1


def test_a_keras_pydataset_gets_its_on_epoch_end_calls():
    # it was drawn as a plain iterable: on_epoch_end never ran, so per-epoch reshuffles silently did not happen
    x, y = _xy()
    ds = _KerasStylePyDataset(x, y)
    a, b = _model(), _model()
    a.fit(ds, epochs=3, verbose=0)
    b.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0)
    assert ds.ends == 3
    assert _same(_weights(a), _weights(b))  # batch order as given (Keras ignores shuffle for a PyDataset)
