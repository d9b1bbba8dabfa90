"""Every callback's behaviour."""
import csv
import math
import os

import numpy as np
import pytest

import fastnn
from fastnn import callbacks as C
from fastnn.layers import Dense


class Script(C.Callback):
    """Overwrites log values with a scripted sequence and records the weights after each epoch."""

    def __init__(self, **seqs):
        super().__init__()
        self.seqs, self.weights = seqs, []

    def on_epoch_end(self, epoch, logs=None):
        for k, seq in self.seqs.items():
            logs[k] = seq[epoch]
        self.weights.append(self.model.get_weights())


def model_and_data(lr=0.01):
    r = np.random.default_rng(0)
    x = r.normal(size=(40, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]])).astype(np.float32)
    fastnn.set_random_seed(0)
    m = fastnn.Sequential([Dense(4, activation="tanh", input_dim=3), Dense(1)])
    m.compile(fastnn.optimizers.SGD(lr), "mse")
    return m, x, y


def test_history_holds_every_epoch():
    m, x, y = model_and_data()
    h = m.fit(x, y, epochs=3, verbose=0, validation_split=0.25)
    assert h.epoch == [0, 1, 2] and set(h.history) == {"loss", "val_loss"}
    assert len(h.history["loss"]) == 3 and m.history is h


def test_early_stopping_stops_at_the_right_epoch_and_restores_best():
    m, x, y = model_and_data()
    script = Script(val_loss=[5.0, 3.0, 2.0, 2.5, 2.1, 2.2, 1.0, 0.5])
    es = C.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    h = m.fit(x, y, epochs=8, verbose=0, callbacks=[script, es])
    # best at epoch 2; epochs 3, 4, 5 do not improve -> stops after epoch 5
    assert h.epoch == [0, 1, 2, 3, 4, 5]
    assert es.stopped_epoch == 5 and es.best_epoch == 2
    for a, b in zip(m.get_weights(), script.weights[2]):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(script.weights[2][0], script.weights[5][0])


def test_early_stopping_min_delta_and_mode_max():
    m, x, y = model_and_data()
    script = Script(val_accuracy=[0.5, 0.505, 0.508, 0.6, 0.6])
    es = C.EarlyStopping(monitor="val_accuracy", min_delta=0.01, patience=2)
    h = m.fit(x, y, epochs=5, verbose=0, callbacks=[script, es])
    assert es.mode == "max" and h.epoch == [0, 1, 2]


def test_reduce_lr_on_plateau_lowers_the_rate():
    m, x, y = model_and_data(lr=0.1)
    script = Script(val_loss=[1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5])
    rl = C.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, min_lr=0.02)
    h = m.fit(x, y, epochs=8, verbose=0, callbacks=[script, rl])
    assert h.history["learning_rate"] == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.025])
    assert m.optimizer.learning_rate == pytest.approx(0.02)


def test_learning_rate_scheduler_sets_each_epoch():
    m, x, y = model_and_data(lr=0.1)
    h = m.fit(x, y, epochs=3, verbose=0, callbacks=[C.LearningRateScheduler(lambda e, lr: 0.1 / (1 + e))])
    assert h.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.1 / 3])


def test_model_checkpoint_writes_only_on_improvement(tmp_path):
    m, x, y = model_and_data()
    script = Script(val_loss=[3.0, 2.0, 2.5, 1.0])
    path = str(tmp_path / "ckpt-{epoch:02d}.npz")
    m.fit(x, y, epochs=4, verbose=0,
          callbacks=[script, C.ModelCheckpoint(path, monitor="val_loss", save_best_only=True)])
    assert sorted(os.listdir(tmp_path)) == ["ckpt-01.npz", "ckpt-02.npz", "ckpt-04.npz"]
    best = fastnn.load_model(tmp_path / "ckpt-04.npz")
    for a, b in zip(best.get_weights(), script.weights[3]):
        np.testing.assert_array_equal(a, b)


def test_model_checkpoint_every_epoch_overwrites(tmp_path):
    m, x, y = model_and_data()
    m.fit(x, y, epochs=2, verbose=0, callbacks=[C.ModelCheckpoint(tmp_path / "m.npz")])
    assert os.listdir(tmp_path) == ["m.npz"]


def test_terminate_on_nan_stops_within_the_epoch():
    m, x, y = model_and_data(lr=1e12)
    h = m.fit(x * 1e3, y, epochs=20, batch_size=4, verbose=0, callbacks=[C.TerminateOnNaN()])
    assert len(h.epoch) == 1 and not math.isfinite(h.history["loss"][0])


def test_divergence_stop_at_three_times_the_first_loss():
    m, x, y = model_and_data()
    script = Script(loss=[1.0, 2.0, 2.9, 3.1, 0.5])
    ds = C.DivergenceStop(factor=3.0)
    h = m.fit(x, y, epochs=5, verbose=0, callbacks=[script, ds])
    assert h.epoch == [0, 1, 2, 3] and ds.stopped_epoch == 3


def test_divergence_stop_on_a_learning_rate_too_large():
    m, x, y = model_and_data(lr=0.8)
    h = m.fit(x, y, epochs=30, batch_size="full", verbose=0, callbacks=[C.DivergenceStop()])
    assert len(h.epoch) < 30
    assert h.history["loss"][-1] > 3 * h.history["loss"][0] or not math.isfinite(h.history["loss"][-1])


def test_csv_logger_writes_the_rows(tmp_path):
    m, x, y = model_and_data()
    f = tmp_path / "log.csv"
    h = m.fit(x, y, epochs=3, verbose=0, validation_split=0.25, callbacks=[C.CSVLogger(f)])
    rows = list(csv.reader(open(f)))
    assert rows[0] == ["epoch", "loss", "val_loss"]
    assert [int(r[0]) for r in rows[1:]] == [0, 1, 2]
    assert [float(r[1]) for r in rows[1:]] == pytest.approx(h.history["loss"])
    m.fit(x, y, epochs=1, verbose=0, callbacks=[C.CSVLogger(f, append=True)])
    assert len(list(csv.reader(open(f)))) == 5


def test_divergence_stop_compares_with_the_initial_loss_when_the_first_epoch_already_exploded():
    """The blind spot of the first-epoch rule: the loss explodes within epoch 1 (finite,
    but far above the loss at the start), and epoch 1's huge loss becomes the yardstick."""
    r = np.random.default_rng(0)
    x = r.normal(size=(40, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]])).astype(np.float32)

    def run(cb):
        fastnn.set_random_seed(0)
        m = fastnn.Sequential([Dense(1, input_dim=3)])
        m.compile(fastnn.optimizers.SGD(1.0), "mse")
        initial = m.evaluate(x, y, return_dict=True)["loss"]
        return initial, m.fit(x, y, epochs=4, batch_size=4, verbose=0, shuffle=False, callbacks=[cb])

    initial, h = run(C.Callback())
    loss = h.history["loss"]
    assert math.isfinite(loss[0]) and loss[0] > 1000 * initial  # exploded within the first epoch
    ds = C.DivergenceStop(factor=3.0)
    _, h = run(ds)
    assert ds.stopped_epoch == 0 and h.epoch == [0]
    assert 0 < ds.initial < 3 * initial  # the first batch's loss, before any update
    given = C.DivergenceStop(factor=3.0, initial=initial)
    run(given)
    assert given.stopped_epoch == 0 and given.initial == initial
    with pytest.raises(ValueError, match="initial"):
        C.DivergenceStop(initial=float("nan"))
