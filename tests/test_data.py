"""fastnn.data: every input kind gives the batches of the equivalent array, and the
out-of-core paths keep the resident memory bounded."""
import itertools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import fastnn
from fastnn import data
from fastnn.layers import Dense

pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def _xy(n=103, f=5, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, f)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64), rng.random(n)


def _epochs(adapter, epochs=2):
    out = []
    for _ in range(epochs):
        out.append([tuple(np.array(a) for a in b) for b in adapter.get_epoch_iterator()])
        adapter.on_epoch_end()
    return out


def _same(a, b):
    assert len(a) == len(b)
    for ea, eb in zip(a, b):
        assert len(ea) == len(eb)
        for ba, bb in zip(ea, eb):
            assert len(ba) == len(bb)
            for u, v in zip(ba, bb):
                assert u.dtype == v.dtype and np.array_equal(u, v)


def _rows(epoch):
    """All rows of one epoch, sorted, as one array (x | y)."""
    x = np.concatenate([b[0] for b in epoch])
    y = np.concatenate([b[1] for b in epoch]).astype(x.dtype)
    r = np.column_stack([x, y])
    return r[np.lexsort(r.T[::-1])]


# ------------------------------------------------------------------ arrays
def _record_fit_batches(model):
    """A list that fills with copies of the (x, y) batches fit trains model on."""
    seen = []
    if hasattr(model, "_train_step"):  # the step is a model method (models.py) ...
        real = model._train_step
        model._train_step = lambda xb, yb, *a: (seen.append((xb.copy(), yb.copy())), real(xb, yb, *a))[1]
        return seen
    from fastnn import native_step, trainer  # ... or a function of the trainer module
    real_fn, real_epoch = trainer.train_step, native_step.epoch_steps
    # batch by batch through train_step (the native epoch draws the same batches, in core
    # calls of several: tests/test_native_epoch.py)
    native_step.epoch_steps = lambda *a: None

    def record(m, xb, yb, *a):
        if m is model:
            seen.append((xb.copy(), yb.copy()))
        return real_fn(m, xb, yb, *a)
    trainer.train_step = record
    model._restore_train_step = lambda: (setattr(trainer, "train_step", real_fn),
                                         setattr(native_step, "epoch_steps", real_epoch))
    return seen


@pytest.mark.parametrize("batch_size", [1, 16, 32, None])
def test_array_adapter_draws_the_batches_fit_draws(batch_size):
    x, y, _ = _xy()
    model = fastnn.Sequential([Dense(3, activation="softmax", input_dim=5)])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    seen = _record_fit_batches(model)
    try:
        model.fit(x, y, batch_size=batch_size or "full", epochs=3, seed=7, verbose=0)
    finally:
        getattr(model, "_restore_train_step", lambda: None)()
    adapter = data.adapt(x, y, batch_size=batch_size, seed=7)  # adapt's None: the whole array
    got = list(itertools.chain.from_iterable(_epochs(adapter, 3)))
    assert len(got) == len(seen) == 3 * adapter.num_batches
    for (xa, ya), (xf, yf) in zip(got, seen):
        assert np.array_equal(xa, xf) and np.array_equal(ya, yf)


def test_array_adapter_reuse_buffers_and_no_shuffle():
    x, y, w = _xy()
    _same(_epochs(data.adapt(x, y, w, batch_size=10, seed=3)),
          _epochs(data.adapt(x, y, w, batch_size=10, seed=3, reuse_buffers=True)))
    ep = _epochs(data.adapt(x, y, w, batch_size=10, shuffle=False), 1)[0]
    assert np.array_equal(np.concatenate([b[0] for b in ep]), x) and len(ep[0]) == 3
    a = data.adapt(x, batch_size=50, shuffle=False)
    assert [len(b) for b in a.get_epoch_iterator()] == [1, 1, 1] and a.num_batches == 3
    assert a.has_partial_batch and a.partial_batch_size == 3


@pytest.mark.parametrize("call, err, words", [
    (lambda x, y, w: data.adapt(x, y[:-1]), ValueError, "x, y"),
    (lambda x, y, w: data.adapt(x, y, w[:-1]), ValueError, "sample_weight"),
    (lambda x, y, w: data.adapt(x.astype(str), y), TypeError, "x: expected numbers"),
    (lambda x, y, w: data.adapt(x, y.astype(object)), TypeError, "y: expected numbers"),
    (lambda x, y, w: data.adapt(x, y, batch_size=0), ValueError, "batch_size"),
    (lambda x, y, w: data.adapt(x, y, shuffle="yes"), TypeError, "shuffle"),
    (lambda x, y, w: data.adapt(x, y, seed=-1), ValueError, "seed"),
    (lambda x, y, w: data.adapt(x, None, w), ValueError, "sample_weight"),
    (lambda x, y, w: data.adapt(None), ValueError, "x:"),
    (lambda x, y, w: data.adapt(x, y, features=["a"]), ValueError, "features"),
])
def test_bad_arrays_are_refused_naming_the_argument(call, err, words):
    x, y, w = _xy()
    with pytest.raises(err, match=words):
        call(x, y, w)


# ------------------------------------------------------------------ memmap
def test_memmap_in_file_order_equals_arrays_and_shuffles_by_blocks(tmp_path):
    x, y, w = _xy(1000)
    mx = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=x.dtype, shape=x.shape)
    mx[:] = x
    mx.flush()
    mx = np.load(tmp_path / "x.npy", mmap_mode="r")
    assert isinstance(data.adapt(mx, y), data.MemmapAdapter)
    _same(_epochs(data.adapt(mx, y, w, batch_size=64, shuffle=False)),
          _epochs(data.adapt(x, y, w, batch_size=64, shuffle=False)))
    a = data.MemmapAdapter(mx, y, batch_size=64, seed=0, block_rows=128)
    e1, e2 = _epochs(a)
    assert [len(b[0]) for b in e1] == [64] * 15 + [40] and a.num_batches == 16
    assert np.array_equal(_rows(e1), _rows([(x, y)])) and np.array_equal(_rows(e2), _rows([(x, y)]))
    assert not np.array_equal(np.concatenate([b[0] for b in e1]), np.concatenate([b[0] for b in e2]))
    _same([e1, e2], _epochs(data.MemmapAdapter(mx, y, batch_size=64, seed=0, block_rows=128)))


# -------------------------------------------------------- Dataset, iterables
class _Batches(data.Dataset):
    def __init__(self, x, y, bs, **kw):
        super().__init__(**kw)
        self.x, self.y, self.bs, self.ends = x, y, bs, 0

    def __len__(self):
        return -(-len(self.x) // self.bs)

    def __getitem__(self, i):
        s = i * self.bs
        return self.x[s:s + self.bs], self.y[s:s + self.bs]

    def on_epoch_end(self):
        self.ends += 1


@pytest.mark.parametrize("workers", [1, 3])
def test_dataset_equals_arrays_with_and_without_prefetch(workers):
    x, y, _ = _xy()
    ds = _Batches(x, y, 16, workers=workers, max_queue_size=2)
    a = data.adapt(ds, shuffle=False)
    assert a.num_batches == 7
    _same(_epochs(a), _epochs(data.adapt(x, y, batch_size=16, shuffle=False)))
    assert ds.ends == 2
    e1, e2 = _epochs(data.adapt(ds, shuffle=True, seed=0))
    assert np.array_equal(_rows(e1), _rows(e2)) and np.array_equal(_rows(e1), _rows([(x, y)]))


def test_dataset_errors_propagate_from_the_prefetch_thread():
    class Bad(_Batches):
        def __getitem__(self, i):
            if i == 4:
                raise RuntimeError("disk on fire")
            return super().__getitem__(i)
    x, y, _ = _xy()
    with pytest.raises(RuntimeError, match="disk on fire"):
        _epochs(data.adapt(Bad(x, y, 16, workers=2), shuffle=False), 1)
    with pytest.raises(ValueError, match="use_multiprocessing"):
        _Batches(x, y, 16, use_multiprocessing=True)
    with pytest.raises(ValueError, match="workers"):
        _Batches(x, y, 16, workers=0)


def test_iterables_and_generators():
    x, y, w = _xy()
    batches = [(x[s:s + 16], y[s:s + 16], w[s:s + 16]) for s in range(0, len(x), 16)]
    a = data.adapt(batches)
    assert a.num_batches == 7
    _same(_epochs(a), _epochs(data.adapt(x, y, w, batch_size=16, shuffle=False)))
    g = data.adapt(b[:2] for b in batches)
    assert g.num_batches is None
    assert len(_epochs(g, 1)[0]) == 7
    with pytest.raises(ValueError, match="exhausted"):
        _epochs(g, 1)
    with pytest.raises(ValueError, match=r"x, y \(batch 1 of epoch 1\)"):
        _epochs(data.adapt([(x[:4], y[:4]), (x[:4], y[:3])]), 1)
    with pytest.raises(ValueError, match="y: not allowed"):
        data.adapt(iter(batches), y)
    with pytest.raises(TypeError, match="x: expected"):
        data.adapt(5)
    rows = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]  # a list of rows is data, not batches
    a = data.adapt(rows, batch_size=2, shuffle=False)
    assert isinstance(a, data.ArrayAdapter) and [b[0].shape for b in a.get_epoch_iterator()] == [(2, 2), (1, 2)]
    with pytest.raises(ValueError, match="x: expected an array of numbers"):
        data.adapt([[1.0, 2.0], [3.0]], [0, 1])


# ------------------------------------------------------- DataFrame / Arrow
def _frame(x, y, w):
    df = pd.DataFrame({f"f{j}": x[:, j] for j in range(x.shape[1])})
    df["label"], df["w"], df["name"] = y, w, ["a"] * len(y)
    return df


@pytest.mark.parametrize("kind", ["pandas", "arrow"])
def test_tables_by_column_name_equal_arrays(kind):
    x, y, w = _xy()
    df = _frame(x, y, w)
    t = df if kind == "pandas" else pa.Table.from_pandas(df, preserve_index=False)
    feats = [f"f{j}" for j in range(5)]
    want = _epochs(data.adapt(x, y, w, batch_size=16, seed=4))
    _same(_epochs(data.adapt(t, "label", "w", features=feats, batch_size=16, seed=4)), want)
    if kind == "pandas":
        _same(_epochs(data.adapt(df[feats], df["label"], df["w"], batch_size=16, seed=4)), want)
    with pytest.raises(KeyError, match=r"features: column\(s\) \['nope'\]"):
        data.adapt(t, "label", features=["f0", "nope"])
    with pytest.raises(KeyError, match="label"):
        data.adapt(t, "nope", features=feats)
    with pytest.raises(TypeError, match="features: column 'name'"):
        data.adapt(t, "label", features=["f0", "name"])
    with pytest.raises(ValueError, match="label: column 'f0'"):
        data.adapt(t, "f0", features=feats)


# -------------------------------------------------------------------- dask
def test_dask_array_and_dataframe_stream_partitions():
    da = pytest.importorskip("dask.array")
    dd = pytest.importorskip("dask.dataframe")
    x, y, w = _xy(1000)
    dx, dy = da.from_array(x, chunks=(128, 5)), da.from_array(y, chunks=300)
    a = data.adapt(dx, dy, batch_size=64, shuffle=False)
    assert isinstance(a, data.DaskArrayAdapter) and a.num_batches == 16
    _same(_epochs(a), _epochs(data.adapt(x, y, batch_size=64, shuffle=False)))
    e1, e2 = _epochs(data.adapt(dx, y, batch_size=64, seed=0))
    assert np.array_equal(_rows(e1), _rows([(x, y)])) and np.array_equal(_rows(e2), _rows([(x, y)]))
    ddf = dd.from_pandas(_frame(x, y, w).drop(columns="name"), npartitions=7)
    feats = [f"f{j}" for j in range(5)]
    b = data.adapt(ddf, "label", "w", features=feats, batch_size=64, shuffle=False)
    assert b.num_batches is None
    _same(_epochs(b), _epochs(data.adapt(x, y, w, batch_size=64, shuffle=False)))
    with pytest.raises(ValueError, match="x, y"):
        data.adapt(dx, dy[:-1])
    with pytest.raises(KeyError, match="label"):
        data.adapt(ddf, "nope")
    with pytest.raises(TypeError, match="y: with a dask DataFrame"):
        data.adapt(ddf, y)


# ----------------------------------------------------------------- Parquet
def _write_parquet(path, rows, features=8, row_group=65536, files=1, seed=0):
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    per = -(-rows // files)
    for k in range(files):
        n_file = min(per, rows - k * per)
        schema = pa.schema([(f"f{j}", pa.float32()) for j in range(features)] + [("label", pa.int32())])
        with pq.ParquetWriter(path / f"part-{k:03d}.parquet", schema, compression="none",
                              use_dictionary=False) as wr:
            for s in range(0, n_file, row_group):
                m = min(row_group, n_file - s)
                xs = rng.standard_normal((m, features), dtype=np.float32)
                cols = [pa.array(xs[:, j]) for j in range(features)]
                wr.write_batch(pa.record_batch(cols + [pa.array((xs[:, 0] > 0).astype(np.int32))], schema=schema))


def test_from_parquet_equals_arrays_and_shuffles(tmp_path):
    _write_parquet(tmp_path / "pq", 5000, features=4, row_group=700, files=2)
    t = pq.read_table(tmp_path / "pq")
    feats = ["f0", "f1", "f2", "f3"]
    x = np.column_stack([t.column(c).to_numpy() for c in feats])
    y = t.column("label").to_numpy()
    a = data.from_parquet(tmp_path / "pq", features=feats, label="label", batch_size=128, memory_budget=1 << 15)
    assert a.num_batches == 40 and a.read_rows < 700
    _same(_epochs(a), _epochs(data.adapt(x, y, batch_size=128, shuffle=False)))
    s = data.from_parquet(tmp_path / "pq", features=feats, label="label", batch_size=128, shuffle_buffer=1000,
                          seed=0)
    e1, e2 = _epochs(s)
    assert [len(b[0]) for b in e1] == [128] * 39 + [8]
    assert np.array_equal(_rows(e1), _rows([(x, y)])) and np.array_equal(_rows(e2), _rows([(x, y)]))
    assert not np.array_equal(e1[0][0], e2[0][0])
    with pytest.raises(KeyError, match="features"):
        data.from_parquet(tmp_path / "pq", features=["f9"], label="label")
    with pytest.raises(ValueError, match="memory_budget"):
        data.from_parquet(tmp_path / "pq", label="label", shuffle_buffer=10 ** 6, memory_budget=1 << 20)
    with pytest.raises(FileNotFoundError, match="paths"):
        data.from_parquet(tmp_path / "missing", label="label")


_TRAIN = textwrap.dedent("""
    import json, sys
    import numpy as np
    import fastnn
    from fastnn import data
    from fastnn.layers import Dense
    path, kind = sys.argv[1], sys.argv[2]
    feats = [f"f{j}" for j in range(32)]
    if kind == "parquet":
        adapter = data.from_parquet(path, features=feats, label="label", batch_size=8192,
                                    shuffle_buffer=65536, memory_budget=128 << 20, seed=0)
    elif kind == "dask":
        import dask.dataframe as dd
        from dask.distributed import Client, LocalCluster
        cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None)
        client = Client(cluster)
        adapter = data.adapt(dd.read_parquet(path, split_row_groups=True), "label", features=feats,
                             batch_size=8192, seed=0)
    else:
        x = np.load(path + "/x.npy", mmap_mode="r")
        y = np.load(path + "/y.npy", mmap_mode="r")
        adapter = data.adapt(x, y, batch_size=8192, seed=0)
    model = fastnn.Sequential([Dense(8, activation="relu", input_dim=32), Dense(2, activation="softmax")])
    model.compile(optimizer=fastnn.optimizers.Adam(learning_rate=0.02), loss="sparse_categorical_crossentropy")
    rows = 0
    for xb, yb in adapter.get_epoch_iterator():
        model.fit(xb, yb, batch_size=len(xb), epochs=1, shuffle=False, verbose=0)
        rows += len(xb)
    loss = model.evaluate(xb, yb)
    # VmHWM: the peak of this process's own memory map (ru_maxrss would also count the
    # parent's peak at fork time, which Linux carries across exec)
    status = open("/proc/self/status").read()
    peak_kb = int(status.split("VmHWM:")[1].split()[0])
    print(json.dumps({"rows": rows, "loss": float(loss), "peak_rss_mb": peak_kb / 1024}))
""")


def _train_out_of_core(path, kind):
    env = dict(os.environ, PYTHONPATH=str(Path(fastnn.__file__).parent.parent))
    r = subprocess.run([sys.executable, "-c", _TRAIN, str(path), kind], capture_output=True, text=True,
                       env=env, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def _out_of_core(tmp_path_factory, mb):
    path = tmp_path_factory.mktemp("ooc") / "pq"
    rows = mb * (1 << 20) // (33 * 4)
    _write_parquet(path, rows, features=32, files=4)
    size = sum(p.stat().st_size for p in path.iterdir())
    assert size > 0.9 * mb * (1 << 20)
    results = {}
    for kind in ("parquet", "dask"):
        res = _train_out_of_core(path, kind)
        assert res["rows"] == rows and np.isfinite(res["loss"]) and res["loss"] < 0.6
        assert res["peak_rss_mb"] < 500, (kind, res)
        results[kind] = res
    print(f"\nout-of-core {size / 2**20:.0f} MB on disk:", json.dumps(results))
    return results


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc to measure the peak RSS")
def test_parquet_and_dask_out_of_core_200mb(tmp_path_factory):
    _out_of_core(tmp_path_factory, 200)


@pytest.mark.skipif(os.environ.get("FASTNN_BIG_DATA") != "1",
                    reason="writes 2 GB to tmp; run with FASTNN_BIG_DATA=1")
def test_parquet_and_dask_out_of_core_2gb(tmp_path_factory):
    _out_of_core(tmp_path_factory, 2048)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc to measure the peak RSS")
def test_memmap_out_of_core(tmp_path):
    rows = 320 * (1 << 20) // (32 * 4)  # a 320 MB x; loaded whole it alone would exceed the bound
    x = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=(rows, 32))
    y = np.lib.format.open_memmap(tmp_path / "y.npy", mode="w+", dtype=np.int32, shape=(rows,))
    rng = np.random.default_rng(0)
    for s in range(0, rows, 1 << 18):
        x[s:s + (1 << 18)] = rng.standard_normal((min(1 << 18, rows - s), 32), dtype=np.float32)
        y[s:s + (1 << 18)] = x[s:s + (1 << 18), 0] > 0
    x.flush(), y.flush()
    del x, y
    res = _train_out_of_core(tmp_path, "memmap")
    assert res["rows"] == rows and res["loss"] < 0.6 and res["peak_rss_mb"] < 250, res
