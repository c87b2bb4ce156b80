"""Atomic file writes, shared by every writer in Ember (artifacts, .params, .states, symbol JSON, CLI
outputs, benchmark reports).

`write_atomic(path, chunks)` writes the data to a temporary file in the destination's folder, fsyncs
it, renames it over the destination and fsyncs the folder: readers see the old file or the whole new
one, never a part, and a failed write (a full disk included) leaves the old file as it was. On Linux
the temporary is unnamed (O_TMPFILE), so a process killed mid-write leaves nothing behind; it gets a
name only for the instant between `linkat` and `rename`. Where the filesystem has no O_TMPFILE the
temporary is named from the start; its name carries the writer's pid and a tag naming where that
pid lives (host, pid namespace, boot), and a process's first write into a folder removes the
temporaries of writers with its tag that are no longer running. A rewritten file keeps its old
permission bits. `open_regular_file` and `read_regular_file` are the readers' side: they refuse a
folder, a FIFO or a device at once, never waiting for a writer or reading without end. Standard
library only (the runtime's rule).
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
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0)
# A temporary named by `temporary_name`; group 1 is the writer's pid, group 2 its writer tag.
_TEMPORARY_NAME = re.compile(r"\..+\.(\d+)-([0-9a-f]{8})-[0-9a-f]{8}\.tmp", re.DOTALL)


class NotRegularFileError(OSError):
    """`open_regular_file`'s refusal of a FIFO, a device or a socket: errno EINVAL, "not a regular file".
    `mode` is the file's st_mode, for messages that name what it is."""

    def __init__(self, path: str, mode: int):
        super().__init__(errno.EINVAL, "not a regular file", path)
        self.mode = mode

    def __reduce__(self):  # OSError's would rebuild it from (errno, strerror, path)
        return type(self), (self.filename, self.mode)


def writer_tag(host: str, pid_namespace: str, boot_id: str) -> str:
    """8 hex digits naming the pid space of a writer: within one tag, a pid that is not running is a
    dead writer. The host alone is not enough: containers sharing a hostname and a volume have pid
    namespaces of their own, and pids start again after a reboot."""
    key = "\0".join((host, pid_namespace, boot_id))
    return f"{zlib.crc32(key.encode('utf-8', 'replace')):08x}"


def _this_writer_tag() -> str:
    """`writer_tag` of this process; a part this OS does not show (no /proc) counts as ""."""
    try:
        pid_namespace = os.readlink("/proc/self/ns/pid")  # "pid:[4026531836]"
    except OSError:
        pid_namespace = ""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii", errors="replace") as stream:
            boot_id = stream.read().strip()
    except OSError:
        boot_id = ""
    return writer_tag(socket.gethostname(), pid_namespace, boot_id)


_WRITER_TAG = _this_writer_tag()
# (st_dev, st_ino) of the folders this process has swept: once each is enough, since a temporary is
# stale only once its writer has died, and the next process's first write will find the later ones.
_SWEPT_FOLDERS: set[tuple[int, int]] = set()


def write_atomic(path, chunks: Iterable[bytes], error_class: type[MXNetError] = ArtifactError) -> None:
    """Write the concatenated `chunks` to `path` atomically.

    Afterwards `path` holds the whole new content, or (on any failure) exactly what it held before and
    no temporary file is left. A full disk, file-size limit or quota raises DiskFullError; any other
    OSError raises `error_class`; both name `path`. The one failure after which `path` holds the new
    content: the folder's fsync, whose `error_class` says "'PATH' was replaced, but its folder could
    not be synced".
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
        sweep_folder_once(folder_fd)
        try:
            _write_and_rename(folder_fd, name, chunks)
        except OSError as err:
            raise write_error(path, err, error_class) from None
        try:
            sync_folder(folder_fd)
        except OSError as err:  # the new content is in place: only its survival of a power loss is in doubt
            raise error_class(
                f"'{path}' was replaced, but its folder could not be synced: {err.strerror or err}"
            ) from None
    finally:
        os.close(folder_fd)


def file_holds(path, data: bytes) -> bool:
    """Whether `path` is a regular file whose content is exactly `data` (False when it cannot be read)."""
    try:
        return read_regular_file(path, limit=len(data)) == data
    except OSError:
        return False


def open_regular_file(path, flags: int) -> int:
    """open(2) of `path` that never blocks on a FIFO and refuses anything but a regular file: a folder
    raises IsADirectoryError (errno EISDIR), a FIFO, device or socket NotRegularFileError (errno EINVAL,
    "not a regular file"). Usable as builtin open's `opener`; the fd returned is blocking."""
    fd = os.open(path, flags | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise OSError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        if not stat.S_ISREG(mode):
            raise NotRegularFileError(path, mode)
        if hasattr(os, "O_NONBLOCK"):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular_file(path, limit: int | None = None) -> bytes:
    """The whole content of the regular file `path`, read once to the size fstat gives.

    Raises OSError, naming `path`: as `open_regular_file` for a folder, FIFO or device (never waiting
    or reading without end); EFBIG for a file over `limit` bytes, ENOMEM for one that does not fit in
    memory, EIO for one that changed size while it was read.
    """
    fd = open_regular_file(path, _READ_FLAGS)
    try:
        size = os.fstat(fd).st_size
        if limit is not None and size > limit:
            raise OSError(errno.EFBIG, f"it holds {size} bytes, more than the {limit} allowed", path)
        with open(fd, "rb", closefd=False) as stream:
            data = stream.read(size + 1)
    except MemoryError:
        raise OSError(errno.ENOMEM, f"its {size} bytes do not fit in memory", path) from None
    finally:
        os.close(fd)
    if len(data) != size:
        raise OSError(errno.EIO, "it changed size while it was read", path)
    return data


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
        keep_mode(folder_fd, name, fd)
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


def keep_mode(folder_fd: int, name: str, fd: int) -> None:
    """Give the temporary `fd` the permission bits of the file it replaces, `name`, where one exists
    (a symlink's target's: rename replaces the link, and its own bits are always 0o777)."""
    try:
        old_mode = os.stat(name, dir_fd=folder_fd).st_mode
    except OSError:
        return  # a new file (or a dangling link): it keeps the mode open() gave it
    try:
        os.fchmod(fd, stat.S_IMODE(old_mode) & 0o777)
    except OSError:
        pass  # a filesystem without permission bits (FAT, some network mounts): nothing to keep


def temporary_name(name: str) -> str:
    """A fresh temporary's name for destination `name`: `.NAME.PID-TAG-RANDOM.tmp` (TAG, `writer_tag`,
    and RANDOM 8 hex digits each; NAME cut to its first 160 bytes, so that the whole stays a legal name)."""
    kept = os.fsdecode(os.fsencode(name)[:_NAME_KEPT])
    return f".{kept}.{os.getpid()}-{_WRITER_TAG}-{os.urandom(4).hex()}.tmp"


def sweep_folder_once(folder_fd: int) -> None:
    """`sweep_stale_temporaries`, the first time this process writes into the folder (listing a large
    folder on every write would cost more than the write)."""
    try:
        info = os.fstat(folder_fd)
    except OSError:
        return
    if (info.st_dev, info.st_ino) not in _SWEPT_FOLDERS:
        _SWEPT_FOLDERS.add((info.st_dev, info.st_ino))
        sweep_stale_temporaries(folder_fd)


def forget_swept_folders() -> None:
    """Make the next write into each folder sweep it again, as a new process's would. A forked child
    starts with this done; tests that check sweeping call it."""
    _SWEPT_FOLDERS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=forget_swept_folders)


def sweep_stale_temporaries(folder_fd: int) -> list[str]:
    """Remove the temporaries in the folder whose writer (a process with this one's writer tag) has ended.

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
        match = entry.endswith(".tmp") and _TEMPORARY_NAME.fullmatch(entry)
        if match and match.group(2) == _WRITER_TAG and not process_is_running(int(match.group(1))):
            _remove(folder_fd, entry)
            removed.append(entry)
    return removed


def process_is_running(pid: int) -> bool:
    """Whether process `pid` exists in this pid namespace (a zombie counts; when unsure, True)."""
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
