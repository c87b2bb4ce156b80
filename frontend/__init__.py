"""Ember: a deep-learning framework with the Apache MXNet 1.x API whose engine is a graph compiler.

`import ember as mx` gives MXNet's names: `mx.sym`, `mx.nd`, `mx.cpu()`, `mx.base.MXNetError`, ...
"""

__version__ = "0.1.0"

from . import (  # noqa: E402,F401
    base,
    callback,
    context,
    initializer,
    io,
    kvstore,
    lr_scheduler,
    metric,
    model,
    name,
    ndarray,
    optimizer,
    profiler,
    random,
    recordio,
    symbol,
    test_utils,
)
from . import autograd  # noqa: E402,F401
from . import gluon  # noqa: E402,F401
from . import initializer as init  # noqa: E402,F401
from . import kvstore as kv  # noqa: E402,F401
from . import module as mod  # noqa: E402,F401
from . import ndarray as nd  # noqa: E402,F401
from . import symbol as sym  # noqa: E402,F401
from .compiling import compile  # noqa: E402,F401
from .attribute import AttrScope  # noqa: E402,F401
from .base import MXNetError  # noqa: E402,F401
from .context import Context, cpu, cpu_pinned, current_context, gpu  # noqa: E402,F401

# MXNet's mx.random re-exports mx.nd.random's sampling functions; here `ember.random` owns the
# generator beneath the NDArray, so the sampling functions are attached to it once both exist.
for _name in random.SAMPLERS:
    setattr(random, _name, getattr(nd.random, _name))
