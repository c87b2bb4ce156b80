"""The simplification pipeline, and `run_passes`, which runs a list of passes with checks between them.

Types contract: a typed graph (`graph.types` complete, as `typed.typed_graph` makes it) stays typed
through every pass: each pass carries the types of the values it keeps or replaces, and new nodes
are typed from their inputs (`typed.complete_types`), so nothing is inferred twice. For analysis on
partial facts, `simplify(graph, shapes, dtypes)` also takes an untyped graph with facts by value; its
result is untyped then, and the pass that needs shapes or dtypes is wrapped in `with_types`, which
re-infers them from the variables' facts.

Debugging is a switch, not a code edit: `EMBER_DEBUG=1` (or `debug=True`) verifies the graph
(`ir.verify`) before the first pass and after every pass; `EMBER_DEBUG=2` also prints the graph after
each pass to stderr, headed by the pass's name.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Mapping, Sequence

from ember.runtime.errors import GraphError

from ..ir import Graph, Value, format_graph, verify
from .infer_shapes import infer_shapes
from .infer_types import infer_types
from .simplify import (
    common_subexpression_elimination,
    dead_code_elimination,
    fold_constants,
    simplify_algebra,
)

Pass = Callable[[Graph], Graph]


def simplify(
    graph: Graph,
    shapes: Mapping[Value, tuple | None] | None = None,
    dtypes: Mapping[Value, str | None] | None = None,
    debug: bool | int | None = None,
) -> Graph:
    """`graph` simplified. A typed graph needs no facts and comes out typed; an untyped one needs
    `shapes` and `dtypes` (keyed by value, as inference gives them) covering its variables, and comes
    out untyped (see the module docstring)."""
    if shapes is None and graph.types is not None:
        algebra: Pass = simplify_algebra  # reads the graph's own types
    else:
        var_shapes, var_dtypes = variable_facts(graph, shapes or {}, dtypes or {})
        algebra = with_types(simplify_algebra, var_shapes, var_dtypes)
        graph = Graph(graph.outputs)
    passes = [
        fold_constants,  # uniform constant subgraphs -> one _zeros/_ones/_full node
        algebra,  # x*1 -> x and friends, to a fixpoint
        common_subexpression_elimination,  # one node per (op, attributes, inputs); random ops kept apart
        dead_code_elimination,  # only what the outputs read
    ]
    return run_passes(graph, passes, debug)


def run_passes(graph: Graph, passes: Sequence[Pass], debug: bool | int | None = None) -> Graph:
    """`graph` through each of `passes` in order; in debug mode, verified before and after each."""
    level = debug_level(debug)
    if level >= 1:
        _verify(graph, "before the first pass")
    for run_pass in passes:
        graph = run_pass(graph)
        name = getattr(run_pass, "__name__", repr(run_pass))
        if level >= 1:
            _verify(graph, f"after pass {name}")
        if level >= 2:
            print(f"# after {name}\n{format_graph(graph)}", file=sys.stderr)
    return graph


def debug_level(debug: bool | int | None = None) -> int:
    """0 (off), 1 (verify between passes) or 2 and up (also print): `debug` where given (True is at
    least 1), else the `EMBER_DEBUG` environment variable (set but not a number counts as 1)."""
    text = os.environ.get("EMBER_DEBUG", "").strip()
    try:
        from_env = int(text) if text else 0
    except ValueError:
        from_env = 1
    if debug is None:
        return from_env
    if debug is True:
        return max(1, from_env)
    return int(debug)


def with_types(rewrite: Callable, var_shapes: Mapping[str, tuple], var_dtypes: Mapping[str, str]) -> Pass:
    """`rewrite(graph, shapes, dtypes)` as a pass: shapes and dtypes inferred afresh from the variables'."""

    @functools.wraps(rewrite)
    def typed_pass(graph: Graph) -> Graph:
        return rewrite(graph, infer_shapes(graph, var_shapes), infer_types(graph, var_dtypes))

    return typed_pass


def variable_facts(
    graph: Graph, shapes: Mapping[Value, tuple | None], dtypes: Mapping[Value, str | None]
) -> tuple[dict[str, tuple], dict[str, str]]:
    """The shapes and dtypes known of `graph`'s variables, by name (what inference starts from)."""
    var_shapes = {v.name: shapes[v.output()] for v in graph.variables if shapes.get(v.output()) is not None}
    var_dtypes = {v.name: dtypes[v.output()] for v in graph.variables if dtypes.get(v.output()) is not None}
    return var_shapes, var_dtypes


def _verify(graph: Graph, when: str) -> None:
    try:
        verify(graph)
    except GraphError as err:
        raise GraphError(f"{when}: {err}") from None
