"""The exact-resume promise under SIGKILL (issue 13): a training script killed at random
moments and rerun until it finishes ends with weights (and History) bitwise identical
to an uninterrupted run with the same seed, for Adam and SGD with momentum, with Dropout
and BatchNormalization, with 1 and 2 threads; after every kill the backup folder holds
nothing torn or unloadable.

The script is tests/resume_child.py. CI runs 2 kills per configuration (8 in all, about a
minute); FASTNN_RESUME_KILLS=20 runs 20 per configuration.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from fastnn import _safe_files
from fastnn import backup as fbackup
from helpers import fastnn_pythonpath, kill_after_line

HERE = os.path.dirname(os.path.abspath(__file__))
CHILD = os.path.join(HERE, "resume_child.py")
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(  # the fastnn under test (site-packages in CI)
    p for p in (fastnn_pythonpath(), os.environ.get("PYTHONPATH")) if p))
KILLS = int(os.environ.get("FASTNN_RESUME_KILLS", "2"))
RUN_TIMEOUT = 300

CONFIGS = [("adam", 1, "3"), ("adam", 2, "epoch"), ("sgd", 1, "epoch"), ("sgd", 2, "2")]


def child(cfg, folder):
    opt, threads, save_freq = cfg
    return subprocess.Popen([sys.executable, CHILD, opt, str(threads), save_freq, str(folder / "bk"),
                             str(folder / "out.npz"), str(folder / "log")],
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def events(folder):
    try:
        return (folder / "log").read_text().split("\n")[:-1]
    except FileNotFoundError:
        return []


def finish(p):
    _, err = p.communicate(timeout=RUN_TIMEOUT)
    assert p.returncode == 0, err


def result(folder):
    with np.load(folder / "out.npz") as f:
        return [f[f"arr_{i}"] for i in range(len(f.files) - 1)], json.loads(str(f["history"]))


def check_backup_folder(bk):
    """Nothing torn or unloadable: the bundle reads in full (every entry CRC-checked). The
    bundle is written unnamed until complete; a kill in the microseconds between naming
    it and the rename leaves a temporary of fastnn's naming, which must be whole too."""
    if not bk.exists():
        return 0
    names = sorted(os.listdir(bk))
    temporaries = [n for n in names if _safe_files._TMP_RE.match(n)]
    assert set(names) - set(temporaries) <= {"backup.npz"}, names
    for name in names:
        meta, _ = fbackup.BackupAndRestore(bk)._read() if name == "backup.npz" else _read_as_bundle(bk / name)
        assert meta["format"] == fbackup.FORMAT
    return len(temporaries)


class _At(fbackup.BackupAndRestore):
    """Reads the bundle at ``file`` (a temporary) with the same checks as backup.npz."""

    def __init__(self, file):
        super().__init__(os.path.dirname(file))
        self.file = str(file)

    path = property(lambda self: self.file)


def _read_as_bundle(path):
    return _At(path)._read()


def wait_for(folder, event, p, start=0, timeout=RUN_TIMEOUT):
    """Wait until this run (its events come after the first ``start``) logged ``event``."""
    t0 = time.monotonic()
    while event not in events(folder)[start:]:
        if p.poll() is not None or time.monotonic() - t0 > timeout:
            return False
        time.sleep(0.005)
    return True


@pytest.mark.parametrize("cfg", CONFIGS, ids=["-".join(map(str, c)) for c in CONFIGS])
def test_killed_and_rerun_training_ends_bitwise_identical(tmp_path, cfg):
    ref_dir, run_dir = tmp_path / "ref", tmp_path / "run"
    ref_dir.mkdir()
    run_dir.mkdir()
    p = child(cfg, ref_dir)
    assert wait_for(ref_dir, "S", p)
    t0 = time.monotonic()
    finish(p)
    span = time.monotonic() - t0  # the training, from fit's start to the exit
    ref_w, ref_h = result(ref_dir)
    assert not (ref_dir / "bk").exists()  # deleted at the successful end

    seed = random.randrange(2**32)
    print(f"kill delays seeded with {seed}")
    rnd = random.Random(seed)
    kills = mid_save = resumed = finished_early = whole_temporaries = 0
    while True:
        if (run_dir / "out.npz").exists():
            if kills >= KILLS:
                break
            os.unlink(run_dir / "out.npz")  # done before all the kills were made: train again
            finished_early += 1
        p = child(cfg, run_dir)
        if kills >= KILLS:
            finish(p)
            continue
        n_before = len(events(run_dir))
        if not wait_for(run_dir, "S", p, n_before):
            finish(p)
            continue
        time.sleep(rnd.uniform(0.0, 0.6 * span))
        if p.poll() is not None:
            finish(p)
            continue
        os.kill(p.pid, signal.SIGKILL)
        p.communicate(timeout=60)
        kills += 1
        log = events(run_dir)[n_before:]
        mid_save += bool(log) and log[-1] == "B"
        resumed += any(e.startswith("R ") for e in log)
        whole_temporaries += check_backup_folder(run_dir / "bk")
    w, h = result(run_dir)
    resumes = sum(e.startswith("R ") for e in events(run_dir))
    print(f"{cfg}: {kills} kills ({mid_save} mid-save), {resumes} runs resumed from a backup "
          f"({resumed} of them killed again), {finished_early} runs finished before their kill; "
          f"{whole_temporaries} whole temporaries seen after kills; training {span:.2f} s uninterrupted")
    assert kills == KILLS
    assert len(w) == len(ref_w) and all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(w, ref_w))
    assert h == ref_h
    assert not (run_dir / "bk").exists()


def test_a_backup_writer_killed_mid_write_leaves_the_previous_bundle_and_nothing_else(tmp_path):
    bk = tmp_path / "bk"
    script = textwrap.dedent(f"""
        import sys, time, numpy as np
        sys.path.insert(0, {HERE!r})
        import resume_child as rc
        from fastnn.callbacks import BackupAndRestore
        x, y = rc.data()
        m = rc.model("adam")
        cb = BackupAndRestore({str(bk)!r}, save_freq=2)
        real = np.savez
        saves = [0]
        def slow_savez(f, **arrays):
            saves[0] += 1
            if saves[0] == 3:  # the third backup: half written, then killed
                f.write(b"PK\\x03\\x04" + b"x" * 100000)
                f.flush()
                print("writing", flush=True)
                time.sleep(60)
            real(f, **arrays)
        np.savez = slow_savez
        m.fit(x, y, epochs=1, batch_size=32, seed=3, verbose=0, callbacks=[cb])
    """)
    kill_after_line(script, b"writing", ENV, timeout=30)
    assert sorted(os.listdir(bk)) == ["backup.npz"]
    meta, _ = fbackup.BackupAndRestore(bk)._read()
    assert (meta["epoch"], meta["step"]) == (0, 4)  # the second backup, whole
