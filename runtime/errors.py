"""The exception hierarchy every part of Ember raises to users.

It lives in the runtime, the one folder with no dependencies of ours, so that the compiler, codegen,
runtime and frontend all raise the same classes; `ember.base` re-exports them under MXNet's names.
This module imports nothing but the standard library.
"""


class MXNetError(RuntimeError):
    """A user-facing failure: bad input, a shape or type contradiction, a corrupt file (a RuntimeError,
    as MXNet's is)."""


EmberError = MXNetError


class ShapeError(MXNetError):
    """Shapes that contradict an operator's rule, or that cannot be inferred."""


class TypeInferenceError(MXNetError):
    """Element types that contradict an operator's rule."""


class GraphError(MXNetError):
    """A malformed graph: unknown operator, bad attribute, wrong number of inputs, bad JSON."""


class CompileError(MXNetError):
    """The compiler could not turn a graph into a program."""


class ArtifactError(MXNetError):
    """A file Ember reads or writes (artifact, .params, .states, IDX) is missing, truncated, corrupt,
    foreign or cannot be written."""


class DiskFullError(ArtifactError):
    """A write ran out of space, past the file-size limit or over a quota; the destination is unchanged."""


class DeviceError(MXNetError):
    """A device (GPU) that is missing or cannot run what was asked."""
