"""Shape inference: MXNet's two-way partial inference over a graph.

Input: a graph and the shapes known for some variables (partial shapes allowed: None for an
unknown dim). Variables' `__shape__` attributes count as known too (0 there means unknown, as in
MXNet's legacy semantics). Output: the partial shape of every value; `require_complete_shapes`
turns it into a typed graph or an error listing what could not be decided.
"""

from __future__ import annotations

from typing import Mapping

from ember.runtime.errors import ShapeError

from ..ir import Graph, Value
from ..ops.params import parse_tuple
from ..ops.registry import shape_rules
from ..ops.rules import Mismatch, is_known, unify
from .fixpoint import infer_fixpoint


def describe_shape(shape) -> str:
    if shape is None:
        return "?"
    return "(" + ",".join("?" if d is None else str(d) for d in shape) + ")"


def legacy_to_partial(shape) -> tuple | None:
    """MXNet's legacy shape (() unknown, 0 unknown dim) as a partial shape."""
    if shape is None or len(shape) == 0:
        return None
    return tuple(None if d == 0 else int(d) for d in shape)


def variable_shape_seeds(graph: Graph, given: Mapping[str, tuple | None]) -> dict[Value, tuple]:
    """Known shapes of variables: `__shape__` attributes unified with the given ones."""
    seeds = {}
    for var in graph.variables:
        shape = None
        if "__shape__" in var.attrs:
            shape = legacy_to_partial(parse_tuple(var.attrs.get("__shape__")))
        if given.get(var.name) is not None:
            try:
                shape = unify(shape, tuple(given[var.name]))
            except Mismatch:
                raise ShapeError(
                    f"shape {tuple(given[var.name])} given for {var.name!r} contradicts its declared "
                    f"shape {describe_shape(shape)}"
                ) from None
        if shape is not None:
            seeds[Value(var, 0)] = shape
    return seeds


def infer_shapes(graph: Graph, given: Mapping[str, tuple | None]) -> dict[Value, tuple | None]:
    """The (partial) shape of every value of `graph`, from the shapes `given` by variable name."""
    seeds = variable_shape_seeds(graph, given)
    return infer_fixpoint(graph, seeds, shape_rules, describe_shape, ShapeError, "shape")


def unknown_shapes(graph: Graph, shapes: Mapping[Value, tuple | None]) -> list[str]:
    """Names of variables whose shape is not fully known, with what is known of each."""
    return [
        f"{var.name}: {describe_shape(shapes.get(Value(var, 0)))}"
        for var in graph.variables
        if not is_known(shapes.get(Value(var, 0)))
    ]
