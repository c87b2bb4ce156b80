"""Devices as MXNet names them: `mx.cpu(0)`, `mx.gpu(1)`, `mx.cpu_pinned(0)`, and the default context.

A `Context` is a plain (device type, device id) pair. `with ctx:` makes it the default for array
creation on the current thread (a thread-local stack); `current_context()` reads that default.
Creating any context always succeeds; whether arrays can live there is decided at allocation time.
`check_context` is how an API taking a context refuses anything else (a 'cpu' string, say).
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Sequence
from typing import ClassVar

from ember.compiler.buffers import nbytes_of
from ember.runtime.errors import DeviceError, MXNetError
from ember.runtime.sizes import describe_bytes

from .base import _ClassPropertyMeta, classproperty

__all__ = [
    "Context",
    "check_context",
    "context_list",
    "cpu",
    "cpu_pinned",
    "cpu_shared",
    "current_context",
    "gpu",
    "gpu_memory_info",
    "num_gpus",
]


class Context(metaclass=_ClassPropertyMeta):
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
        if not isinstance(device_type, str) or device_type not in Context.devstr2type:
            known = ", ".join(Context.devstr2type)
            raise MXNetError(f"unknown device type {device_type!r}; expected one of {known}")
        self.device_typeid = Context.devstr2type[device_type]
        self.device_id = _device_id(device_id)

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

    def __exit__(self, ptype, value, trace) -> None:
        _stack().pop()

    def empty_cache(self) -> None:
        """Release cached device memory (Ember keeps no memory pool, so there is nothing to release)."""

    @classproperty
    def default_ctx(cls) -> Context:
        """Deprecated, as in MXNet: this thread's default context (use `current_context()`)."""
        warnings.warn(_DEFAULT_CTX_DEPRECATED, DeprecationWarning, stacklevel=2)
        return current_context()

    @default_ctx.setter
    def default_ctx(cls, value: Context) -> None:
        warnings.warn(_DEFAULT_CTX_DEPRECATED, DeprecationWarning, stacklevel=2)
        Context._default.base = check_context(value, "Context.default_ctx")


_DEFAULT_CTX_DEPRECATED = (
    "Context.default_ctx has been deprecated. Please use Context.current_context() instead. "
    "Please use test_utils.set_default_context to set a default context"
)


def _device_id(value) -> int:
    """A device id as an int (anything `int()` takes whole, as MXNet stores what it is given)."""
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise MXNetError(f"device_id must be an integer such as 0 or 1, not {value!r}") from None


def check_context(value, argument: str) -> Context:
    """`value` if it is a Context; else MXNetError naming `argument`. MXNet 1.9.1 takes no device
    strings where it expects a Context (it fails reading `ctx.device_typeid`), so neither does Ember."""
    if isinstance(value, Context):
        return value
    raise MXNetError(
        f"{argument} must be a Context: pass mx.cpu() or mx.gpu(i), not {type(value).__name__} {value!r}"
    )


def context_list(value, argument: str) -> list[Context]:
    """A Context, or a non-empty list or tuple of them, as a list; MXNetError naming `argument` else."""
    contexts = list(value) if isinstance(value, (list, tuple)) else [value]
    if not contexts:
        raise MXNetError(f"{argument} is an empty list; pass mx.cpu() or mx.gpu(i), or a list of them")
    return [check_context(c, argument) for c in contexts]


def host_memory_bytes() -> int | None:
    """The bytes of physical memory this machine has (None where the OS does not say): where every
    NDArray's values live, whatever its context."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_host_memory(arrays: Sequence[tuple[str, tuple, str]], what: str) -> None:
    """Before anything is allocated: MXNetError from `what` when one of `arrays` ((name, shape, dtype)
    each), or all of them together, need more bytes than this machine has. Sizes are exact Python
    ints, so no shape wraps around to a small size."""
    limit = host_memory_bytes() or _INT64_LIMIT
    sized = [(nbytes_of(shape, dtype), name, tuple(shape), dtype) for name, shape, dtype in arrays]
    total = sum(entry[0] for entry in sized)
    if total <= limit:
        return
    sized = sorted(sized, key=lambda entry: entry[0], reverse=True)[:3]
    needs = [f"{name} of shape {shape} ({dtype}) needs {describe_bytes(n)}"
             for n, name, shape, dtype in sized]
    memory = f"this machine's {describe_bytes(limit)} of memory"
    if sized[0][0] > limit:
        raise MXNetError(f"{what}: {needs[0]}, more than {memory}")
    total_text, largest = describe_bytes(total), "; ".join(needs)
    message = f"{what}: the arrays need {total_text} in all, more than {memory}; the largest: {largest}"
    raise MXNetError(message)


_INT64_LIMIT = 2**63 - 1  # where the OS does not say how much memory there is, what no array can exceed


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
    """The default context of this thread: the innermost `with ctx:`, else the one set through
    `Context.default_ctx`, else `cpu(0)`."""
    stack = _stack()
    return stack[-1] if stack else getattr(Context._default, "base", None) or Context("cpu", 0)


def num_gpus() -> int:
    """The number of NVIDIA GPUs the CUDA driver reports; 0 when there is no driver or no GPU."""
    from ember.runtime.cuda_driver import gpu_count

    return gpu_count()


def gpu_memory_info(device_id: int = 0) -> tuple[int, int]:
    """(free, total) bytes of GPU `device_id`'s memory; DeviceError naming why without that GPU."""
    from ember.runtime.cuda_driver import cuda_device

    device = cuda_device(_device_id(device_id))
    memory_info = getattr(device, "memory_info", None)
    if memory_info is None:
        raise DeviceError(
            f"gpu_memory_info: {device} is there, but ember.runtime.cuda_driver cannot read its free "
            "memory yet"
        )
    free, total = memory_info()
    return int(free), int(total)
