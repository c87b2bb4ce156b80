"""The compile cache trusts nothing it reads (compiler/cache.py): issue 12's reproduced cases and more.

Each case plants something at a real program's entry path, compiles the program through the driver
and checks the exact outcome: the code run is the program's own (bit-equal to an uncached compile),
the planted file is gone or replaced, nothing raises, nothing hangs, and only a mix-up (another key's
entry) warns. Before the fix a FIFO hung the compile, another program's entry was run, and a link
to /dev/zero raised MemoryError.
"""

from __future__ import annotations

import logging
import os
import struct
import time

import numpy as np
import pytest

import ember as mx
from ember.codegen import driver
from ember.codegen.targets import target_for
from ember.compiler import cache as cache_module
from ember.compiler.cache import HEADER, MAGIC, CompileCache
from tests.fuzzing import time_limit

X = np.linspace(-2.0, 2.0, 8, dtype=np.float32)
CPU = target_for("cpu")


def built_program(scale: float):
    """tanh(x * scale) over 8 floats, lowered (not yet compiled)."""
    x = mx.sym.Variable("x")
    return driver.build(mx.sym.tanh(x * scale)._graph, shapes={"x": (8,)})


def run_uncached(built) -> np.ndarray:
    return driver.compiled_from(built, CPU, cache=False).load()(x=X)[0]


@pytest.fixture(scope="module")
def programs():
    """Two programs that differ only in a constant, and the output of each compiled without a cache."""
    a, b = built_program(2.0), built_program(3.0)
    expected = {name: run_uncached(built) for name, built in zip("ab", (a, b))}
    assert not np.array_equal(expected["a"], expected["b"])  # running b's code for a would show
    return {"a": a, "b": b}, expected


@pytest.fixture(autouse=True)
def cache_on(monkeypatch):
    monkeypatch.delenv("EMBER_CACHE", raising=False)


@pytest.fixture
def cache(tmp_path):
    return CompileCache(tmp_path / "cache")


def entry_path(cache: CompileCache, built) -> str:
    return str(cache.path / (CPU.cache_key(built.program) + ".bin"))


def compile_and_run(built, cache: CompileCache) -> np.ndarray:
    """The program compiled through the cache (10 s at most: a hang fails) and run on X."""
    with time_limit(10):
        return driver.compiled_from(built, CPU, cache).load()(x=X)[0]


def stored_key(path: str) -> str:
    with open(path, "rb") as stream:
        _, key, _, _ = HEADER.unpack(stream.read(HEADER.size))
    return key.hex()


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# ---------------------------------------------------------------------------------------------
# The three reproduced cases


def test_a_fifo_at_an_entry_path_is_a_miss_and_the_compile_finishes(programs, cache, caplog):
    built, expected = programs[0]["a"], programs[1]
    cache.path.mkdir()
    path = entry_path(cache, built)
    os.mkfifo(path)
    start = time.monotonic()
    with caplog.at_level(logging.DEBUG, logger="ember.compiler.cache"):
        out = compile_and_run(built, cache)
    assert time.monotonic() - start < 5
    assert np.array_equal(out, expected["a"])
    assert os.path.isfile(path) and stored_key(path) == CPU.cache_key(built.program)  # a real entry now
    assert warnings_of(caplog) == []
    assert any("it is not a regular file (mode prw" in r.getMessage() for r in caplog.records)


def test_another_programs_entry_under_a_key_is_not_run_and_is_replaced(programs, cache, caplog):
    (built, other), expected = (programs[0]["a"], programs[0]["b"]), programs[1]
    compile_and_run(other, cache)
    cache.path.joinpath(os.path.basename(entry_path(cache, built))).write_bytes(
        open(entry_path(cache, other), "rb").read()
    )
    with caplog.at_level(logging.WARNING, logger="ember.compiler.cache"):
        out = compile_and_run(built, cache)
    assert np.array_equal(out, expected["a"])  # before the fix: expected["b"]
    key = CPU.cache_key(built.program)
    assert stored_key(entry_path(cache, built)) == key  # replaced by its own entry
    (warning,) = warnings_of(caplog)
    assert f"{key}.bin: it holds the entry of key {CPU.cache_key(other.program)}" in warning
    assert "copied or renamed?" in warning
    assert np.array_equal(compile_and_run(other, cache), expected["b"])  # the other entry still serves


def test_a_link_to_dev_zero_is_a_miss_without_an_exception(programs, cache, caplog):
    built, expected = programs[0]["a"], programs[1]
    cache.path.mkdir()
    path = entry_path(cache, built)
    os.symlink("/dev/zero", path)
    with caplog.at_level(logging.DEBUG, logger="ember.compiler.cache"):
        assert cache.get(CPU.cache_key(built.program)) is None
    assert not os.path.lexists(path)  # the link is removed, /dev/zero untouched
    assert any("it is a symbolic link, not an entry" in r.getMessage() for r in caplog.records)
    assert np.array_equal(compile_and_run(built, cache), expected["a"])
    assert not os.path.islink(path) and stored_key(path) == CPU.cache_key(built.program)


# ---------------------------------------------------------------------------------------------
# Other files at an entry's path


def test_a_link_to_a_valid_entry_is_not_followed(programs, cache, tmp_path):
    built = programs[0]["a"]
    compile_and_run(built, cache)
    key = CPU.cache_key(built.program)
    elsewhere = tmp_path / "elsewhere.bin"
    os.replace(entry_path(cache, built), elsewhere)
    os.symlink(elsewhere, entry_path(cache, built))
    assert cache.get(key) is None
    assert not os.path.lexists(entry_path(cache, built)) and elsewhere.exists()


def test_an_entry_larger_than_the_cap_is_a_miss_and_is_not_read(tmp_path, monkeypatch):
    """A sparse 1 TiB file: refused by its size, before any read."""
    cache = CompileCache(tmp_path, max_bytes=1 << 20)
    key = "ab" * 32
    path = tmp_path / f"{key}.bin"
    with open(path, "wb") as stream:
        stream.truncate(1 << 40)
    reads = []
    monkeypatch.setattr(cache_module, "open", lambda *a, **k: reads.append(a) or open(*a, **k), raising=False)
    assert cache.get(key) is None
    assert reads == [] and not path.exists()


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda blob: blob[: len(blob) - 1], id="truncated-by-one"),
        pytest.param(lambda blob: blob[: HEADER.size], id="truncated-to-the-header"),
        pytest.param(lambda blob: blob[:-9] + bytes([blob[-9] ^ 0x10]) + blob[-8:], id="payload-bit-flipped"),
        pytest.param(lambda blob: blob[:8] + bytes([blob[8] ^ 1]) + blob[9:], id="key-bit-flipped"),
        pytest.param(lambda blob: blob[:40] + bytes([blob[40] ^ 1]) + blob[41:], id="checksum-bit-flipped"),
        pytest.param(lambda blob: blob[:72] + struct.pack("<Q", 2**63) + blob[80:], id="huge-length"),
        pytest.param(lambda blob: b"EMBRC\x00\x00\x01" + blob[8:], id="format-1-magic"),
    ],
)
def test_a_damaged_entry_is_a_quiet_miss_and_is_rebuilt(programs, cache, caplog, damage):
    built, expected = programs[0]["a"], programs[1]
    compile_and_run(built, cache)
    path = entry_path(cache, built)
    with open(path, "rb") as stream:
        blob = stream.read()
    with open(path, "wb") as stream:
        stream.write(damage(blob))
    key = CPU.cache_key(built.program)
    with caplog.at_level(logging.WARNING, logger="ember.compiler.cache"):
        assert cache.get(key) is None
    assert not os.path.exists(path) and warnings_of(caplog) == []
    assert np.array_equal(compile_and_run(built, cache), expected["a"])
    assert cache.get(key) is not None


def test_an_entry_of_the_old_format_is_a_miss(cache):
    """Format 1 entries had a 48-byte header without the key; they are never read as format 2."""
    key = "cd" * 32
    cache.path.mkdir()
    old = struct.pack("<8s32sQ", b"EMBRC\x00\x00\x01", bytes(32), 4) + b"code"
    (cache.path / f"{key}.bin").write_bytes(old)
    assert MAGIC == b"EMBRC\x00\x00\x02" and cache_module.CACHE_FORMAT == 2
    assert cache.get(key) is None and not (cache.path / f"{key}.bin").exists()
