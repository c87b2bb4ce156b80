"""Running compiled programs on an NVIDIA GPU: PTX loaded through cuda_driver.py, one arena in device
memory, the program's kernels launched in order.

A `CudaExecutable` has the interface of the CPU `Executable` (runtime/executable.py): `exe(data=x)`
copies the inputs to the device, launches every kernel, and copies the outputs back;
`set_param`/`get` move parameters and state in and out. Everything else (parameters, optimizer
state, gradients, scratch) stays on the device between calls. The layout's `launches` list each
kernel's symbol, grid and block. Calls from several threads are serialized per program by
`BoundProgram.lock`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np

from .cuda_driver import cuda_device
from .errors import ArtifactError
from .executable import BoundProgram


class CudaExecutable(BoundProgram):
    """A program loaded on GPU `ordinal`: call it with its inputs by name; state lives on the device.

    One device arena per program: concurrent calls take turns through `lock` (copy in, launch,
    synchronize, copy out), as on the CPU (`BoundProgram`); the CUDA driver makes the GPU's context
    current on each calling thread."""

    def __init__(
        self,
        ptx: str,
        layout: Mapping,
        params: Mapping[str, np.ndarray] | None = None,
        what: str = "the program",
        ordinal: int = 0,
    ):
        super().__init__(layout, what)
        if "launches" not in layout:
            raise ArtifactError(f"{what} has no kernel launches in its layout: it is not a CUDA program")
        self.device = cuda_device(ordinal)
        self._module = self.device.load_ptx(ptx, what)
        self._launches = [
            (self._module.function(launch["symbol"]), tuple(launch["grid"]), tuple(launch["block"]))
            for launch in layout["launches"]
        ]
        self.arena = self.device.alloc(int(layout["arena_bytes"]))
        self.device.memset(self.arena.address, self.arena.nbytes)
        for name, value in (params or {}).items():
            self.set_param(name, value)

    def _address(self, buffer: str) -> int:
        return self.arena.address + int(self.buffers[buffer]["offset"])

    def _write(self, buffer: str, array: np.ndarray) -> None:
        self.device.copy_to_device(self._address(buffer), np.ascontiguousarray(array))

    def _read(self, buffer: str) -> np.ndarray:
        spec = self.buffers[buffer]
        host = np.empty(tuple(spec["shape"]), dtype=spec["dtype"])
        self.device.copy_to_host(host, self._address(buffer))
        return host

    def _run(self) -> None:
        """Launch every kernel in order and wait for the last (a kernel's failure surfaces here)."""
        arena = [self.arena.address]
        for function, grid, block in self._launches:
            function.launch(grid, block, arena)
        self.device.synchronize()

    def _timed_run(self) -> list[tuple[str, int, int]]:
        """Launch every kernel in order, waiting for each, for a profiler: (kernel, start_ns, end_ns) per
        launch. The waits serialize host and device, so profiled runs are slower than plain ones."""
        arena = [self.arena.address]
        self.device.synchronize()  # work queued before this run is not charged to its first kernel
        spans = []
        for function, grid, block in self._launches:
            start = time.perf_counter_ns()
            function.launch(grid, block, arena)
            self.device.synchronize()
            spans.append((function.name, start, time.perf_counter_ns()))
        return spans


__all__ = ["CudaExecutable"]
