"""Save / load: identical predictions, identical continued training, safe and atomic files."""
import os
import zipfile

import numpy as np
import pytest

import fastnn
from fastnn import layers as L


def data(n=200, seed=0):
    r = np.random.default_rng(seed)
    x = r.normal(size=(n, 6)).astype(np.float32)
    return x, (x[:, 0] + x[:, 1] > 0).astype(int) + (x[:, 2] > 0.5)


def model():
    fastnn.set_random_seed(0)
    m = fastnn.Sequential([L.Input(6), L.Dense(16, activation="relu", kernel_regularizer=fastnn.regularizers.L2(1e-3)),
                           L.BatchNormalization(), L.Dropout(0.2, seed=5), L.PReLU(), L.Maxout(8, pieces=2),
                           L.Dense(3, activation="softmax")])
    sched = fastnn.schedules.ExponentialDecay(0.01, decay_steps=10, decay_rate=0.9)
    m.compile(fastnn.optimizers.Adam(sched, global_clipnorm=5.0), "sparse_categorical_crossentropy", ["accuracy"])
    return m


def trained_and_reloaded(tmp_path):
    """(x, y, a model trained 2 epochs, its copy saved and loaded back)."""
    x, y = data()
    m = model()
    m.fit(x, y, epochs=2, batch_size=32, verbose=0, seed=1)
    m.save(tmp_path / "m.npz")
    return x, y, m, fastnn.load_model(tmp_path / "m.npz")


def test_round_trip_predicts_identically(tmp_path):
    x, y, m, m2 = trained_and_reloaded(tmp_path)
    np.testing.assert_array_equal(m.predict(x), m2.predict(x))
    assert [type(l).__name__ for l in m2.layers] == [type(l).__name__ for l in m.layers]
    assert m2.optimizer.iterations == m.optimizer.iterations


def test_round_trip_resumes_training_identically(tmp_path):
    x, y, m, m2 = trained_and_reloaded(tmp_path)
    h1 = m.fit(x, y, epochs=2, batch_size=32, verbose=0, seed=7)
    h2 = m2.fit(x, y, epochs=2, batch_size=32, verbose=0, seed=7)
    assert h1.history == h2.history
    for a, b in zip(m.get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_functional_model_round_trip(tmp_path):
    x, _ = data()
    inp = L.Input(6)
    out = L.Dense(2, activation="tanh")(L.Dense(4)(inp))
    m = fastnn.Model(inp, out)
    m.save(tmp_path / "f.npz")
    m2 = fastnn.load_model(tmp_path / "f.npz")
    assert type(m2) is fastnn.Model and not m2.compiled
    np.testing.assert_array_equal(m.predict(x), m2.predict(x))


def test_file_holds_no_pickles_and_loads_with_allow_pickle_false(tmp_path):
    m = model()
    m.build()
    m.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as f:
        assert "__config__" in f.files
        for k in f.files:
            assert f[k].dtype != object
    with zipfile.ZipFile(tmp_path / "m.npz") as z:
        assert all(n.endswith(".npy") for n in z.namelist())


def test_write_is_atomic_no_temporary_left_and_old_file_kept_on_failure(tmp_path, monkeypatch):
    m = model()
    m.build()
    path = tmp_path / "m.npz"
    m.save(path)
    good = path.read_bytes()
    assert os.listdir(tmp_path) == ["m.npz"]

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError):
        m.save(path)
    assert path.read_bytes() == good and os.listdir(tmp_path) == ["m.npz"]


def test_save_and_load_weights_only(tmp_path):
    x, y = data()
    m = model()
    m.fit(x, y, epochs=1, verbose=0)
    m.save_weights(tmp_path / "w.npz")
    m2 = model()
    m2.load_weights(tmp_path / "w.npz")
    np.testing.assert_array_equal(m.predict(x), m2.predict(x))


def test_not_a_model_file(tmp_path):
    np.savez(tmp_path / "x.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a fastnn model file"):
        fastnn.load_model(tmp_path / "x.npz")
