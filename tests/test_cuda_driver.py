"""ember.runtime.cuda_driver: backend selection, error sentences, and (on a GPU) memory, PTX and launches.

Without a GPU the error paths run for real, and the ctypes driver backend runs against `FakeLibcuda`: C
function pointers made from Python functions, with host memory standing in for device memory, so that
argument marshalling, context handling and error messages are exercised. The tests marked `gpu` run on
an NVIDIA GPU and skip, printing why, elsewhere.
"""

from __future__ import annotations

import ast
import ctypes
import gc
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from ember.runtime import cuda_driver
from ember.runtime.cuda_driver import DeviceError, cuda_device, gpu_available

MODULE_PATH = Path(cuda_driver.__file__)

ADD_ONE_PTX = """\
.version 8.0
.target sm_80
.address_size 64

// add_one(p, n): p[i] += 1.0f for every i < n, one thread per element.
.visible .entry add_one(
    .param .u64 p,
    .param .u64 n
)
{
    .reg .pred %in_range;
    .reg .b32 %r<5>;
    .reg .b64 %rd<7>;
    .reg .f32 %f<3>;

    ld.param.u64 %rd1, [p];
    ld.param.u64 %rd2, [n];
    mov.u32 %r1, %ctaid.x;
    mov.u32 %r2, %ntid.x;
    mov.u32 %r3, %tid.x;
    mad.lo.u32 %r4, %r1, %r2, %r3;
    cvt.u64.u32 %rd3, %r4;
    setp.lt.u64 %in_range, %rd3, %rd2;
    @!%in_range bra DONE;
    cvta.to.global.u64 %rd4, %rd1;
    shl.b64 %rd5, %rd3, 2;
    add.u64 %rd6, %rd4, %rd5;
    ld.global.f32 %f1, [%rd6];
    add.f32 %f2, %f1, 0f3F800000;
    st.global.f32 [%rd6], %f2;
DONE:
    ret;
}
"""

BAD_PTX = """\
.version 8.0
.target sm_80
.address_size 64

.visible .entry broken(
    .param .u64 p
)
{
    frobnicate.f32 %f1, %f2;
    ret;
}
"""


@pytest.fixture
def fresh_cache(monkeypatch):
    """Empty device and backend caches for one test (the real ones come back afterwards)."""
    monkeypatch.setattr(cuda_driver, "_devices", {})
    monkeypatch.setattr(cuda_driver, "_backends", {})


# ----------------------------------------------------------------------------------------------------------
# Without a GPU: selection and error sentences
# ----------------------------------------------------------------------------------------------------------


def test_driver_backend_without_driver_or_gpu(monkeypatch, fresh_cache):
    monkeypatch.setenv("EMBER_CUDA_BACKEND", "driver")
    monkeypatch.setattr(cuda_driver, "_load_library", lambda: None)
    ok, reason = gpu_available()
    assert ok is False
    assert reason.startswith("no NVIDIA GPU is available: libcuda (NVIDIA's driver) was not found")
    assert "ember[cuda]" in reason
    with pytest.raises(DeviceError, match=r"^no NVIDIA GPU is available"):
        cuda_device()


def test_driver_backend_on_this_machine(monkeypatch, fresh_cache):
    """Whatever this machine has, the driver backend either works or says, in one sentence, why not."""
    monkeypatch.setenv("EMBER_CUDA_BACKEND", "driver")
    ok, reason = gpu_available()
    if ok:
        assert cuda_device().backend == "driver"
    else:
        assert reason.startswith("no NVIDIA GPU is available")
        with pytest.raises(DeviceError, match=r"^no NVIDIA GPU is available"):
            cuda_device()


def test_pycuda_backend_without_pycuda(monkeypatch, fresh_cache):
    monkeypatch.setenv("EMBER_CUDA_BACKEND", "pycuda")
    monkeypatch.setitem(sys.modules, "pycuda", None)  # makes `import pycuda.driver` fail as if absent
    monkeypatch.setitem(sys.modules, "pycuda.driver", None)
    with pytest.raises(DeviceError, match=re.escape("pip install ember[cuda]")) as info:
        cuda_device()
    assert str(info.value) == "pycuda is not installed: pip install ember[cuda]"
    ok, reason = gpu_available()
    assert ok is False and "ember[cuda]" in reason


def test_auto_backend_falls_back_to_the_driver_without_pycuda(monkeypatch, fresh_cache):
    monkeypatch.delenv("EMBER_CUDA_BACKEND", raising=False)
    monkeypatch.setitem(sys.modules, "pycuda", None)
    monkeypatch.setitem(sys.modules, "pycuda.driver", None)
    monkeypatch.setattr(cuda_driver, "_load_library", lambda: None)
    with pytest.raises(DeviceError, match=r"^no NVIDIA GPU is available: libcuda"):
        cuda_device()


def test_unknown_backend_names_the_allowed_values(monkeypatch, fresh_cache):
    monkeypatch.setenv("EMBER_CUDA_BACKEND", "opencl")
    with pytest.raises(DeviceError) as info:
        cuda_device()
    message = str(info.value)
    assert "EMBER_CUDA_BACKEND" in message and "'opencl'" in message
    assert all(name in message for name in ("auto", "pycuda", "driver"))
    assert gpu_available() == (False, message)


def test_gpu_number_must_be_an_int(fresh_cache):
    with pytest.raises(DeviceError, match="GPU number"):
        cuda_device("0")


# ----------------------------------------------------------------------------------------------------------
# Without a GPU: the module stands alone
# ----------------------------------------------------------------------------------------------------------


def _imports(tree: ast.AST) -> list[tuple[str, int]]:
    """(module, relative level) of every import in `tree`."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.module or "", node.level))
    return found


def _standard_or_numpy(module: str, level: int) -> bool:
    top = module.split(".")[0]
    if level:
        return level == 1 and module in ("errors", "sizes")  # both standard library only
    standalone = ("ember.runtime.errors", "ember.runtime.sizes")
    return top in sys.stdlib_module_names or top == "numpy" or module in standalone


def test_module_imports_only_the_standard_library_numpy_and_errors():
    tree = ast.parse(MODULE_PATH.read_text())
    top_level = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    bad = [
        m
        for m, level in _imports(ast.Module(body=top_level, type_ignores=[]))
        if not _standard_or_numpy(m, level)
    ]
    assert bad == [], f"module-level imports outside the standard library, numpy, .errors and .sizes: {bad}"
    # Inside functions, pycuda is the one addition, imported only when its backend is chosen.
    lazy = [m for m, level in _imports(tree) if not _standard_or_numpy(m, level)]
    assert set(lazy) <= {"pycuda.driver"}, lazy


def test_importing_the_module_imports_neither_pycuda_nor_llvmlite():
    code = (
        "import sys; sys.modules['llvmlite'] = None; sys.modules['pycuda'] = None\n"
        "import ember.runtime.cuda_driver as m\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] in ('llvmlite', 'pycuda') and sys.modules[n]))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_test_kernel_ptx_assembles_with_ptxas(tmp_path):
    ptxas = shutil.which("ptxas")
    if ptxas is None:
        pytest.skip("ptxas (NVIDIA's PTX assembler) is not on PATH")
    source = tmp_path / "add_one.ptx"
    source.write_text(ADD_ONE_PTX)
    out = subprocess.run(
        [ptxas, "-arch=sm_80", str(source), "-o", "/dev/null"], check=False, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    bad = tmp_path / "bad.ptx"
    bad.write_text(BAD_PTX)
    out = subprocess.run(
        [ptxas, "-arch=sm_80", str(bad), "-o", "/dev/null"], check=False, capture_output=True, text=True
    )
    assert out.returncode != 0


# ----------------------------------------------------------------------------------------------------------
# Without a GPU: the driver backend against a fake libcuda
# ----------------------------------------------------------------------------------------------------------

ERRORS = {
    1: (b"CUDA_ERROR_INVALID_VALUE", b"invalid argument"),
    2: (b"CUDA_ERROR_OUT_OF_MEMORY", b"out of memory"),
    100: (b"CUDA_ERROR_NO_DEVICE", b"no CUDA-capable device is detected"),
    201: (b"CUDA_ERROR_INVALID_CONTEXT", b"invalid device context"),
    218: (b"CUDA_ERROR_INVALID_PTX", b"a PTX JIT compilation failed"),
    500: (b"CUDA_ERROR_NOT_FOUND", b"named symbol not found"),
    700: (b"CUDA_ERROR_ILLEGAL_ADDRESS", b"an illegal memory access was encountered"),
}
CONTEXT = 0xC0_47E7


class FakeLibcuda:
    """libcuda's entry points as C function pointers over Python code; 'device' memory is host memory.

    Like CUDA, each thread has its own current context, and memory, module and launch calls fail with
    CUDA_ERROR_INVALID_CONTEXT unless the primary context is current. Launching `add_one` runs it.
    """

    def __init__(self, devices: int = 1, init_result: int = 0, memory_limit: int = 1 << 30):
        self.devices = devices
        self.init_result = init_result
        self.memory_limit = memory_limit
        self.memory: dict[int, ctypes.Array] = {}
        self.modules: dict[int, list[bytes]] = {}
        self.functions: dict[int, bytes] = {}
        self.launches: list[tuple] = []
        self.sync_result = 0
        self.thread = threading.local()
        for name, argtypes in cuda_driver._PROTOTYPES.items():
            implementation = getattr(self, "_" + name)
            setattr(self, name, ctypes.CFUNCTYPE(ctypes.c_int, *argtypes)(implementation))

    def _current(self) -> int | None:
        return getattr(self.thread, "context", None)

    def _cuInit(self, flags):
        return self.init_result if flags == 0 else 1

    def _cuGetErrorName(self, code, text):
        if code not in ERRORS:
            return 1
        text[0] = ERRORS[code][0]
        return 0

    def _cuGetErrorString(self, code, text):
        if code not in ERRORS:
            return 1
        text[0] = ERRORS[code][1]
        return 0

    def _cuDeviceGetCount(self, count):
        count[0] = self.devices
        return 0

    def _cuDeviceGet(self, device, ordinal):
        if not 0 <= ordinal < self.devices:
            return 1
        device[0] = ordinal
        return 0

    def _cuDeviceGetName(self, buffer, length, device):
        name = b"Fake GPU 9000\0"
        if length < len(name):
            return 1
        ctypes.memmove(buffer, name, len(name))
        return 0

    def _cuDeviceGetAttribute(self, value, attribute, device):
        values = {75: 9, 76: 0, 16: 132}
        if attribute not in values:
            return 1
        value[0] = values[attribute]
        return 0

    def _cuDeviceTotalMem_v2(self, total, device):
        total[0] = 80 << 30
        return 0

    def _cuDevicePrimaryCtxRetain(self, context, device):
        context[0] = CONTEXT
        return 0

    def _cuCtxSetCurrent(self, context):
        self.thread.context = context
        return 0

    def _cuCtxGetCurrent(self, context):
        context[0] = self._current()
        return 0

    def _cuCtxSynchronize(self):
        return 201 if self._current() != CONTEXT else self.sync_result

    def _cuMemAlloc_v2(self, pointer, nbytes):
        if self._current() != CONTEXT:
            return 201
        if nbytes == 0:
            return 1  # as CUDA does: the caller must allocate at least one byte
        if nbytes > self.memory_limit:
            return 2
        block = ctypes.create_string_buffer(b"\xab" * nbytes, nbytes)
        self.memory[ctypes.addressof(block)] = block
        pointer[0] = ctypes.addressof(block)
        return 0

    def _cuMemFree_v2(self, address):
        if self._current() != CONTEXT:
            return 201
        return 0 if self.memory.pop(address, None) is not None else 1

    def _in_memory(self, address, nbytes) -> bool:
        return any(a <= address and address + nbytes <= a + len(b) for a, b in self.memory.items())

    def _cuMemcpyHtoD_v2(self, destination, source, nbytes):
        if self._current() != CONTEXT:
            return 201
        if not self._in_memory(destination, nbytes):
            return 1
        ctypes.memmove(destination, source, nbytes)
        return 0

    def _cuMemcpyDtoH_v2(self, destination, source, nbytes):
        if self._current() != CONTEXT:
            return 201
        if not self._in_memory(source, nbytes):
            return 1
        ctypes.memmove(destination, source, nbytes)
        return 0

    def _cuMemsetD8_v2(self, destination, byte, nbytes):
        if self._current() != CONTEXT:
            return 201
        if not self._in_memory(destination, nbytes):
            return 1
        ctypes.memset(destination, byte, nbytes)
        return 0

    def _cuModuleLoadDataEx(self, module, image, count, options, values):
        if self._current() != CONTEXT:
            return 201
        text = ctypes.string_at(image)
        if b"frobnicate" in text:
            settings = {options[i]: values[i] for i in range(count)}
            log = b"ptxas application ptx input, line 9; error   : Not a name of any known instruction\0"
            if settings.get(6, 0) >= len(log) and settings.get(5):
                ctypes.memmove(settings[5], log, len(log))
            return 218
        handle = 0x1000 + len(self.modules)
        self.modules[handle] = re.findall(rb"\.entry\s+(\w+)", text)
        module[0] = handle
        return 0

    def _cuModuleGetFunction(self, function, module, name):
        if self._current() != CONTEXT:
            return 201
        if name not in self.modules.get(module, []):
            return 500
        handle = 0x2000 + len(self.functions)
        self.functions[handle] = name
        function[0] = handle
        return 0

    def _cuModuleUnload(self, module):
        if self._current() != CONTEXT:
            return 201
        return 0 if self.modules.pop(module, None) is not None else 1

    def _cuLaunchKernel(self, function, gx, gy, gz, bx, by, bz, shared, stream, params, extra):
        if self._current() != CONTEXT:
            return 201
        if function not in self.functions or extra:
            return 1
        name = self.functions[function]
        args = [ctypes.c_uint64.from_address(params[i]).value for i in range(2)] if name == b"add_one" else []
        self.launches.append((name, (gx, gy, gz), (bx, by, bz), shared, stream, args))
        if name == b"add_one":
            pointer, n = args
            threads = min(n, gx * bx)
            data = np.ctypeslib.as_array((ctypes.c_float * threads).from_address(pointer))
            data += np.float32(1)
        return 0


@pytest.fixture
def fake(monkeypatch, fresh_cache):
    """The driver backend running on a `FakeLibcuda` with one GPU."""
    library = FakeLibcuda()
    monkeypatch.setenv("EMBER_CUDA_BACKEND", "driver")
    monkeypatch.setattr(cuda_driver, "_load_library", lambda: library)
    return library


def test_fake_cuinit_failure_is_one_sentence(monkeypatch, fake):
    fake.init_result = 100
    ok, reason = gpu_available()
    assert (ok, reason) == (
        False,
        "no NVIDIA GPU is available: cuInit failed with CUDA_ERROR_NO_DEVICE (no CUDA-capable device is detected)",
    )


def test_fake_no_device_and_missing_ordinal(fake):
    with pytest.raises(DeviceError, match=re.escape("gpu(3) does not exist: this machine has 1 NVIDIA GPU")):
        cuda_device(3)
    with pytest.raises(DeviceError, match=r"gpu\(-1\) does not exist"):
        cuda_device(-1)
    fake.devices = 0
    with pytest.raises(DeviceError, match="^no NVIDIA GPU is available"):
        cuda_device(0)


def test_fake_device_properties_and_cache(fake):
    device = cuda_device(0)
    assert device is cuda_device(0)
    assert device.backend == "driver"
    assert device.name == "Fake GPU 9000"
    assert device.compute_capability == (9, 0) and device.arch() == "sm_90"
    assert device.multiprocessors == 132 and device.total_memory == 80 << 30
    ok, description = gpu_available()
    assert ok and description.startswith("gpu(0) Fake GPU 9000: sm_90")


def test_fake_memory_round_trip_and_free(fake):
    device = cuda_device()
    host = np.arange(1000, dtype=np.float32) * np.float32(0.5)
    buffer = device.alloc(host.nbytes)
    assert buffer.nbytes == host.nbytes and buffer.address in fake.memory
    device.copy_to_device(buffer.address, host)
    back = np.empty_like(host)
    device.copy_to_host(back, buffer.address)
    assert np.array_equal(back, host)
    device.memset(buffer.address, buffer.nbytes)
    device.copy_to_host(back, buffer.address)
    assert not back.any()
    buffer.free()
    buffer.free()  # idempotent
    assert buffer.freed and fake.memory == {}


def test_fake_zero_byte_allocation_and_garbage_collection(fake):
    device = cuda_device()
    empty = device.alloc(0)
    assert empty.nbytes == 0 and len(fake.memory) == 1
    device.copy_to_device(empty.address, np.empty(0, np.float32))  # nothing to copy: no call
    del empty
    gc.collect()
    assert fake.memory == {}


def test_fake_calls_from_another_thread_make_the_context_current(fake):
    device = cuda_device()
    results = []

    def work():
        buffer = device.alloc(16)
        device.memset(buffer.address, 16, 7)
        out = np.zeros(16, np.uint8)
        device.copy_to_host(out, buffer.address)
        buffer.free()
        results.append(out)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert len(results) == 1 and (results[0] == 7).all()


def test_fake_out_of_memory_names_the_size(fake):
    fake.memory_limit = 1 << 20
    with pytest.raises(DeviceError) as info:
        cuda_device().alloc(3 << 30)
    assert str(info.value) == (
        "cannot allocate 3221225472 bytes (3.0 GiB) on gpu(0): "
        "cuMemAlloc_v2 failed with CUDA_ERROR_OUT_OF_MEMORY (out of memory)"
    )


def test_fake_launch_passes_64_bit_arguments(fake):
    device = cuda_device()
    host = np.arange(1000, dtype=np.float32)
    buffer = device.alloc(host.nbytes)
    device.copy_to_device(buffer.address, host)
    kernel = device.load_ptx(ADD_ONE_PTX, "the add_one test").function("add_one")
    assert kernel.name == "add_one"
    kernel.launch((4, 1, 1), (256, 1, 1), [buffer.address, host.size])
    device.synchronize()
    back = np.empty_like(host)
    device.copy_to_host(back, buffer.address)
    assert np.array_equal(back, host + 1)
    assert fake.launches == [(b"add_one", (4, 1, 1), (256, 1, 1), 0, None, [buffer.address, 1000])]
    kernel.launch([4, 1, 1], [256, 1, 1], [buffer, np.int64(1000)], shared_bytes=0)  # buffer and numpy int
    assert fake.launches[-1][-1] == [buffer.address, 1000]


def test_fake_launch_checks_grid_block_and_arguments(fake):
    kernel = cuda_device().load_ptx(ADD_ONE_PTX).function("add_one")
    for grid in [(4, 1), (0, 1, 1), (4, 1, -1), (4.0, 1, 1), "abc", (True, 1, 1)]:
        with pytest.raises(DeviceError, match="grid must be 3 positive ints"):
            kernel.launch(grid, (256, 1, 1), [0, 0])
    with pytest.raises(DeviceError, match="block must be 3 positive ints"):
        kernel.launch((1, 1, 1), (256,), [0, 0])
    for bad in [1.5, 1 << 64, -(1 << 63) - 1, "x"]:
        with pytest.raises(DeviceError, match="argument 1 must be an int that fits 64 bits"):
            kernel.launch((1, 1, 1), (1, 1, 1), [0, bad])
    assert fake.launches == []


def test_fake_bad_ptx_reports_the_jit_log(fake):
    with pytest.raises(DeviceError) as info:
        cuda_device().load_ptx(BAD_PTX, "the broken program")
    message = str(info.value)
    assert message.startswith(
        "cannot load the broken program onto gpu(0): cuModuleLoadDataEx failed with CUDA_ERROR_INVALID_PTX"
    )
    assert "Not a name of any known instruction" in message


def test_fake_missing_kernel_and_late_errors(fake):
    device = cuda_device()
    module = device.load_ptx(ADD_ONE_PTX)
    with pytest.raises(DeviceError, match=r"cannot find kernel 'nope'.*CUDA_ERROR_NOT_FOUND"):
        module.function("nope")
    fake.sync_result = 700
    with pytest.raises(DeviceError, match=r"cuCtxSynchronize failed with CUDA_ERROR_ILLEGAL_ADDRESS"):
        device.synchronize()
    fake.sync_result = 0
    del module
    gc.collect()
    assert fake.modules == {}  # unloaded when garbage-collected


def test_fake_unknown_error_code_and_host_checks(fake):
    device = cuda_device()
    fake.sync_result = 12345
    with pytest.raises(DeviceError, match=r"failed with CUDA error 12345"):
        device.synchronize()
    buffer = device.alloc(64)
    with pytest.raises(DeviceError, match="C-contiguous"):
        device.copy_to_device(buffer.address, np.zeros((4, 4), np.float32).T)
    read_only = np.zeros(16, np.float32)
    read_only.flags.writeable = False
    with pytest.raises(DeviceError, match="read-only"):
        device.copy_to_host(read_only, buffer.address)
    with pytest.raises(DeviceError, match="0 to 255"):
        device.memset(buffer.address, 4, 256)
    with pytest.raises(DeviceError, match="non-negative"):
        device.alloc(-1)


# ----------------------------------------------------------------------------------------------------------
# On a GPU
# ----------------------------------------------------------------------------------------------------------


@pytest.fixture
def gpu():
    """gpu(0), or a skip that prints why there is none."""
    ok, reason = gpu_available()
    if not ok:
        pytest.skip(reason)
    return cuda_device(0)


@pytest.mark.gpu
def test_gpu_memory_round_trip(gpu):
    host = np.random.default_rng(0).standard_normal(12345).astype(np.float32)
    buffer = gpu.alloc(host.nbytes)
    try:
        gpu.copy_to_device(buffer.address, host)
        back = np.empty_like(host)
        gpu.copy_to_host(back, buffer.address)
        assert np.array_equal(back, host)
        gpu.memset(buffer.address, buffer.nbytes)
        gpu.copy_to_host(back, buffer.address)
        assert np.array_equal(back, np.zeros_like(host))
        gpu.memset(buffer.address, 8, 0xFF)
        head = np.empty(8, np.uint8)
        gpu.copy_to_host(head, buffer.address)
        assert (head == 0xFF).all()
    finally:
        buffer.free()
    gpu.alloc(0).free()


@pytest.mark.gpu
def test_gpu_launch_add_one(gpu):
    host = np.arange(1000, dtype=np.float32) * np.float32(0.25)
    buffer = gpu.alloc(host.nbytes + 64)  # room past n: the bounds check must leave it alone
    gpu.memset(buffer.address, buffer.nbytes, 0)
    gpu.copy_to_device(buffer.address, host)
    kernel = gpu.load_ptx(ADD_ONE_PTX, "the add_one test").function("add_one")
    kernel.launch((4, 1, 1), (256, 1, 1), [buffer.address, host.size])
    gpu.synchronize()
    back = np.empty(host.size + 16, np.float32)
    gpu.copy_to_host(back, buffer.address)
    assert np.array_equal(back[: host.size], host + np.float32(1))
    assert not back[host.size :].any()
    buffer.free()


@pytest.mark.gpu
def test_gpu_launch_from_another_thread(gpu):
    kernel = gpu.load_ptx(ADD_ONE_PTX).function("add_one")
    host = np.zeros(300, np.float32)
    buffer = gpu.alloc(host.nbytes)
    errors = []

    def work():
        try:
            gpu.copy_to_device(buffer.address, host)
            kernel.launch((2, 1, 1), (256, 1, 1), [buffer, host.size])
            gpu.synchronize()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert errors == []
    gpu.copy_to_host(host, buffer.address)
    assert (host == 1).all()


@pytest.mark.gpu
def test_gpu_malformed_ptx(gpu):
    with pytest.raises(DeviceError) as info:
        gpu.load_ptx(BAD_PTX, "the broken program")
    message = str(info.value)
    print(message)
    assert message.startswith("cannot load the broken program onto gpu(0)")
    with pytest.raises(DeviceError):
        gpu.load_ptx("this is not PTX")
    gpu.synchronize()  # a failed load leaves the device usable


@pytest.mark.gpu
def test_gpu_missing_kernel(gpu):
    module = gpu.load_ptx(ADD_ONE_PTX)
    with pytest.raises(DeviceError, match="nope"):
        module.function("nope")
    assert module.function("add_one").name == "add_one"


@pytest.mark.gpu
def test_gpu_bad_launch_configuration(gpu):
    kernel = gpu.load_ptx(ADD_ONE_PTX).function("add_one")
    with pytest.raises(DeviceError, match="add_one"):
        kernel.launch((1, 1, 1), (4096, 1, 1), [0, 0])  # more threads per block than any GPU allows
    gpu.synchronize()


@pytest.mark.gpu
def test_gpu_out_of_memory_names_the_size(gpu):
    with pytest.raises(DeviceError, match=r"cannot allocate \d+ bytes \(\d+\.\d GiB\) on gpu\(0\)"):
        gpu.alloc(gpu.total_memory * 4)
