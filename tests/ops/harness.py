"""Per-op test cases checked against the registry: shape/type inference vs the NumPy reference.

Each cases module (cases_*.py) lists `OpCase`s. For every case a one-node graph is built; shape and
dtype inference from the input shapes must predict exactly the shapes and dtypes the reference
implementation produces, for every output (hidden ones too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from ember.compiler import Graph, Node, Value, variable
from ember.compiler.ops import get_schema
from ember.compiler.ops.params import format_value


@dataclass
class OpCase:
    """One op application: input shapes (or arrays), attributes, and optional input makers.

    `inputs` holds, per input, a shape tuple (random float32 data) or a NumPy array (used as is,
    e.g. integer indices). `is_train` runs the reference in training mode.
    """

    op: str
    inputs: list
    attrs: dict = field(default_factory=dict)
    is_train: bool = False
    id: str = ""

    def __post_init__(self):
        if not self.id:
            shapes = "-".join("x".join(map(str, _shape_of(i))) or "s" for i in self.inputs)
            extra = ",".join(f"{k}={v}" for k, v in self.attrs.items())
            self.id = f"{self.op}[{shapes}]{'{' + extra + '}' if extra else ''}"

    def string_attrs(self) -> dict[str, str]:
        return {k: format_value(v) for k, v in self.attrs.items()}

    def arrays(self, rng: np.random.Generator) -> list[np.ndarray]:
        return [
            i if isinstance(i, np.ndarray) else rng.standard_normal(i).astype(np.float32) for i in self.inputs
        ]

    def graph(self) -> tuple[Graph, Node]:
        """A graph with one node of this op, its inputs variables named after the schema's inputs."""
        attrs = self.string_attrs()
        schema = get_schema(self.op)
        params = schema.parse_params(attrs)
        names = schema.input_names(params)
        variables = [variable(names[i] if i < len(names) else f"arg{i}") for i in range(len(self.inputs))]
        node = Node(schema.name, tuple(v.output() for v in variables), attrs, "node")
        outputs = [Value(node, i) for i in range(node.num_outputs)]
        return Graph(outputs), node


def _shape_of(item) -> tuple:
    return item.shape if isinstance(item, np.ndarray) else tuple(item)


def input_shapes(case: OpCase) -> dict[str, tuple]:
    graph, node = case.graph()
    return {v.node.name: _shape_of(i) for v, i in zip(node.inputs, case.inputs)}


def input_dtypes(case: OpCase, arrays: list[np.ndarray]) -> dict[str, str]:
    graph, node = case.graph()
    return {v.node.name: a.dtype.name for v, a in zip(node.inputs, arrays)}


CaseList = list[OpCase]
CaseFactory = Callable[[], CaseList]
