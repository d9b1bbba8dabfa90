"""Saving and loading under hostile conditions (issue 13, items 5, 8, 9).

Save: follows the umask, keeps an existing file's mode, writes through a symlink,
refuses non-regular targets, cleans temporaries stranded by killed writers.
Load: validates the config against the entries' .npy headers before allocating,
never decompresses an entry the model does not use, caps the bytes it expands.
"""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import fastnn
from fastnn import _safe_files
from helpers import fastnn_pythonpath, kill_after_line
from fastnn.layers import Dense

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY_ENV = dict(os.environ, PYTHONPATH=fastnn_pythonpath())


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
    pid = kill_after_line(script, b"writing", PY_ENV)
    left = temporaries(tmp_path)
    assert len(left) == 1 and f"-{pid}-" in left[0], left  # what kill -9 strands
    small().save(tmp_path / "m.npz")
    assert temporaries(tmp_path) == left  # too recent: a slow writer's file is never taken
    t = time.time() - _safe_files.STALE_TMP_SECONDS - 1
    os.utime(tmp_path / left[0], (t, t))
    small().save(tmp_path / "m.npz")
    assert temporaries(tmp_path) == [] and same_weights(tmp_path / "m.npz", small())


# ----------------------------------------------------------------------------- item 5: load validates first

import io as _io  # noqa: E402
import json  # noqa: E402
import struct  # noqa: E402
import zipfile  # noqa: E402


def _npy(a):
    b = _io.BytesIO()
    np.lib.format.write_array(b, np.asanyarray(a), allow_pickle=False)
    return b.getvalue()


def _config(layers, input_shape, dtype="float64"):
    return {"format": "fastnn-model", "version": 1, "class_name": "Sequential", "compile": None,
            "config": {"name": "m", "dtype": dtype, "input_shape": list(input_shape), "layers": layers}}


def _dense(units):
    return {"class_name": "Dense", "config": {"name": "d", "units": units}}


def _zip(path, entries, deflate=()):
    """entries: name -> bytes (or a callable writing into the member, for big streamed ones)."""
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries.items():
            kind = zipfile.ZIP_DEFLATED if name in deflate else zipfile.ZIP_STORED
            if callable(data):
                with z.open(zipfile.ZipInfo(name), "w", force_zip64=True) as f:
                    data(f)
            else:
                z.writestr(zipfile.ZipInfo(name), data, compress_type=kind)
    return path


def hostile_huge_layer(path, n=20000):
    """7 KB: a config declaring an n x n float64 Dense (3.2 GB for n=20000), tiny weights."""
    cfg = _config([_dense(n)], [n])
    return _zip(path, {"__config__.npy": _npy(np.array(json.dumps(cfg))),
                       "layer0/kernel.npy": _npy(np.zeros((1, 1))), "layer0/bias.npy": _npy(np.zeros(1)),
                       "pad.npy": _npy(np.zeros(800))})


def hostile_wide_batchnorm(path, n=300_000_000):
    """A BatchNormalization on rows of n float64: building it allocates 2 n doubles."""
    cfg = _config([{"class_name": "BatchNormalization", "config": {"name": "bn"}}], [n])
    return _zip(path, {"__config__.npy": _npy(np.array(json.dumps(cfg)))})


def hostile_unused_zeros(path, mib=128):
    """A valid small model plus an unused deflated entry of ``mib`` MiB of zeros (~0.1% of it on disk)."""
    cfg = _config([_dense(2)], [3])
    hdr = np.lib.format.header_data_from_array_1_0(np.zeros(mib << 20, np.uint8))
    b = _io.BytesIO()
    np.lib.format.write_array_header_1_0(b, hdr)

    def zeros(f):
        f.write(b.getvalue())
        chunk = bytes(1 << 20)
        for _ in range(mib):
            f.write(chunk)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("__config__.npy", _npy(np.array(json.dumps(cfg))))
        z.writestr("layer0/kernel.npy", _npy(np.ones((3, 2))))
        z.writestr("layer0/bias.npy", _npy(np.ones(2)))
        with z.open("junk.npy", "w", force_zip64=True) as f:
            zeros(f)
    return path


_PROBE = """
import json, resource, sys, time
import fastnn
vm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize")) * 1024
# a regression fails with MemoryError here instead of taking the machine's memory
resource.setrlimit(resource.RLIMIT_AS, (vm + (1536 << 20), resource.RLIM_INFINITY))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
try:
    m = fastnn.load_model(sys.argv[1])
    msg = None
except ValueError as e:
    msg = str(e)
grow = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps({"msg": msg, "grow_mib": grow, "seconds": time.perf_counter() - t}))
"""


def _probe(path):
    r = subprocess.run([sys.executable, "-c", _PROBE, str(path)], capture_output=True, text=True,
                       env=PY_ENV, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case, words", [
    ("huge_layer", ["layer0/kernel", "shape (1, 1)", "(20000, 20000)"]),
    ("wide_batchnorm", ["rows of shape (300000000,)", "wider than"]),
    ("unused_zeros", None),
])
def test_hostile_file_fails_fast_without_allocating(tmp_path, case, words):
    path = globals()["hostile_" + case](tmp_path / f"{case}.npz")
    r = _probe(path)
    print(case, os.path.getsize(path), "bytes on disk:", r)
    if words is None:
        assert r["msg"] is None, r  # a valid model: it loads, the junk is never decompressed
    else:
        assert r["msg"] is not None and str(path) in r["msg"], r
        for w in words:
            assert w in r["msg"], r
    assert r["grow_mib"] < 48, r
    assert r["seconds"] < 5, r


def _patch_sizes(raw, name, file_size):
    """Set the uncompressed size of member ``name`` in its local and central headers."""
    b = bytearray(raw)
    enc = name.encode()
    for sig, off_size, off_nlen, off_name in ((b"PK\x03\x04", 22, 26, 30), (b"PK\x01\x02", 24, 28, 46)):
        i = b.find(sig)
        while i >= 0:
            nlen = struct.unpack_from("<H", b, i + off_nlen)[0]
            if bytes(b[i + off_name:i + off_name + nlen]) == enc:
                struct.pack_into("<I", b, i + off_size, file_size)
            i = b.find(sig, i + 4)
    return bytes(b)


@pytest.mark.parametrize("file_size", [3_200_000_128, 1 << 31, 100, 0])
def test_zip_sizes_that_lie_are_refused_before_reading(tmp_path, file_size):
    m = small()
    good = tmp_path / "good.npz"
    m.save(good)
    with np.load(good) as f:
        arrays = {k: f[k] for k in f.files}
    src = tmp_path / "deflated.npz"
    with zipfile.ZipFile(src, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for k, v in arrays.items():
            z.writestr(k + ".npy", _npy(v))
    assert fastnn.load_model(src).get_weights()[0].shape == (3, 4)  # deflated files load
    bad = tmp_path / "bad.npz"
    bad.write_bytes(_patch_sizes(src.read_bytes(), "layer0/kernel.npy", file_size))
    with pytest.raises(ValueError, match="layer0/kernel") as e:
        fastnn.load_model(bad)
    print(e.value)
    assert str(bad) in str(e.value)


def test_max_bytes_caps_what_is_decompressed(tmp_path):
    m = fastnn.Sequential([Dense(64, input_dim=64), Dense(2)])
    m.compile("adam", "mse")
    m.build()
    p = tmp_path / "m.npz"
    m.save(p)
    with pytest.raises(ValueError, match="exceed max_bytes=10,000"):
        fastnn.load_model(p, max_bytes=10_000)
    assert len(fastnn.load_model(p, max_bytes=200_000).get_weights()) == 4
    with pytest.raises(ValueError, match="max_bytes: expected"):
        fastnn.load_model(p, max_bytes=-1)
    m2 = fastnn.Sequential([Dense(64, input_dim=64), Dense(2)])
    with pytest.raises(ValueError, match="max_bytes"):
        fastnn.io.load_weights(m2, p, max_bytes=1000)


def test_entry_with_more_data_than_its_header_is_refused(tmp_path):
    m = small()
    p = tmp_path / "m.npz"
    m.save(p)
    with np.load(p) as f:
        arrays = {k: f[k] for k in f.files}
    raw = {k + ".npy": _npy(v) for k, v in arrays.items()}
    raw["layer0/bias.npy"] = raw["layer0/bias.npy"] + bytes(1 << 20)  # header says (4,)
    _zip(tmp_path / "b.npz", raw)
    with pytest.raises(ValueError, match="layer0/bias.*header declares"):
        fastnn.load_model(tmp_path / "b.npz")


# ----------------------------------------------------------------------------- siblings: preprocessing files


def test_scaler_save_is_atomic_and_refuses_a_fifo_and_load_skips_unused_entries(tmp_path):
    from fastnn.preprocessing import StandardScaler
    s = StandardScaler().fit(np.arange(12.0).reshape(4, 3))
    os.mkfifo(tmp_path / "pipe.npz")  # np.savez would block forever opening it
    with pytest.raises(ValueError, match="FIFO"):
        s.save(tmp_path / "pipe.npz")
    os.symlink("real.npz", tmp_path / "link.npz")
    s.save(tmp_path / "link")  # ".npz" appended, as np.savez does; written through the link
    assert os.path.islink(tmp_path / "link.npz") and os.path.isfile(tmp_path / "real.npz")
    np.testing.assert_array_equal(StandardScaler.load(tmp_path / "real.npz").mean_, s.mean_)
    with np.load(tmp_path / "real.npz") as f:
        entries = {k + ".npy": _npy(f[k]) for k in f.files}
    hdr = _io.BytesIO()
    np.lib.format.write_array_header_1_0(hdr, np.lib.format.header_data_from_array_1_0(np.zeros(128 << 20, np.uint8)))
    zeros = hdr.getvalue() + bytes(128 << 20)
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for k, v in entries.items():
            z.writestr(k, v)
        z.writestr("junk.npy", zeros)
    del zeros
    assert os.path.getsize(tmp_path / "bomb.npz") < 1 << 20
    r = _probe_call(f"from fastnn.preprocessing import StandardScaler; StandardScaler.load({str(tmp_path / 'bomb.npz')!r})")
    assert r["grow_mib"] < 48, r
    with pytest.raises(ValueError, match="bomb.npz"):
        StandardScaler.load(tmp_path / "bomb.npz", max_bytes=10)


def _probe_call(code):
    src = (f"import json, resource\nimport fastnn.preprocessing\n"
           f"b = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n{code}\n"
           f"print(json.dumps({{'grow_mib': (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - b) / 1024}}))")
    r = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, env=PY_ENV, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])
