"""Writes the stratified Fashion-MNIST subset that fastnn bundles (how
python/fastnn/_bundled/fashion-mnist-subset-*.gz were made; the defaults reproduce them
byte for byte from the official files):

    PYTHONPATH=python python3 tools/make_fashion_mnist_subset.py python/fastnn/_bundled
    PYTHONPATH=python python3 tools/make_fashion_mnist_subset.py /tmp/fm-small --n-train 1000 --n-test 200

Not part of the library (it was ``fastnn.datasets.make_fashion_mnist_subset``).
"""
from __future__ import annotations

import argparse
import gzip
import struct
from pathlib import Path

import numpy as np

from fastnn.datasets import _SUBSET_PREFIX as SUBSET_PREFIX, load_fashion_mnist


def _stratified_indices(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    classes = np.unique(y)
    per, extra = divmod(n, len(classes))
    idx = []
    for i, c in enumerate(classes):
        members = np.flatnonzero(y == c)
        k = per + (1 if i < extra else 0)
        if k > members.size:
            raise ValueError(f"n: class {c} has only {members.size} examples, {k} requested")
        idx.append(rng.choice(members, k, replace=False))
    return np.sort(np.concatenate(idx))


def _write_idx_gz(path: Path, arr: np.ndarray) -> None:
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    # mtime=0 keeps the file byte-for-byte reproducible
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", compresslevel=9,
                                                fileobj=raw, mtime=0) as f:
        f.write(header + arr.tobytes())


def make_fashion_mnist_subset(out_dir, n_train: int = 9000, n_test: int = 2000,
                              seed: int = 0, path=None) -> Path:
    """Write a stratified Fashion-MNIST subset as gzipped IDX files. Training examples
    come from the official training set, test examples from the official test set."""
    for name, v in (("n_train", n_train), ("n_test", n_test), ("seed", seed)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name}: expected an int, got {type(v).__name__}")
    if n_train < 10 or n_test < 10:
        raise ValueError(f"n_train, n_test: expected at least 10 each, got {n_train}, {n_test}")
    (x, y), (xt, yt) = load_fashion_mnist(path)
    rng = np.random.default_rng(seed)
    i = _stratified_indices(y, n_train, rng)
    j = _stratified_indices(yt, n_test, rng)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_idx_gz(out / (SUBSET_PREFIX + "train-images-idx3-ubyte.gz"), x[i])
    _write_idx_gz(out / (SUBSET_PREFIX + "train-labels-idx1-ubyte.gz"), y[i])
    _write_idx_gz(out / (SUBSET_PREFIX + "test-images-idx3-ubyte.gz"), xt[j])
    _write_idx_gz(out / (SUBSET_PREFIX + "test-labels-idx1-ubyte.gz"), yt[j])
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out_dir")
    p.add_argument("--n-train", type=int, default=9000)
    p.add_argument("--n-test", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--path", default=None, help="where the full Fashion-MNIST is (default: fastnn's search)")
    a = p.parse_args(argv)
    print(make_fashion_mnist_subset(a.out_dir, a.n_train, a.n_test, a.seed, a.path))


if __name__ == "__main__":
    main()
