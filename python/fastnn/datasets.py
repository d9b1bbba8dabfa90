"""Datasets: Fashion-MNIST (full, found on disk or downloaded), a small bundled
real subset that needs no network, and a stratified train/dev/test split.

The full Fashion-MNIST is looked for, in this order:

1. the ``path`` argument,
2. the directory in ``$FASTNN_DATA``,
3. the user cache, ``$XDG_CACHE_HOME/fastnn`` or ``~/.cache/fastnn``,
4. ``/usr/share/datasets/fashion-mnist`` (Debian package ``dataset-fashion-mnist``),
5. a download from the official mirror into the user cache; each file is
   checked by the size and SHA-256 of its *decompressed* content before it is
   kept, so a recompressed copy is accepted and a damaged one is not.

Within a directory the four files may sit directly or in a ``fashion-mnist/``
subfolder, under their official names (``train-images-idx3-ubyte.gz`` ...).
"""
from __future__ import annotations

import gzip
import hashlib
import math
import os
import shutil
import struct
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

__all__ = [
    "FASHION_MNIST_CLASSES",
    "load_fashion_mnist",
    "load_fashion_mnist_subset",
    "load_default",
    "read_idx",
    "train_dev_test_split",
]

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

FASHION_MNIST_MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

# name -> (decompressed size in bytes, SHA-256 of the decompressed content)
_FASHION_MNIST_FILES = {
    "train-images-idx3-ubyte.gz": (
        47040016, "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    "train-labels-idx1-ubyte.gz": (
        60008, "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    "t10k-images-idx3-ubyte.gz": (
        7840016, "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    "t10k-labels-idx1-ubyte.gz": (
        10008, "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
}

_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
_BUNDLED_DIR = Path(__file__).resolve().parent / "_bundled"
_SUBSET_PREFIX = "fashion-mnist-subset-"

# IDX type codes -> numpy dtype (big-endian as stored)
_IDX_DTYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


# ----------------------------------------------------------------- IDX files

def _parse_idx(data: bytes, source: str, expect_ndim: int | None = None) -> np.ndarray:
    if len(data) < 4:
        raise ValueError(f"{source}: not an IDX file (only {len(data)} bytes)")
    zero, type_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or type_code not in _IDX_DTYPES or ndim == 0:
        raise ValueError(f"{source}: not an IDX file (magic bytes {data[:4].hex()})")
    if expect_ndim is not None and ndim != expect_ndim:
        raise ValueError(f"{source}: expected an IDX file with {expect_ndim} dimensions, "
                         f"the header says {ndim}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{source}: truncated IDX header")
    shape = struct.unpack(">" + "I" * ndim, data[4:header])
    dtype = _IDX_DTYPES[type_code]
    expected = header + math.prod(shape) * dtype.itemsize  # Python ints: a huge header cannot wrap around
    if len(data) != expected:
        holds = f"more than {expected:,}" if len(data) > expected else f"{len(data):,}"
        raise ValueError(f"{source}: the header promises shape {shape} ({expected:,} bytes), "
                         f"the file holds {holds} bytes")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path, expect_ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not, checking its header.

    The magic number, the number of dimensions and the byte count are checked
    against the header; a mismatch raises ``ValueError`` naming the file.

    >>> from fastnn.datasets import read_idx
    >>> y = read_idx("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")  # doctest: +SKIP
    >>> y.shape                                                                       # doctest: +SKIP
    (10000,)
    """
    path = Path(path)
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    try:
        with (gzip.open if gzipped else open)(path, "rb") as f:
            raw = _read_declared(f)
    except (OSError, EOFError) as e:
        if not gzipped:
            raise
        raise ValueError(f"{path}: damaged gzip stream ({e})") from None
    return _parse_idx(raw, str(path), expect_ndim)


def _read_declared(f) -> bytes:
    """The bytes of an IDX stream up to what its header declares, plus one byte (to tell a
    longer stream): a small gzip file that expands to gigabytes (a decompression bomb) is
    read only as far as its header promises."""
    raw = f.read(4)
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _IDX_DTYPES:
        return raw + f.read(64)  # _parse_idx names what is wrong
    raw += f.read(4 * raw[3])
    if len(raw) < 4 + 4 * raw[3]:
        return raw
    size = math.prod(struct.unpack(">" + "I" * raw[3], raw[4:])) * _IDX_DTYPES[raw[2]].itemsize
    chunks, left = [raw], size + 1
    while left > 0:
        chunk = f.read(min(left, 1 << 24))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _read_pair(images_path: Path, labels_path: Path):
    x = read_idx(images_path, expect_ndim=3)
    y = read_idx(labels_path, expect_ndim=1)
    if x.dtype != np.uint8 or y.dtype != np.uint8:
        raise ValueError(f"{images_path}: expected unsigned-byte IDX files, "
                         f"got {x.dtype} images and {y.dtype} labels")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{images_path}: {x.shape[0]} images but {labels_path.name} "
                         f"has {y.shape[0]} labels")
    if y.size and int(y.max()) > 9:
        raise ValueError(f"{labels_path}: labels must be 0..9, found {int(y.max())}")
    return x, y


# ----------------------------------------------------------------- full Fashion-MNIST

def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fastnn"


def _candidate_dirs(path):
    """The directories searched, in order, as (label, directory)."""
    out = []
    if path is not None:
        out.append(("path argument", Path(path)))
    env = os.environ.get("FASTNN_DATA")
    if env:
        out.append(("$FASTNN_DATA", Path(env)))
    out.append(("user cache", _cache_dir()))
    out.append(("Debian package", _DEBIAN_DIR))
    return out


def _find_files(directory: Path):
    for d in (directory, directory / "fashion-mnist"):
        if all((d / name).is_file() for name in _FASHION_MNIST_FILES):
            return d
    return None


def _fetch(url: str, dest: Path, timeout: float = 30.0) -> None:
    """Download ``url`` to ``dest`` (any scheme urllib knows, file:// included)."""
    with urllib.request.urlopen(url, timeout=timeout) as r, open(dest, "wb") as f:
        shutil.copyfileobj(r, f)


def _verify(path: Path, name: str) -> None:
    size, sha = _FASHION_MNIST_FILES[name]
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise ValueError(f"{name}: the download is not a valid gzip file ({e})") from None
    if len(data) != size:
        raise ValueError(f"{name}: decompressed size {len(data)} bytes, expected {size}")
    got = hashlib.sha256(data).hexdigest()
    if got != sha:
        raise ValueError(f"{name}: SHA-256 of the decompressed data is {got}, expected {sha}")


def _download(mirror: str, dest_dir: Path) -> Path:
    dest_dir.mkdir(parents=True, exist_ok=True)
    for name in _FASHION_MNIST_FILES:
        final = dest_dir / name
        if final.is_file():
            try:
                _verify(final, name)
                continue
            except ValueError:
                final.unlink()
        fd, tmp = tempfile.mkstemp(prefix=name + ".", suffix=".part", dir=dest_dir)
        os.close(fd)
        tmp = Path(tmp)
        try:
            _fetch(mirror.rstrip("/") + "/" + name, tmp)
            _verify(tmp, name)
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                tmp.unlink()
    return dest_dir


def _offline_message(searched, err) -> str:
    lines = ["Fashion-MNIST was not found and could not be downloaded "
             f"({type(err).__name__}: {err}).",
             "Searched (in order):"]
    lines += [f"  {label}: {d}" for label, d in searched]
    lines += ["Put these four files (from " + FASHION_MNIST_MIRROR + ") in one of them,",
              "or in a directory named by $FASTNN_DATA or the path= argument:"]
    lines += [f"  {name}" for name in _FASHION_MNIST_FILES]
    lines += ["On Debian/Ubuntu: apt install dataset-fashion-mnist.",
              "The bundled subset needs no files: fastnn.datasets.load_default()."]
    return "\n".join(lines)


def load_fashion_mnist(path=None, *, download: bool = True, mirror: str | None = None):
    """The full Fashion-MNIST: ``(x_train, y_train), (x_test, y_test)``.

    Images are uint8 arrays of shape (60000, 28, 28) and (10000, 28, 28),
    labels uint8 class ids 0..9 (names in ``FASHION_MNIST_CLASSES``). Files
    are looked up in ``path``, ``$FASTNN_DATA``, the user cache and the
    Debian package directory, then downloaded into the user cache from
    ``mirror`` (default: the official one) and verified by size and SHA-256
    of the decompressed data. Offline, a ``FileNotFoundError`` says where to
    put the files. An explicit ``path`` that lacks the files is an error.

    >>> from fastnn.datasets import load_fashion_mnist
    >>> (x, y), (xt, yt) = load_fashion_mnist()        # doctest: +SKIP
    >>> x.shape, xt.shape                              # doctest: +SKIP
    ((60000, 28, 28), (10000, 28, 28))
    """
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a str or os.PathLike, got {type(path).__name__}")
    searched = _candidate_dirs(path)
    if path is not None:
        d = _find_files(Path(path))
        if d is None:
            raise FileNotFoundError(
                f"path: {path} holds no Fashion-MNIST files (expected "
                + ", ".join(_FASHION_MNIST_FILES) + " there or in its fashion-mnist/ folder)")
        found = d
    else:
        found = None
        for _, d in searched:
            found = _find_files(d)
            if found is not None:
                break
        if found is None:
            if not download:
                raise FileNotFoundError(_offline_message(searched, RuntimeError("download=False")))
            try:
                found = _download(mirror or os.environ.get("FASTNN_FASHION_MNIST_MIRROR")
                                  or FASHION_MNIST_MIRROR, _cache_dir() / "fashion-mnist")
            except (urllib.error.URLError, OSError, TimeoutError) as e:
                raise FileNotFoundError(_offline_message(searched, e)) from e
    train = _read_pair(found / "train-images-idx3-ubyte.gz", found / "train-labels-idx1-ubyte.gz")
    test = _read_pair(found / "t10k-images-idx3-ubyte.gz", found / "t10k-labels-idx1-ubyte.gz")
    return train, test


# ----------------------------------------------------------------- bundled subset

def load_fashion_mnist_subset():
    """The small Fashion-MNIST subset shipped inside fastnn (no files, no network).

    9,000 training images (900 per class, drawn from the official training
    set) and 2,000 test images (200 per class, from the official test set),
    uint8 (n, 28, 28) with uint8 labels, returned as
    ``(x_train, y_train), (x_test, y_test)``. Fashion-MNIST is (c) 2017
    Zalando SE, MIT license (see ``fastnn/_bundled/LICENSE-fashion-mnist.txt``).

    >>> from fastnn.datasets import load_fashion_mnist_subset
    >>> (x, y), (xt, yt) = load_fashion_mnist_subset()
    >>> x.shape, xt.shape
    ((9000, 28, 28), (2000, 28, 28))
    """
    d = _BUNDLED_DIR
    train = _read_pair(d / (_SUBSET_PREFIX + "train-images-idx3-ubyte.gz"),
                       d / (_SUBSET_PREFIX + "train-labels-idx1-ubyte.gz"))
    test = _read_pair(d / (_SUBSET_PREFIX + "test-images-idx3-ubyte.gz"),
                      d / (_SUBSET_PREFIX + "test-labels-idx1-ubyte.gz"))
    return train, test


def load_default():
    """The default dataset: the bundled Fashion-MNIST subset (same as
    :func:`load_fashion_mnist_subset`).

    >>> from fastnn.datasets import load_default
    >>> (x, y), (xt, yt) = load_default()
    >>> int(y.max()) + 1
    10
    """
    return load_fashion_mnist_subset()


# ----------------------------------------------------------------- splitting

def train_dev_test_split(x, y, fractions=(0.8, 0.1, 0.1), seed: int = 0, stratify: bool = True):
    """Split ``(x, y)`` into train, dev and test sets: returns
    ``(x_train, y_train), (x_dev, y_dev), (x_test, y_test)``.

    ``fractions`` are three non-negative numbers summing to 1. With
    ``stratify=True`` (classification labels) each class is split in the same
    proportions, so the class balance is the same in the three sets; rows are
    shuffled with ``seed`` and the result is the same for the same seed.

    >>> import numpy as np
    >>> from fastnn.datasets import train_dev_test_split
    >>> x = np.arange(100).reshape(50, 2); y = np.repeat([0, 1], 25)
    >>> tr, dev, te = train_dev_test_split(x, y, (0.6, 0.2, 0.2), seed=1)
    >>> len(tr[0]), len(dev[0]), len(te[0]), int(tr[1].sum())
    (30, 10, 10, 15)
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError("x, y: expected arrays with a leading sample axis")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"y: expected {x.shape[0]} rows to match x, got {y.shape[0]}")
    try:
        fr = np.asarray(fractions, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise TypeError(f"fractions: expected three numbers, got {fractions!r}") from None
    if fr.size != 3 or np.any(~np.isfinite(fr)) or np.any(fr < 0) or abs(fr.sum() - 1.0) > 1e-6:
        raise ValueError(f"fractions: expected three non-negative numbers summing to 1, "
                         f"got {list(fractions)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed: expected an int, got {type(seed).__name__}")
    rng = np.random.default_rng(seed)
    n = x.shape[0]
    if stratify:
        if y.ndim != 1:
            raise ValueError(f"y: stratify=True needs 1-D class labels, got shape {y.shape}")
        groups = [np.flatnonzero(y == c) for c in np.unique(y)]
    else:
        groups = [np.arange(n)]
    parts = [[], [], []]
    # Per group: floor(fraction * size), the leftover rows going to the largest
    # remainders, so every group is split as evenly as its size allows.
    for g in groups:
        g = rng.permutation(g)
        counts = np.floor(fr * g.size).astype(int)
        rem = g.size - counts.sum()
        order = np.argsort(-(fr * g.size - counts), kind="stable")
        counts[order[:rem]] += 1
        a, b = counts[0], counts[0] + counts[1]
        parts[0].append(g[:a])
        parts[1].append(g[a:b])
        parts[2].append(g[b:])
    out = []
    for p in parts:
        idx = rng.permutation(np.concatenate(p)) if p else np.empty(0, dtype=np.int64)
        out.append((x[idx], y[idx]))
    return tuple(out)


from . import _fashion_mnist as fashion_mnist  # noqa: E402  (Keras: fastnn.datasets.fashion_mnist.load_data())
