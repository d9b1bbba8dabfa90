import gzip
import hashlib
import struct
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from fastnn import datasets
from fastnn.datasets import (load_default, load_fashion_mnist, load_fashion_mnist_subset,
                             read_idx, train_dev_test_split)

NAMES = list(datasets._FASHION_MNIST_FILES)
REAL_FETCH = datasets._fetch


def idx_bytes(arr, type_code=0x08):
    arr = np.asarray(arr, dtype=np.uint8)
    return (struct.pack(">HBB", 0, type_code, arr.ndim)
            + struct.pack(">" + "I" * arr.ndim, *arr.shape) + arr.tobytes())


def write_fake_dataset(d: Path, fill: int, n_train=6, n_test=4):
    """Four tiny, valid Fashion-MNIST-named files whose pixels all equal `fill`."""
    d.mkdir(parents=True, exist_ok=True)
    content = {
        "train-images-idx3-ubyte.gz": np.full((n_train, 28, 28), fill, np.uint8),
        "train-labels-idx1-ubyte.gz": np.arange(n_train) % 10,
        "t10k-images-idx3-ubyte.gz": np.full((n_test, 28, 28), fill, np.uint8),
        "t10k-labels-idx1-ubyte.gz": np.arange(n_test) % 10,
    }
    raw = {}
    for name, arr in content.items():
        raw[name] = idx_bytes(arr)
        (d / name).write_bytes(gzip.compress(raw[name]))
    return raw


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No real data visible: empty cache, no $FASTNN_DATA, no Debian dir, no network."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("FASTNN_DATA", raising=False)
    monkeypatch.delenv("FASTNN_FASHION_MNIST_MIRROR", raising=False)
    monkeypatch.setattr(datasets, "_DEBIAN_DIR", tmp_path / "debian")

    def no_network(url, dest, timeout=30.0):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(datasets, "_fetch", no_network)
    return tmp_path


# ------------------------------------------------------------- bundled subset

def test_bundled_subset_is_balanced_uint8_images():
    (x, y), (xt, yt) = load_fashion_mnist_subset()
    assert x.shape == (9000, 28, 28) and xt.shape == (2000, 28, 28)
    assert x.dtype == np.uint8 and y.dtype == np.uint8
    assert np.bincount(y).tolist() == [900] * 10
    assert np.bincount(yt).tolist() == [200] * 10
    assert 60 < x.mean() < 90  # Fashion-MNIST's mean pixel is about 73


def test_bundled_subset_is_small_and_licensed():
    d = Path(datasets.__file__).parent / "_bundled"
    total = sum(p.stat().st_size for p in d.glob("fashion-mnist-subset-*.gz"))
    assert total <= 5_000_000
    text = (d / "LICENSE-fashion-mnist.txt").read_text()
    assert "Zalando SE" in text and "MIT License" in text


def test_load_default_is_the_bundled_subset():
    (x, y), _ = load_default()
    (x2, y2), _ = load_fashion_mnist_subset()
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)


@pytest.mark.skipif(not (datasets._DEBIAN_DIR / NAMES[3]).exists(),
                    reason="full Fashion-MNIST not installed")
def test_bundled_test_images_come_from_the_official_test_set():
    xt_full = read_idx(datasets._DEBIAN_DIR / "t10k-images-idx3-ubyte.gz")
    _, (xt, _) = load_fashion_mnist_subset()
    full = {row.tobytes() for row in xt_full}
    assert all(img.tobytes() in full for img in xt[:50])


# ------------------------------------------------------------- IDX reading

def test_read_idx_reads_shape_from_header(tmp_path):
    p = tmp_path / "a.gz"
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    p.write_bytes(gzip.compress(idx_bytes(arr)))
    np.testing.assert_array_equal(read_idx(p), arr)
    p2 = tmp_path / "b"
    p2.write_bytes(idx_bytes(arr))  # uncompressed works too
    np.testing.assert_array_equal(read_idx(p2), arr)


def test_read_idx_rejects_bad_magic(tmp_path):
    p = tmp_path / "bad"
    p.write_bytes(b"\x12\x34\x08\x01" + b"\0" * 8)
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(p)


def test_read_idx_rejects_truncated_body(tmp_path):
    p = tmp_path / "short.gz"
    p.write_bytes(gzip.compress(idx_bytes(np.zeros((3, 4)))[:-1]))
    with pytest.raises(ValueError, match="header promises shape"):
        read_idx(p)


def test_read_idx_checks_dimensions(tmp_path):
    p = tmp_path / "lab.gz"
    p.write_bytes(gzip.compress(idx_bytes(np.zeros(5))))
    with pytest.raises(ValueError, match="3 dimensions"):
        read_idx(p, expect_ndim=3)


# ------------------------------------------------------------- resolution order

def test_explicit_path_wins_over_everything(isolated, monkeypatch):
    write_fake_dataset(isolated / "mine", fill=1)
    write_fake_dataset(isolated / "env", fill=2)
    monkeypatch.setenv("FASTNN_DATA", str(isolated / "env"))
    (x, _), _ = load_fashion_mnist(isolated / "mine")
    assert x[0, 0, 0] == 1


def test_env_var_comes_before_cache_and_debian(isolated, monkeypatch):
    write_fake_dataset(isolated / "env" / "fashion-mnist", fill=2)  # subfolder accepted
    write_fake_dataset(isolated / "cache" / "fastnn", fill=3)
    write_fake_dataset(isolated / "debian", fill=4)
    monkeypatch.setenv("FASTNN_DATA", str(isolated / "env"))
    (x, _), _ = load_fashion_mnist()
    assert x[0, 0, 0] == 2


def test_cache_comes_before_debian(isolated):
    write_fake_dataset(isolated / "cache" / "fastnn" / "fashion-mnist", fill=3)
    write_fake_dataset(isolated / "debian", fill=4)
    (x, _), _ = load_fashion_mnist()
    assert x[0, 0, 0] == 3


def test_debian_directory_is_used_last_before_download(isolated):
    write_fake_dataset(isolated / "debian", fill=4, n_train=7, n_test=3)
    (x, y), (xt, yt) = load_fashion_mnist()
    assert x.shape == (7, 28, 28) and xt.shape == (3, 28, 28) and x[0, 0, 0] == 4


def test_explicit_path_without_files_is_an_error_naming_path(isolated):
    with pytest.raises(FileNotFoundError, match="path: "):
        load_fashion_mnist(isolated / "nothing-here")


def test_path_of_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match="path"):
        load_fashion_mnist(42)


def test_mismatched_image_and_label_counts_are_rejected(isolated):
    write_fake_dataset(isolated / "d", fill=1)
    (isolated / "d" / NAMES[1]).write_bytes(gzip.compress(idx_bytes(np.zeros(5))))
    with pytest.raises(ValueError, match="6 images but"):
        load_fashion_mnist(isolated / "d")


# ------------------------------------------------------------- download

@pytest.fixture
def fake_mirror(isolated, monkeypatch):
    """A file:// mirror of tiny files whose checksums replace the official ones."""
    raw = write_fake_dataset(isolated / "mirror", fill=5)
    table = {n: (len(b), hashlib.sha256(b).hexdigest()) for n, b in raw.items()}
    monkeypatch.setattr(datasets, "_FASHION_MNIST_FILES", table)
    monkeypatch.setattr(datasets, "_fetch", REAL_FETCH)  # file:// needs no network
    return (isolated / "mirror").as_uri()


def test_download_verifies_and_fills_the_cache(isolated, fake_mirror):
    (x, _), _ = load_fashion_mnist(mirror=fake_mirror)
    assert x[0, 0, 0] == 5
    cached = isolated / "cache" / "fastnn" / "fashion-mnist"
    assert sorted(p.name for p in cached.iterdir()) == sorted(NAMES)
    # second call finds the cache, no download needed
    (x2, _), _ = load_fashion_mnist(download=False)
    assert x2[0, 0, 0] == 5


def test_download_rejects_a_corrupted_file_and_keeps_nothing(isolated, fake_mirror):
    bad = isolated / "mirror" / NAMES[0]
    data = bytearray(gzip.decompress(bad.read_bytes()))
    data[100] ^= 0xFF  # one flipped pixel: same size, different checksum
    bad.write_bytes(gzip.compress(bytes(data)))
    with pytest.raises(ValueError, match="SHA-256"):
        load_fashion_mnist(mirror=fake_mirror)
    cached = isolated / "cache" / "fastnn" / "fashion-mnist"
    assert not (cached / NAMES[0]).exists()
    assert not list(cached.glob("*.part"))


def test_offline_error_says_where_to_put_the_files(isolated):
    with pytest.raises(FileNotFoundError) as e:
        load_fashion_mnist()
    msg = str(e.value)
    assert "FASTNN_DATA" in msg and str(isolated / "cache" / "fastnn") in msg
    assert all(n in msg for n in NAMES)
    assert "load_default" in msg


def test_checksums_match_the_installed_dataset():
    d = datasets._DEBIAN_DIR
    if not (d / NAMES[3]).exists():
        pytest.skip("full Fashion-MNIST not installed")
    for name in ("train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        datasets._verify(d / name, name)  # raises on mismatch


# ------------------------------------------------------------- splitting

def test_split_sizes_follow_fractions_and_partition_the_rows():
    x = np.arange(1000).reshape(500, 2)
    y = np.repeat(np.arange(5), 100)
    (a, ya), (b, yb), (c, yc) = train_dev_test_split(x, y, (0.7, 0.2, 0.1), seed=0)
    assert (len(a), len(b), len(c)) == (350, 100, 50)
    rows = np.concatenate([a[:, 0], b[:, 0], c[:, 0]])
    assert sorted(rows.tolist()) == list(range(0, 1000, 2))
    # rows keep their label
    np.testing.assert_array_equal(ya, a[:, 0] // 200)


def test_stratified_split_keeps_class_proportions():
    y = np.array([0] * 90 + [1] * 10)
    x = np.arange(100)
    (_, ya), (_, yb), (_, yc) = train_dev_test_split(x, y, (0.8, 0.1, 0.1), seed=3)
    assert (ya == 1).sum() == 8 and (yb == 1).sum() == 1 and (yc == 1).sum() == 1


def test_split_is_reproducible_with_seed_and_varies_without():
    x = np.arange(200)
    y = np.arange(200) % 4
    s1 = train_dev_test_split(x, y, (0.5, 0.25, 0.25), seed=7)
    s2 = train_dev_test_split(x, y, (0.5, 0.25, 0.25), seed=7)
    s3 = train_dev_test_split(x, y, (0.5, 0.25, 0.25), seed=8)
    np.testing.assert_array_equal(s1[0][0], s2[0][0])
    assert not np.array_equal(s1[0][0], s3[0][0])


def test_split_without_stratify_accepts_continuous_targets():
    x = np.random.default_rng(0).normal(size=(40, 3))
    y = x.sum(1)
    (a, ya), (b, _), (c, _) = train_dev_test_split(x, y, (0.5, 0.25, 0.25), stratify=False)
    assert (len(a), len(b), len(c)) == (20, 10, 10)
    np.testing.assert_allclose(ya, a.sum(1))


@pytest.mark.parametrize("fractions", [(0.5, 0.5), (0.5, 0.5, 0.5), (1.2, -0.1, -0.1)])
def test_split_rejects_bad_fractions(fractions):
    with pytest.raises(ValueError, match="fractions"):
        train_dev_test_split(np.zeros(10), np.zeros(10), fractions)


def test_split_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="y: expected 10 rows"):
        train_dev_test_split(np.zeros(10), np.zeros(9))


# ------------------------------------------------------------- the subset maker (tools/)

def _subset_tool():
    import importlib.util
    path = Path(__file__).resolve().parents[1] / "tools" / "make_fashion_mnist_subset.py"
    spec = importlib.util.spec_from_file_location("make_fashion_mnist_subset", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_subset_maker_left_the_library():
    assert not hasattr(datasets, "make_fashion_mnist_subset")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="needs the full Fashion-MNIST in /usr/share/datasets/fashion-mnist")
def test_subset_tool_reproduces_the_bundled_files_byte_for_byte(tmp_path):
    out = _subset_tool().make_fashion_mnist_subset(tmp_path, path="/usr/share/datasets/fashion-mnist")
    bundled = Path(datasets._BUNDLED_DIR)
    names = sorted(p.name for p in bundled.glob("fashion-mnist-subset-*.gz"))
    assert len(names) == 4
    for name in names:
        assert (out / name).read_bytes() == (bundled / name).read_bytes(), name


def test_subset_tool_refuses_tiny_subsets(tmp_path):
    with pytest.raises(ValueError, match="at least 10"):
        _subset_tool().make_fashion_mnist_subset(tmp_path, n_train=5)
