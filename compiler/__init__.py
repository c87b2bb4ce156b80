"""Ember's compiler: the IR, the op registry, the reference interpreter and the graph passes.

Frontends build a `Graph`; passes (`ember.compiler.passes`) infer, rewrite and lower it. This package
imports nothing else of Ember's except the shared exception hierarchy (`ember.runtime.errors`).
"""

from . import ops  # noqa: F401  (registers every op)
from .lowering import lower as _lower  # noqa: F401  (registers every op's lowering rule)
from .interpreter import RefContext, evaluate, run  # noqa: F401
from .ir import (  # noqa: F401
    VARIABLE,
    Attrs,
    Graph,
    Node,
    TensorType,
    Value,
    format_graph,
    topological_order,
    variable,
    verify,
)
