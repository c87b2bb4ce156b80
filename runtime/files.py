"""Atomic file writes, shared by every writer in Ember (artifacts, .params files, symbol JSON).

The data goes to a temporary file in the destination's folder, is flushed to disk, given the mode a
plain `open` would give it, and renamed over the destination: readers see the old file or the whole
new one, never a part. Standard library only (the runtime's rule).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable

from .errors import ArtifactError, MXNetError

_UMASK = os.umask(0)
os.umask(_UMASK)


def write_atomic(path, chunks: Iterable[bytes], error_class: type[MXNetError] = ArtifactError) -> None:
    """Write the concatenated `chunks` to `path` atomically; an OSError becomes `error_class` naming it."""
    path = os.fspath(path)
    if os.path.isdir(path) or path.endswith(os.sep):
        raise error_class(f"cannot write '{path}': it names a folder, not a file")
    folder = os.path.dirname(os.path.abspath(path))
    try:
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    except OSError as err:
        raise error_class(f"cannot write '{path}': {err.strerror or err}") from None
    try:
        with os.fdopen(handle, "wb") as stream:
            for chunk in chunks:
                stream.write(chunk)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o666 & ~_UMASK)
        os.replace(temporary, path)
    except BaseException as err:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        if isinstance(err, OSError):
            raise error_class(f"cannot write '{path}': {err.strerror or err}") from None
        raise
