"""Saving and loading under hostile conditions (issue 13, items 5, 8, 9).

Save: follows the umask, keeps an existing file's mode, writes through a symlink,
refuses non-regular targets, cleans temporaries stranded by killed writers.
Load: validates the config against the entries' .npy headers before allocating,
never decompresses an entry the model does not use, caps the bytes it expands.
"""
from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import fastnn
from fastnn import _safe_files
from fastnn.layers import Dense

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY_ENV = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))


def small(seed=0):
    m = fastnn.Sequential([Dense(4, input_dim=3, activation="relu"), Dense(2)])
    m.compile("adam", "mse")
    m.build()
    m.set_weights([np.full(w.shape, seed + i, w.dtype) for i, w in enumerate(m.get_weights())])
    return m


def same_weights(path, m):
    got = fastnn.load_model(path).get_weights()
    return all(np.array_equal(a, b) for a, b in zip(got, m.get_weights()))


def temporaries(folder):
    return sorted(n for n in os.listdir(folder) if n.endswith(".tmp"))


# ----------------------------------------------------------------------------- item 8: mode


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_new_file_follows_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        small().save(tmp_path / "m.npz")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "m.npz").st_mode) == mode


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o751])
def test_existing_file_keeps_its_mode(tmp_path, mode):
    p = tmp_path / "m.npz"
    small(0).save(p)
    os.chmod(p, mode)
    old = os.umask(0o022)
    try:
        small(1).save(p)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(p).st_mode) == mode
    assert same_weights(p, small(1))


# ----------------------------------------------------------------------------- item 8: symlinks


def test_save_writes_through_a_symlink_to_its_target(tmp_path):
    (tmp_path / "store").mkdir()
    (tmp_path / "links").mkdir()
    target = tmp_path / "store" / "real.npz"
    small(0).save(target)
    link = tmp_path / "links" / "latest.npz"
    os.symlink("../store/real.npz", link)
    small(1).save(link)
    assert os.path.islink(link) and os.readlink(link) == "../store/real.npz"
    assert same_weights(target, small(1))
    assert temporaries(tmp_path / "store") == [] and temporaries(tmp_path / "links") == []


def test_save_through_a_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "latest.npz"
    os.symlink("real.npz", link)
    small(2).save(link)
    assert os.path.islink(link) and same_weights(tmp_path / "real.npz", small(2))


# ----------------------------------------------------------------------------- item 8: non-regular


def _device_or_fifo(path):
    """A character device like /dev/null (1, 3) when root may create one here, else a FIFO.
    (Never the real /dev/null: if the guard broke, the test would replace it.)"""
    if os.geteuid() == 0:
        try:
            os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
            return "character device"
        except OSError:
            pass
    os.mkfifo(path)
    return "FIFO"


@pytest.mark.parametrize("kind", ["fifo", "device", "directory", "symlink_to_fifo"])
def test_non_regular_targets_are_refused_and_left_alone(tmp_path, kind):
    p = tmp_path / "target"
    if kind == "fifo":
        os.mkfifo(p)
        word = "FIFO"
    elif kind == "device":
        word = _device_or_fifo(p)
    elif kind == "directory":
        p.mkdir()
        word = "directory"
    else:
        os.mkfifo(tmp_path / "pipe")
        os.symlink("pipe", p)
        word = "FIFO"
    before = os.lstat(p)
    with pytest.raises(ValueError, match=f"filepath: .*{word}.*not a regular file"):
        small().save(p)
    with pytest.raises(ValueError, match="not a regular file"):
        small().save_weights(p)
    after = os.lstat(p)
    assert (after.st_mode, after.st_ino, after.st_rdev) == (before.st_mode, before.st_ino, before.st_rdev)
    assert temporaries(tmp_path) == []


# ----------------------------------------------------------------------------- item 9: stale temporaries


def _dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _stale(folder, pid, age=3600.0, tag=None, name=None):
    name = name or f".fastnn-{tag or _safe_files.host_tag()}-{pid}-{'ab' * 8}.tmp"
    p = folder / name
    p.write_bytes(b"PK\x03\x04 half a model")
    t = time.time() - age
    os.utime(p, (t, t))
    return name


def test_stale_temporaries_of_dead_writers_are_cleaned_and_nothing_else(tmp_path):
    dead = _dead_pid()
    gone = _stale(tmp_path, dead)
    keep = [
        _stale(tmp_path, os.getppid(), name=f".fastnn-{_safe_files.host_tag()}-{os.getppid()}-{'cd' * 8}.tmp"),  # alive
        _stale(tmp_path, dead, age=1.0, name=f".fastnn-{_safe_files.host_tag()}-{dead}-{'ef' * 8}.tmp"),  # recent
        _stale(tmp_path, dead, tag="00000000" if _safe_files.host_tag() != "00000000" else "11111111"),  # other host
        _stale(tmp_path, dead, name=".fastnn-abcd1234.tmp"),              # not our naming
        _stale(tmp_path, dead, name="notes.tmp"),
    ]
    small().save(tmp_path / "m.npz")
    names = set(os.listdir(tmp_path))
    assert gone not in names
    assert set(keep) <= names, set(keep) - names


def test_temporary_of_a_writer_killed_mid_save_is_cleaned_by_the_next_save(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time, numpy as np, fastnn
        from fastnn.layers import Dense
        def slow_savez(f, **arrays):
            f.write(b"PK\\x03\\x04" + b"x" * 100000)
            f.flush()
            print("writing", flush=True)
            time.sleep(60)
        np.savez = slow_savez
        m = fastnn.Sequential([Dense(4, input_dim=3)]); m.compile("sgd", "mse")
        m.save({str(tmp_path / 'm.npz')!r})
    """)
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=PY_ENV)
    try:
        assert p.stdout.readline().strip() == b"writing"
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
    left = temporaries(tmp_path)
    assert len(left) == 1 and f"-{p.pid}-" in left[0], left  # what kill -9 strands
    small().save(tmp_path / "m.npz")
    assert temporaries(tmp_path) == left  # too recent: a slow writer's file is never taken
    t = time.time() - _safe_files.STALE_TMP_SECONDS - 1
    os.utime(tmp_path / left[0], (t, t))
    small().save(tmp_path / "m.npz")
    assert temporaries(tmp_path) == [] and same_weights(tmp_path / "m.npz", small())
