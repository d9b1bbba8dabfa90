"""Exact continuation of training (issue 13 items 4, 6, 7, 10 and the exact-resume promise
in process): the shared batch_size check, steps atomic for Ctrl-C and for other threads,
fit(initial_epoch=k) equal to an uninterrupted fit, BackupAndRestore wired into fit.
The SIGKILL version of the promise is tests/test_resume_kill.py."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest

import fastnn
from fastnn import native_step, ops
from fastnn.callbacks import BackupAndRestore, Callback, EarlyStopping, ReduceLROnPlateau
from fastnn.layers import BatchNormalization, Dense, Dropout


def data(n=96, d=6, seed=0):
    r = np.random.default_rng(seed)
    x = r.standard_normal((n, d)).astype(np.float32)
    return x, (x[:, 0] + x[:, 1] > 0).astype(int) + (x[:, 2] > 0.5)


def net(optimizer="adam", seed=1, width=16):
    fastnn.set_random_seed(seed)
    m = fastnn.Sequential([Dense(width, input_dim=6, activation="relu"), BatchNormalization(), Dropout(0.3),
                           Dense(width, activation="tanh"), Dense(3, activation="softmax")])
    opt = fastnn.optimizers.SGD(0.05, momentum=0.9) if optimizer == "sgd" else fastnn.optimizers.Adam(0.01)
    m.compile(opt, "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def state(m):
    """Everything a step changes: variables (BatchNorm statistics included), optimizer
    slots and counters, Dropout call counters."""
    o = m.optimizer
    return ([w.copy() for w in m.get_weights()], {k: v.copy() for k, v in o.state.items()}, o.iterations,
            [getattr(layer, "_calls", None) for layer in m.layers])


def same(a, b):
    (wa, sa, ia, da), (wb, sb, ib, db) = a, b
    return (ia == ib and da == db and len(wa) == len(wb) and all(np.array_equal(p, q) for p, q in zip(wa, wb))
            and sa.keys() == sb.keys() and all(np.array_equal(sa[k], sb[k]) for k in sa))


class Recorder(Callback):
    def __init__(self):
        super().__init__()
        self.states = []

    def on_train_batch_end(self, batch, logs=None):
        self.states.append(state(self.model))


# ---------------------------------------------------------------- item 4: batch_size
@pytest.mark.parametrize("bad", [-1, 0, 1.5, True, "x", np.float64(2.0)])
@pytest.mark.parametrize("call", ["fit", "evaluate", "predict"])
def test_batch_size_is_checked_alike_by_fit_evaluate_and_predict(bad, call):
    x, y = data()
    m = net()
    m.fit(x, y, epochs=1, batch_size=32, verbose=0, seed=0)
    before = state(m)
    args = (x,) if call == "predict" else (x, y)
    with pytest.raises(ValueError, match=r"batch_size: expected a positive int, None \(\d+\) or 'full', got"):
        getattr(m, call)(*args, batch_size=bad, **({"verbose": 0} if call == "fit" else {}))
    assert same(state(m), before)


def test_predict_with_a_bad_batch_size_leaves_an_unbuilt_model_unbuilt():
    m = fastnn.Sequential([Dense(3)])
    with pytest.raises(ValueError, match="batch_size"):
        m.predict(np.ones((4, 2), np.float32), batch_size=-1)
    assert not m.built


def test_predict_and_evaluate_batch_sizes_agree():
    x, y = data()
    m = net()
    ref = m.predict(x)
    for bs in (1, 7, 96, 1000, np.int64(5)):
        np.testing.assert_allclose(m.predict(x, batch_size=bs), ref, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(m.evaluate(x, y, batch_size=bs), m.evaluate(x, y), rtol=1e-5)


# ---------------------------------------------------------------- item 6: Ctrl-C
def _interrupt_at(monkeypatch, owner, name, call, after):
    """Make the ``call``-th call (from 1) of owner.name deliver SIGINT before or after it runs."""
    real = getattr(owner, name)
    count = [0]

    def wrapped(*a, **k):
        count[0] += 1
        if count[0] == call and not after:
            signal.raise_signal(signal.SIGINT)
        out = real(*a, **k)
        if count[0] == call and after:
            signal.raise_signal(signal.SIGINT)
        return out
    monkeypatch.setattr(owner, name, wrapped)


POINTS = [(ops, "adam_update"), (ops, "dropout"), (ops, "batchnorm_forward"), (ops, "batchnorm_backward"),
          (fastnn.optimizers.Optimizer, "current_learning_rate"),
          (fastnn.losses.SparseCategoricalCrossentropy, "value_and_grad"),
          (native_step, "try_step")]  # around the native step (one GIL-free call)
# what only the Python step calls (net() runs natively otherwise)
PYTHON_STEP_ONLY = ("adam_update", "dropout", "batchnorm_forward", "batchnorm_backward", "value_and_grad")


@pytest.mark.parametrize("owner, name", POINTS, ids=[p[1] for p in POINTS])
@pytest.mark.parametrize("after", [False, True], ids=["before", "after"])
def test_ctrl_c_inside_a_step_completes_the_step(monkeypatch, owner, name, after):
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    if name in PYTHON_STEP_ONLY:
        monkeypatch.setenv("FASTNN_NATIVE_STEP", "0")
    monkeypatch.setattr(native_step, "epoch_steps", lambda *a: None)  # step by step (the native epoch: below)
    x, y = data()
    ref = Recorder()
    net().fit(x, y, epochs=1, batch_size=16, verbose=0, seed=3, callbacks=[ref])
    m = net()
    _interrupt_at(monkeypatch, owner, name, call=3, after=after)  # in the third step (one call per step)
    with pytest.raises(KeyboardInterrupt):
        m.fit(x, y, epochs=1, batch_size=16, verbose=0, seed=3)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # fit put it back
    assert same(state(m), ref.states[2])  # three whole steps: counter, slots, weights, BN, dropout


@pytest.mark.parametrize("after", [False, True], ids=["before", "after"])
def test_ctrl_c_inside_a_native_epoch_call_completes_its_steps(monkeypatch, after):
    # the native epoch runs 2 steps per core call here; SIGINT arrives during the second
    # call (at the start of its bookkeeping, or after it): both its steps complete
    monkeypatch.setattr(native_step, "CHUNK_ROWS", 32)
    x, y = data()
    ref = Recorder()
    net().fit(x, y, epochs=1, batch_size=16, verbose=0, seed=3, callbacks=[ref])
    m = net()
    _interrupt_at(monkeypatch, native_step, "_set_dropouts", call=2, after=after)
    with pytest.raises(KeyboardInterrupt):
        m.fit(x, y, epochs=1, batch_size=16, verbose=0, seed=3)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert same(state(m), ref.states[3])  # four whole steps


def test_ctrl_c_between_steps_is_raised_at_once(monkeypatch):
    x, y = data()
    ref = Recorder()
    net().fit(x, y, epochs=1, batch_size=16, verbose=0, seed=3, callbacks=[ref])

    class Hit(Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                signal.raise_signal(signal.SIGINT)
    m = net()
    with pytest.raises(KeyboardInterrupt):
        m.fit(x, y, epochs=1, batch_size=16, verbose=0, seed=3, callbacks=[Hit()])
    assert same(state(m), ref.states[1])


def test_a_users_sigint_handler_is_deferred_and_kept(monkeypatch):
    x, y = data()
    calls = []

    def mine(signum, frame):
        calls.append(net)
    old = signal.signal(signal.SIGINT, mine)
    monkeypatch.setenv("FASTNN_NATIVE_STEP", "0")  # adam_update: a call of the Python step
    try:
        _interrupt_at(monkeypatch, ops, "adam_update", call=2, after=False)
        m = net()
        m.fit(x, y, epochs=1, batch_size=16, verbose=0, seed=3)
        assert len(calls) == 1 and signal.getsignal(signal.SIGINT) is mine
        assert m.optimizer.iterations == 6
    finally:
        signal.signal(signal.SIGINT, old)


def test_fit_in_a_thread_leaves_the_sigint_handler_alone():
    x, y = data()
    m = net()
    t = threading.Thread(target=lambda: m.fit(x, y, epochs=1, batch_size=16, verbose=0, seed=3))
    t.start()
    t.join(60)
    assert not t.is_alive() and m.optimizer.iterations == 6
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# ---------------------------------------------------------------- item 7: continuation
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_fit_in_two_calls_equals_one_fit(optimizer):
    x, y = data()
    one = net(optimizer)
    h1 = one.fit(x, y, epochs=5, batch_size=16, verbose=0, seed=7)
    two = net(optimizer)
    two.fit(x, y, epochs=2, batch_size=16, verbose=0, seed=7)
    h2 = two.fit(x, y, epochs=5, initial_epoch=2, batch_size=16, verbose=0, seed=7)
    assert same(state(two), state(one))
    assert h2.history["loss"] == h1.history["loss"][2:] and h2.epoch == [2, 3, 4]


def test_fit_continued_after_save_and_load_model_equals_one_fit(tmp_path):
    x, y = data()
    one = net()
    one.fit(x, y, epochs=4, batch_size=16, verbose=0, seed=11)
    two = net()
    two.fit(x, y, epochs=1, batch_size=16, verbose=0, seed=11)
    two.save(tmp_path / "m.npz")
    three = fastnn.load_model(tmp_path / "m.npz")
    three.fit(x, y, epochs=4, initial_epoch=1, batch_size=16, verbose=0, seed=11)
    assert same(state(three), state(one))


def test_epoch_order_depends_on_seed_and_epoch_only():
    from fastnn.trainer import EpochIterator
    x = np.arange(40, dtype=np.float32)[:, None]
    a = EpochIterator(x, np.arange(40), 8, True, np.random.default_rng(5))
    b = EpochIterator(x, np.arange(40), 8, True, np.random.default_rng(5))
    orders = [np.concatenate([yb.copy() for _, _, yb in a]) for _ in range(3)]
    b.epoch_index = 2
    assert np.array_equal(np.concatenate([yb.copy() for _, _, yb in b]), orders[2])
    assert not np.array_equal(orders[0], orders[1]) and sorted(orders[1]) == list(range(40))


# ---------------------------------------------------------------- item 10: threads
def _key(ws):
    return tuple(w.tobytes() for w in ws)


def _fit_beside(m, x, y, body):
    """Fits the built m 3 epochs (batch 8) while a thread runs body(done), done being an
    Event set when fit ends; returns the weights (as _key) of every training step."""
    m.fit(x[:32], y[:32], epochs=1, batch_size=32, verbose=0, seed=0)  # built, optimizer sized
    seen_steps = {_key(m.get_weights())}

    class Steps(Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen_steps.add(_key(self.model.get_weights()))
    done = threading.Event()
    t = threading.Thread(target=body, args=(done,))
    t.start()
    try:
        m.fit(x, y, epochs=3, batch_size=8, verbose=0, seed=0, callbacks=[Steps()])
    finally:
        done.set()
        t.join(60)
    return seen_steps


def test_get_weights_from_another_thread_never_sees_half_a_step():
    x, y = data(n=512)
    m = net(width=96)
    snaps = []

    def hammer(done):
        while not done.is_set():
            snaps.append(_key(m.get_weights()))
    seen_steps = _fit_beside(m, x, y, hammer)
    assert len(snaps) > 50
    torn = sum(s not in seen_steps for s in snaps)
    assert torn == 0, f"{torn} of {len(snaps)} snapshots match no training step"


def test_save_from_another_thread_writes_a_step(tmp_path):
    x, y = data(n=256)
    m = net(width=64)
    paths = []

    def saver(done):
        while not done.is_set() and len(paths) < 40:
            p = tmp_path / f"s{len(paths)}.npz"
            m.save(p)
            paths.append(p)
    seen_steps = _fit_beside(m, x, y, saver)
    assert paths
    for p in paths:
        assert _key(fastnn.load_model(p).get_weights()) in seen_steps, p


# ---------------------------------------------------------------- BackupAndRestore in fit
class Crash(Callback):
    """Raises at the given global batch number (a crash in the middle of training)."""

    def __init__(self, at=None):
        super().__init__()
        self.at, self.batches = at, 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        if self.batches == self.at:
            raise RuntimeError("crash")


def _run(tmp_path, crash_at, save_freq, optimizer="adam", epochs=4, **kw):
    x, y = data()
    m = net(optimizer)
    cbs = [EarlyStopping(monitor="loss", patience=50), ReduceLROnPlateau(monitor="loss", patience=1, factor=0.5),
           Crash(crash_at), BackupAndRestore(tmp_path / "bk", save_freq=save_freq)]
    kw = dict(epochs=epochs, batch_size=16, verbose=0, seed=kw.pop("seed", 5), callbacks=cbs,
              validation_split=0.25, **kw)
    return m, m.fit(x, y, **kw)


@pytest.mark.parametrize("save_freq, crashes", [("epoch", [5, 9]), (2, [3, 6, 7]), (1, [1, 2, 8, 5]),
                                                (3, [3])])
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_backup_and_restore_resumes_exactly_after_crashes(tmp_path, save_freq, crashes, optimizer):
    ref, href = _run(tmp_path / "ref", None, save_freq, optimizer)
    assert not os.path.exists(tmp_path / "ref" / "bk")  # deleted at the successful end
    for at in crashes:
        with pytest.raises(RuntimeError, match="crash"):
            _run(tmp_path, at, save_freq, optimizer)
        assert not os.path.exists(tmp_path / "bk") or set(os.listdir(tmp_path / "bk")) <= {"backup.npz"}
    m, h = _run(tmp_path, None, save_freq, optimizer)  # the same script, rerun: resumes
    assert same(state(m), state(ref))
    assert h.history == href.history and h.epoch == href.epoch
    assert m.optimizer.learning_rate == ref.optimizer.learning_rate
    assert not os.path.exists(tmp_path / "bk")


def test_backup_made_by_another_fit_is_refused_and_changes_nothing(tmp_path):
    with pytest.raises(RuntimeError, match="crash"):
        _run(tmp_path, 5, 2)
    x, y = data()
    m = net()
    before = state(m)
    cb = BackupAndRestore(tmp_path / "bk", save_freq=2)
    with pytest.raises(ValueError, match="batch size|same data"):
        m.fit(x, y, epochs=4, batch_size=8, verbose=0, seed=5, validation_split=0.25,
              callbacks=[EarlyStopping(monitor="loss", patience=50),
                         ReduceLROnPlateau(monitor="loss", patience=1, factor=0.5), Crash(), cb])
    assert same(state(m), before)


def test_a_torn_backup_is_ignored_with_a_warning(tmp_path):
    with pytest.raises(RuntimeError, match="crash"):
        _run(tmp_path, 5, 2)
    p = tmp_path / "bk" / "backup.npz"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    ref, href = _run(tmp_path / "ref", None, 2)
    with pytest.warns(RuntimeWarning, match="cannot be read"):
        m, h = _run(tmp_path, None, 2)
    assert same(state(m), state(ref)) and h.history == href.history


def test_two_backups_in_one_fit_are_refused(tmp_path):
    x, y = data()
    m = net()
    with pytest.raises(ValueError, match="at most one BackupAndRestore"):
        m.fit(x, y, verbose=0, callbacks=[BackupAndRestore(tmp_path / "a"), BackupAndRestore(tmp_path / "b")])


def test_backup_without_seed_resumes_with_the_saved_shuffle_key(tmp_path):
    x, y = data()
    fastnn.set_random_seed(123)
    ref = net()
    fastnn.set_random_seed(99)  # fit draws its shuffle key from the global generator
    ref.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[Crash(), BackupAndRestore(tmp_path / "r", 2)])
    for at in (4, None):
        m = net()
        fastnn.set_random_seed(99 if at else 7)  # the rerun's global generator differs
        try:
            m.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[Crash(at), BackupAndRestore(tmp_path / "b", 2)])
        except RuntimeError:
            pass
    assert same(state(m), state(ref))


def test_a_whole_temporary_of_a_killed_backup_writer_is_removed_by_the_next_run(tmp_path):
    from fastnn import _safe_files
    with pytest.raises(RuntimeError, match="crash"):
        _run(tmp_path, 5, 2)
    bk = tmp_path / "bk"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    name = _safe_files.temp_name(int(dead))  # killed between naming the bundle and the rename
    shutil.copy(bk / "backup.npz", bk / name)
    ref, _ = _run(tmp_path / "ref", None, 2)
    m, _ = _run(tmp_path, None, 2)
    assert same(state(m), state(ref)) and not bk.exists()


def test_exports():
    assert fastnn.BackupAndRestore is fastnn.callbacks.BackupAndRestore is fastnn.backup.BackupAndRestore
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="save_freq"):
            BackupAndRestore("d", save_freq=0)
