"""Seeded file mutation for the loaders' fuzz tests: every mutated file must load or raise MXNetError.

`mutations(data, seed, count)` yields `(description, bytes)` pairs made from a valid file by a fixed,
seeded mix of the changes that break real files: flipped bits, bytes set to boundary values, little-
endian integers overwritten with extremes (sizes and counts that overflow), truncation, extension,
deleted and duplicated chunks; for text files also edits of numbers and brackets. `outcomes(load,
cases)` runs a loader over the cases, each under a time limit, and counts what happened; any exception
that is not an `MXNetError` (or a hang) fails the test with the case that caused it.
"""

from __future__ import annotations

import collections
import contextlib
import random
import re
import signal
from collections.abc import Callable, Iterable, Iterator

from ember.base import MXNetError

_BOUNDARY_BYTES = (0x00, 0xFF, 0x7F, 0x80, 0x01)
_EXTREME_INTS = (0, 1, 2**31 - 1, 2**31, 2**32 - 1, 2**62, 2**63 - 1, 2**64 - 1, 2**21, 2**40)
_TEXT_NUMBERS = ("0", "-1", "1e309", "NaN", "4294967296", "9" * 30, "-9223372036854775809", "1.5", '""')


def _flip_bit(data: bytearray, rng: random.Random) -> str:
    i = rng.randrange(len(data))
    bit = rng.randrange(8)
    data[i] ^= 1 << bit
    return f"bit {bit} of byte {i} flipped"


def _boundary_byte(data: bytearray, rng: random.Random) -> str:
    i = rng.randrange(len(data))
    data[i] = rng.choice(_BOUNDARY_BYTES)
    return f"byte {i} set to {data[i]:#x}"


def _extreme_int(data: bytearray, rng: random.Random) -> str:
    width = rng.choice((4, 8))
    if len(data) < width:
        return _boundary_byte(data, rng)
    i = rng.randrange(len(data) - width + 1)
    if rng.random() < 0.5:
        i -= i % width  # most binary formats align their integer fields
    value = rng.choice(_EXTREME_INTS) % (1 << (8 * width))
    data[i : i + width] = value.to_bytes(width, "little")
    return f"{width}-byte integer at {i} set to {value}"


def _truncate(data: bytearray, rng: random.Random) -> str:
    size = rng.randrange(len(data))
    del data[size:]
    return f"truncated to {size} bytes"


def _extend(data: bytearray, rng: random.Random) -> str:
    extra = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
    data.extend(extra)
    return f"{len(extra)} bytes appended"


def _delete_chunk(data: bytearray, rng: random.Random) -> str:
    i = rng.randrange(len(data))
    size = rng.randrange(1, min(64, len(data) - i) + 1)
    del data[i : i + size]
    return f"{size} bytes deleted at {i}"


def _duplicate_chunk(data: bytearray, rng: random.Random) -> str:
    i = rng.randrange(len(data))
    size = rng.randrange(1, min(64, len(data) - i) + 1)
    data[i:i] = data[i : i + size]
    return f"{size} bytes duplicated at {i}"


def _text_number(data: bytearray, rng: random.Random) -> str:
    spans = [m.span() for m in re.finditer(rb"-?\d+(\.\d+)?([eE][-+]?\d+)?", bytes(data))]
    if not spans:
        return _boundary_byte(data, rng)
    start, end = rng.choice(spans)
    replacement = rng.choice(_TEXT_NUMBERS).encode()
    data[start:end] = replacement
    return f"number at {start} replaced by {replacement.decode()}"


def _text_bracket(data: bytearray, rng: random.Random) -> str:
    spots = [i for i, b in enumerate(data) if b in b"[]{}\",:\n"]
    if not spots:
        return _boundary_byte(data, rng)
    i = rng.choice(spots)
    if rng.random() < 0.5:
        del data[i]
        return f"structural byte at {i} deleted"
    data[i] = rng.choice(b"[]{}\",:\n")
    return f"structural byte at {i} set to {chr(data[i])!r}"


_BINARY = (_flip_bit, _boundary_byte, _extreme_int, _extreme_int, _truncate, _extend, _delete_chunk,
           _duplicate_chunk)
_TEXT = _BINARY + (_text_number, _text_number, _text_bracket, _text_bracket)


def mutations(data: bytes, seed: int, count: int, *, text: bool = False) -> Iterator[tuple[str, bytes]]:
    """`count` mutated copies of `data` (1-3 changes each), the same for the same seed."""
    rng = random.Random(seed)
    kinds = _TEXT if text else _BINARY
    for case in range(count):
        mutated = bytearray(data)
        changes = []
        for _ in range(rng.choice((1, 1, 2, 3))):
            if not mutated:
                break
            changes.append(rng.choice(kinds)(mutated, rng))
        yield f"case {case}: " + "; ".join(changes), bytes(mutated)


class Hang(Exception):
    """A loader ran past its time limit."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise `Hang` in the main thread if the block runs longer than `seconds`."""

    def expire(signum, frame):
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def outcomes(
    load: Callable[[str, bytes], object], cases: Iterable[tuple[str, bytes]], *, seconds: float = 10.0
) -> collections.Counter:
    """Run `load(description, data)` on every case; count 'loaded' and each MXNetError subclass.

    Any other exception, or a case that runs past `seconds`, raises AssertionError naming the case.
    """
    counts: collections.Counter = collections.Counter()
    for description, data in cases:
        try:
            with time_limit(seconds):
                load(description, data)
        except MXNetError as err:
            counts[type(err).__name__] += 1
        except Hang as err:
            raise AssertionError(f"{description}: the loader hung ({err})") from None
        except BaseException as err:  # noqa: BLE001 - any other type is the failure being looked for
            raise AssertionError(f"{description}: raised {type(err).__name__}: {err}") from err
        else:
            counts["loaded"] += 1
    return counts
