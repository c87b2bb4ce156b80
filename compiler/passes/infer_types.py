"""Dtype inference: two-way, like shape inference, over canonical dtype names.

Variables' `__dtype__` attributes (MXNet type codes) count as known. With `default` set, variables
still unknown after inference take that dtype and inference runs again (as `simple_bind` does with
float32).
"""

from __future__ import annotations

from typing import Mapping

from ember.runtime.errors import GraphError, TypeInferenceError

from ..dtypes import dtype_name
from ..ir import Graph, Node, Value
from ..ops.registry import type_rules
from ..ops.rules import describe
from .fixpoint import infer_fixpoint, seed_variables


def _declared_dtype(var: Node) -> str | None:
    code = var.attrs.get("__dtype__")
    if code is None:
        return None
    try:
        return dtype_name(int(code))
    except (ValueError, TypeInferenceError):
        raise GraphError(f"variable {var.name!r} has a malformed __dtype__ attribute {code!r}") from None


def infer_types(graph: Graph, given: Mapping[str, object], default: str | None = None) -> dict[Value, str]:
    """The dtype of every value that can be inferred from the dtypes `given` by variable name."""
    seeds = seed_variables(graph, given, _declared_dtype, dtype_name)
    known = infer_fixpoint(graph, seeds, type_rules, describe, TypeInferenceError, "type")
    if default is not None:
        missing = {v.name: default for v in graph.variables if Value(v, 0) not in known}
        if missing:
            known = infer_types(graph, {**given, **missing})
    return known
