"""Two-way attribute inference over a graph, shared by shape and dtype inference.

MXNet infers attributes (shapes, dtypes) by sweeping the graph forward and backward, letting each
op's rule refine what is known of its inputs and outputs, until nothing changes. A rule that
contradicts what is known raises a `ShapeError`/`TypeInferenceError` naming the user-visible node,
its op, what each input is known to be, and the relation that failed.
"""

from __future__ import annotations

from typing import Callable, Mapping

from ember.runtime.errors import MXNetError

from ..ir import Graph, Node, Value
from ..ops.rules import Mismatch, RuleError, unify


def infer_fixpoint(
    graph: Graph,
    seeds: Mapping[Value, object],
    rules: Mapping[str, Callable],
    describe: Callable[[object], str],
    error_class: type[MXNetError],
    what: str,
) -> dict[Value, object]:
    """What can be inferred of every value, starting from `seeds`, using `rules[op]`."""
    known: dict[Value, object] = dict(seeds)
    op_nodes = [n for n in graph.nodes if not n.is_variable]
    changed = True
    while changed:  # terminates: every change makes a fact strictly more precise
        changed = False
        for node in op_nodes + op_nodes[::-1]:
            changed |= apply_rule(node, known, rules, describe, error_class, what)
    return known


def seed_variables(
    graph: Graph,
    given: Mapping[str, object],
    declared: Callable[[Node], object],
    normalize: Callable[[object], object],
) -> dict[Value, object]:
    """Known facts of variables: what is given by name, else what each declares (as MXNet, a declared
    `__shape__`/`__dtype__` is only a hint used when nothing is given)."""
    seeds = {}
    for var in graph.variables:
        fact = normalize(given[var.name]) if given.get(var.name) is not None else declared(var)
        if fact is not None:
            seeds[Value(var, 0)] = fact
    return seeds


def apply_rule(node: Node, known, rules, describe, error_class, what) -> bool:
    """Refine `known` (value -> fact, updated in place) with `node`'s rule; whether anything changed.
    A contradiction raises `error_class` naming the node."""
    outputs = [Value(node, i) for i in range(node.num_outputs)]
    ins = [known.get(v) for v in node.inputs]
    outs = [known.get(v) for v in outputs]
    try:
        new_ins, new_outs = rules[node.op](node.params, list(ins), list(outs))
    except RuleError as err:
        raise error_class(_message(node, ins, describe, what, str(err))) from None
    except (IndexError, ValueError, ZeroDivisionError, TypeError, KeyError) as err:
        # A rule meeting facts it was not written for (ranks that disagree, zero-size splits) still
        # means the facts do not fit together; report it on the node rather than crash.
        detail = f"the known {what}s do not fit this operator ({type(err).__name__}: {err})"
        raise error_class(_message(node, ins, describe, what, detail)) from None
    changed = False
    slots = list(zip(node.inputs, ins, new_ins, _input_labels(node))) + list(
        zip(outputs, outs, new_outs, [f"output {i}" for i in range(len(outputs))])
    )
    for value, before, after, label in slots:
        if after is None or after == before:
            continue
        try:
            merged = unify(before, after)
        except Mismatch:
            relation = f"Provided = {_bracketed(before)}, inferred {what}={describe(after)} at {label}"
            raise error_class(_message(node, ins, describe, what, f"{what.capitalize()} inconsistent, {relation}")) from None
        if merged != before:
            known[value] = merged
            changed = True
    return changed


def _input_labels(node: Node) -> list[str]:
    names = node.schema.input_names(node.params)
    return [f"input {names[i]!r}" if i < len(names) else f"input {i}" for i in range(len(node.inputs))]


def _bracketed(shape) -> str:
    if isinstance(shape, tuple):
        return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"
    return str(shape)


def _message(node: Node, ins, describe, what: str, detail: str) -> str:
    names = node.schema.input_names(node.params)
    inputs = ", ".join(
        f"{names[i] if i < len(names) else i}={describe(s)} (from {v.node.name!r})"
        for i, (v, s) in enumerate(zip(node.inputs, ins))
    )
    return f"Error in operator {node.name} ({node.op}): {detail}. Input {what}s: {inputs}"
