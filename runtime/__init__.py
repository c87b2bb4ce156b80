"""Ember's runtime: loads compiled programs and artifacts and launches them.

It depends on numpy and ctypes only (pycuda when a CUDA artifact is loaded), never on the compiler,
so that an artifact runs where the compiler is not installed. For now it holds the exception
hierarchy shared by the whole package (`ember.runtime.errors`).
"""

from .errors import (  # noqa: F401
    ArtifactError,
    CompileError,
    DeviceError,
    EmberError,
    GraphError,
    MXNetError,
    ShapeError,
    TypeInferenceError,
)
