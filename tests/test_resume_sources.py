"""Exact continuation through fit's data sources (``fastnn._sources``): an input that
``fastnn.data`` adapts into an ``ArrayAdapter`` (a DataFrame with a label column) visits
epoch e in the order of (seed, e), so ``initial_epoch=k`` continues exactly; and
``steps_per_epoch``, whose epochs depend on the ones before, is refused with a backup."""
from __future__ import annotations

import numpy as np
import pytest

import fastnn
from fastnn.callbacks import BackupAndRestore
from fastnn.layers import Dense

pd = pytest.importorskip("pandas")


def frame(n=96, seed=0):
    r = np.random.default_rng(seed)
    x = r.standard_normal((n, 4)).astype(np.float32)
    df = pd.DataFrame(x, columns=list("abcd"))
    df["label"] = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    return df


def net(built=True):
    fastnn.set_random_seed(1)
    first = Dense(8, input_dim=4, activation="tanh") if built else Dense(8, activation="tanh")
    m = fastnn.Sequential([first, Dense(2, activation="softmax")])
    m.compile(fastnn.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


@pytest.mark.parametrize("built", [True, False])
def test_a_dataframe_fit_in_two_calls_equals_one_fit(built):
    df = frame()
    one = net(built)
    h1 = one.fit(df, "label", epochs=4, batch_size=16, verbose=0, seed=5)
    two = net(built)
    two.fit(df, "label", epochs=2, batch_size=16, verbose=0, seed=5)
    h2 = two.fit(df, "label", epochs=4, initial_epoch=2, batch_size=16, verbose=0, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip(one.get_weights(), two.get_weights()))
    assert h2.history["loss"] == h1.history["loss"][2:]


def test_steps_per_epoch_with_a_backup_is_refused_and_nothing_changes(tmp_path):
    df = frame()
    m = net()
    before = [w.copy() for w in m.get_weights()]
    with pytest.raises(ValueError, match="steps_per_epoch: not with BackupAndRestore"):
        m.fit(df, "label", epochs=2, steps_per_epoch=3, verbose=0, seed=5,
              callbacks=[BackupAndRestore(str(tmp_path / "bk"))])
    assert all(np.array_equal(a, b) for a, b in zip(before, m.get_weights()))
    assert not (tmp_path / "bk").exists()
