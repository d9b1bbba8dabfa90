"""fit / evaluate / predict on every input kind of fastnn.data (issue 17), and the Keras fit
habits of issue 16: batch_size=None, verbose="auto", sample_weight / class_weight,
validation_freq, steps_per_epoch, every callback hook."""
import io
import contextlib
import warnings

import numpy as np
import pytest

import fastnn
import fastnn.data
from fastnn import callbacks as C
from fastnn.layers import Dense


def _xy(n=96, d=6, k=3, seed=0):
    r = np.random.default_rng(seed)
    x = r.standard_normal((n, d)).astype(np.float32)
    return x, (np.abs(x[:, 0] * 2).astype(int) % k)


def _model(d=6, k=3, seed=1, opt="adam"):
    fastnn.set_random_seed(seed)
    m = fastnn.Sequential([Dense(8, activation="relu", input_dim=d), Dense(k, activation="softmax")])
    m.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def _same_weights(a, b):
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        assert np.array_equal(wa, wb)


def _fit_pair(source, x, y, **kw):
    a, b = _model(), _model()
    ha = a.fit(x, y, epochs=2, verbose=0, batch_size=16, shuffle=False, **kw)
    hb = b.fit(source, epochs=2, verbose=0, shuffle=False, **kw)
    _same_weights(a, b)
    assert ha.history["loss"] == hb.history["loss"]
    return a, b


def test_generator_list_and_dataset_train_bitwise_like_arrays():
    x, y = _xy()
    batches = [(x[s:s + 16], y[s:s + 16]) for s in range(0, 96, 16)]
    _fit_pair(batches, x, y)

    class DS(fastnn.data.Dataset):
        def __len__(self):
            return 6

        def __getitem__(self, i):
            return x[16 * i:16 * (i + 1)], y[16 * i:16 * (i + 1)]
    _fit_pair(DS(), x, y)
    _fit_pair(DS(workers=2), x, y)  # background prefetch: same batches, same order


def test_dataframe_with_a_seed_trains_bitwise_like_arrays():
    pd = pytest.importorskip("pandas")
    x, y = _xy()
    df = pd.DataFrame(x, columns=[f"f{i}" for i in range(6)]).assign(label=y)
    a, b = _model(), _model()
    a.fit(x, y, batch_size=16, epochs=3, seed=5, verbose=0)
    b.fit(df, "label", batch_size=16, epochs=3, seed=5, verbose=0)
    _same_weights(a, b)
    assert a.evaluate(x, y) == b.evaluate(df, "label")


def test_memmap_parquet_dask_train_bitwise_like_arrays(tmp_path):
    x, y = _xy()
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=x.shape)
    mm[:] = x
    mm.flush()
    a, b = _model(), _model()
    a.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    b.fit(np.load(tmp_path / "x.npy", mmap_mode="r"), y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    _same_weights(a, b)
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    cols = {f"f{i}": x[:, i] for i in range(6)}
    cols["label"] = y
    pq.write_table(pa.table(cols), tmp_path / "d.parquet", row_group_size=40)
    src = fastnn.data.from_parquet(str(tmp_path / "d.parquet"), features=[f"f{i}" for i in range(6)],
                                   label="label", batch_size=16)
    c = _model()
    c.fit(src, epochs=2, verbose=0)
    _same_weights(a, c)
    assert np.array_equal(c.predict(src), a.predict(x))
    da = pytest.importorskip("dask.array")
    d = _model()
    d.fit(da.from_array(x, chunks=40), da.from_array(y, chunks=40), batch_size=16, epochs=2, shuffle=False,
          verbose=0)
    _same_weights(a, d)


def test_validation_evaluate_predict_take_any_source():
    x, y = _xy()
    xv, yv = _xy(40, seed=3)
    vbatches = [(xv[s:s + 10], yv[s:s + 10]) for s in range(0, 40, 10)]
    a, b = _model(), _model()
    ha = a.fit(x, y, epochs=2, seed=0, verbose=0, validation_data=(xv, yv), validation_batch_size=10)
    hb = b.fit(x, y, epochs=2, seed=0, verbose=0, validation_data=vbatches)
    assert ha.history["val_loss"] == hb.history["val_loss"]
    assert ha.history["val_accuracy"] == hb.history["val_accuracy"]
    assert a.evaluate(xv, yv, batch_size=10) == b.evaluate(vbatches)
    gen = (xb for xb, _ in vbatches)  # x-only batches of a one-shot generator
    assert np.array_equal(a.predict(gen), a.predict(xv))


def test_progress_bar_counts_steps_of_unknown_length():
    x, y = _xy()

    def gen():
        for s in range(0, 96, 32):
            yield x[s:s + 32], y[s:s + 32]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        _model().fit(gen(), epochs=1, verbose=1)
    assert "3/Unknown" in out.getvalue()
    bar = fastnn.progress.ProgressBar(None, 0, 1, stream=io.StringIO())
    bar.update(5, {"loss": 1.0}, force=True)
    bar.finish({"loss": 1.0})
    assert "5/Unknown" in bar.stream.getvalue()


# ------------------------------------------------------------------- Keras habits
def test_batch_size_none_is_32_and_full_is_one_batch():
    x, y = _xy()
    a, b, c, d = _model(), _model(), _model(), _model()
    a.fit(x, y, epochs=2, seed=3, verbose=0)
    b.fit(x, y, epochs=2, seed=3, verbose=0, batch_size=32)
    _same_weights(a, b)
    assert a.history.params["batch_size"] == 32 and a.history.params["steps"] == 3
    c.fit(x, y, epochs=2, seed=3, verbose=0, batch_size="full")
    d.fit(x, y, epochs=2, seed=3, verbose=0, batch_size=len(x))
    _same_weights(c, d)
    assert c.history.params["steps"] == 1
    with pytest.raises(ValueError, match="batch_size: expected a positive int, None \\(32\\) or 'full'"):
        _model().fit(x, y, batch_size="all", verbose=0)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        _model().fit(x, y, epochs=1, verbose="auto")
    assert "3/3" in out.getvalue()
    with pytest.raises(ValueError, match="verbose: expected 'auto', 0, 1 or 2"):
        _model().fit(x, y, verbose=3)


def test_sample_weight_scales_each_samples_loss():
    x, y = _xy()
    m = _model()
    w = np.random.default_rng(4).uniform(0, 2, len(x))
    p = m.predict(x).astype(np.float64)
    per = -np.log(p[np.arange(len(x)), y])
    assert m.evaluate(x, y, sample_weight=w, batch_size=10)[0] == pytest.approx((w * per).mean(), rel=1e-5)
    # weights 2 with SGD(lr) is SGD(2 lr), bitwise (x2 is exact)
    a, b = _model(opt=fastnn.optimizers.SGD(0.1)), _model(opt=fastnn.optimizers.SGD(0.2))
    a.fit(x, y, sample_weight=np.full(len(x), 2.0), epochs=2, seed=0, verbose=0)
    b.fit(x, y, epochs=2, seed=0, verbose=0)
    _same_weights(a, b)
    # class_weight = the matching sample_weight; on streamed batches too
    cw = {0: 1.0, 1: 3.0, 2: 0.5}
    sw = np.array([cw[int(k)] for k in y])
    a, b, c = _model(), _model(), _model()
    a.fit(x, y, class_weight=cw, epochs=2, seed=1, verbose=0)
    b.fit(x, y, sample_weight=sw, epochs=2, seed=1, verbose=0)
    _same_weights(a, b)
    c.fit([(x[s:s + 32], y[s:s + 32]) for s in range(0, 96, 32)], class_weight=cw, epochs=1, verbose=0)
    d = _model()
    d.fit([(x[s:s + 32], y[s:s + 32], sw[s:s + 32]) for s in range(0, 96, 32)], epochs=1, verbose=0)
    _same_weights(c, d)
    with pytest.raises(ValueError, match="class_weight: keys must be class indices"):
        _model().fit(x, y, class_weight={5: 1.0}, verbose=0)
    m = _model()
    before = m.get_weights()
    with pytest.raises(ValueError, match=r"sample_weight: expected shape \(96,\) or \(96, 1\)"):
        m.fit(x, y, sample_weight=np.ones(3), verbose=0)
    _same_weights_list(before, m.get_weights())


def _same_weights_list(a, b):
    assert all(np.array_equal(u, v) for u, v in zip(a, b))


def test_validation_freq_and_steps_per_epoch():
    x, y = _xy()
    h = _model().fit(x, y, epochs=4, verbose=0, validation_split=0.25, validation_freq=2)
    assert len(h.history["loss"]) == 4 and len(h.history["val_loss"]) == 2
    h = _model().fit(x, y, epochs=3, verbose=0, validation_data=(x, y), validation_freq=[1, 3])
    assert len(h.history["val_loss"]) == 2
    drawn = []

    def forever():
        while True:
            s = (len(drawn) * 16) % 96
            drawn.append(s)
            yield x[s:s + 16], y[s:s + 16]
    h = _model().fit(forever(), epochs=3, steps_per_epoch=4, verbose=0)
    assert len(h.epoch) == 3 and len(drawn) == 12
    finite = ((x[s:s + 16], y[s:s + 16]) for s in range(0, 96, 16))  # 6 batches
    with pytest.warns(RuntimeWarning, match="ran out of data"):
        h = _model().fit(finite, epochs=5, steps_per_epoch=4, verbose=0)
    assert len(h.epoch) == 2
    with pytest.raises(ValueError, match="validation_freq"):
        _model().fit(x, y, validation_freq=0, verbose=0)


class Alias(C.Callback):
    def __init__(self):
        super().__init__()
        self.begins = self.ends = 0

    def on_batch_begin(self, batch, logs=None):
        self.begins += 1

    def on_batch_end(self, batch, logs=None):
        self.ends += 1


def test_every_keras_callback_hook_is_called():
    x, y = _xy()
    m = _model()

    class Hooks(C.Callback):
        def __init__(self):
            super().__init__()
            self.calls = []
    hooks = Hooks()
    names = ["on_train_begin", "on_epoch_begin", "on_train_batch_begin", "on_train_batch_end", "on_test_begin",
             "on_test_batch_begin", "on_test_batch_end", "on_test_end", "on_epoch_end", "on_train_end",
             "on_predict_begin", "on_predict_batch_begin", "on_predict_batch_end", "on_predict_end"]
    for n in names:
        setattr(Hooks, n, (lambda n: lambda self, *a, **k: self.calls.append(n))(n))
    m.fit(x, y, epochs=1, batch_size=48, verbose=0, validation_data=(x[:10], y[:10]), callbacks=[hooks])
    assert hooks.calls == ["on_train_begin", "on_epoch_begin", "on_train_batch_begin", "on_train_batch_end",
                           "on_train_batch_begin", "on_train_batch_end", "on_test_begin", "on_test_batch_begin",
                           "on_test_batch_end", "on_test_end", "on_epoch_end", "on_train_end"]
    hooks.calls.clear()
    m.evaluate(x, y, callbacks=[hooks])
    m.predict(x, callbacks=[hooks])
    assert hooks.calls == ["on_test_begin", "on_test_batch_begin", "on_test_batch_end", "on_test_end",
                           "on_predict_begin", "on_predict_batch_begin", "on_predict_batch_end", "on_predict_end"]
    alias = Alias()
    m.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[alias])
    assert alias.begins == alias.ends == 6


def test_rejected_source_leaves_model_unchanged():
    x, y = _xy()
    m = _model()
    m.fit(x, y, epochs=1, verbose=0, seed=0)
    before = m.get_weights()
    with pytest.raises(ValueError, match=r"x \(batch 0 of epoch 1\).*wrong input width"):
        m.fit([(x[:, :3], y)], verbose=0)
    with pytest.raises(ValueError, match="validation_split: only for in-memory arrays"):
        m.fit([(x, y)], validation_split=0.2, verbose=0)
    _same_weights_list(before, m.get_weights())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.fit([(x, y)], verbose=0)


def test_predict_ignores_targets_in_batches_even_uncompiled():
    x, y = _xy()
    m = fastnn.Sequential([Dense(3, input_dim=6)])  # never compiled: no loss to check targets with
    want = m.predict(x)
    assert np.array_equal(m.predict([(x[:50], y[:50]), (x[50:], y[50:], np.ones(46))]), want)
    assert np.array_equal(m.predict(x, steps=1, batch_size=40), want[:40])
