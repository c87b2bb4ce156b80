"""The on-disk compile cache: compiled results (shared libraries, PTX) stored under a hash of their inputs.

Key: `cache_key` is the SHA-256 of a canonical JSON object holding the program text (`graph_to_json`
or the lowered program), the target, the sorted set of CPU features or the GPU arch, the compiler's
own version, any `extra` settings, and this file's `CACHE_FORMAT`; changing any of them misses.

Layout: one flat folder ($EMBER_CACHE_DIR, else $XDG_CACHE_HOME/ember, else ~/.cache/ember) with one
file `<key>.bin` per entry: a 48-byte header (`MAGIC`, the SHA-256 of the payload, its length) and
the payload. A writer fills `.<key>.*.tmp` in the same folder and renames it with `os.replace`, so a
reader sees the old entry or the new one, never half of one; a torn or damaged file (a crash, a full
disk) fails the header check, counts as a miss and is removed. `get` touches the file's mtime, and
`put` evicts the least recently used entries beyond `max_bytes`. `EMBER_CACHE=0` turns it all off.
The cache is an optimisation: no disk failure ever raises (only a malformed key does); an unwritable
folder logs one warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import struct
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

log = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when the entry layout or the meaning of a key changes
MAGIC = b"EMBRC\x00\x00\x01"
HEADER = struct.Struct("<8s32sQ")  # magic, SHA-256 of the payload, payload length
SUFFIX = ".bin"
STALE_TEMP_SECONDS = 3600  # a temp file this old belongs to a writer that died
_KEY = re.compile(r"[0-9a-f]{64}")


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

    def __repr__(self) -> str:
        return f"CompileCache({str(self.path)!r}, max_bytes={self.max_bytes})"

    def get(self, key: str) -> bytes | None:
        """The entry's bytes, or None for a miss: disabled, missing, unreadable, or corrupt (then removed)."""
        entry = self._entry(key)
        if not cache_enabled():
            return None
        try:
            blob = entry.read_bytes()
        except OSError:
            return None
        data = _unpack(blob)
        if data is None:
            log.debug("compile cache: removing damaged entry %s", entry.name)
            _remove(entry)
            return None
        try:
            os.utime(entry)  # mark it recently used for eviction
        except OSError:
            pass
        return data

    def put(self, key: str, data: bytes) -> None:
        """Store `data` under `key` atomically; a no-op when disabled or the folder cannot be written."""
        entry = self._entry(key)
        data = bytes(data)
        if not cache_enabled() or HEADER.size + len(data) > self.max_bytes:
            return
        tmp = None
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path, prefix=f".{key}.", suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(HEADER.pack(MAGIC, hashlib.sha256(data).digest(), len(data)))
                f.write(data)
            os.replace(tmp, entry)
            tmp = None
        except OSError as e:
            self._warn_once(f"compile cache: cannot write to {self.path} ({e}); compiling without a cache")
            return
        finally:
            if tmp is not None:
                _remove(Path(tmp))
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

    def _evict(self, keep: Path) -> None:
        """Remove least recently used entries (oldest mtime first) until the total fits `max_bytes`."""
        entries, total, now = [], 0, time.time()
        for path in self._files():
            try:
                st = path.stat()
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

    def _warn_once(self, message: str) -> None:
        """Warn on the first failed write of this cache; later ones would only repeat it."""
        if self._warned:
            log.debug(message)
        else:
            self._warned = True
            log.warning(message)


def _unpack(blob: bytes) -> bytes | None:
    """The payload of an entry file, or None when its header, length or checksum is wrong."""
    if len(blob) < HEADER.size:
        return None
    magic, digest, length = HEADER.unpack_from(blob)
    data = blob[HEADER.size :]
    if magic != MAGIC or length != len(data) or hashlib.sha256(data).digest() != digest:
        return None
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
