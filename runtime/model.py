"""A compiled model as users hold it: `model(data=x) -> [outputs]`, `model.save(path)`, and `load`.

`CompiledModel` wraps an `Artifact` (runtime/artifact.py) and the program made from it: an
`Executable` for a CPU artifact, a `CudaExecutable` (runtime/cuda_executable.py) for a GPU one. It
needs numpy and ctypes only, so `ember.runtime.load('mlp.ember')` works in a process that never
imported the compiler (or where llvmlite is not installed at all). A GPU artifact is loaded onto its
GPU on first use, so one compiled on a machine without a GPU can still be saved. A model may be
called from several threads at once (see `CompiledModel`).
"""

from __future__ import annotations

import threading

import numpy as np

from .artifact import Artifact, read_artifact, write_artifact
from .errors import ArtifactError
from .executable import Executable
from .host import GPU_ARCH_PREFIXES

LIBRARY = "library"
PTX = "ptx"


class CompiledModel:
    """A compiled model: call it with its inputs by name (or position) to get a list of NumPy arrays.

    Threads: calling one model from several threads at once is safe; each call returns the outputs
    of its own inputs. The model has one arena, so concurrent calls take turns for copying inputs in,
    the native run and copying outputs out (the program's lock); checking the inputs happens outside
    it. The native run releases the GIL, so calls on different models run in parallel. Each loaded
    model runs its larger loops on its own pool of EMBER_NUM_THREADS threads (default: every CPU):
    a model per calling thread adds throughput only while threads x pool size stays within the cores.
    """

    def __init__(self, artifact: Artifact, source: str = "the compiled model", device_id: int = 0):
        manifest = artifact.manifest
        self.artifact, self.source, self.device_id = artifact, source, device_id
        self.is_gpu = str(manifest.get("target", "")).startswith(GPU_ARCH_PREFIXES)
        binary = PTX if self.is_gpu else LIBRARY
        if "layout" not in manifest or binary not in artifact.binaries:
            kind = "GPU" if self.is_gpu else "CPU"
            raise ArtifactError(f"{source} holds no {kind} program (no layout or no {binary!r} binary)")
        self._loading = threading.Lock()
        self._program = None if self.is_gpu else self._load()

    def _load(self):
        manifest, artifact = self.manifest, self.artifact
        if not self.is_gpu:
            return Executable(
                artifact.binaries[LIBRARY], manifest["layout"], artifact.params, what=self.source
            )
        from .cuda_executable import CudaExecutable

        ptx = artifact.binaries[PTX].decode("utf-8", errors="replace")
        return CudaExecutable(
            ptx, manifest["layout"], artifact.params, what=self.source, ordinal=self.device_id
        )

    @property
    def _exe(self):
        """The loaded program (for a GPU artifact, loaded onto the GPU now if it is not yet, once
        even when several threads make the first call together)."""
        program = self._program
        if program is None:
            with self._loading:
                if self._program is None:
                    self._program = self._load()
                program = self._program
        return program

    @property
    def manifest(self) -> dict:
        return self.artifact.manifest

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(self.manifest["layout"]["inputs"])

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.manifest["layout"]["outputs"])

    @property
    def kernels(self) -> list[str]:
        """The kernel names in the order one call runs them."""
        return list(self.manifest["layout"]["kernels"])

    @property
    def arena_bytes(self) -> int:
        return int(self.manifest["layout"]["arena_bytes"])

    def __call__(self, *args, **inputs) -> list[np.ndarray]:
        """The outputs for these inputs (by name, or by position in `input_names`); optional inputs
        (loss labels, which no output depends on) left out are zeros."""
        layout = self.manifest["layout"]
        given = set(self.input_names[: len(args)]) | set(inputs)
        for name in layout.get("optional_inputs", ()):
            if name not in given:
                spec = layout["buffers"][layout["inputs"][name]]
                inputs[name] = np.zeros(spec["shape"], spec["dtype"])
        return self._exe(*args, **inputs)

    def save(self, path) -> None:
        """Write the model as one artifact file (atomically)."""
        write_artifact(path, self.artifact)

    def __repr__(self) -> str:
        inputs = ", ".join(f"{s['name']}{tuple(s['shape'])}" for s in self.manifest["inputs"])
        return f"CompiledModel({self.manifest.get('name', 'model')}: inputs {inputs}, {len(self.kernels)} kernels)"


def load(path, device_id: int = 0) -> CompiledModel:
    """The compiled model saved at `path`; ArtifactError (an MXNetError) when the file is missing,
    truncated, corrupted, not an Ember artifact, or built for another machine. A GPU artifact runs on
    GPU `device_id`; where there is none, its first call raises DeviceError saying so.

    Every byte and every manifest field is checked before the native code is touched, and the
    target and CPU features are compared with this machine's. Then the shared library is loaded
    (dlopen), which runs its initializers: loading an artifact runs the code it holds, so load only
    files you trust, as you would a shared library. The checks catch damage, not malice."""
    artifact = read_artifact(path)
    try:
        return CompiledModel(artifact, source=str(path), device_id=device_id)
    except MemoryError:
        arena = artifact.manifest["layout"]["arena_bytes"]
        raise ArtifactError(
            f"cannot load '{path}': it needs more memory than this process can allocate (its layout's "
            f"arena_bytes is {arena})"
        ) from None
