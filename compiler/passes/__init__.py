"""Graph -> Graph passes, run in order by the pipeline (the pipeline arrives with the compiler issue).

    infer_shapes   two-way partial shape inference (MXNet's legacy semantics)
    infer_types    two-way dtype inference, float32 by default
"""

from .infer_shapes import infer_shapes  # noqa: F401
from .infer_types import infer_types  # noqa: F401
