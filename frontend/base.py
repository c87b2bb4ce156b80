"""MXNet's `mxnet.base` names: the exception classes users catch, and small shared helpers."""

from ember.runtime.errors import (  # noqa: F401
    ArtifactError,
    CompileError,
    DeviceError,
    DiskFullError,
    EmberError,
    GraphError,
    MXNetError,
    ShapeError,
    TypeInferenceError,
)

__all__ = [
    "MXNetError",
    "EmberError",
    "ShapeError",
    "TypeInferenceError",
    "GraphError",
    "CompileError",
    "ArtifactError",
    "DiskFullError",
    "DeviceError",
]
