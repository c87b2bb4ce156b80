"""Running compiled programs: a shared library loaded with ctypes, one arena, one native call per run.

An `Executable` is built from the library's bytes and the program's layout (plain JSON data: the
entry symbol, the arena size, every buffer's offset/shape/dtype/role, and which buffers are the
inputs, outputs, parameters and state). It owns the arena, so parameters, optimizer state and
BatchNorm statistics stay in place between calls; `exe(data=x)` copies the inputs in, makes one
call into native code and returns copies of the outputs.

Threads: a program has one arena, so the steps that touch it (copy inputs in, run, copy outputs
out) hold the program's `lock`; concurrent calls on one program take turns for those steps and
each gets its own inputs' outputs. The checks and conversions of the inputs happen before the lock,
and the native call releases the GIL (ctypes.CDLL), so threads on different programs run in parallel.
"""

from __future__ import annotations

import _ctypes
import ctypes
import os
import tempfile
import threading
import time
import weakref
from collections.abc import Mapping

import numpy as np

from . import observers
from .errors import MXNetError, ShapeError

ALIGNMENT = 64
_LOAD_LOCK = threading.Lock()


def load_library(data: bytes, entry: str, what: str = "the program"):
    """dlopen a shared library given as bytes (through a private temporary file, removed at once) and
    return its entry function `int32_t entry(uint8_t *arena)`."""
    with _LOAD_LOCK:
        handle, path = tempfile.mkstemp(prefix="ember-", suffix=".so")
        try:
            with os.fdopen(handle, "wb") as f:
                f.write(data)
            try:
                library = ctypes.CDLL(path, mode=getattr(os, "RTLD_LOCAL", 0))
            except OSError as err:
                raise MXNetError(f"cannot load the native code of {what}: {err}") from None
        finally:
            os.unlink(path)
    try:
        function = getattr(library, entry)
    except AttributeError:
        raise MXNetError(f"the native code of {what} has no entry point {entry!r}") from None
    function.argtypes = [ctypes.c_void_p]
    function.restype = ctypes.c_int32
    return library, function


def _unload(library) -> None:
    """Unload a library once nothing can call into it any more (its Executable is gone): first stop
    and join its thread pool's workers, which run its code, then dlclose it."""
    shutdown = getattr(library, "ember_pool_shutdown", None)
    if shutdown is not None:
        shutdown.restype = None
        shutdown()
    close = getattr(_ctypes, "dlclose", None) or getattr(_ctypes, "FreeLibrary", None)
    if close is not None:
        close(library._handle)


class BoundProgram:
    """What every loaded program shares, wherever its memory lives: the layout, names, the checks on
    what users pass in, and the lock that makes each call's use of the one arena indivisible.
    Subclasses provide `_write(buffer, array)`, `_read(buffer)` and `_run()`.

    Thread safety: `program(**inputs)`, `set_param`, `write_buffer`, `get` and `run` may be called
    from any thread; each holds `lock` (re-entrant) while it touches the arena, so a call returns the
    outputs of its own inputs. To make a sequence of steps indivisible (`set_param` then `run` then
    `outputs_view`), hold `with program.lock:` around it. `view`/`outputs_view` arrays are live
    memory: reading them while another thread runs the program needs the lock too.
    """

    def __init__(self, layout: Mapping, what: str):
        self.layout = layout
        self.what = what
        self.buffers = layout["buffers"]
        self.input_names = tuple(layout["inputs"])
        self.output_names = tuple(name for name, _ in layout["outputs"])
        self._input_buffers = dict(layout["inputs"])
        self._output_buffers = tuple(buffer for _, buffer in layout["outputs"])
        self.kernel_names = tuple(layout.get("kernels", ()))
        self.lock = threading.RLock()

    def _named(self, name: str) -> str:
        for table in ("parameters", "states", "inputs"):
            if name in self.layout.get(table, {}):
                return self.layout[table][name]
        raise MXNetError(f"{self.what} has no parameter, state or input named {name!r}")

    def set_param(self, name: str, value) -> None:
        """Copy `value` into the parameter, state or input `name` (its shape must match)."""
        buffer = self._named(name)
        array = self._converted(buffer, name, value)
        with self.lock:
            self._write(buffer, array)

    def get(self, name: str) -> np.ndarray:
        """A copy of the current value of a parameter, state or input."""
        buffer = self._named(name)
        with self.lock:
            return self._read(buffer)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(self.layout.get("parameters", {}))

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(self.layout.get("states", {}))

    def write_buffer(self, buffer: str, value) -> None:
        """Set a buffer (by its program name, e.g. 'rng') to `value`, converted to its dtype."""
        array = self._converted(buffer, buffer, value)
        with self.lock:
            self._write(buffer, array)

    def _converted(self, buffer: str, name: str, value) -> np.ndarray:
        """`value` as an array of the buffer's shape and dtype, or ShapeError/MXNetError naming `name`."""
        spec = self.buffers[buffer]
        shape, dtype = tuple(spec["shape"]), np.dtype(spec["dtype"])
        array = np.asarray(value)
        if array.shape != shape:
            if array.ndim == 0 and int(np.prod(shape, dtype=np.int64)) == 1:  # a scalar for one element
                array = array.reshape(shape)
            else:
                raise ShapeError(
                    f"{self.what}: {name!r} has shape {shape}, got an array of shape {array.shape}"
                )
        if array.dtype != dtype:
            if array.dtype.kind == "f" and dtype.kind in "iub" and not np.all(np.isfinite(array)):
                raise MXNetError(f"{self.what}: {name!r} is {dtype}, got non-finite values")
            array = array.astype(dtype)
        return array

    def _write(self, buffer: str, array: np.ndarray) -> None:
        raise NotImplementedError

    def _read(self, buffer: str) -> np.ndarray:
        raise NotImplementedError

    def _run(self) -> None:
        raise NotImplementedError

    def _timed_run(self) -> list[tuple[str, int, int]] | None:
        """Run once while a profiler watches: (kernel, start_ns, end_ns) per kernel where the device can
        time them, else None (one native call on the CPU has no kernel boundaries to time)."""
        self._run()
        return None

    def _observed_run(self) -> None:
        """`_run`, reported to observers.RUN_OBSERVER when one is installed (one global read otherwise)."""
        observer = observers.RUN_OBSERVER
        if observer is None:
            self._run()
            return
        start = time.perf_counter_ns()
        spans = self._timed_run()
        observer(self.what, self.kernel_names, start, time.perf_counter_ns(), spans)

    def run(self) -> None:
        """Run the program once over its memory as it is (holding `lock`)."""
        with self.lock:
            self._observed_run()

    def __call__(self, *args, **inputs) -> list[np.ndarray]:
        """Copy the inputs in (positionally in `input_names` order, or by name), run, return copies
        of the outputs in order. Safe from several threads: copy-in, run and copy-out hold `lock`."""
        arrays = self._input_arrays(args, inputs)
        with self.lock:
            for buffer, array in arrays:
                self._write(buffer, array)
            self._observed_run()
            return [self._read(buffer) for buffer in self._output_buffers]

    def _input_arrays(self, args: tuple, inputs: dict) -> list[tuple[str, np.ndarray]]:
        """(buffer, converted array) for every input, checked before the arena is touched."""
        if len(args) > len(self.input_names):
            raise MXNetError(f"{self.what} takes {len(self.input_names)} inputs, got {len(args)}")
        given = dict(zip(self.input_names, args))
        for name, value in inputs.items():
            if name in given:
                raise MXNetError(f"{self.what}: input {name!r} given twice")
            given[name] = value
        unknown = sorted(set(given) - set(self.input_names))
        if unknown:
            raise MXNetError(
                f"{self.what} has no input {unknown[0]!r}; its inputs are {list(self.input_names)}"
            )
        missing = [n for n in self.input_names if n not in given]
        if missing:
            raise MXNetError(f"{self.what}: no value given for input {missing[0]!r}")
        buffers = self._input_buffers
        return [(buffers[name], self._converted(buffers[name], name, value)) for name, value in given.items()]

    def outputs_view(self) -> list[np.ndarray]:
        """The outputs of the last run (live views where the memory is the host's; copies otherwise)."""
        with self.lock:
            return [self._read(buffer) for buffer in self._output_buffers]


class Executable(BoundProgram):
    """A loaded program: call it with its inputs by name; its parameters and state live inside it.

    One arena per program, shared by every calling thread (calls take turns through `lock`; see
    `BoundProgram`). The generated code keeps no state outside the arena except its thread pool,
    which serializes the parallel stages of concurrent runs, so the native entry itself is re-entrant.
    """

    def __init__(
        self,
        library: bytes,
        layout: Mapping,
        params: Mapping[str, np.ndarray] | None = None,
        what: str = "the program",
    ):
        super().__init__(layout, what)
        self._library, self._entry = load_library(library, layout["entry"], what)
        # ctypes never unloads a library; this does, when the Executable is collected.
        weakref.finalize(self, _unload, self._library)
        self._storage = np.zeros(int(layout["arena_bytes"]) + ALIGNMENT, dtype=np.uint8)
        start = (-self._storage.ctypes.data) % ALIGNMENT
        self.arena = self._storage[start : start + int(layout["arena_bytes"])]
        self._address = self.arena.ctypes.data
        self._views = {name: self._make_view(spec) for name, spec in self.buffers.items()}
        for name, value in (params or {}).items():
            self.set_param(name, value)

    def limit_threads(self, count: int) -> bool:
        """Run this program's parallel loops on at most `count` threads (1: the calling thread only, no
        pool). False when the library predates the limit (then it keeps its pool)."""
        limit = getattr(self._library, "ember_pool_limit_threads", None)
        if limit is None:
            return False
        limit.restype = None
        limit.argtypes = [ctypes.c_int]
        limit(int(count))
        return True

    def _make_view(self, spec) -> np.ndarray:
        dtype = np.dtype(spec["dtype"])
        count = int(np.prod(spec["shape"], dtype=np.int64))
        raw = self.arena[spec["offset"] : spec["offset"] + count * dtype.itemsize]
        return raw.view(dtype).reshape(spec["shape"])

    def view(self, buffer: str) -> np.ndarray:
        """The live array of one buffer (writes go straight into the program's memory)."""
        return self._views[buffer]

    def _write(self, buffer: str, array: np.ndarray) -> None:
        self._views[buffer][...] = array

    def _read(self, buffer: str) -> np.ndarray:
        return self._views[buffer].copy()

    def _run(self) -> None:
        """One native call over the arena as it is (ctypes releases the GIL for its duration)."""
        status = self._entry(self._address)
        if status != 0:
            raise MXNetError(f"{self.what} failed with status {status}")

    def outputs_view(self) -> list[np.ndarray]:
        """The outputs of the last run as live views (valid until the next run: hold `lock` from the
        run until they are read when other threads use the program)."""
        return [self._views[buffer] for buffer in self._output_buffers]
