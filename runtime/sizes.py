"""Byte counts in words, for error messages: '3221225472 bytes (3.0 GiB)'. Standard library only."""

from __future__ import annotations

_UNITS = (("EiB", 2**60), ("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10))


def describe_bytes(nbytes: int) -> str:
    """`nbytes` exactly, with the largest binary unit it reaches: '1048576 bytes (1.0 MiB)', '1 byte'."""
    for unit, scale in _UNITS:
        if nbytes >= scale:
            return f"{nbytes} bytes ({nbytes / scale:.1f} {unit})"
    return f"{nbytes} byte" if nbytes == 1 else f"{nbytes} bytes"
