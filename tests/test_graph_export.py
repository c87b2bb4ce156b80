"""The graph export: an Ember graph as a networkx DiGraph, written as GraphML and read back, from the API
and from `ember inspect --graphml`."""

from __future__ import annotations

import numpy as np
import pytest

import ember as mx
from ember.cli import main
from ember.compiler import Graph, Node, variable
from ember.compiler.graph_export import to_networkx, write_graphml
from ember.compiler.passes.typed import typed_graph

nx = pytest.importorskip(
    "networkx", reason="networkx (in the test extra: pip install '.[test]') is not installed"
)


def small_graph() -> Graph:
    """%0 x, %1 w, %2 b, %3 fc(x, w, b), %4 relu(%3), %5 split(%4) into 2, %6 add(%5.1, %5.1);
    outputs %6 and %5.0."""
    x, w, b = variable("x").output(), variable("w").output(), variable("b").output()
    fc = Node("FullyConnected", (x, w, b), {"num_hidden": "4"}, "fc")
    relu = Node("relu", (fc.output(),), {}, "act")
    split = Node("SliceChannel", (relu.output(),), {"num_outputs": "2", "axis": "1"}, "split")
    add = Node("elemwise_add", (split.output(1), split.output(1)), {}, "add")
    return Graph([add.output(), split.output(0)])


def read_back(path) -> nx.DiGraph:
    return nx.read_graphml(path, node_type=int)


EDGES = {
    (0, 3): {"inputs": "0", "outputs": "0"},
    (1, 3): {"inputs": "1", "outputs": "0"},
    (2, 3): {"inputs": "2", "outputs": "0"},
    (3, 4): {"inputs": "0", "outputs": "0"},
    (4, 5): {"inputs": "0", "outputs": "0"},
    (5, 6): {"inputs": "0,1", "outputs": "1,1"},  # one value read twice
}


def test_a_typed_graph_reads_back_with_ops_names_shapes_and_edges(tmp_path):
    graph = typed_graph(small_graph(), {"x": (3, 5)})
    written = write_graphml(graph, tmp_path / "g.graphml")
    loaded = read_back(tmp_path / "g.graphml")
    assert sorted(loaded.nodes) == list(range(7)) and written.number_of_nodes() == 7
    assert [(loaded.nodes[i]["op"], loaded.nodes[i]["name"]) for i in range(7)] == [
        ("null", "x"),
        ("null", "w"),
        ("null", "b"),
        ("FullyConnected", "fc"),
        ("relu", "act"),
        ("SliceChannel", "split"),
        ("elemwise_add", "add"),
    ]
    assert [loaded.nodes[i]["shapes"] for i in range(7)] == [
        "(3, 5)",
        "(4, 5)",
        "(4,)",
        "(3, 4)",
        "(3, 4)",
        "(3, 2); (3, 2)",
        "(3, 2)",
    ]
    assert loaded.nodes[5]["dtypes"] == "float32; float32"
    assert {edge: dict(attrs) for edge, attrs in ((e, loaded.edges[e]) for e in loaded.edges)} == EDGES
    assert loaded.graph["outputs"] == "6:0, 5:0"


def test_an_untyped_graph_has_no_shapes(tmp_path):
    write_graphml(small_graph(), tmp_path / "g.graphml")
    loaded = read_back(tmp_path / "g.graphml")
    assert set(loaded.edges) == set(EDGES)
    assert all(set(attrs) == {"op", "name"} for _, attrs in loaded.nodes(data=True))


def test_to_networkx_numbers_nodes_as_format_graph_does():
    graph = small_graph()
    digraph = to_networkx(graph)
    assert [digraph.nodes[i]["name"] for i in range(len(graph.nodes))] == [n.name for n in graph.nodes]
    assert nx.is_directed_acyclic_graph(digraph)
    assert list(nx.topological_sort(digraph)) == list(range(7))


def test_ember_inspect_graphml_writes_the_artifacts_typed_graph(tmp_path, capsys):
    data = mx.sym.Variable("data")
    net = mx.sym.FullyConnected(data, num_hidden=3, name="fc")
    net = mx.sym.SoftmaxOutput(mx.sym.relu(net, name="act"), name="softmax")
    params = {"fc_weight": np.ones((3, 4), np.float32), "fc_bias": np.zeros(3, np.float32)}
    mx.compile(net, {"data": (2, 4)}, params).save(str(tmp_path / "m.ember"))
    capsys.readouterr()
    assert main(["inspect", str(tmp_path / "m.ember"), "--graphml", str(tmp_path / "m.graphml")]) == 0
    assert f"wrote {tmp_path / 'm.graphml'} (GraphML: 7 nodes, 6 edges)" in capsys.readouterr().err
    loaded = read_back(tmp_path / "m.graphml")
    ops = {attrs["name"]: (attrs["op"], attrs["shapes"]) for _, attrs in loaded.nodes(data=True)}
    assert ops == {
        "data": ("null", "(2, 4)"),
        "fc_weight": ("null", "(3, 4)"),
        "fc_bias": ("null", "(3,)"),
        "fc": ("FullyConnected", "(2, 3)"),
        "act": ("relu", "(2, 3)"),
        "softmax_label": ("null", "(2,)"),
        "softmax": ("SoftmaxOutput", "(2, 3)"),
    }


def test_inspect_graphml_to_an_unwritable_path_is_one_error_line(tmp_path, capsys):
    data = mx.sym.Variable("data")
    mx.compile(mx.sym.relu(data, name="act"), {"data": (2,)}).save(str(tmp_path / "m.ember"))
    capsys.readouterr()
    target = tmp_path / "missing" / "m.graphml"
    assert main(["inspect", str(tmp_path / "m.ember"), "--graphml", str(target)]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line == f"ember: error: cannot write the graph to '{target}': No such file or directory"
