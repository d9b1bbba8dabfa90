"""BackupAndRestore's bundle: everything training needs round-trips bitwise; a torn or
garbage bundle is ignored with a warning and never loaded; a bundle is never torn.

fit's wiring (the protocol in fastnn/backup.py) is tested with fit; here the callback
is driven by hand, as fit will drive it.
"""
from __future__ import annotations

import os
import textwrap
import warnings

import numpy as np
import pytest

import fastnn
from fastnn import backup as fbackup
from fastnn.callbacks import EarlyStopping, History, ReduceLROnPlateau
from fastnn.layers import BatchNormalization, Dense, Dropout
from helpers import fastnn_pythonpath, kill_after_line

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def data():
    r = np.random.default_rng(0)
    x = r.standard_normal((64, 5)).astype(np.float32)
    return x, r.integers(0, 3, 64)


def net(seed, optimizer="adam"):
    fastnn.set_random_seed(seed)
    m = fastnn.Sequential([Dense(8, input_dim=5, activation="relu"), BatchNormalization(), Dropout(0.3),
                           Dense(3, activation="softmax")])
    m.compile(optimizer, "sparse_categorical_crossentropy")
    return m


def optimizer_state(m):
    o = m.optimizer
    return {k: v.copy() for k, v in o.state.items()}, o.iterations, o.epoch, o.learning_rate


def bound(cb, model, callbacks, trainer):
    cb.set_model(model)
    for c in callbacks:
        c.set_model(model)
        c.on_train_begin()
    cb.bind(callbacks + [cb], lambda: trainer)
    cb.on_train_begin()
    return cb


def trained(tmp_path, optimizer="adam"):
    """A model after 2 epochs, callbacks with state, a used generator and permutation,
    and its backup written."""
    x, y = data()
    m = net(1, optimizer)
    m.fit(x, y, epochs=2, batch_size=16, verbose=0, seed=4)
    m.optimizer.learning_rate = 0.0123  # as ReduceLROnPlateau would
    es, rlr, hist = EarlyStopping(monitor="loss", patience=5, restore_best_weights=True), \
        ReduceLROnPlateau(monitor="loss"), History()
    rng = np.random.default_rng(9)
    perm = rng.permutation(64)
    trainer = {"rng": rng.bit_generator.state, "perm": perm, "total": 1.25, "count": np.int64(16)}
    cb = bound(fbackup.BackupAndRestore(tmp_path / "bk"), m, [es, rlr, hist], trainer)
    for epoch, loss in enumerate([0.9, 0.8, 0.85]):
        logs = {"loss": loss}
        for c in (es, rlr, hist):
            c.on_epoch_end(epoch, logs)
    cb.save(3, 0)
    return m, (es, rlr, hist), trainer


@pytest.mark.parametrize("optimizer", ["adam", fastnn.optimizers.SGD(0.05, momentum=0.9)])
def test_bundle_round_trip_restores_everything_bitwise(tmp_path, optimizer):
    m, (es, rlr, hist), trainer = trained(tmp_path, optimizer)
    m2 = net(2, optimizer if isinstance(optimizer, str) else fastnn.optimizers.SGD(0.05, momentum=0.9))
    x, y = data()
    m2.fit(x, y, epochs=1, batch_size=16, verbose=0, seed=0)  # different state everywhere
    cbs = [EarlyStopping(monitor="loss", patience=5, restore_best_weights=True),
           ReduceLROnPlateau(monitor="loss"), History()]
    cb = bound(fbackup.BackupAndRestore(tmp_path / "bk"), m2, cbs, None)
    got = cb.restore()
    assert got["epoch"] == 3 and got["step"] == 0
    for a, b in zip(m.get_weights(), m2.get_weights()):  # BN moving statistics included
        np.testing.assert_array_equal(a, b)
    s1, s2 = optimizer_state(m), optimizer_state(m2)
    assert s1[1:] == s2[1:] and s1[0].keys() == s2[0].keys()
    for k in s1[0]:
        np.testing.assert_array_equal(s1[0][k], s2[0][k])
    for l1, l2 in zip(m.layers, m2.layers):
        assert getattr(l1, "seed", None) == getattr(l2, "seed", None)
        assert {k: int(v) for k, v in l1._extra_state().items()} == {k: int(v) for k, v in l2._extra_state().items()}
    t = got["trainer"]
    np.testing.assert_array_equal(t["perm"], trainer["perm"])
    assert t["perm"].dtype == trainer["perm"].dtype and t["total"] == 1.25 and t["count"] == 16
    g1, g2 = np.random.default_rng(), np.random.default_rng()
    g1.bit_generator.state, g2.bit_generator.state = trainer["rng"], t["rng"]
    np.testing.assert_array_equal(g1.permutation(1000), g2.permutation(1000))
    assert cbs[2].history == hist.history and cbs[2].epoch == hist.epoch
    assert (cbs[0].wait, cbs[0].best, cbs[0].best_epoch) == (es.wait, es.best, es.best_epoch)
    for a, b in zip(cbs[0].best_weights, es.best_weights):
        np.testing.assert_array_equal(a, b)
    assert (cbs[1].wait, cbs[1].best, cbs[1].cooldown_counter) == (rlr.wait, rlr.best, rlr.cooldown_counter)
    # the restored model continues exactly as the original: same weights after one more epoch
    m.fit(x, y, epochs=1, batch_size=16, verbose=0, seed=7)
    m2.fit(x, y, epochs=1, batch_size=16, verbose=0, seed=7)
    for a, b in zip(m.get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(a, b)


def _damaged(raw, how, rng):
    b = bytearray(raw)
    if how == "truncate":
        return bytes(b[:int(rng.integers(0, len(b)))])
    if how == "flip":
        for pos in rng.integers(0, len(b), size=3):
            b[pos] ^= 1 << int(rng.integers(0, 8))
        return bytes(b)
    if how == "zeros":
        pos = int(rng.integers(0, len(b) - 4096))
        b[pos:pos + 4096] = bytes(4096)
        return bytes(b)
    return bytes(rng.integers(0, 256, len(b), dtype=np.uint8))


@pytest.mark.parametrize("how", ["truncate", "flip", "zeros", "garbage"])
def test_torn_or_garbage_bundle_is_ignored_with_a_warning(tmp_path, how):
    trained(tmp_path)
    path = tmp_path / "bk" / fbackup.FILENAME
    raw = path.read_bytes()
    rng = np.random.default_rng(len(how))
    x, _ = data()
    loaded = 0
    for i in range(12):
        path.write_bytes(_damaged(raw, how, rng))
        m = net(3)
        before = m.get_weights(), optimizer_state(m)
        cb = bound(fbackup.BackupAndRestore(tmp_path / "bk"), m,
                   [EarlyStopping(monitor="loss"), ReduceLROnPlateau(monitor="loss"), History()], None)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            got = cb.restore()
        if got is not None:  # damage in bytes nobody reads (zip padding, a name's case): loads whole
            loaded += 1
            continue
        assert any("cannot be read" in str(x.message) for x in w), [str(x.message) for x in w]
        for a, b in zip(before[0], m.get_weights()):
            np.testing.assert_array_equal(a, b)
        assert before[1][1:] == optimizer_state(m)[1:]
    print(how, 'loaded whole despite the damage:', loaded, 'of 12')
    assert loaded <= 3, loaded


def test_bundle_that_does_not_fit_is_an_error_and_changes_nothing(tmp_path):
    trained(tmp_path)
    m = fastnn.Sequential([Dense(9, input_dim=5, activation="relu"), BatchNormalization(), Dropout(0.3),
                           Dense(3, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy")
    before = m.get_weights()
    cb = bound(fbackup.BackupAndRestore(tmp_path / "bk"), m,
               [EarlyStopping(monitor="loss"), ReduceLROnPlateau(monitor="loss"), History()], None)
    with pytest.raises(ValueError, match="does not fit|shape"):
        cb.restore()
    for a, b in zip(before, m.get_weights()):
        np.testing.assert_array_equal(a, b)
    m = net(3)
    cb = bound(fbackup.BackupAndRestore(tmp_path / "bk"), m, [History()], None)
    with pytest.raises(ValueError, match="same callbacks"):
        cb.restore()


def test_failed_save_keeps_the_previous_bundle(tmp_path, monkeypatch):
    m, cbs, trainer = trained(tmp_path)
    path = tmp_path / "bk" / fbackup.FILENAME
    raw = path.read_bytes()
    cb = bound(fbackup.BackupAndRestore(tmp_path / "bk"), m, list(cbs), trainer)

    def dying(f, **arrays):
        f.write(b"PK\x03\x04 half")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", dying)
    with pytest.raises(KeyboardInterrupt):
        cb.save(4, 0)
    monkeypatch.undo()
    assert path.read_bytes() == raw and os.listdir(tmp_path / "bk") == [fbackup.FILENAME]


def test_sigkill_mid_save_keeps_the_previous_bundle(tmp_path):
    trained(tmp_path)
    path = tmp_path / "bk" / fbackup.FILENAME
    raw = path.read_bytes()
    script = textwrap.dedent(f"""
        import time, numpy as np, fastnn
        from fastnn.backup import BackupAndRestore
        from fastnn.layers import Dense
        real = np.savez
        def slow(f, **arrays):
            real(f, **arrays)
            f.flush()
            print("written", flush=True)
            time.sleep(60)
        np.savez = slow
        m = fastnn.Sequential([Dense(4, input_dim=3)]); m.compile("sgd", "mse"); m.build()
        cb = BackupAndRestore({str(tmp_path / 'bk')!r}); cb.set_model(m); cb.bind([], lambda: {{}})
        cb.save(1, 0)
    """)
    kill_after_line(script, b"written", dict(os.environ, PYTHONPATH=fastnn_pythonpath()))
    assert path.read_bytes() == raw  # the whole new bundle was in the temporary, never renamed
    m = net(5)
    cb = bound(fbackup.BackupAndRestore(tmp_path / "bk"), m,
               [EarlyStopping(monitor="loss"), ReduceLROnPlateau(monitor="loss"), History()], None)
    assert cb.restore()["epoch"] == 3


def test_save_freq_batches_and_epoch(tmp_path):
    m = net(1)
    m.build()
    cb = bound(fbackup.BackupAndRestore(tmp_path / "a", save_freq=3), m, [], {"k": 1})
    cb.batch_end(0, 0)
    cb.batch_end(0, 1)
    cb.epoch_end(0)
    assert not os.path.exists(cb.path)
    cb.batch_end(1, 0)
    m2 = net(2)
    cb2 = bound(fbackup.BackupAndRestore(tmp_path / "a", save_freq=3), m2, [], None)
    assert cb2.restore() == {"epoch": 1, "step": 1, "trainer": {"k": 1}}
    assert cb2._batches_seen == 3
    cb = bound(fbackup.BackupAndRestore(tmp_path / "b"), m, [], {})
    cb.batch_end(0, 0)
    assert not os.path.exists(cb.path)
    cb.epoch_end(4)
    cb2 = bound(fbackup.BackupAndRestore(tmp_path / "b"), net(2), [], None)
    assert cb2.restore()["epoch"] == 5


@pytest.mark.parametrize("delete", [True, False])
def test_train_end_deletes_the_backup_only_with_delete_checkpoint(tmp_path, delete):
    m = net(1)
    m.build()
    cb = bound(fbackup.BackupAndRestore(tmp_path / "bk", delete_checkpoint=delete), m, [], {})
    cb.epoch_end(0)
    cb.on_train_end()
    assert os.path.exists(cb.path) is not delete


def test_no_backup_means_a_fresh_start(tmp_path):
    m = net(1)
    m.build()
    cb = bound(fbackup.BackupAndRestore(tmp_path / "none"), m, [], {})
    assert cb.restore() is None


def test_unbound_callback_refuses_to_run_instead_of_backing_up_nothing(tmp_path):
    with pytest.raises(RuntimeError, match="bind"):
        fbackup.BackupAndRestore(tmp_path).on_train_begin()


@pytest.mark.parametrize("kwargs, word", [({"save_freq": 0}, "save_freq"), ({"save_freq": "batch"}, "save_freq"),
                                          ({"save_freq": True}, "save_freq"), ({"backup_dir": ""}, "backup_dir"),
                                          ({"backup_dir": None}, "backup_dir")])
def test_arguments_are_checked(tmp_path, kwargs, word):
    kw = {"backup_dir": tmp_path, **kwargs}
    with pytest.raises(ValueError, match=word):
        fbackup.BackupAndRestore(**kw)


@pytest.mark.parametrize("bad", [{1: 2}, {"a": object()}, {"a": np.array(["s"])}, {"__array__": 1}])
def test_trainer_state_that_cannot_be_stored_is_a_clear_error(tmp_path, bad):
    m = net(1)
    m.build()
    cb = bound(fbackup.BackupAndRestore(tmp_path / "bk"), m, [], bad)
    with pytest.raises(TypeError, match="trainer state"):
        cb.epoch_end(0)
    assert not os.path.exists(cb.path)
