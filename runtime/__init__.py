"""Ember's runtime: loads compiled programs and artifacts and launches them.

It depends on numpy and ctypes only (pycuda when a CUDA artifact is loaded), never on the compiler,
so that an artifact runs where the compiler is not installed. It holds the exception hierarchy shared
by the whole package (`errors`), the one-file artifact format (`artifact`, `manifest`) and the host
checks an artifact needs (`host`), and the loading and running of compiled programs (`executable`,
`model`: `ember.runtime.load(path)`).
"""

from .artifact import (  # noqa: F401
    FORMAT_VERSION,
    Artifact,
    decode_artifact,
    encode_artifact,
    read_artifact,
    write_artifact,
)
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
from .executable import Executable  # noqa: F401
from .host import check_cpu_features, check_target, host_cpu_features, host_target  # noqa: F401
from .model import CompiledModel, load  # noqa: F401
