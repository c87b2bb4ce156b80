"""Reverse-mode autodiff as a graph rewrite.

`gradients(graph, shapes, wrt, head_grads)` walks the graph's nodes in reverse topological order and
asks each op's gradient rule (`grad_rules[op]`) for the gradients of its inputs, given the gradients
of its outputs. Rules build ordinary IR nodes through a `GradBuilder`, so the backward graph is
inferred, simplified and executed like any other; gradients of several uses are summed. Loss heads
ignore the head gradient and emit MXNet's fixed gradients; BlockGrad stops gradients.

A gradient rule: `rule(g: GradBuilder, node: Node, out_grads: list[Value | None]) -> list[Value | None]`,
one entry per input of `node` (None: no gradient flows there). `out_grads[i]` is None when nothing
depends on output i.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from ember.runtime.errors import GraphError

from ..ir import Attrs, Graph, Node, Value
from ..ops.facts import is_loss_head
from ..ops.params import format_value
from ..ops.registry import aux_update_rules, get_schema, grad_rules


class GradBuilder:
    """Creates the nodes of one gradient rule, named after the forward node they differentiate."""

    def __init__(self, shapes: Mapping[Value, tuple], dtypes: Mapping[Value, str] | None = None):
        self._shapes = shapes
        self._dtypes = dtypes or {}
        self._counter: dict[str, int] = {}
        self.node: Node | None = None  # the forward node whose rule is running

    def shape(self, value: Value) -> tuple:
        """The inferred shape of a forward value."""
        if value not in self._shapes or self._shapes[value] is None:
            raise GraphError(f"autodiff needs the shape of {value!r}; run shape inference first")
        return tuple(self._shapes[value])

    def dtype(self, value: Value) -> str:
        return self._dtypes.get(value, "float32")

    def _name(self, hint: str) -> str:
        base = f"{self.node.name}_backward_{hint}" if self.node is not None else f"backward_{hint}"
        count = self._counter.get(base, 0)
        self._counter[base] = count + 1
        return base if count == 0 else f"{base}{count}"

    def outputs(self, op: str, *inputs: Value, **params) -> list[Value]:
        """Every output of a new node `op(*inputs, **params)`."""
        schema = get_schema(op)
        attrs = Attrs({k: format_value(v) for k, v in params.items() if v is not None})
        node = Node(schema.name, tuple(inputs), attrs, self._name(op.strip("_").lower()))
        return [Value(node, i) for i in range(node.num_outputs)]

    def op(self, op: str, *inputs: Value, **params) -> Value:
        """Output 0 of a new node `op(*inputs, **params)`."""
        return self.outputs(op, *inputs, **params)[0]

    def add(self, a: Value | None, b: Value | None) -> Value | None:
        """a + b, where None stands for a zero gradient."""
        if a is None or b is None:
            return a if b is None else b
        return self.op("elemwise_add", a, b)

    def sum_to(self, grad: Value, shape: tuple, from_shape: tuple) -> Value:
        """`grad` (of broadcast shape `from_shape`) summed back to `shape` (NumPy broadcasting rules)."""
        if tuple(shape) == tuple(from_shape):
            return grad
        lead = len(from_shape) - len(shape)
        padded = (1,) * lead + tuple(shape)
        axes = tuple(i for i, (a, b) in enumerate(zip(padded, from_shape)) if a == 1 and b != 1) + tuple(
            range(lead)
        )
        summed = self.op("sum", grad, axis=tuple(sorted(set(axes))), keepdims=True) if axes else grad
        return self.op("Reshape", summed, shape=tuple(shape) if shape else (1,))


def gradients(
    graph: Graph,
    shapes: Mapping[Value, tuple],
    wrt: Sequence[Value],
    head_grads: Sequence[Value | None],
    dtypes: Mapping[Value, str] | None = None,
) -> list[Value | None]:
    """The gradient of `graph.outputs` (weighted by `head_grads`) with respect to each of `wrt`.

    A head gradient of None means the head is a loss whose rule needs none (or nothing flows from it).
    Entries of the result are None where no gradient reaches that value.
    """
    if len(head_grads) != len(graph.outputs):
        raise GraphError(f"{len(head_grads)} head gradients given for {len(graph.outputs)} outputs")
    builder = GradBuilder(shapes, dtypes)
    grads: dict[Value, Value | None] = {}
    for head, grad in zip(graph.outputs, head_grads):
        grads[head] = builder.add(grads.get(head), grad)
    needed = _needs_gradient(graph, wrt)
    for node in reversed(graph.nodes):
        if node.is_variable or id(node) not in needed:
            continue
        out_grads = [grads.get(Value(node, i)) for i in range(node.num_outputs)]
        if all(g is None for g in out_grads) and not is_loss_head(node):
            continue
        builder.node = node
        rule = grad_rules.get(node.op)
        if rule is None:
            raise GraphError(f"operator {node.op} (node {node.name!r}) has no gradient rule")
        in_grads = rule(builder, node, out_grads)
        for value, grad in zip(node.inputs, in_grads):
            if grad is not None:
                grads[value] = builder.add(grads.get(value), grad)
    return [grads.get(v) for v in wrt]


def _needs_gradient(graph: Graph, wrt: Sequence[Value]) -> set[int]:
    """Ids of nodes on a path from a `wrt` value to an output: only those need their rules run."""
    targets = {id(v.node) for v in wrt}
    reaches: set[int] = set()
    for node in graph.nodes:
        if id(node) in targets or any(id(v.node) in reaches for v in node.inputs):
            reaches.add(id(node))
    return reaches


def auxiliary_updates(
    graph: Graph, shapes: Mapping[Value, tuple], dtypes=None
) -> list[tuple[Node, int, Value]]:
    """What a training step writes back into auxiliary states (BatchNorm's moving statistics): for each
    node whose op has an `aux_update_rules` entry, (node, input position, the input's new value)."""
    builder = GradBuilder(shapes, dtypes)
    updates = []
    for node in graph.nodes:
        rule = aux_update_rules.get(node.op)
        if rule is None:
            continue
        builder.node = node
        names = node.schema.input_names(node.params)
        updates += [(node, names.index(name), value) for name, value in rule(builder, node).items()]
    return updates
