"""Reading a model file (.npz) without trusting it: headers first, data only on demand.

``Archive(path)`` opens the zip and indexes its members without decompressing
anything. ``entry(key)`` reads only the member's .npy header (a few hundred
bytes) and checks it against the zip's own record: the declared shape times the
item size must equal the member's uncompressed size, that size must be
reachable from the compressed bytes (deflate expands at most 1032 to 1), and
the compressed bytes must lie inside the file. ``read(key, budget)`` then
allocates exactly the declared array, charges its bytes to a ``Budget``
(``max_bytes``, default ``MAX_LOAD_BYTES``) *before* allocating, and
stream-decompresses into it with a running byte count: a member holding more
or fewer bytes than declared, or failing its CRC, is refused. Nothing here
ever unpickles: object, structured and sub-array dtypes are refused from the
header.

Every failure is a ``ValueError`` naming the file; a missing or unreadable
file is the ``OSError`` that ``open`` raises.
"""
from __future__ import annotations

import math
import os
import zipfile

import numpy as np

MAX_LOAD_BYTES = 4 * 2**30  # total bytes load_model decompresses; load_model(..., max_bytes=) overrides
MAX_HEADER_BYTES = 10_000  # a .npy header of ours is ~128 bytes
_DEFLATE_MAX_RATIO = 1032  # the most deflate can expand (RFC 1951: 258 bytes per 2 bits, plus blocks)
_CHUNK = 1 << 20
_MAGIC = b"\x93NUMPY"


class Entry:
    """One member's .npy header: ``shape``, ``dtype``, ``fortran_order``, ``nbytes`` of data."""

    __slots__ = ("key", "info", "shape", "dtype", "fortran_order", "nbytes")

    def __init__(self, key, info, shape, dtype, fortran_order):
        self.key, self.info, self.shape, self.dtype = key, info, shape, dtype
        self.fortran_order = fortran_order
        self.nbytes = math.prod(shape) * dtype.itemsize  # Python ints: no overflow


class Budget:
    """Bytes that may still be decompressed; ``take`` refuses before anything is allocated."""

    def __init__(self, max_bytes, path):
        if max_bytes is None:
            max_bytes = MAX_LOAD_BYTES
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)) or max_bytes < 0:
            raise ValueError(f"max_bytes: expected an int >= 0 or None (default {MAX_LOAD_BYTES}), got {max_bytes!r}")
        self.limit = self.left = int(max_bytes)
        self.path = path

    def take(self, nbytes, what):
        if nbytes > self.left:
            raise ValueError(f"{self.path}: reading {what} needs {nbytes:,} bytes, which would exceed "
                             f"max_bytes={self.limit:,} (pass a larger max_bytes to load it)")
        self.left -= nbytes


class Archive:
    """The members of an .npz file, read lazily and checked (see the module docstring)."""

    def __init__(self, path):
        self.path = os.fspath(path)
        self._file = open(self.path, "rb")  # OSError (missing, a folder, no permission) passes as is
        try:
            self._open()
        except BaseException:
            self._file.close()
            raise
        self._entries = {}

    def _open(self):
        self.size = os.fstat(self._file.fileno()).st_size
        if self._file.read(len(_MAGIC)) == _MAGIC:
            raise ValueError(f"{self.path}: not a fastnn model file (a single array, not an .npz archive)")
        self._file.seek(0)
        try:
            self._zip = zipfile.ZipFile(self._file)
            infos = self._zip.infolist()
        except Exception as e:  # BadZipFile, EOFError, OSError from a bad offset, ...
            raise ValueError(f"{self.path}: not a readable fastnn model file ({type(e).__name__}: {e})") from None
        self.members = {}
        for zi in infos:
            key = zi.filename[:-4] if zi.filename.endswith(".npy") else zi.filename
            if key in self.members:
                raise ValueError(f"{self.path}: corrupted model file (entry {key!r} appears twice)")
            self.members[key] = zi

    def close(self):
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __contains__(self, key):
        return key in self.members

    def bound_bytes(self):
        """An upper bound of what all members could expand to (from the compressed sizes)."""
        return sum(min(zi.file_size, zi.compress_size * _DEFLATE_MAX_RATIO) for zi in self.members.values())

    # ------------------------------------------------------------------ headers
    def entry(self, key):
        """The header of member ``key`` (checked against the zip record); no data is read."""
        e = self._entries.get(key)
        if e is None:
            e = self._entries[key] = self._header(key)
        return e

    def _bad(self, key, why):
        return ValueError(f"{self.path}: corrupted or unsafe model file (entry {key}: {why})")

    def _header(self, key):
        zi = self.members.get(key)
        if zi is None:
            raise ValueError(f"{self.path}: missing entry {key}")
        if zi.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise self._bad(key, f"compression method {zi.compress_type} is not stored or deflate")
        if zi.header_offset + zi.compress_size > self.size:
            raise self._bad(key, f"its {zi.compress_size:,} compressed bytes run past the end of the file")
        ratio = 1 if zi.compress_type == zipfile.ZIP_STORED else _DEFLATE_MAX_RATIO
        if zi.file_size > zi.compress_size * ratio + 64:
            raise self._bad(key, f"claims {zi.file_size:,} bytes from {zi.compress_size:,} compressed bytes")
        try:
            with self._zip.open(zi) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(f, max_header_size=MAX_HEADER_BYTES)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(f, max_header_size=MAX_HEADER_BYTES)
                else:
                    raise ValueError(f".npy format version {version} is not supported")
                start = f.tell()
        except Exception as e:  # a bad magic or header, BadZipFile, zlib.error, EOFError, ...
            raise self._bad(key, f"{type(e).__name__}: {e}") from None
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
            raise self._bad(key, f"dtype {dtype} is not a plain number or text type (needs pickle or fields)")
        e = Entry(key, zi, tuple(shape), dtype, fortran)
        if start + e.nbytes != zi.file_size:
            raise self._bad(key, f"its header declares {dtype} {e.shape} ({e.nbytes:,} bytes) but the "
                                 f"member holds {zi.file_size - start:,} bytes of data")
        return e

    # --------------------------------------------------------------------- data
    def read(self, key, budget=None):
        """The array of member ``key``: charged to ``budget`` (when given) first, then streamed in."""
        e = self.entry(key)
        if budget is not None:
            budget.take(e.nbytes, key)
        out = np.empty(e.shape[::-1] if e.fortran_order else e.shape, dtype=e.dtype)
        buf = memoryview(out.reshape(-1).view(np.uint8)) if e.nbytes else memoryview(b"")
        try:
            with self._zip.open(e.info) as f:
                f.seek(e.info.file_size - e.nbytes)  # past the header, as _header measured it
                pos = 0
                while pos < e.nbytes:
                    chunk = f.read(min(_CHUNK, e.nbytes - pos))
                    if not chunk:
                        raise self._bad(key, f"data ends after {pos:,} of {e.nbytes:,} bytes")
                    buf[pos:pos + len(chunk)] = chunk
                    pos += len(chunk)
                if f.read(1):  # also reaches the end of the member, which checks its CRC
                    raise self._bad(key, f"more data than the {e.nbytes:,} bytes its header declares")
        except Exception as exc:  # a bad CRC (BadZipFile), zlib.error, EOFError, ...
            if isinstance(exc, ValueError) and self.path in str(exc):
                raise
            raise self._bad(key, f"{type(exc).__name__}: {exc}") from None
        return out.T if e.fortran_order else out
