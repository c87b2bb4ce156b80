"""Shape inference: MXNet's two-way partial inference over a graph.

Input: a graph and the shapes known for some variables (partial shapes allowed: None for an
unknown dim). Variables' `__shape__` attributes count as known too (0 there means unknown, as in
MXNet's legacy semantics). Output: the partial shape of every value; `require_complete_shapes`
turns it into a typed graph or an error listing what could not be decided.
"""

from __future__ import annotations

from typing import Mapping

from ember.runtime.errors import GraphError, ShapeError

from ..ir import Graph, Node, Value
from ..ops.params import ParamValueError, parse_tuple
from ..ops.registry import shape_rules
from ..ops.rules import describe as describe_shape
from ..ops.rules import is_known
from .fixpoint import infer_fixpoint, seed_variables


def legacy_to_partial(shape) -> tuple | None:
    """MXNet's legacy shape (() unknown; 0, or a negative dim, unknown) as a partial shape."""
    if shape is None or len(shape) == 0:
        return None
    return tuple(None if d is None or d <= 0 else int(d) for d in shape)


def _declared_shape(var: Node) -> tuple | None:
    text = var.attrs.get("__shape__")
    if text is None:
        return None
    try:
        return legacy_to_partial(parse_tuple(text))
    except ParamValueError:
        raise GraphError(f"variable {var.name!r} has a malformed __shape__ attribute {text!r}") from None


def infer_shapes(graph: Graph, given: Mapping[str, tuple | None]) -> dict[Value, tuple | None]:
    """The (partial) shape of every value of `graph`, from the shapes `given` by variable name."""
    seeds = seed_variables(graph, given, _declared_shape, tuple)
    return infer_fixpoint(graph, seeds, shape_rules, describe_shape, ShapeError, "shape")


def unknown_shapes(graph: Graph, shapes: Mapping[Value, tuple | None]) -> list[str]:
    """Names of variables whose shape is not fully known, with what is known of each."""
    return [
        f"{var.name}: {describe_shape(shapes.get(Value(var, 0)))}"
        for var in graph.variables
        if not is_known(shapes.get(Value(var, 0)))
    ]
