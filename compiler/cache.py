"""The on-disk compile cache: compiled results (shared libraries, PTX) stored under a hash of their inputs.

Key: `cache_key` is the SHA-256 of a canonical JSON object holding the program text (`graph_to_json`
or the lowered program), the target, the sorted set of CPU features or the GPU arch, the compiler's
own version, any `extra` settings, and this file's `CACHE_FORMAT`; changing any of them misses.

Layout: one flat folder ($EMBER_CACHE_DIR, else $XDG_CACHE_HOME/ember, else ~/.cache/ember) with one
file `<key>.bin` per entry: an 80-byte header (`MAGIC`, the key, the SHA-256 of key and payload, the
payload's length) and the payload. A writer fills `.<key>.*.tmp` in the same folder and renames it
with `os.replace`, so a reader sees the old entry or the new one, never half of one.

Reading trusts nothing: `get` opens the entry without following a symbolic link or blocking (a FIFO,
a device, a folder or a link is a miss, and is removed where it can be), reads at most the file's
size and never more than the cache's cap, and checks magic, length, checksum and the key inside the
entry. Anything else is a miss and the file is removed: a torn or damaged file (a crash, a full disk)
quietly, another key's entry copied or renamed under this key with a warning. `get` touches the
file's mtime, and `put` evicts the least recently used entries beyond `max_bytes`: it keeps an
approximate total of the folder's bytes and scans the folder only on its first store and when that
total may pass the cap (so other processes' entries are counted at the next scan). `EMBER_CACHE=0`
turns it all off. The cache is an optimisation: no disk failure or damaged entry ever raises (only a
malformed key does); an unwritable folder logs one warning.

Trust: entries hold native code that is run, so whoever can write the folder can run code in every
process that uses it; it is created readable by its owner only. The checks above stop accidents and
mix-ups (a wrong entry is never used, an odd file never hangs or exhausts memory), not a writer who
can compute SHA-256.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import stat
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

log = logging.getLogger(__name__)

CACHE_FORMAT = 2  # bump when the entry layout or the meaning of a key changes
MAGIC = b"EMBRC\x00\x00\x02"  # its last byte is CACHE_FORMAT: an entry of another format is a miss
HEADER = struct.Struct("<8s32s32sQ")  # magic, the key (32 raw bytes), SHA-256 of key + payload, length
SUFFIX = ".bin"
STALE_TEMP_SECONDS = 3600  # a temp file this old belongs to a writer that died
_KEY = re.compile(r"[0-9a-f]{64}")
# Open flags of a reader (those this OS has; distinct bits): never block on a FIFO, never follow a
# link planted at an entry's path.
_READ_FLAGS = os.O_RDONLY | sum(
    getattr(os, flag, 0) for flag in ("O_NONBLOCK", "O_NOFOLLOW", "O_CLOEXEC", "O_BINARY")
)
_LINK_ERRNOS = (errno.ELOOP, errno.EMLINK)  # what O_NOFOLLOW raises on a link (Linux, BSD)


def cache_key(
    *,
    program_text: str,
    target: str,
    cpu_features: Iterable[str],
    ember_version: str,
    extra: Mapping = {},
) -> str:
    """SHA-256 hex of the canonical JSON of the parts; the order of `cpu_features` does not matter.

    `extra` holds any further setting that changes the compiled code (opt level, fast-math); its
    values must be JSON data.
    """
    parts = {
        "cache_format": CACHE_FORMAT,
        "program": program_text,
        "target": target,
        "cpu_features": sorted(set(cpu_features)),
        "ember_version": ember_version,
        "extra": dict(extra),
    }
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def default_cache_dir() -> Path:
    """$EMBER_CACHE_DIR, else $XDG_CACHE_HOME/ember, else ~/.cache/ember."""
    if os.environ.get("EMBER_CACHE_DIR"):
        return Path(os.environ["EMBER_CACHE_DIR"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "ember"
    return Path.home() / ".cache" / "ember"


def cache_enabled() -> bool:
    """False when the environment sets EMBER_CACHE=0 (or false/off/no); read on every call."""
    return os.environ.get("EMBER_CACHE", "1").strip().lower() not in ("0", "false", "off", "no")


class CompileCache:
    """Bytes by key in one folder, safe for concurrent threads and processes, capped at `max_bytes`."""

    def __init__(self, path: str | os.PathLike | None = None, max_bytes: int = 1 << 30):
        self.path = Path(path) if path is not None else default_cache_dir()
        self.max_bytes = max_bytes
        self._warned = False
        self._lock = threading.Lock()
        self._approx_bytes: int | None = None  # the folder's bytes as of the last scan plus our stores

    def __repr__(self) -> str:
        return f"CompileCache({str(self.path)!r}, max_bytes={self.max_bytes})"

    def get(self, key: str) -> bytes | None:
        """The entry's bytes, or None for a miss: disabled, missing, unreadable, not a regular file,
        over the cap, corrupt or another key's (the last four are removed)."""
        entry = self._entry(key)
        if not cache_enabled():
            return None
        try:
            return _unpack(*_read_entry(entry, self.max_bytes), key)
        except _Unusable as unusable:
            log.log(unusable.level, "compile cache: removing %s: %s", entry, unusable)
            _remove(entry)
        except OSError:
            pass  # missing, or unreadable now: a miss that leaves the file alone
        return None

    def put(self, key: str, data: bytes) -> None:
        """Store `data` under `key` atomically; a no-op when disabled or the folder cannot be written."""
        entry = self._entry(key)
        data = bytes(data)
        size = HEADER.size + len(data)
        if not cache_enabled() or size > self.max_bytes:
            return
        tmp = None
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path, prefix=f".{key}.", suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(_header(key, data))
                f.write(data)
            os.replace(tmp, entry)
            tmp = None
        except OSError as e:
            self._warn_once(f"compile cache: cannot write to {self.path} ({e}); compiling without a cache")
            return
        finally:
            if tmp is not None:
                _remove(Path(tmp))
        if self._may_be_over_cap(size):
            self._evict(keep=entry)

    def get_or_build(self, key: str, build: Callable[[], bytes]) -> bytes:
        """The cached bytes for `key`, or `build()`'s result, stored for next time."""
        data = self.get(key)
        if data is None:
            data = build()
            self.put(key, data)
        return data

    def clear(self) -> None:
        """Remove every entry and temp file of this cache (nothing else in the folder)."""
        for path in self._files():
            _remove(path)
        with self._lock:
            self._approx_bytes = None

    def _entry(self, key: str) -> Path:
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ValueError(
                f"compile cache key must be 64 lowercase hex digits (see cache_key), got {key!r}"
            )
        return self.path / (key + SUFFIX)

    def _files(self) -> list[Path]:
        try:
            names = os.listdir(self.path)
        except OSError:
            return []
        return [self.path / n for n in names if _is_entry_name(n) or _is_temp_name(n)]

    def _may_be_over_cap(self, stored: int) -> bool:
        """Count `stored` more bytes; True when the folder has not been scanned yet or may be over the cap."""
        with self._lock:
            if self._approx_bytes is None or self._approx_bytes + stored > self.max_bytes:
                return True
            self._approx_bytes += stored
            return False

    def _evict(self, keep: Path) -> None:
        """Remove least recently used entries (oldest mtime first) until the total fits `max_bytes`,
        and stale temp files; the total left becomes the new approximate size of the folder."""
        entries, total, now = [], 0, time.time()
        for path in self._files():
            try:
                st = path.lstat()
            except OSError:
                continue  # removed meanwhile by another process
            if _is_temp_name(path.name):
                if now - st.st_mtime > STALE_TEMP_SECONDS:
                    _remove(path)
                continue
            entries.append((st.st_mtime_ns, path.name, st.st_size))
            total += st.st_size
        for _, name, size in sorted(entries):
            if total <= self.max_bytes:
                break
            if name != keep.name:
                _remove(self.path / name)
                total -= size
        with self._lock:
            self._approx_bytes = total

    def _warn_once(self, message: str) -> None:
        """Warn on the first failed write of this cache; later ones would only repeat it."""
        if self._warned:
            log.debug(message)
        else:
            self._warned = True
            log.warning(message)


class _Unusable(Exception):
    """A file at an entry's path that must not be used (and is removed); `level` is how loudly to say so."""

    def __init__(self, why: str, level: int = logging.DEBUG):
        super().__init__(why)
        self.level = level


def _read_entry(path: Path, limit: int) -> tuple[bytes, bytes]:
    """The bytes of the regular file at `path`, at most `limit` of them, its mtime touched (it was used):
    the header's bytes (fewer in a truncated file) and the rest, read apart so the payload is never copied.

    OSError when it is missing or unreadable; _Unusable when it is a link, not a regular file, larger
    than `limit`, or changes size while it is read.
    """
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as err:
        if err.errno in _LINK_ERRNOS:
            raise _Unusable("it is a symbolic link, not an entry") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _Unusable(f"it is not a regular file (mode {stat.filemode(info.st_mode)})")
        if info.st_size > limit:
            raise _Unusable(f"it holds {info.st_size} bytes, more than the cache's cap of {limit}")
        with open(fd, "rb", closefd=False) as stream:
            head = stream.read(HEADER.size)
            data = stream.read(info.st_size + 1 - len(head))
        size = len(head) + len(data)
        if size != info.st_size:
            raise _Unusable(f"it changed size while it was read ({info.st_size} -> {size} bytes)")
        _touch(fd, path)
        return head, data
    finally:
        os.close(fd)


def _touch(fd: int, path: Path) -> None:
    """Mark an entry recently used for eviction (through its open descriptor where the OS allows)."""
    try:
        os.utime(fd if os.utime in os.supports_fd else path)
    except OSError:
        pass


def _header(key: str, data: bytes) -> bytes:
    """The header binding `data` to `key`; an entry file is this header, then `data`."""
    raw_key = bytes.fromhex(key)
    return HEADER.pack(MAGIC, raw_key, _checksum(raw_key, data), len(data))


def _checksum(raw_key: bytes, data: bytes) -> bytes:
    """SHA-256 of key and payload, fed in turn so that the payload is never copied."""
    digest = hashlib.sha256(raw_key)
    digest.update(data)
    return digest.digest()


def _unpack(head: bytes, data: bytes, key: str) -> bytes:
    """The payload `data` of an entry file stored under `key`, `head` its header; _Unusable when its
    header, length or checksum is wrong (damage: said quietly) or it holds another key's entry (a mix-up:
    a warning)."""
    if len(head) < HEADER.size:
        raise _Unusable(f"it is truncated ({len(head)} bytes, shorter than the {HEADER.size}-byte header)")
    magic, stored_key, digest, length = HEADER.unpack(head)
    if magic != MAGIC:
        raise _Unusable(f"it starts with {magic!r}, not {MAGIC!r} (a foreign file or another format)")
    if length != len(data):
        raise _Unusable(f"its header gives {length} payload bytes, but it holds {len(data)}")
    if _checksum(stored_key, data) != digest:
        raise _Unusable("its SHA-256 checksum does not match its contents")
    if stored_key != bytes.fromhex(key):
        raise _Unusable(
            f"it holds the entry of key {stored_key.hex()}, not of its name's key (copied or renamed?); "
            "compiling again",
            logging.WARNING,
        )
    return data


def _is_entry_name(name: str) -> bool:
    return name.endswith(SUFFIX) and _KEY.fullmatch(name[: -len(SUFFIX)]) is not None


def _is_temp_name(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp") and _KEY.fullmatch(name[1:65]) is not None


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
