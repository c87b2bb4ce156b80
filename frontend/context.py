"""Devices as MXNet names them: `mx.cpu(0)`, `mx.gpu(1)`, `mx.cpu_pinned(0)`, and the default context.

A `Context` is a plain (device type, device id) pair. `with ctx:` makes it the default for array
creation on the current thread (a thread-local stack); `current_context()` reads that default.
Creating any context always succeeds; whether arrays can live there is decided at allocation time.
"""

from __future__ import annotations

import threading
from typing import ClassVar

from ember.runtime.errors import MXNetError

__all__ = ["Context", "cpu", "cpu_pinned", "cpu_shared", "current_context", "gpu", "num_gpus"]


class Context:
    """A device: `device_type` ('cpu', 'gpu', 'cpu_pinned', 'cpu_shared') and `device_id`."""

    # The codes MXNet uses in its C API and in .params files (MXNET_COMPAT.md 10.1).
    devtype2str: ClassVar[dict[int, str]] = {1: "cpu", 2: "gpu", 3: "cpu_pinned", 5: "cpu_shared"}
    devstr2type: ClassVar[dict[str, int]] = {name: code for code, name in devtype2str.items()}

    _default = threading.local()

    def __init__(self, device_type: str | Context, device_id: int = 0):
        if isinstance(device_type, Context):
            self.device_typeid = device_type.device_typeid
            self.device_id = device_type.device_id
            return
        if device_type not in Context.devstr2type:
            known = ", ".join(Context.devstr2type)
            raise MXNetError(f"unknown device type {device_type!r}; expected one of {known}")
        self.device_typeid = Context.devstr2type[device_type]
        self.device_id = int(device_id)

    @property
    def device_type(self) -> str:
        """The device type as a string: 'cpu', 'gpu', 'cpu_pinned' or 'cpu_shared'."""
        return Context.devtype2str[self.device_typeid]

    def __hash__(self) -> int:
        return hash((self.device_typeid, self.device_id))

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, Context)
            and self.device_typeid == other.device_typeid
            and self.device_id == other.device_id
        )

    def __str__(self) -> str:
        return f"{self.device_type}({self.device_id})"

    __repr__ = __str__

    def __enter__(self) -> Context:
        _stack().append(self)
        return self

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        _stack().pop()

    def empty_cache(self) -> None:
        """Release cached device memory (nothing is cached on the CPU)."""


def _stack() -> list[Context]:
    """This thread's stack of contexts entered with `with ctx:`."""
    if not hasattr(Context._default, "stack"):
        Context._default.stack = []
    return Context._default.stack


def cpu(device_id: int = 0) -> Context:
    """The CPU context; `device_id` is kept but has no effect, as in MXNet."""
    return Context("cpu", device_id)


def gpu(device_id: int = 0) -> Context:
    """The context of GPU `device_id` (creating it always succeeds; allocating may not)."""
    return Context("gpu", device_id)


def cpu_pinned(device_id: int = 0) -> Context:
    """Page-locked CPU memory (plain CPU memory in Ember)."""
    return Context("cpu_pinned", device_id)


def cpu_shared(device_id: int = 0) -> Context:
    """Shared CPU memory (plain CPU memory in Ember)."""
    return Context("cpu_shared", device_id)


def current_context() -> Context:
    """The default context of this thread: the innermost `with ctx:`, else `cpu(0)`."""
    stack = _stack()
    return stack[-1] if stack else Context("cpu", 0)


def num_gpus() -> int:
    """The number of NVIDIA GPUs the CUDA driver reports; 0 when there is no driver or no GPU."""
    from ember.runtime.cuda_driver import gpu_count

    return gpu_count()
