"""Ember's link to NVIDIA GPUs: devices, memory, PTX modules and kernel launches, with no compiled dependency.

The CUDA backend of the code generator writes PTX text; this module loads that text onto a GPU and runs
it. Two interchangeable backends sit behind one small interface (`cuda_device` returns a `CudaDevice`,
which hands out `DeviceBuffer`, `CudaModule` and `CudaFunction` objects):

* ``driver``: NVIDIA's CUDA driver API (libcuda) called through `ctypes`; it needs nothing but NVIDIA's
  driver.
* ``pycuda``: the same operations made through pycuda (``pip install ember[cuda]``), imported only when
  this backend is chosen.

The environment variable ``EMBER_CUDA_BACKEND`` picks one: ``auto`` (the default: pycuda when it imports,
else the driver), ``pycuda`` or ``driver``. Every failure is raised as `DeviceError` naming what was being
done, the CUDA call and CUDA's own error name and description. Kernel launches, copies and memsets all go
to the default stream, so they run in the order they were issued; `CudaDevice.synchronize` waits for them
and reports errors of earlier launches.

Like the rest of the runtime, this module imports only the standard library and numpy.
"""

from __future__ import annotations

import contextlib
import ctypes
import operator
import os
import sys
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from .errors import DeviceError
from .sizes import describe_bytes

ENV_BACKEND = "EMBER_CUDA_BACKEND"
BACKENDS = ("auto", "pycuda", "driver")

_NO_GPU = "no NVIDIA GPU is available"
_NO_DRIVER = (
    f"{_NO_GPU}: libcuda (NVIDIA's driver) was not found "
    "(install NVIDIA's driver; `pip install ember[cuda]` adds pycuda)"
)
_NO_PYCUDA = "pycuda is not installed: pip install ember[cuda]"

_JIT_LOG_BYTES = 16 * 1024
_U32_LIMIT = 1 << 32
_U64_LIMIT = 1 << 64
_I64_MIN = -(1 << 63)

# CUdevice_attribute values (cuda.h).
_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16
_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75
_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76
# CUjit_option values (cuda.h).
_JIT_ERROR_LOG_BUFFER = 5
_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6

# The C prototype of every libcuda entry point used: CUresult (an int) is the return type of all of them.
# CUdevice is an int, CUdeviceptr a 64-bit unsigned int, and contexts, modules, functions and streams are
# opaque pointers.
_c_int_p = ctypes.POINTER(ctypes.c_int)
_c_void_pp = ctypes.POINTER(ctypes.c_void_p)
_PROTOTYPES: dict[str, tuple] = {
    "cuInit": (ctypes.c_uint,),
    "cuGetErrorName": (ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)),
    "cuGetErrorString": (ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)),
    "cuDeviceGetCount": (_c_int_p,),
    "cuDeviceGet": (_c_int_p, ctypes.c_int),
    "cuDeviceGetName": (ctypes.POINTER(ctypes.c_char), ctypes.c_int, ctypes.c_int),
    "cuDeviceGetAttribute": (_c_int_p, ctypes.c_int, ctypes.c_int),
    "cuDeviceTotalMem_v2": (ctypes.POINTER(ctypes.c_size_t), ctypes.c_int),
    "cuDevicePrimaryCtxRetain": (_c_void_pp, ctypes.c_int),
    "cuCtxSetCurrent": (ctypes.c_void_p,),
    "cuCtxGetCurrent": (_c_void_pp,),
    "cuCtxSynchronize": (),
    "cuMemAlloc_v2": (ctypes.POINTER(ctypes.c_uint64), ctypes.c_size_t),
    "cuMemFree_v2": (ctypes.c_uint64,),
    "cuMemcpyHtoD_v2": (ctypes.c_uint64, ctypes.c_void_p, ctypes.c_size_t),
    "cuMemcpyDtoH_v2": (ctypes.c_void_p, ctypes.c_uint64, ctypes.c_size_t),
    "cuMemsetD8_v2": (ctypes.c_uint64, ctypes.c_ubyte, ctypes.c_size_t),
    "cuModuleLoadDataEx": (_c_void_pp, ctypes.c_void_p, ctypes.c_uint, _c_int_p, _c_void_pp),
    "cuModuleGetFunction": (_c_void_pp, ctypes.c_void_p, ctypes.c_char_p),
    "cuModuleUnload": (ctypes.c_void_p,),
    "cuLaunchKernel": (
        ctypes.c_void_p,  # CUfunction f
        ctypes.c_uint,  # gridDimX
        ctypes.c_uint,  # gridDimY
        ctypes.c_uint,  # gridDimZ
        ctypes.c_uint,  # blockDimX
        ctypes.c_uint,  # blockDimY
        ctypes.c_uint,  # blockDimZ
        ctypes.c_uint,  # sharedMemBytes
        ctypes.c_void_p,  # CUstream hStream
        _c_void_pp,  # void **kernelParams
        _c_void_pp,  # void **extra
    ),
}

_lock = threading.RLock()
_devices: dict[int, CudaDevice] = {}  # ordinal -> the one CudaDevice of that GPU
_backends: dict[str, Any] = {}  # backend name -> its initialised backend


# ----------------------------------------------------------------------------------------------------------
# Public interface
# ----------------------------------------------------------------------------------------------------------


def cuda_device(ordinal: int = 0) -> CudaDevice:
    """The GPU numbered `ordinal` (0 is the first), opened once per process; DeviceError when unusable."""
    index = _ordinal(ordinal)
    with _lock:
        device = _devices.get(index)
        if device is None:
            backend = _backend()
            count = backend.device_count()
            if count == 0:
                raise DeviceError(f"{_NO_GPU}: NVIDIA's driver reports no CUDA-capable device")
            if index < 0 or index >= count:
                plural = "" if count == 1 else "s"
                raise DeviceError(f"gpu({index}) does not exist: this machine has {count} NVIDIA GPU{plural}")
            device = CudaDevice(index, backend.name, backend.open(index))
            _devices[index] = device
    return device


def gpu_count() -> int:
    """How many NVIDIA GPUs the driver reports; 0 when there is no driver or no GPU (never raises)."""
    try:
        return int(_backend().device_count())
    except Exception:  # noqa: BLE001 - no driver, no backend, no device: all mean "no GPU"
        return 0


def gpu_available() -> tuple[bool, str]:
    """(True, a description of gpu(0)) when a GPU can be used, else (False, the reason); never raises."""
    try:
        device = cuda_device(0)
    except DeviceError as exc:
        return False, str(exc)
    except Exception as exc:  # noqa: BLE001 - an unforeseen failure still means "no usable GPU"
        return False, f"{_NO_GPU}: {type(exc).__name__}: {exc}"
    return True, device.description()


class CudaDevice:
    """One NVIDIA GPU with its primary context: allocates memory, copies, loads PTX and synchronizes."""

    def __init__(self, ordinal: int, backend: str, impl: Any):
        self.ordinal = ordinal
        self.backend = backend
        self._impl = impl
        self.name: str = impl.name
        self.compute_capability: tuple[int, int] = impl.compute_capability
        self.multiprocessors: int = impl.multiprocessors
        self.total_memory: int = impl.total_memory

    def __repr__(self) -> str:
        return f"<CudaDevice {self.description()}>"

    def description(self) -> str:
        """One line naming the GPU: number, model, architecture, multiprocessors, memory and backend."""
        return (
            f"gpu({self.ordinal}) {self.name}: {self.arch()}, {self.multiprocessors} multiprocessors, "
            f"{self.total_memory / 2**30:.1f} GiB, {self.backend} backend"
        )

    def arch(self) -> str:
        """The PTX target of this GPU, such as "sm_90"."""
        major, minor = self.compute_capability
        return f"sm_{major}{minor}"

    def load_ptx(self, ptx: str, what: str = "the program") -> CudaModule:
        """PTX text compiled by the driver's JIT for this GPU; DeviceError with the JIT's log on failure."""
        if not isinstance(ptx, str):
            raise DeviceError(f"cannot load {what} onto gpu({self.ordinal}): PTX must be a str")
        handle = self._impl.load_module(ptx, f"cannot load {what} onto gpu({self.ordinal})")
        return CudaModule(self, handle, what)

    def alloc(self, nbytes: int) -> DeviceBuffer:
        """`nbytes` bytes of GPU memory (0 is allowed); DeviceError naming the size when out of memory."""
        size = _count(nbytes, "the size of a GPU allocation")
        what = f"cannot allocate {describe_bytes(size)} on gpu({self.ordinal})"
        address = self._impl.alloc(max(size, 1), what)
        return DeviceBuffer(self, address, size)

    def copy_to_device(self, address: int, host: np.ndarray) -> None:
        """Copies all of the C-contiguous array `host` to GPU memory at `address`."""
        array = _host_array(host, writable=False, what="copy_to_device")
        target = _address(address, "copy_to_device")
        if array.nbytes:
            what = f"cannot copy {describe_bytes(array.nbytes)} to gpu({self.ordinal})"
            self._impl.copy_to_device(target, array, what)

    def copy_to_host(self, host: np.ndarray, address: int) -> None:
        """Fills the C-contiguous, writable array `host` from GPU memory at `address` (host.nbytes bytes)."""
        array = _host_array(host, writable=True, what="copy_to_host")
        source = _address(address, "copy_to_host")
        if array.nbytes:
            what = f"cannot copy {describe_bytes(array.nbytes)} from gpu({self.ordinal})"
            self._impl.copy_to_host(array, source, what)

    def memset(self, address: int, nbytes: int, byte: int = 0) -> None:
        """Sets `nbytes` bytes of GPU memory at `address` to `byte` (0 to 255)."""
        target = _address(address, "memset")
        size = _count(nbytes, "the size of a memset")
        value = _count(byte, "the byte of a memset")
        if value > 255:
            raise DeviceError(f"the byte of a memset must be 0 to 255, not {value}")
        if size:
            what = f"cannot set {describe_bytes(size)} on gpu({self.ordinal})"
            self._impl.memset(target, size, value, what)

    def synchronize(self) -> None:
        """Waits for all work issued to this GPU; errors of earlier asynchronous launches surface here."""
        self._impl.synchronize(f"gpu({self.ordinal}) failed running earlier work")


class DeviceBuffer:
    """GPU memory at `address`, `nbytes` long; freed by `free()` or when garbage-collected."""

    def __init__(self, device: CudaDevice, address: int, nbytes: int):
        self.device = device
        self.address = address
        self.nbytes = nbytes
        what = f"cannot free {describe_bytes(nbytes)} on gpu({device.ordinal})"
        self._finalizer = weakref.finalize(self, _release_quietly, device._impl.free, address, what)
        # At interpreter exit the driver releases the process's memory itself; calling into it then is
        # needless and, once libraries are being torn down, unsafe.
        self._finalizer.atexit = False

    def __repr__(self) -> str:
        state = "freed" if self.freed else f"at 0x{self.address:x}"
        return f"<DeviceBuffer {self.nbytes} bytes on gpu({self.device.ordinal}) {state}>"

    @property
    def freed(self) -> bool:
        """Whether the memory has been given back."""
        return not self._finalizer.alive

    def free(self) -> None:
        """Gives the memory back to the GPU; calling it again does nothing."""
        if self._finalizer.detach() is not None:
            self.device._impl.free(
                self.address, f"cannot free {describe_bytes(self.nbytes)} on gpu({self.device.ordinal})"
            )


class CudaModule:
    """PTX loaded onto a GPU; `function(name)` finds one of its kernels."""

    def __init__(self, device: CudaDevice, handle: Any, what: str):
        self.device = device
        self.what = what
        self._handle = handle
        unload = device._impl.unload_module
        self._finalizer = weakref.finalize(self, _release_quietly, unload, handle, f"cannot unload {what}")
        self._finalizer.atexit = False

    def __repr__(self) -> str:
        return f"<CudaModule {self.what} on gpu({self.device.ordinal})>"

    def function(self, name: str) -> CudaFunction:
        """The kernel `name` (its `.entry` name in the PTX); DeviceError when the module has none."""
        if not isinstance(name, str) or not name:
            raise DeviceError(f"a kernel name must be a non-empty str, not {name!r}")
        what = f"cannot find kernel {name!r} in {self.what}"
        return CudaFunction(self, name, self.device._impl.get_function(self._handle, name, what))


class CudaFunction:
    """One kernel of a `CudaModule`, launched with `launch`."""

    def __init__(self, module: CudaModule, name: str, handle: Any):
        self.module = module  # keeps the module loaded while the function lives
        self.name = name
        self._handle = handle

    def __repr__(self) -> str:
        return f"<CudaFunction {self.name} of {self.module.what}>"

    def launch(
        self, grid: tuple[int, int, int], block: tuple[int, int, int], args: list, shared_bytes: int = 0
    ) -> None:
        """Starts the kernel on the default stream, each of `args` passed as a 64-bit value; returns at once.

        An argument is a Python int (a device address or an int64 scalar) or a `DeviceBuffer` (its
        address). Launch errors raise DeviceError naming the kernel; errors while it runs surface at
        the next `CudaDevice.synchronize` or copy to the host.
        """
        grid_dims = _dims(grid, "grid", self.name)
        block_dims = _dims(block, "block", self.name)
        values = [_argument(arg, i, self.name) for i, arg in enumerate(args)]
        shared = _count(shared_bytes, f"the shared memory of kernel {self.name!r}")
        if shared >= _U32_LIMIT:
            raise DeviceError(f"kernel {self.name!r}: shared_bytes {shared} is too large")
        device = self.module.device
        what = f"cannot launch kernel {self.name!r} on gpu({device.ordinal}) with grid {grid_dims}, block {block_dims}"
        device._impl.launch(self._handle, grid_dims, block_dims, values, shared, what)


# ----------------------------------------------------------------------------------------------------------
# Checks of what callers pass
# ----------------------------------------------------------------------------------------------------------


def _integer(value: Any) -> int | None:
    """`value` as an int when it is an integer (Python or numpy, bools excluded), else None."""
    if isinstance(value, (bool, np.bool_)):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _ordinal(ordinal: Any) -> int:
    """A GPU number checked to be an int."""
    index = _integer(ordinal)
    if index is None:
        raise DeviceError(f"a GPU number must be an int, not {ordinal!r}")
    return index


def _count(value: Any, what: str) -> int:
    """A non-negative int, or DeviceError naming `what`."""
    number = _integer(value)
    if number is None or number < 0:
        raise DeviceError(f"{what} must be a non-negative int, not {value!r}")
    return number


def _address(value: Any, what: str) -> int:
    """A device address: an int in [0, 2**64)."""
    number = _integer(value)
    if number is None or not 0 <= number < _U64_LIMIT:
        raise DeviceError(f"{what}: a device address must be an int in [0, 2**64), not {value!r}")
    return number


def _host_array(host: Any, writable: bool, what: str) -> np.ndarray:
    """`host` checked to be a C-contiguous numpy array (writable when asked)."""
    if not isinstance(host, np.ndarray):
        raise DeviceError(f"{what}: the host side must be a numpy array, not {type(host).__name__}")
    if not host.flags.c_contiguous:
        raise DeviceError(f"{what}: the host array must be C-contiguous (use numpy.ascontiguousarray)")
    if writable and not host.flags.writeable:
        raise DeviceError(f"{what}: the host array is read-only")
    return host


def _dims(dims: Any, what: str, kernel: str) -> tuple[int, int, int]:
    """A grid or block shape: 3 positive ints, each below 2**32."""
    values = tuple(dims) if isinstance(dims, (tuple, list)) else ()
    numbers = tuple(_integer(v) for v in values)
    if len(numbers) != 3 or any(n is None or not 0 < n < _U32_LIMIT for n in numbers):
        raise DeviceError(f"kernel {kernel!r}: {what} must be 3 positive ints, not {dims!r}")
    return numbers  # type: ignore[return-value]


def _argument(arg: Any, position: int, kernel: str) -> int:
    """A kernel argument as an int that fits 64 bits (an address or an int64 scalar)."""
    if isinstance(arg, DeviceBuffer):
        return arg.address
    value = _integer(arg)
    if value is None or not _I64_MIN <= value < _U64_LIMIT:
        raise DeviceError(
            f"kernel {kernel!r}: argument {position} must be an int that fits 64 bits "
            f"(a device address or an int64), not {arg!r}"
        )
    return value


def _release_quietly(release: Callable[..., None], *args: Any) -> None:
    """Runs a release from a finalizer: never raises, and does nothing while the interpreter shuts down."""
    try:
        if sys.is_finalizing():
            return
        release(*args)
    except Exception:  # noqa: BLE001, S110 - a finalizer must not raise; the memory goes back at exit
        pass


# ----------------------------------------------------------------------------------------------------------
# Backend selection
# ----------------------------------------------------------------------------------------------------------


def _backend() -> Any:
    """The initialised backend EMBER_CUDA_BACKEND selects (cached once it works)."""
    raw = os.environ.get(ENV_BACKEND, "auto")
    choice = raw.strip().lower() or "auto"
    if choice not in BACKENDS:
        raise DeviceError(f"{ENV_BACKEND}={raw!r} is not a CUDA backend: use one of auto, pycuda, driver")
    cuda = None
    if choice in ("auto", "pycuda"):
        cuda = _import_pycuda(required=choice == "pycuda")
    name = "pycuda" if cuda is not None else "driver"
    with _lock:
        backend = _backends.get(name)
        if backend is None:
            backend = _PycudaBackend(cuda) if cuda is not None else _DriverBackend()
            _backends[name] = backend
    return backend


def _import_pycuda(required: bool) -> Any:
    """pycuda.driver, or None when it does not import and was not required (DeviceError when required)."""
    try:
        import pycuda.driver as cuda
    except ModuleNotFoundError as exc:
        if not required:
            return None
        if (exc.name or "").split(".")[0] == "pycuda":
            raise DeviceError(_NO_PYCUDA) from None
        raise DeviceError(f"pycuda cannot be imported: {exc} (pip install ember[cuda])") from None
    except Exception as exc:  # noqa: BLE001 - pycuda is there but cannot load, e.g. without libcuda
        if not required:
            return None
        raise DeviceError(f"{_NO_GPU}: pycuda cannot be imported ({type(exc).__name__}: {exc})") from None
    return cuda


# ----------------------------------------------------------------------------------------------------------
# The driver backend: libcuda through ctypes
# ----------------------------------------------------------------------------------------------------------


def _load_library() -> Any:
    """libcuda opened through ctypes, or None when NVIDIA's driver is not installed."""
    if sys.platform == "win32":
        names, loader = ("nvcuda.dll",), ctypes.WinDLL
    else:
        names, loader = ("libcuda.so.1", "libcuda.so"), ctypes.CDLL
    for name in names:
        try:
            return loader(name)
        except OSError:
            continue
    return None


class _DriverApi:
    """libcuda's entry points with their prototypes declared, and CUresult codes turned into DeviceError."""

    def __init__(self, library: Any):
        self._functions: dict[str, Any] = {}
        for name, argtypes in _PROTOTYPES.items():
            try:
                function = getattr(library, name)
            except AttributeError:
                raise DeviceError(
                    f"{_NO_GPU}: NVIDIA's driver (libcuda) has no {name}; it is too old, update it"
                ) from None
            function.argtypes = argtypes
            function.restype = ctypes.c_int
            self._functions[name] = function

    def raw(self, name: str, *args: Any) -> int:
        """Calls the entry point `name` and returns its CUresult."""
        return self._functions[name](*args)

    def call(self, what: str, name: str, *args: Any) -> None:
        """Calls the entry point `name`; DeviceError "{what}: {name} failed with ..." unless it succeeds."""
        result = self._functions[name](*args)
        if result != 0:
            raise DeviceError(self.message(what, name, result))

    def message(self, what: str, name: str, result: int) -> str:
        """The sentence for a failed call."""
        return f"{what}: {name} failed with {self.error_text(result)}"

    def error_text(self, result: int) -> str:
        """The text "CUDA_ERROR_NAME (description)" of a CUresult, from cuGetErrorName/cuGetErrorString."""
        name = ctypes.c_char_p()
        if self._functions["cuGetErrorName"](result, ctypes.byref(name)) != 0 or not name.value:
            return f"CUDA error {result} (a code this driver does not know)"
        text = ctypes.c_char_p()
        if self._functions["cuGetErrorString"](result, ctypes.byref(text)) != 0 or not text.value:
            return name.value.decode(errors="replace")
        return f"{name.value.decode(errors='replace')} ({text.value.decode(errors='replace')})"


class _DriverBackend:
    """The process's libcuda, initialised with cuInit."""

    name = "driver"

    def __init__(self):
        library = _load_library()
        if library is None:
            raise DeviceError(_NO_DRIVER)
        self.api = _DriverApi(library)
        self.api.call(_NO_GPU, "cuInit", 0)

    def device_count(self) -> int:
        """How many CUDA devices the driver sees."""
        count = ctypes.c_int(0)
        self.api.call(_NO_GPU, "cuDeviceGetCount", ctypes.byref(count))
        return count.value

    def open(self, ordinal: int) -> _DriverDevice:
        """The device `ordinal`, with its primary context retained."""
        return _DriverDevice(self.api, ordinal)


class _DriverDevice:
    """One GPU through the driver API; every call sequence first makes its primary context current."""

    def __init__(self, api: _DriverApi, ordinal: int):
        self.api = api
        what = f"cannot open gpu({ordinal})"
        device = ctypes.c_int(0)
        api.call(what, "cuDeviceGet", ctypes.byref(device), ordinal)
        self.device = device.value
        name = ctypes.create_string_buffer(256)
        api.call(what, "cuDeviceGetName", name, len(name), self.device)
        self.name = name.value.decode(errors="replace")
        major = self._attribute(_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, what)
        minor = self._attribute(_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, what)
        self.compute_capability = (major, minor)
        self.multiprocessors = self._attribute(_ATTRIBUTE_MULTIPROCESSOR_COUNT, what)
        total = ctypes.c_size_t(0)
        api.call(what, "cuDeviceTotalMem_v2", ctypes.byref(total), self.device)
        self.total_memory = total.value
        context = ctypes.c_void_p()
        api.call(what, "cuDevicePrimaryCtxRetain", ctypes.byref(context), self.device)
        if not context.value:
            raise DeviceError(f"{what}: cuDevicePrimaryCtxRetain returned no context")
        self.context = context.value

    def _attribute(self, attribute: int, what: str) -> int:
        """One cuDeviceGetAttribute value."""
        value = ctypes.c_int(0)
        self.api.call(what, "cuDeviceGetAttribute", ctypes.byref(value), attribute, self.device)
        return value.value

    def _activate(self, what: str) -> None:
        """Makes the primary context current on the calling thread (threads each have their own)."""
        current = ctypes.c_void_p()
        self.api.call(what, "cuCtxGetCurrent", ctypes.byref(current))
        if current.value != self.context:
            self.api.call(what, "cuCtxSetCurrent", ctypes.c_void_p(self.context))

    def alloc(self, nbytes: int, what: str) -> int:
        """The address of `nbytes` new bytes of device memory."""
        self._activate(what)
        pointer = ctypes.c_uint64(0)
        self.api.call(what, "cuMemAlloc_v2", ctypes.byref(pointer), nbytes)
        return pointer.value

    def free(self, address: int, what: str) -> None:
        """Frees memory from `alloc`."""
        self._activate(what)
        self.api.call(what, "cuMemFree_v2", address)

    def copy_to_device(self, address: int, host: np.ndarray, what: str) -> None:
        """Copies the host array's bytes to `address`."""
        self._activate(what)
        self.api.call(what, "cuMemcpyHtoD_v2", address, host.ctypes.data, host.nbytes)

    def copy_to_host(self, host: np.ndarray, address: int, what: str) -> None:
        """Copies host.nbytes bytes from `address` into the host array."""
        self._activate(what)
        self.api.call(what, "cuMemcpyDtoH_v2", host.ctypes.data, address, host.nbytes)

    def memset(self, address: int, nbytes: int, byte: int, what: str) -> None:
        """Sets `nbytes` bytes at `address` to `byte`."""
        self._activate(what)
        self.api.call(what, "cuMemsetD8_v2", address, byte, nbytes)

    def synchronize(self, what: str) -> None:
        """Waits for the context's work."""
        self._activate(what)
        self.api.call(what, "cuCtxSynchronize")

    def load_module(self, ptx: str, what: str) -> int:
        """The CUmodule of PTX text, with the JIT's error log in the DeviceError when it fails."""
        image = ctypes.create_string_buffer(ptx.encode())  # NUL-terminated, as the driver expects
        log = ctypes.create_string_buffer(_JIT_LOG_BYTES)
        options = (ctypes.c_int * 2)(_JIT_ERROR_LOG_BUFFER, _JIT_ERROR_LOG_BUFFER_SIZE_BYTES)
        values = (ctypes.c_void_p * 2)(ctypes.addressof(log), _JIT_LOG_BYTES)
        module = ctypes.c_void_p()
        self._activate(what)
        result = self.api.raw("cuModuleLoadDataEx", ctypes.byref(module), image, 2, options, values)
        if result != 0:
            message = self.api.message(what, "cuModuleLoadDataEx", result)
            jit_log = log.value.decode(errors="replace").strip()
            raise DeviceError(f"{message}; the JIT compiler said:\n{jit_log}" if jit_log else message)
        if not module.value:
            raise DeviceError(f"{what}: cuModuleLoadDataEx returned no module")
        return module.value

    def unload_module(self, module: int, what: str) -> None:
        """Unloads a module from `load_module`."""
        self._activate(what)
        self.api.call(what, "cuModuleUnload", ctypes.c_void_p(module))

    def get_function(self, module: int, name: str, what: str) -> int:
        """The CUfunction `name` of a module."""
        self._activate(what)
        function = ctypes.c_void_p()
        self.api.call(
            what, "cuModuleGetFunction", ctypes.byref(function), ctypes.c_void_p(module), name.encode()
        )
        if not function.value:
            raise DeviceError(f"{what}: cuModuleGetFunction returned no function")
        return function.value

    def launch(
        self,
        function: int,
        grid: tuple[int, int, int],
        block: tuple[int, int, int],
        values: Sequence[int],
        shared_bytes: int,
        what: str,
    ) -> None:
        """cuLaunchKernel on the default stream; kernelParams points at one 64-bit storage per argument."""
        # The storages and the pointer array must outlive the call: these locals hold them.
        storages = [ctypes.c_int64(v) if v < 0 else ctypes.c_uint64(v) for v in values]
        params = (
            (ctypes.c_void_p * len(storages))(*[ctypes.addressof(s) for s in storages]) if storages else None
        )
        self._activate(what)
        self.api.call(
            what, "cuLaunchKernel", ctypes.c_void_p(function), *grid, *block, shared_bytes, None, params, None
        )


# ----------------------------------------------------------------------------------------------------------
# The pycuda backend
# ----------------------------------------------------------------------------------------------------------


class _PycudaBackend:
    """pycuda.driver, initialised with cuda.init()."""

    name = "pycuda"

    def __init__(self, cuda: Any):
        self.cuda = cuda
        try:
            cuda.init()
        except cuda.Error as exc:
            raise DeviceError(f"{_NO_GPU}: {exc}") from None

    def device_count(self) -> int:
        """How many CUDA devices pycuda sees."""
        try:
            return self.cuda.Device.count()
        except self.cuda.Error as exc:
            raise DeviceError(f"{_NO_GPU}: {exc}") from None

    def open(self, ordinal: int) -> _PycudaDevice:
        """The device `ordinal`, with its primary context retained."""
        return _PycudaDevice(self.cuda, ordinal)


class _PycudaDevice:
    """One GPU through pycuda; every call sequence runs with its primary context pushed."""

    def __init__(self, cuda: Any, ordinal: int):
        self.cuda = cuda
        with self._errors(f"cannot open gpu({ordinal})"):
            device = cuda.Device(ordinal)
            self.name = device.name()
            major, minor = device.compute_capability()
            self.compute_capability = (int(major), int(minor))
            self.multiprocessors = int(device.get_attribute(cuda.device_attribute.MULTIPROCESSOR_COUNT))
            self.total_memory = int(device.total_memory())
            self.context = device.retain_primary_context()
        # address -> pycuda DeviceAllocation. No lock: a dict's setitem and pop are atomic, and a finalizer
        # freeing memory may run (through the garbage collector) in the middle of any other call.
        self._allocations: dict[int, Any] = {}

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Turns pycuda's errors into DeviceError."""
        try:
            yield
        except self.cuda.Error as exc:
            raise DeviceError(f"{what}: {exc}") from None

    @contextlib.contextmanager
    def _active(self, what: str) -> Iterator[None]:
        """Runs the block with the primary context pushed, pycuda errors turned into DeviceError."""
        with self._errors(what):
            self.context.push()
        try:
            with self._errors(what):
                yield
        finally:
            with self._errors(what):
                self.cuda.Context.pop()

    def alloc(self, nbytes: int, what: str) -> int:
        """The address of `nbytes` new bytes of device memory."""
        with self._active(what):
            allocation = self.cuda.mem_alloc(nbytes)
        address = int(allocation)
        self._allocations[address] = allocation
        return address

    def free(self, address: int, what: str) -> None:
        """Frees memory from `alloc`."""
        allocation = self._allocations.pop(address, None)
        if allocation is not None:
            with self._active(what):
                allocation.free()

    def copy_to_device(self, address: int, host: np.ndarray, what: str) -> None:
        """Copies the host array's bytes to `address`."""
        with self._active(what):
            self.cuda.memcpy_htod(address, host)

    def copy_to_host(self, host: np.ndarray, address: int, what: str) -> None:
        """Copies host.nbytes bytes from `address` into the host array."""
        with self._active(what):
            self.cuda.memcpy_dtoh(host, address)

    def memset(self, address: int, nbytes: int, byte: int, what: str) -> None:
        """Sets `nbytes` bytes at `address` to `byte`."""
        with self._active(what):
            self.cuda.memset_d8(address, byte, nbytes)

    def synchronize(self, what: str) -> None:
        """Waits for the context's work."""
        with self._active(what):
            self.cuda.Context.synchronize()

    def load_module(self, ptx: str, what: str) -> Any:
        """The pycuda Module of PTX text, with the JIT's error log in the DeviceError when it fails."""
        logs: list[str] = []

        def keep_log(success: bool, info: str, error: str) -> None:
            if not success and error:
                logs.append(error.strip())

        try:
            with self._active(what):
                return self.cuda.module_from_buffer(ptx.encode(), message_handler=keep_log)
        except DeviceError as exc:
            jit_log = "\n".join(log for log in logs if log not in str(exc))
            if jit_log:
                raise DeviceError(f"{exc}; the JIT compiler said:\n{jit_log}") from None
            raise

    def unload_module(self, module: Any, what: str) -> None:
        """Nothing to do: pycuda unloads a module when its last reference goes."""

    def get_function(self, module: Any, name: str, what: str) -> Any:
        """The pycuda Function `name` of a module."""
        with self._active(what):
            return module.get_function(name)

    def launch(
        self,
        function: Any,
        grid: tuple[int, int, int],
        block: tuple[int, int, int],
        values: Sequence[int],
        shared_bytes: int,
        what: str,
    ) -> None:
        """Function.__call__ on the default stream, each argument a numpy 64-bit scalar."""
        args = [np.int64(v) if v < 0 else np.uint64(v) for v in values]
        with self._active(what):
            function(*args, block=block, grid=grid, shared=shared_bytes)
