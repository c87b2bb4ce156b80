"""Property-based: random graphs built from the registry's op families, compiled to native code,
compute what the reference interpreter computes - forward values and gradients."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ember.compiler import Graph, Node, Value, evaluate, variable
from ember.compiler.ops import get_schema
from ember.compiler.ops.params import format_value
from ember.compiler.passes import infer_shapes
from ember.compiler.passes.autodiff import gradients

from .harness import assert_close, compile_graph

UNARY = ["relu", "tanh", "sigmoid", "abs", "square", "negative", "sin", "softsign", "erf", "exp"]
SAME_SHAPE_BINARY = ["elemwise_add", "elemwise_mul", "elemwise_sub", "_maximum"]
BROADCAST_BINARY = ["broadcast_add", "broadcast_mul", "broadcast_sub", "broadcast_maximum"]


class Builder:
    """Grows a graph one op at a time over values whose shapes it tracks."""

    def __init__(self, draw):
        self.draw = draw
        self.values: list[tuple[Value, tuple]] = []
        self.shapes: dict[str, tuple] = {}
        self.count = 0

    def var(self, shape) -> None:
        name = f"v{len(self.shapes)}"
        self.shapes[name] = shape
        self.values.append((variable(name).output(), shape))

    def op(self, op: str, inputs, **attrs) -> Value:
        self.count += 1
        strings = {k: format_value(v) for k, v in attrs.items()}
        node = Node(get_schema(op).name, tuple(inputs), strings, f"n{self.count}")
        return node.output(0)

    def pick(self, predicate=lambda shape: True):
        choices = [(v, s) for v, s in self.values if predicate(s)]
        return self.draw(st.sampled_from(choices)) if choices else None

    def add(self, value: Value, shapes) -> None:
        shape = infer_shapes(Graph([value]), shapes)[value]
        self.values.append((value, tuple(shape)))

    def step(self) -> None:
        kind = self.draw(
            st.sampled_from(["unary", "binary", "broadcast", "reduce", "softmax", "fc", "layout"])
        )
        value, shape = self.values[-1] if self.draw(st.integers(0, 3)) else self.pick()  # mostly a chain
        if kind == "unary":
            out = self.op(
                self.draw(st.sampled_from(UNARY)), [self.op("clip", [value], a_min=-3.0, a_max=3.0)]
            )
        elif kind == "binary":
            other, _ = self.pick(lambda s: s == shape)
            out = self.op(self.draw(st.sampled_from(SAME_SHAPE_BINARY)), [value, other])
        elif kind == "broadcast":
            axis = self.draw(st.integers(0, len(shape) - 1))
            reduced = self.op("sum", [value], axis=(axis,), keepdims=True)
            out = self.op(self.draw(st.sampled_from(BROADCAST_BINARY)), [value, reduced])
        elif kind == "reduce":
            op = self.draw(st.sampled_from(["sum", "mean", "max"]))
            axis = self.draw(st.integers(0, len(shape) - 1))
            out = self.op(op, [value], axis=(axis,), keepdims=self.draw(st.booleans()))
            if len(shape) == 1:
                out = self.op("sum", [value], axis=(0,), keepdims=True)
        elif kind == "softmax":
            out = self.op("softmax", [value], axis=-1)
        elif kind == "fc":
            name = f"w{len(self.shapes)}"
            hidden = self.draw(st.integers(1, 6))
            flat = int(np.prod(shape[1:])) if len(shape) > 1 else 1
            self.shapes[name] = (hidden, flat)
            data = value if len(shape) > 1 else self.op("expand_dims", [value], axis=1)
            out = self.op("FullyConnected", [data, variable(name).output()], num_hidden=hidden, no_bias=True)
        else:
            out = (
                self.op("transpose", [value])
                if len(shape) > 1
                else self.op("Reshape", [value], shape=(1, -1))
            )
        self.add(out, self.shapes)


@st.composite
def random_graphs(draw):
    builder = Builder(draw)
    rows, cols = draw(st.integers(1, 9)), draw(st.integers(1, 19))
    builder.var((rows, cols))
    if draw(st.booleans()):
        builder.var((rows, cols))
    for _ in range(draw(st.integers(2, 9))):
        builder.step()
    outputs = [v for v, _ in builder.values[-draw(st.integers(1, 2)) :]]
    return Graph(outputs), builder.shapes, draw(st.integers(0, 2**16))


def _feeds(shapes, seed):
    rng = np.random.default_rng(seed)
    return {name: rng.uniform(-1, 1, shape).astype(np.float32) for name, shape in shapes.items()}


def _compare(graph, shapes, seed, what: str) -> None:
    """Compile `graph` and check every output against the reference on uniform(-1, 1) feeds."""
    feeds = _feeds(shapes, seed)
    want = evaluate(graph, feeds)
    exe, _ = compile_graph(graph, shapes, optimize=True)
    got = exe(**{k: v for k, v in feeds.items() if k in exe.input_names})
    for position, value in enumerate(graph.outputs):
        assert_close(got[position], want[value], rtol=1e-5, atol=1e-5, what=f"{what} {position}")


@settings(max_examples=40, deadline=None)
@given(random_graphs())
def test_random_graphs_compile_to_the_reference_values(case):
    graph, shapes, seed = case
    _compare(graph, shapes, seed, "output")


@settings(max_examples=25, deadline=None)
@given(random_graphs())
def test_random_graphs_compile_to_the_reference_gradients(case):
    graph, shapes, seed = case
    value_shapes = infer_shapes(graph, shapes)
    heads = [variable(f"head{i}") for i in range(len(graph.outputs))]
    wrt = [v.output() for v in graph.variables]
    grads = gradients(graph, value_shapes, wrt, [h.output() for h in heads])
    present = [g for g in grads if g is not None]
    if not present:
        return
    step = Graph(present)
    all_shapes = {**shapes, **{h.name: tuple(value_shapes[v]) for h, v in zip(heads, graph.outputs)}}
    _compare(step, all_shapes, seed, "gradient")
