"""Atomic file writes, shared by every writer in Ember (artifacts, .params, .states, symbol JSON, CLI
outputs, benchmark reports).

`write_atomic(path, chunks)` writes the data to a temporary file in the destination's folder, fsyncs
it, renames it over the destination and fsyncs the folder: readers see the old file or the whole new
one, never a part, and a failed write (a full disk included) leaves the old file as it was. On Linux
the temporary is unnamed (O_TMPFILE), so a process killed mid-write leaves nothing behind; it gets a
name only for the instant between `linkat` and `rename`. Where the filesystem has no O_TMPFILE the
temporary is named from the start; its name carries the writer's pid and host, and the next write to
the same folder removes the temporaries of writers that are no longer running. Standard library
only (the runtime's rule).
"""

from __future__ import annotations

import errno
import os
import re
import socket
import stat
import zlib
from collections.abc import Iterable

from .errors import ArtifactError, DiskFullError, MXNetError

# errno values that mean "no room for this file": a full disk, RLIMIT_FSIZE or the filesystem's size
# limit, a disk quota. They raise DiskFullError whatever class the caller asked for.
FULL_DISK_ERRNOS = frozenset(
    getattr(errno, name) for name in ("ENOSPC", "EFBIG", "EDQUOT") if hasattr(errno, name)
)

# errno values with which opening an O_TMPFILE says "not here" (an old kernel: EISDIR; a filesystem
# without it: EOPNOTSUPP; EINVAL from some FUSE filesystems): fall back to a named temporary.
NO_UNNAMED_ERRNOS = frozenset({errno.EISDIR, errno.EOPNOTSUPP, errno.EINVAL})

# errno values with which fsync on a folder says the filesystem does not sync folders (not a failure).
NO_FOLDER_SYNC_ERRNOS = frozenset({errno.EINVAL, errno.EBADF, errno.EOPNOTSUPP})

UNNAMED_TEMPORARIES = hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd")
_FOLDER_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_TEMPORARY_FLAGS = os.O_WRONLY | getattr(os, "O_CLOEXEC", 0)
_NAME_KEPT = 160  # bytes of the destination's name inside a temporary's: the whole stays under 255
_HOST_TAG = f"{zlib.crc32(socket.gethostname().encode('utf-8', 'replace')):08x}"
# A temporary that this host's writers name (`temporary_name`); group 1 is the writer's pid.
_STALE_CANDIDATE = re.compile(rf"\..+\.(\d+)-{_HOST_TAG}-[0-9a-f]{{8}}\.tmp", re.DOTALL)


def write_atomic(path, chunks: Iterable[bytes], error_class: type[MXNetError] = ArtifactError) -> None:
    """Write the concatenated `chunks` to `path` atomically.

    Afterwards `path` holds the whole new content, or (on any failure) exactly what it held before and
    no temporary file is left. A full disk, file-size limit or quota raises DiskFullError; any other
    OSError raises `error_class`; both name `path`.
    """
    path = os.fspath(path)
    if os.path.isdir(path) or path.endswith(os.sep):
        raise error_class(f"cannot write '{path}': it names a folder, not a file")
    folder, name = os.path.split(os.path.abspath(path))
    try:
        folder_fd = os.open(folder, _FOLDER_FLAGS)
    except OSError as err:
        raise write_error(path, err, error_class) from None
    try:
        sweep_stale_temporaries(folder_fd)
        _write_and_rename(folder_fd, name, chunks)
        sync_folder(folder_fd)
    except OSError as err:
        raise write_error(path, err, error_class) from None
    finally:
        os.close(folder_fd)


def file_holds(path, data: bytes) -> bool:
    """Whether `path` is a regular file whose content is exactly `data` (False when it cannot be read)."""
    try:
        with open(path, "rb", opener=open_regular_file) as stream:
            return os.fstat(stream.fileno()).st_size == len(data) and stream.read(len(data) + 1) == data
    except OSError:
        return False


def open_regular_file(path: str, flags: int) -> int:
    """open(2) that never blocks on a FIFO and refuses anything but a regular file."""
    fd = os.open(path, flags | getattr(os, "O_NONBLOCK", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", path)
    return fd


def write_error(path: str, err: OSError, error_class: type[MXNetError]) -> MXNetError:
    """The MXNetError to raise for `err` while writing `path`: DiskFullError for a full disk."""
    reason = err.strerror or str(err)
    if err.errno in FULL_DISK_ERRNOS:
        return DiskFullError(f"cannot write '{path}': {reason}")
    return error_class(f"cannot write '{path}': {reason}")


def _write_and_rename(folder_fd: int, name: str, chunks: Iterable[bytes]) -> None:
    """The write itself: a temporary in the folder, filled, fsynced, named if unnamed, renamed to `name`."""
    temporary = temporary_name(name)
    fd, named = open_temporary(folder_fd, temporary)
    try:
        with os.fdopen(fd, "wb", closefd=False) as stream:
            for chunk in chunks:
                stream.write(chunk)
        os.fsync(fd)
        if not named:
            # Names the unnamed file; CPython calls linkat (following the /proc link) only when a dir_fd
            # is given, and plain link() would try to link the /proc symlink itself (EXDEV).
            os.link(f"/proc/self/fd/{fd}", temporary, dst_dir_fd=folder_fd, follow_symlinks=True)
            named = True
        os.replace(temporary, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
        named = False  # the name is the destination's now
    finally:
        os.close(fd)
        if named:
            _remove(folder_fd, temporary)


def open_temporary(folder_fd: int, temporary: str) -> tuple[int, bool]:
    """(fd, named): an unnamed O_TMPFILE in the folder where the OS allows, else `temporary` created.

    Both get the mode a plain `open(path, "w")` gives (0o666 less the umask).
    """
    if UNNAMED_TEMPORARIES:
        try:
            return os.open(".", _TEMPORARY_FLAGS | os.O_TMPFILE, 0o666, dir_fd=folder_fd), False
        except OSError as err:
            if err.errno not in NO_UNNAMED_ERRNOS:
                raise
    return os.open(temporary, _TEMPORARY_FLAGS | os.O_CREAT | os.O_EXCL, 0o666, dir_fd=folder_fd), True


def temporary_name(name: str) -> str:
    """A fresh temporary's name for destination `name`: `.NAME.PID-HOST-RANDOM.tmp` (HOST and RANDOM
    8 hex digits each; NAME cut to its first 160 bytes, so that the whole stays a legal name)."""
    kept = os.fsdecode(os.fsencode(name)[:_NAME_KEPT])
    return f".{kept}.{os.getpid()}-{_HOST_TAG}-{os.urandom(4).hex()}.tmp"


def sweep_stale_temporaries(folder_fd: int) -> list[str]:
    """Remove the temporaries in the folder whose writer (a process on this host) has ended.

    They are left only by a writer killed while its temporary had a name. Every destination's are
    swept, not only the one being written: a checkpoint's file names change with each epoch, so a
    temporary of `net-0005.params` may never see another write to that name. Returns the names removed.
    """
    try:
        entries = os.listdir(folder_fd)
    except OSError:
        return []  # an unlistable folder: sweeping is a courtesy, never a reason for the write to fail
    removed = []
    for entry in entries:
        match = entry.endswith(".tmp") and _STALE_CANDIDATE.fullmatch(entry)
        if match and not process_is_running(int(match.group(1))):
            _remove(folder_fd, entry)
            removed.append(entry)
    return removed


def process_is_running(pid: int) -> bool:
    """Whether process `pid` exists on this host (a zombie counts; when unsure, True)."""
    if os.name != "posix" or pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):
        return True  # EPERM: it exists under another user; anything else: keep its files
    return True


def sync_folder(folder_fd: int) -> None:
    """fsync the folder, so that the rename survives a power loss (skipped where the OS cannot)."""
    try:
        os.fsync(folder_fd)
    except OSError as err:
        if err.errno not in NO_FOLDER_SYNC_ERRNOS:
            raise


def _remove(folder_fd: int, entry: str) -> None:
    try:
        os.unlink(entry, dir_fd=folder_fd)
    except OSError:
        pass  # already gone, or not ours to remove: nothing to clean up
