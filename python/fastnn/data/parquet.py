"""Parquet files read row group by row group with bounded memory (pyarrow).

>>> ds = from_parquet("train/", features=["f0", "f1"], label="y", batch_size=256,
...                   shuffle_buffer=65536)                              # doctest: +SKIP
>>> for x, y in ds.get_epoch_iterator(): ...                          # doctest: +SKIP
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._base import DataAdapter, check_batch_size, make_rng, rebatch, shuffle_rows, steps
from .tabular import resolve_columns


def _files(paths):
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    try:
        paths = list(paths)
    except TypeError:
        raise TypeError(f"paths: expected a path or a list of paths, got {paths!r}") from None
    out = []
    for p in paths:
        if not isinstance(p, (str, os.PathLike)):
            raise TypeError(f"paths: expected paths (str or os.PathLike), got {p!r}")
        p = Path(p)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*.parquet") if q.is_file())
            if not found:
                raise FileNotFoundError(f"paths: no *.parquet file under the directory {str(p)!r}")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"paths: {str(p)!r} does not exist")
    if not out:
        raise ValueError("paths: expected at least one Parquet file, got an empty list")
    return out


def _numeric_width(schema, names, what):
    import pyarrow as pa
    width = 0
    for c in names:
        t = schema.field(c).type
        if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
            raise TypeError(f"{what}: column {c!r} has type {t}; expected numbers (float, int or bool)")
        width += max(1, t.bit_width // 8)
    return width


def _open(path):
    """``pq.ParquetFile(path)``; a file that is not readable Parquet (empty, truncated,
    another format) is a ValueError naming it."""
    import pyarrow.parquet as pq
    try:
        return pq.ParquetFile(path, memory_map=False)
    except OSError:
        raise
    except Exception as e:  # ArrowInvalid: no magic bytes, a size of 0, a torn footer
        raise ValueError(f"paths: {str(path)!r} is not a readable Parquet file ({e})") from None


def _scan(files, roles):
    """The row groups ``(file index, row group, rows)`` of every file, each file's columns
    checked against ``roles`` ({column: what}): present, numeric, and holding no nulls
    where the row-group statistics say so (a null found only while reading is refused then)."""
    units = []
    for i, f in enumerate(files):
        with _open(f) as pf:
            schema, meta = pf.schema_arrow, pf.metadata
            missing = [c for c in roles if c not in schema.names]
            if missing:
                raise KeyError(f"paths: {str(f)!r} lacks the column(s) {missing}")
            for c, what in roles.items():
                try:
                    _numeric_width(schema, [c], what)
                except TypeError as e:
                    raise TypeError(f"{e} in {str(f)!r}") from None
            index = {meta.row_group(0).column(j).path_in_schema: j
                     for j in range(meta.num_columns)} if meta.num_row_groups else {}
            for g in range(meta.num_row_groups):
                rg = meta.row_group(g)
                for c, what in roles.items():
                    st = rg.column(index[c]).statistics if c in index else None
                    if st is not None and st.has_null_count and st.null_count:
                        raise ValueError(f"{what}: column {c!r} holds {st.null_count} null values "
                                         f"(in {str(f)!r}, row group {g})")
                units.append((i, g, rg.num_rows))
    return units


def _shuffle_buffer(chunks, size, rng):
    """Rows drawn at random from a buffer of ``size`` rows refilled chunk by chunk."""
    buf = None
    for parts in chunks:
        buf = parts if buf is None else tuple(None if b is None else np.concatenate([b, a])
                                              for b, a in zip(buf, parts))
        n = buf[0].shape[0]
        if n > size:
            p = rng.permutation(n)
            out, keep = p[:n - size], p[n - size:]
            yield tuple(None if a is None else a[out] for a in buf)
            buf = tuple(None if a is None else a[keep] for a in buf)
    if buf is not None and buf[0].shape[0]:
        yield shuffle_rows(buf, rng)


class ParquetAdapter(DataAdapter):
    """Batches of Parquet files (see ``from_parquet``)."""

    def __init__(self, paths, features=None, label=None, sample_weight=None, batch_size=32,
                 shuffle_buffer=0, memory_budget=256 << 20, seed=None):
        self.files = _files(paths)
        self.batch_size = check_batch_size(batch_size)
        for v, what in ((shuffle_buffer, "shuffle_buffer"), (memory_budget, "memory_budget")):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"{what}: expected an int >= 0, got {v!r}")
        self.shuffle_buffer = int(shuffle_buffer)
        self.memory_budget = int(memory_budget)
        with _open(self.files[0]) as pf:
            schema = pf.schema_arrow
        self.features, self.label, self.weight = resolve_columns(schema.names, features, label, sample_weight)
        self.columns = self.features + [c for c in (self.label, self.weight) if c is not None]
        row_bytes = _numeric_width(schema, self.features, "features") + 8 * (len(self.columns) - len(self.features))
        for c in self.columns[len(self.features):]:
            _numeric_width(schema, [c], "label" if c == self.label else "sample_weight")
        # held at once: the shuffle buffer and its concatenation (2x), the chunk read as
        # Arrow, as NumPy and inside the concatenation (3x), one batch
        fixed = (2 * self.shuffle_buffer + self.batch_size) * row_bytes
        if fixed + 3 * self.batch_size * row_bytes > self.memory_budget:
            raise ValueError(f"memory_budget: {self.memory_budget} bytes cannot hold a shuffle_buffer of "
                             f"{self.shuffle_buffer} rows and batches of {self.batch_size} rows of "
                             f"{row_bytes} bytes (needs {fixed + 3 * self.batch_size * row_bytes})")
        self.read_rows = max(self.batch_size, (self.memory_budget - fixed) // (3 * row_bytes))
        roles = dict.fromkeys(self.features, "features")
        roles.update({c: w for c, w in ((self.label, "label"), (self.weight, "sample_weight")) if c is not None})
        self.units = _scan(self.files, roles)  # (file index, row group, rows)
        self.num_rows = sum(u[2] for u in self.units)
        if self.num_rows == 0:
            raise ValueError("paths: the Parquet files hold no rows")
        self.num_batches = steps(self.num_rows, self.batch_size)
        self.partial_batch_size = self.num_rows % self.batch_size or None
        self.has_partial_batch = self.partial_batch_size is not None
        self.shuffle = self.shuffle_buffer > 0
        self._rng = make_rng(seed) if self.shuffle else None

    def _chunks(self, order):
        from .tabular import columns_to_arrays
        current = None
        try:
            for k in order:
                fi, g, _ = self.units[k]
                if current is None or current[0] != fi:
                    if current is not None:
                        current[1].close()
                    current = (fi, _open(self.files[fi]))
                try:
                    for rb in current[1].iter_batches(batch_size=self.read_rows, row_groups=[g],
                                                      columns=self.columns, use_threads=False):
                        yield columns_to_arrays(rb, self.features, self.label, self.weight)
                except (OSError, ValueError, TypeError) as e:  # corrupted pages, a null the statistics missed
                    kind = next(k for k in (OSError, ValueError, TypeError) if isinstance(e, k))
                    raise kind(f"{e} (reading {str(self.files[fi])!r}, row group {g})") from None
        finally:
            if current is not None:
                current[1].close()

    def get_epoch_iterator(self):
        if not self.shuffle:
            return rebatch(self._chunks(range(len(self.units))), self.batch_size)
        order = self._rng.permutation(len(self.units))
        return rebatch(_shuffle_buffer(self._chunks(order), self.shuffle_buffer, self._rng), self.batch_size)


def from_parquet(paths, features=None, label=None, sample_weight=None, batch_size=32, shuffle_buffer=0,
                 memory_budget=256 << 20, seed=None):
    """An adapter over Parquet files (a path, a directory of ``*.parquet``, or a list).

    features: the input columns, in order (default: every column but label and
    sample_weight); label / sample_weight: column names. shuffle_buffer: 0 reads in file
    order; n > 0 visits the row groups in a random order each epoch and draws rows at
    random from a buffer of n rows. memory_budget: bytes of row data held at once (the
    buffer, one read chunk, one batch); reads are sized to fit, a buffer that cannot fit
    is refused. The number of steps is known from the file metadata.
    """
    return ParquetAdapter(paths, features, label, sample_weight, batch_size, shuffle_buffer, memory_budget, seed)
