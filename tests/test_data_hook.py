"""fastnn.data.fit_hook: the batches the trainer would train on, checked as fit checks arrays."""
import numpy as np
import pytest

import fastnn
import fastnn.data
from fastnn.data import fit_hook
from fastnn.layers import Dense

from test_data import _record_fit_batches

pd = pytest.importorskip("pandas")


def _model(build=True, dtype="float32"):
    m = fastnn.Sequential([Dense(3, activation="softmax", **({"input_dim": 4} if build else {}))], dtype=dtype)
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return m


def _xy(n=50):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 4))
    return x, (x[:, 0] > 0).astype(int)


def _all(source, epochs=1):
    out = []
    for _ in range(epochs):
        out += [tuple(None if a is None else a.copy() for a in b) for b in source.epoch()]
        source.on_epoch_end()
    return out


def test_arrays_give_fits_batches_cast_to_the_model_dtype():
    x, y = _xy()
    m = _model()
    seen = _record_fit_batches(m)
    try:
        m.fit(x, y, batch_size=16, epochs=2, seed=3, verbose=0)
    finally:
        getattr(m, "_restore_train_step", lambda: None)()
    src = fit_hook.for_model(_model(), x, y, batch_size=16, seed=np.random.default_rng(3))
    got = _all(src, 2)
    assert src.num_batches == 4 and len(got) == len(seen) == 8
    for (xb, yb, sw), (xf, yf) in zip(got, seen):
        assert xb.dtype == np.float32 and sw is None
        assert np.array_equal(xb, xf) and np.array_equal(yb, yf)


def test_streamed_sources_are_checked_per_batch_and_build_the_model():
    x, y = _xy()
    want = _all(fit_hook.for_model(_model(), x, y, batch_size=10, shuffle=False))
    df = pd.DataFrame(x, columns=list("abcd")).assign(label=y)
    m = _model(build=False)
    got = _all(fit_hook.for_model(m, df, "label", batch_size=10, shuffle=False))
    assert m.built and m.input_shape == (None, 4)
    for (a, b, _), (c, d, _) in zip(got, want):
        assert a.dtype == c.dtype == np.float32 and np.array_equal(a, c) and np.array_equal(b, d)
    gen = [(x[s:s + 10], y[s:s + 10], np.ones(10)) for s in range(0, 50, 10)]
    got = _all(fit_hook.for_model(_model(), gen))
    assert len(got) == 5 and got[0][2].dtype == np.float32
    bad = [(x[:10], y[:10]), (np.where(x[10:20] > 1, np.nan, x[10:20]), y[10:20])]
    with pytest.raises(ValueError, match=r"x \(batch 1 of epoch 1\): contains NaN"):
        _all(fit_hook.for_model(_model(), bad))
    with pytest.raises(ValueError, match=r"x \(batch 0 of epoch 1\).*wrong input width"):
        _all(fit_hook.for_model(_model(), [(x[:, :3], y)]))
    with pytest.raises(ValueError, match=r"y \(batch 0 of epoch 1\)"):
        _all(fit_hook.for_model(_model(), [(x, y + 5)]))
    with pytest.raises(ValueError, match=r"sample_weight \(batch 0 of epoch 1\)"):
        _all(fit_hook.for_model(_model(), [(x, y, -np.ones(50))]))
    with pytest.raises(ValueError, match="sample_weight: expected shape"):
        fit_hook.for_model(_model(), x, y, sample_weight=np.ones(3))


def test_epoch_iterator_protocol():
    x, y = _xy()
    src = fit_hook.for_model(_model(), x, y, batch_size=16, seed=0)
    assert (src.steps, src.batch_size, src.num_samples) == (4, 16, 50)
    e1 = [(s, xb.copy(), yb.copy()) for s, xb, yb in src]
    assert [s for s, _, _ in e1] == [0, 1, 2, 3] and sum(len(yb) for _, _, yb in e1) == 50

    class Counting(fastnn.data.Dataset):
        ends = 0

        def __len__(self):
            return 2

        def __getitem__(self, i):
            return x[i * 25:(i + 1) * 25], y[i * 25:(i + 1) * 25]

        def on_epoch_end(self):
            Counting.ends += 1
    src = fit_hook.for_model(_model(), Counting(), shuffle=False)
    assert src.steps == 2 and src.num_samples is None
    assert [s for s, _, _ in src] == [0, 1] and Counting.ends == 1
    m = _model(build=False)
    src = fit_hook.for_model(m, (b for b in [(x[:30], y[:30]), (x[30:], y[30:])]))
    assert src.ensure_built() is m and m.built and m.input_shape == (None, 4)
    got = list(src)
    assert [len(yb) for _, _, yb in got] == [30, 20] and np.array_equal(got[0][1], x[:30].astype(np.float32))
    with pytest.raises(ValueError, match="sample_weight: this training loop"):
        list(fit_hook.for_model(_model(), [(x, y, np.ones(50))]))


def test_the_real_fit_trains_on_hook_sources_bitwise_like_arrays(tmp_path):
    """The integration DATA.md describes, through Model.fit itself: a DataFrame with seed=5
    and Parquet without shuffling train exactly as the equivalent arrays."""
    x, y = _xy(60)
    df = pd.DataFrame(x, columns=list("abcd")).assign(label=y)
    a, b = _model(dtype="float64"), _model(dtype="float64")
    b.set_weights(a.get_weights())
    a.fit(x, y, batch_size=16, epochs=3, seed=5, verbose=0)
    b.fit(df, "label", batch_size=16, epochs=3, seed=5, verbose=0)
    assert all(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights()))
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "d.parquet", row_group_size=25)
    c, d = _model(dtype="float64"), _model(dtype="float64")
    d.set_weights(c.get_weights())
    c.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    d.fit(fastnn.data.from_parquet(str(tmp_path / "d.parquet"), features=list("abcd"), label="label",
                                   batch_size=16), epochs=2, verbose=0)
    assert all(np.array_equal(u, v) for u, v in zip(c.get_weights(), d.get_weights()))


def test_sample_weight_of_one_column_is_taken_as_keras_takes_it():
    """sample_weight of shape (n, 1) (Keras 3 accepts it) trains, evaluates and steps exactly as
    the same weights of shape (n,); (n, 2) and (n, 1, 1) are still refused naming both shapes."""
    x, y = _xy()
    w = np.random.default_rng(3).random(50)

    def run(sw):
        m = fastnn.Sequential([Dense(3, activation="softmax", input_dim=4,
                                     kernel_initializer=fastnn.initializers.GlorotUniform(seed=0))])
        m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        h = m.fit(x, y, sample_weight=sw, batch_size=16, epochs=2, verbose=0, seed=1)
        return (m.arena.params.copy(), h.history["loss"], m.evaluate(x, y, sample_weight=sw, verbose=0),
                m.train_on_batch(x[:8], y[:8], sample_weight=sw[:8]))
    flat, column = run(w), run(w[:, None])
    np.testing.assert_array_equal(flat[0], column[0])
    assert flat[1:] == column[1:]
    for bad in (np.ones((50, 2)), np.ones((50, 1, 1))):
        with pytest.raises(ValueError, match=r"^sample_weight: expected shape \(50,\) or \(50, 1\), got "):
            _model().fit(x, y, sample_weight=bad, epochs=1, verbose=0)
