"""TensorBoard callback: the event files read back with TensorBoard's own reader."""
import numpy as np
import pytest

import fastnn
from fastnn.layers import Dense
from fastnn.monitor import TrainingMonitor

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from fastnn.tensorboard import TensorBoard  # noqa: E402


def _fit(callbacks, epochs=3):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((100, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int)
    m = fastnn.Sequential([Dense(6, activation="relu", input_dim=4), Dense(2, activation="softmax")])
    m.compile(optimizer=fastnn.optimizers.SGD(learning_rate=0.05), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
    hist = m.fit(x, y, epochs=epochs, batch_size=20, validation_split=0.2, callbacks=callbacks, verbose=0, seed=0)
    return m, hist


def _read(path):
    acc = EventAccumulator(str(path), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    return acc


def _series(acc, tag):
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def test_scalars_histograms_and_monitor_read_back(tmp_path):
    mon = TrainingMonitor(every=2)
    tb = TensorBoard(tmp_path, histogram_freq=2, update_freq=2, monitor=mon)
    m, hist = _fit([mon, tb])
    train, val = _read(tmp_path / "train"), _read(tmp_path / "validation")
    h = hist.history
    for key in ("loss", "accuracy"):
        got = _series(train, f"epoch_{key}")
        assert [s for s, _ in got] == [0, 1, 2]
        np.testing.assert_allclose([v for _, v in got], h[key], rtol=1e-6)
        np.testing.assert_allclose([v for _, v in _series(val, f"epoch_{key}")], h["val_" + key], rtol=1e-6)
    assert [v for _, v in _series(train, "epoch_learning_rate")] == pytest.approx([0.05] * 3)
    batch = _series(train, "batch_loss")
    assert [s for s, _ in batch] == list(range(2, 13, 2))  # 4 steps per epoch, every 2nd
    first = m.layers[0].name
    assert sorted(train.Tags()["histograms"]) == sorted(f"{l.name}/{v}" for l in m.layers for v in ("kernel", "bias"))
    hk = train.Histograms(f"{first}/kernel")
    assert [e.step for e in hk] == [0, 2]
    w = m.layers[0].vars["kernel"]
    last = hk[-1].histogram_value
    assert last.num == w.size and last.min == pytest.approx(w.min()) and last.max == pytest.approx(w.max())
    assert sum(last.bucket) == w.size
    ratios = _series(train, f"update_ratio/{first}/kernel")
    assert [s for s, _ in ratios] == mon.steps["step"] == list(range(0, 12, 2))
    np.testing.assert_allclose([v for _, v in ratios], mon.steps[f"update_ratio/{first}/kernel"], rtol=1e-6)
    assert f"dead_relu/{first}" in train.Tags()["scalars"]


def test_epoch_only_by_default_and_bad_arguments(tmp_path):
    _fit([TensorBoard(tmp_path / "run")], epochs=2)
    train = _read(tmp_path / "run" / "train")
    tags = train.Tags()["scalars"]
    assert "epoch_loss" in tags and not any(t.startswith("batch_") for t in tags)
    assert train.Tags()["histograms"] == []
    with pytest.raises(ValueError, match="update_freq"):
        TensorBoard(tmp_path, update_freq="sometimes")
    with pytest.raises(ValueError, match="histogram_freq"):
        TensorBoard(tmp_path, histogram_freq=-1)
    with pytest.raises(TypeError, match="log_dir"):
        TensorBoard(3)
    with pytest.raises(TypeError, match="monitor"):
        TensorBoard(tmp_path, monitor=object())
