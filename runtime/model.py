"""A compiled model as users hold it: `model(data=x) -> [outputs]`, `model.save(path)`, and `load`.

`CompiledModel` wraps an `Artifact` (runtime/artifact.py) and the `Executable` made from it; it needs
numpy and ctypes only, so `ember.runtime.load('mlp.ember')` works in a process that never imported
the compiler (or where llvmlite is not installed at all).
"""

from __future__ import annotations

import numpy as np

from .artifact import Artifact, read_artifact, write_artifact
from .errors import ArtifactError
from .executable import Executable

LIBRARY = "library"


class CompiledModel:
    """A compiled model: call it with its inputs by name (or position) to get a list of NumPy arrays."""

    def __init__(self, artifact: Artifact, source: str = "the compiled model"):
        manifest = artifact.manifest
        if "layout" not in manifest or LIBRARY not in artifact.binaries:
            raise ArtifactError(f"{source} holds no CPU program (no layout or no {LIBRARY!r} binary)")
        self.artifact = artifact
        self._exe = Executable(artifact.binaries[LIBRARY], manifest["layout"], artifact.params, what=source)

    @property
    def manifest(self) -> dict:
        return self.artifact.manifest

    @property
    def input_names(self) -> tuple[str, ...]:
        return self._exe.input_names

    @property
    def output_names(self) -> tuple[str, ...]:
        return self._exe.output_names

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
        given = set(self.input_names[: len(args)]) | set(inputs)
        for name in self.manifest["layout"].get("optional_inputs", ()):
            if name not in given:
                inputs[name] = self._exe.get(name) * 0
        return self._exe(*args, **inputs)

    def save(self, path) -> None:
        """Write the model as one artifact file (atomically)."""
        write_artifact(path, self.artifact)

    def __repr__(self) -> str:
        inputs = ", ".join(f"{s['name']}{tuple(s['shape'])}" for s in self.manifest["inputs"])
        return f"CompiledModel({self.manifest.get('name', 'model')}: inputs {inputs}, {len(self.kernels)} kernels)"


def load(path) -> CompiledModel:
    """The compiled model saved at `path`; ArtifactError (an MXNetError) when the file is missing,
    truncated, corrupted, not an Ember artifact, or built for another machine.

    An artifact holds native code, which loading maps into this process: load only files you trust,
    as you would a shared library."""
    return CompiledModel(read_artifact(path), source=str(path))
