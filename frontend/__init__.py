"""Ember: a deep-learning framework with the Apache MXNet 1.x API whose engine is a graph compiler.

`import ember as mx` gives MXNet's names: `mx.sym`, `mx.nd`, `mx.cpu()`, `mx.base.MXNetError`, ...
"""

__version__ = "0.1.0"

from . import (
    base,  # noqa: E402,F401
    context,  # noqa: E402,F401
    name,  # noqa: E402,F401
    ndarray,  # noqa: E402,F401
    symbol,  # noqa: E402,F401
)
from . import ndarray as nd  # noqa: E402,F401
from . import symbol as sym  # noqa: E402,F401
from .attribute import AttrScope  # noqa: E402,F401
from .base import MXNetError  # noqa: E402,F401
from .context import Context, cpu, cpu_pinned, current_context, gpu  # noqa: E402,F401
