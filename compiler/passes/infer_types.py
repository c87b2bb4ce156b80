"""Dtype inference: two-way, like shape inference, over canonical dtype names.

Variables' `__dtype__` attributes (MXNet type codes) count as known. With `default` set, variables
still unknown after inference take that dtype and inference runs again (as `simple_bind` does with
float32).
"""

from __future__ import annotations

from typing import Mapping

from ember.runtime.errors import TypeInferenceError

from ..dtypes import dtype_name
from ..ir import Graph, Value
from ..ops.registry import type_rules
from ..ops.rules import Mismatch, unify
from .fixpoint import infer_fixpoint


def _describe(dtype) -> str:
    return "?" if dtype is None else dtype


def _seeds(graph: Graph, given: Mapping[str, object]) -> dict[Value, str]:
    seeds = {}
    for var in graph.variables:
        dtype = dtype_name(int(var.attrs.get("__dtype__"))) if "__dtype__" in var.attrs else None
        if given.get(var.name) is not None:
            try:
                dtype = unify(dtype, dtype_name(given[var.name]))
            except Mismatch:
                raise TypeInferenceError(
                    f"dtype {dtype_name(given[var.name])} given for {var.name!r} contradicts its declared "
                    f"dtype {dtype}"
                ) from None
        if dtype is not None:
            seeds[Value(var, 0)] = dtype
    return seeds


def infer_types(graph: Graph, given: Mapping[str, object], default: str | None = None) -> dict[Value, str]:
    """The dtype of every value that can be inferred from the dtypes `given` by variable name."""
    known = infer_fixpoint(graph, _seeds(graph, given), type_rules, _describe, TypeInferenceError, "type")
    if default is not None:
        missing = {v.name: default for v in graph.variables if Value(v, 0) not in known}
        if missing:
            known = infer_types(graph, {**given, **missing})
    return known
