"""Atomic file replacement for everything fastnn writes (models, weights, backups).

``atomic_write(path, write)`` calls ``write(fileobj)`` on a temporary file in the
folder of the final target, fsyncs it, renames it over the target and fsyncs the
folder. What that promises:

- readers see the old file or the new one, never a torn one;
- a symlink is written *through*: its target file is replaced, the link stays;
- only a regular file (or nothing) is replaced: a directory, FIFO, device node
  or socket at the path is refused with a ``ValueError`` and left alone;
- a new file gets ``0o666 & ~umask`` (as ``open(path, "w")`` would); an existing
  file keeps its permission bits (and, where allowed, its owner and group);
- temporaries are named ``.fastnn-<host>-<pid>-<random>.tmp``. A writer killed
  by SIGKILL cannot remove its own, so every save first removes, in the folder
  it writes to, the temporaries of this naming whose host tag is this host's,
  whose writer pid is no longer alive and which have not been modified for
  ``STALE_TMP_SECONDS``. Nothing else is ever deleted.
- with ``unnamed=True`` (BackupAndRestore's bundles) the temporary has no name while it
  is written (Linux ``O_TMPFILE``; elsewhere, or on a filesystem without it, a named
  temporary as above): a writer killed mid-write leaves nothing in the folder. It is
  given its temporary name only once complete and fsynced, just before the rename, so
  the folder never holds a torn file, even for a moment.
"""
from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import socket
import stat
import time

STALE_TMP_SECONDS = 60.0

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))
_TMP_RE = re.compile(r"^\.fastnn-([0-9a-f]{8})-([0-9]+)-[0-9a-f]{16}\.tmp$")


def host_tag():
    """8 hex digits naming this host (so that a pid is only judged on the host that owns it)."""
    return hashlib.blake2s(socket.gethostname().encode("utf-8", "replace"), digest_size=4).hexdigest()


def temp_name(pid=None):
    return f".fastnn-{host_tag()}-{os.getpid() if pid is None else pid}-{secrets.token_hex(8)}.tmp"


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # exists (another user's), or not a pid we can judge: keep its file
    return True


def clean_stale_temporaries(folder, now=None):
    """Remove our own stranded temporaries in ``folder`` (see the module docstring); returns
    the names removed. Errors (a file already gone, no permission) are ignored."""
    removed, me, tag = [], os.getpid(), host_tag()
    now = time.time() if now is None else now
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        m = _TMP_RE.match(name)
        if m is None or m.group(1) != tag or int(m.group(2)) == me or _pid_alive(int(m.group(2))):
            continue
        path = os.path.join(folder, name)
        try:
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode) and now - st.st_mtime >= STALE_TMP_SECONDS:
                os.unlink(path)
                removed.append(name)
        except OSError:
            pass
    return removed


def resolve_target(path):
    """The file a write to ``path`` must replace: symlinks followed, a non-regular file refused.
    Returns (real path, its stat or None when nothing is there yet)."""
    path = os.fspath(path)
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except FileNotFoundError:
        return real, None
    for test, kind in _KINDS:
        if test(st.st_mode):
            via = f" (via the symlink {path!r})" if real != os.path.abspath(path) else ""
            raise ValueError(f"filepath: {real!r}{via} is {kind}, not a regular file; fastnn only "
                             f"replaces regular files, so it was left alone")
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"filepath: {real!r} is not a regular file; left alone")
    return real, st


def _fsync_folder(folder):
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _open_unnamed(folder):
    """A descriptor of a new file without a name in ``folder`` (O_TMPFILE), or None."""
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        return os.open(folder, flag | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0), 0o666)  # umask applies
    except OSError:  # a filesystem or kernel without O_TMPFILE
        return None


def _link_unnamed(fd, folder, name):
    """Give the O_TMPFILE file ``fd`` the name ``folder/name``. A directory descriptor makes
    os.link call linkat(..., AT_SYMLINK_FOLLOW) (plain link() would link /proc's symlink)."""
    dfd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=dfd, follow_symlinks=True)
    finally:
        os.close(dfd)


def atomic_write(path, write, unnamed=False):
    """Replace the file at ``path`` with what ``write(binary file object)`` writes, atomically.
    unnamed: no name in the folder until the file is complete (see the module docstring)."""
    real, st = resolve_target(path)
    folder = os.path.dirname(real)
    if not os.path.isdir(folder):  # named as such, not as the temporary file it would have held
        raise FileNotFoundError(errno.ENOENT, f"filepath: the folder {folder!r} does not exist", os.fspath(path))
    clean_stale_temporaries(folder)
    tmp = os.path.join(folder, temp_name())
    fd = _open_unnamed(folder) if unnamed else None
    anonymous = fd is not None
    if not anonymous:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)  # umask applies
        except PermissionError as e:  # named as the folder, not as the temporary file
            raise PermissionError(e.errno, f"filepath: cannot write in the folder {folder!r} ({e.strerror})",
                                  os.fspath(path)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            if st is not None:
                os.fchmod(f.fileno(), stat.S_IMODE(st.st_mode))
                if (st.st_uid, st.st_gid) != (os.getuid(), os.getgid()):
                    try:
                        os.fchown(f.fileno(), st.st_uid, st.st_gid)
                    except OSError:
                        pass  # not allowed to give it away: it becomes ours, as with any editor
            write(f)
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the rename makes it the file
            if anonymous:  # complete: now it gets a name, for the rename
                _link_unnamed(f.fileno(), folder, os.path.basename(tmp))
        os.replace(tmp, real)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_folder(folder)
    return real
