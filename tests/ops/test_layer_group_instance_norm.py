"""LayerNorm, InstanceNorm and GroupNorm against MXNet 1.9.1.

The values below were recorded once from the mxnet 1.9.1 wheel (CPU, float32) for the fixed inputs
`pattern(...)` builds: every output (the hidden mean and std, or InstanceNorm's variance, read by binding
a JSON graph whose heads name them) and the gradients of sum(out * head) through mx.autograd. They are
checked here through mx.nd + autograd, through a compiled executor, and through the reference
interpreter for the hidden outputs; plus the JSON MXNet writes for these ops, MXNet's rule that no
gradient flows through the mean and std outputs, and the shape errors MXNet raises.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest

import ember as mx
from ember.base import MXNetError
from ember.compiler import run

from ..compiled.harness import check_op_case
from .harness import OpCase


def pattern(shape, scale: float = 1.7, shift: float = 0.3) -> np.ndarray:
    """Fixed float32 inputs: 2 sin(k * scale) + shift over the flat positions k."""
    return (np.sin(np.arange(int(np.prod(shape))) * scale) * 2 + shift).reshape(shape).astype(np.float32)


@dataclass
class Recorded:
    """One op application and what MXNet 1.9.1 gave for it: data `pattern(shape)`, gamma and beta of
    `entries` elements, head gradient `pattern(out.shape, 0.7, 0.1)` on the first output."""

    op: str
    shape: tuple
    entries: int
    attrs: dict
    out: list
    mean: list
    third: list  # std = sqrt(var + eps); InstanceNorm: the variance
    dx: list
    dgamma: list
    dbeta: list

    def inputs(self) -> list[np.ndarray]:
        return [pattern(self.shape), pattern((self.entries,), 0.9, 1.0), pattern((self.entries,), 2.3, -0.2)]

    def head(self) -> np.ndarray:
        return pattern(self.shape, 0.7, 0.1)

    @property
    def id(self) -> str:
        return f"{self.op}{self.shape}{self.attrs}"


RECORDED = [
    Recorded(
        "LayerNorm",
        (2, 3, 4),
        4,
        {"output_mean_var": True},
        out=[
            [
                [-0.1311347, 5.1642828, -3.0782363, -1.4089847],
                [0.5558791, 4.4114094, -5.2749767, -0.756934],
                [1.0141985, 2.6563454, -6.5276642, 0.449488],
            ],
            [
                [1.0945117, 0.6547486, -6.4594288, 1.7040205],
                [0.8675972, -1.0199909, -5.4071598, 2.6730087],
                [0.4170437, -2.1716273, -3.6870251, 3.258543],
            ],
        ],
        mean=[[[0.2051545], [0.2872943], [0.372753]], [[0.4392081], [0.4693014], [0.4551724]]],
        third=[[[1.3772609], [1.3241965], [1.355273]], [[1.437127], [1.4886184], [1.4634182]]],
        dx=[
            [
                [-2.3056164, 0.413617, 2.001375, -0.1093757],
                [1.2997396, -1.0530571, -0.5648549, 0.3181722],
                [-0.3000209, -0.2490346, -0.5395811, 1.0886364],
            ],
            [
                [0.7232472, 1.678, -0.2414916, -2.1597557],
                [-1.4390072, -1.299098, 1.0741024, 1.6640028],
                [0.9272876, 0.1253527, -0.5162047, -0.5364357],
            ],
        ],
        dgamma=[0.8196027, -0.1421559, -0.6113579, -1.3355682],
        dbeta=[1.7395, 2.3139129, 2.0822458, 1.153455],
    ),
    Recorded(
        "LayerNorm",
        (2, 3, 4),
        3,
        {"axis": 1, "eps": 0.001},
        out=[
            [
                [-1.4799727, 0.8579716, 1.1139153, -1.330387],
                [1.6047317, 2.0100451, 0.7554078, 0.8594599],
                [1.2257507, -6.1312819, -5.444828, 1.6407306],
            ],
            [
                [0.7840501, 1.0933682, -1.2939748, -1.5310048],
                [2.2725556, 0.8940741, 0.7111157, 1.9544206],
                [-6.2148647, -5.5435123, 1.7037656, 0.9745762],
            ],
        ],
        mean=[
            [[1.2021835, 1.7579284, -0.9778755, -0.8286338]],
            [[1.9054323, -0.7692938, -1.0298872, 1.711991]],
        ],
        third=[[[0.7048459, 0.496612, 0.5835941, 0.6396001]], [[0.4005421, 0.6587611, 0.5609908, 0.5213161]]],
        dx=[
            [
                [-1.5527208, 2.2739704, 3.1475644, 5.1493888],
                [3.6650414, -3.364826, -8.500988, -8.5439692],
                [-2.1123207, 1.0908554, 5.3534236, 3.3945813],
            ],
            [
                [8.7747879, 2.5652227, -0.0708804, -2.3275917],
                [-11.8696547, -6.3578429, 0.0984186, 6.8608918],
                [3.0948715, 3.7926204, -0.0275378, -4.5333009],
            ],
        ],
        dgamma=[7.6335545, 0.3820159, -5.0544062],
        dbeta=[5.6407986, -4.727891, 6.3762064],
    ),
    Recorded(
        "InstanceNorm",
        (2, 3, 4),
        3,
        {},
        out=[
            [
                [-0.1311527, 1.3085253, -0.5021418, -1.4752309],
                [3.2309427, 4.4105282, -1.3962996, -1.0795295],
                [1.3907413, -0.6202332, -6.526495, -2.9935417],
            ],
            [
                [1.0942016, -0.4479919, -1.6489366, 0.2027271],
                [4.0309505, -1.0194747, -1.511528, 3.6656942],
                [-0.3689455, -6.1636181, -3.6866784, 1.4697144],
            ],
        ],
        mean=[[0.2051545, 0.2872943, 0.372753], [0.4392081, 0.4693014, 0.4551724]],
        third=[[1.8968377, 1.7534863, 1.8367549], [2.0653241, 2.2159748, 2.141583]],
        dx=[
            [
                [-0.8941137, 0.2641181, 0.4790844, 0.1509112],
                [1.9039503, -1.4871168, 0.1049062, -0.5217395],
                [-1.233385, 0.1055009, -1.4557823, 2.5836668],
            ],
            [
                [0.6724133, 0.5730056, 0.1219245, -1.3673435],
                [-2.6917124, -1.2874444, 0.9751083, 3.0040483],
                [2.939492, 0.0640378, -1.1417142, -1.8618153],
            ],
        ],
        dgamma=[1.5537984, 3.4822912, -6.3052855],
        dbeta=[5.6407986, -4.7278914, 6.3762064],
    ),
    Recorded(
        "InstanceNorm",
        (1, 2, 2, 3),
        2,
        {"eps": 1e-05},
        out=[
            [
                [[-0.4800575, 1.0307997, -0.8693887], [-1.8905883, 0.272752, 0.7364826]],
                [[-0.7205374, -0.3945401, 5.4974356], [3.653141, -1.7635803, 1.4765439]],
            ]
        ],
        mean=[[0.6676365, -0.0908353]],
        third=[[1.7232188, 1.6565585]],
        dx=[
            [
                [[-0.7353972, 0.8201212, 0.6180732], [0.0438512, 0.0609894, -0.8076379]],
                [[-3.1378863, -3.5462325, -1.5334463], [0.8597118, 2.8501804, 4.5076728]],
            ]
        ],
        dgamma=[-2.9924273, -0.8023108],
        dbeta=[5.5541635, -1.0466523],
    ),
    Recorded(
        "GroupNorm",
        (2, 4, 3),
        2,
        {"num_groups": 2, "output_mean_var": True},
        out=[
            [
                [-0.4800574, 1.0307999, -0.8693887],
                [-1.8905883, 0.2727521, 0.7364826],
                [-0.7205372, -0.3945401, 5.4974356],
                [3.653141, -1.7635801, 1.4765439],
            ],
            [
                [1.0490006, -0.481684, -1.6736666],
                [0.1641789, 0.8825689, -1.1403978],
                [-1.4454474, 3.7729576, 2.9241998],
                [-2.0754898, 0.0616331, 4.5106096],
            ],
        ],
        mean=[[0.6676365, -0.0908353], [0.4906839, 0.4184373]],
        third=[[1.3127182, 1.2870775], [1.4482794, 1.4772003]],
        dx=[
            [
                [-0.7353972, 0.8201212, 0.6180733],
                [0.0438514, 0.0609893, -0.8076379],
                [-3.1378865, -3.5462325, -1.5334466],
                [0.8597119, 2.8501804, 4.5076733],
            ],
            [
                [1.3579345, 0.8715552, 0.1219183],
                [-0.8907207, -1.1468958, -0.3137918],
                [-1.6122279, 1.1772761, 2.1986237],
                [1.1399479, -0.5083435, -2.395277],
            ],
        ],
        dgamma=[-1.5554699, -1.7866874],
        dbeta=[2.8145785, 4.474535],
    ),
    Recorded(
        "GroupNorm",
        (1, 6, 1, 2),
        3,
        {"num_groups": 3, "eps": 0.001},
        out=[
            [
                [[-0.1311527, 1.3085253]],
                [[-0.5021418, -1.4752309]],
                [[3.2309427, 4.4105282]],
                [[-1.3962996, -1.0795295]],
                [[1.3907416, -0.6202329]],
                [[-6.526495, -2.9935417]],
            ]
        ],
        mean=[[0.2051545, 0.2872943, 0.372753]],
        third=[[1.3776203, 1.3245703, 1.3556383]],
        dx=[
            [
                [[-0.8941137, 0.2641181]],
                [[0.4790844, 0.1509111]],
                [[1.9039506, -1.4871167]],
                [[0.104906, -0.52174]],
                [[-1.2333851, 0.1055008]],
                [[-1.4557824, 2.5836668]],
            ]
        ],
        dgamma=[-0.8534361, 3.2941456, -3.9893954],
        dbeta=[5.3857536, -3.3396468, 2.4614041],
    ),
]

TOLERANCE = {"rtol": 1e-5, "atol": 2e-5}


def assert_recorded(got, want, what: str) -> None:
    np.testing.assert_allclose(np.asarray(got), np.asarray(want, np.float32), err_msg=what, **TOLERANCE)


@pytest.mark.parametrize("case", RECORDED, ids=lambda c: c.id)
def test_nd_forward_and_autograd_match_mxnet(case):
    x, gamma, beta = (mx.nd.array(a) for a in case.inputs())
    for array in (x, gamma, beta):
        array.attach_grad()
    with mx.autograd.record():
        outputs = getattr(mx.nd, case.op)(x, gamma, beta, **case.attrs)
        shows_stats = case.attrs.get("output_mean_var", False)
        out = outputs[0] if shows_stats else outputs
        loss = (out * mx.nd.array(case.head())).sum()
    loss.backward()
    assert_recorded(out.asnumpy(), case.out, "out")
    if shows_stats:
        assert len(outputs) == 3
        assert_recorded(outputs[1].asnumpy(), case.mean, "mean")
        assert_recorded(outputs[2].asnumpy(), case.third, "std")
    for name, array in (("dx", x), ("dgamma", gamma), ("dbeta", beta)):
        assert_recorded(array.grad.asnumpy(), getattr(case, name), name)


@pytest.mark.parametrize("case", RECORDED, ids=lambda c: c.id)
def test_hidden_outputs_match_mxnet(case):
    """Every output, hidden ones included, by the reference interpreter on a one-node graph."""
    graph, node = OpCase(case.op, case.inputs(), case.attrs).graph()
    out, mean, third = run(graph, {v.node.name: a for v, a in zip(node.inputs, case.inputs())})
    for got, want, name in ((out, case.out, "out"), (mean, case.mean, "mean"), (third, case.third, "third")):
        assert got.dtype == np.float32
        assert_recorded(got, want, name)


def test_compiled_executor_matches_mxnet(monkeypatch):
    """One forward and backward of each op through a compiled executor (the first case of each op)."""
    monkeypatch.setenv("EMBER_EXECUTOR", "compiled")
    for op in ("LayerNorm", "InstanceNorm", "GroupNorm"):
        case = next(c for c in RECORDED if c.op == op)
        symbol = getattr(mx.sym, op)(mx.sym.Variable("data"), name="n", **case.attrs)
        executor = symbol.simple_bind(mx.cpu(), data=case.shape)
        for name, value in zip(("data", "n_gamma", "n_beta"), case.inputs()):
            executor.arg_dict[name][:] = value
        outputs = executor.forward(is_train=True)
        heads = [mx.nd.array(case.head())] + [mx.nd.zeros(o.shape) for o in outputs[1:]]
        executor.backward(heads)
        assert_recorded(outputs[0].asnumpy(), case.out, f"{op} out")
        for name, want in (("data", case.dx), ("n_gamma", case.dgamma), ("n_beta", case.dbeta)):
            assert_recorded(executor.grad_dict[name].asnumpy(), want, f"{op} grad {name}")


@pytest.mark.parametrize("op", ["LayerNorm", "GroupNorm"])
def test_no_gradient_flows_through_mean_and_std(op):
    """MXNet 1.9.1 gives zero gradients for a loss of the mean and std outputs only."""
    case = next(c for c in RECORDED if c.op == op and c.attrs.get("output_mean_var"))
    arrays = [mx.nd.array(a) for a in case.inputs()]
    for array in arrays:
        array.attach_grad()
    with mx.autograd.record():
        _, mean, std = getattr(mx.nd, op)(*arrays, **case.attrs)
        loss = (mean * 2).sum() + (std * 3).sum()
    loss.backward()
    for array in arrays:
        np.testing.assert_array_equal(array.grad.asnumpy(), np.zeros(array.shape, np.float32))


# The JSON MXNet 1.9.1 writes for each op (mx.sym.<op>(mx.sym.var("data"), name="n", **attrs).tojson()),
# its list_outputs() and its infer_shape(data=(2, 4, 3)).
def _mxnet_json(op: str, attrs: dict, heads: int) -> str:
    variable = {"op": "null", "inputs": [], "attrs": attrs}
    nodes = [
        {"op": "null", "name": "data", "inputs": []},
        {**variable, "name": "n_gamma"},
        {**variable, "name": "n_beta"},
        {"op": op, "name": "n", "attrs": attrs, "inputs": [[0, 0, 0], [1, 0, 0], [2, 0, 0]]},
    ]
    return json.dumps({
        "nodes": nodes, "arg_nodes": [0, 1, 2], "node_row_ptr": [0, 1, 2, 3, 6],
        "heads": [[3, i, 0] for i in range(heads)], "attrs": {"mxnet_version": ["int", 10901]},
    })  # fmt: skip


MXNET_FILES = [
    (
        "LayerNorm",
        {"axis": "1", "eps": "0.001", "output_mean_var": "True"},
        ["n_output", "n_mean", "n_std"],
        ([(2, 4, 3), (4,), (4,)], [(2, 4, 3), (2, 1, 3), (2, 1, 3)], []),
    ),
    ("InstanceNorm", {"eps": "0.1"}, ["n_output"], ([(2, 4, 3), (4,), (4,)], [(2, 4, 3)], [])),
    ("GroupNorm", {"num_groups": "2"}, ["n_output"], ([(2, 4, 3), (2,), (2,)], [(2, 4, 3)], [])),
]


@pytest.mark.parametrize("op, attrs, outputs, shapes", MXNET_FILES, ids=[f[0] for f in MXNET_FILES])
def test_mxnet_json_round_trips(op, attrs, outputs, shapes):
    text = _mxnet_json(op, attrs, len(outputs))
    loaded = mx.sym.load_json(text)
    assert json.loads(loaded.tojson()) == json.loads(text)
    assert loaded.list_outputs() == outputs
    assert loaded.infer_shape(data=(2, 4, 3)) == shapes
    built = getattr(mx.sym, op)(mx.sym.Variable("data"), name="n", **{k: v for k, v in attrs.items()})
    assert json.loads(built.tojson()) == json.loads(text)


def test_shapes_are_inferred_both_ways():
    """Beyond MXNet's forward-only rules: the data's shape from the output's, a channel count from gamma."""
    normed = mx.sym.LayerNorm(mx.sym.Variable("data"), name="ln", axis=0)
    args, _, _ = (normed + mx.sym.Variable("other")).infer_shape_partial(other=(2, 3))
    assert args == [(2, 3), (2,), (2,), (2, 3)]
    grouped = mx.sym.GroupNorm(mx.sym.Variable("data"), name="gn", num_groups=2)
    args, _, _ = (grouped * mx.sym.Variable("other")).infer_shape_partial(other=(1, 4, 5))
    assert args == [(1, 4, 5), (2,), (2,), (1, 4, 5)]
    instance = mx.sym.InstanceNorm(mx.sym.Variable("data"), name="in")
    args, outs, _ = instance.infer_shape_partial(data=(2, 0, 3), in_gamma=(4,))
    assert args == [(2, 4, 3), (4,), (4,)] and outs == [(2, 4, 3)]


@pytest.mark.parametrize(
    "make, shape, message",
    [
        (lambda d: mx.sym.InstanceNorm(d), (2, 3), "InstanceNorm needs data of rank 3 or more"),
        (lambda d: mx.sym.GroupNorm(d, num_groups=2), (2, 4), "GroupNorm needs data of rank 3 or more"),
        (lambda d: mx.sym.GroupNorm(d, num_groups=4), (2, 6, 3), "cannot be split into num_groups=4 groups"),
        (lambda d: mx.sym.GroupNorm(d, num_groups=0), (2, 6, 3), "num_groups must be at least 1"),
        (lambda d: mx.sym.LayerNorm(d, axis=3), (5, 2), "axis 3 is out of range for 2 dimensions"),
        (lambda d: mx.sym.LayerNorm(d, axis=-3), (5, 2), "axis -3 is out of range for 2 dimensions"),
    ],
)
def test_shape_errors_name_the_problem(make, shape, message):
    with pytest.raises(MXNetError, match=message):
        make(mx.sym.Variable("data")).infer_shape(data=shape)


# -- compiled kernels beyond the registry's cases: sizes above and not multiples of 16, every axis,
# float16 and float64, data far from zero (the variance is taken about the mean) -----------------------

COMPILED_CASES = [
    ("LayerNorm", (37, 130), 130, {"output_mean_var": True}),
    ("LayerNorm", (37, 130), 37, {"axis": 0}),
    ("LayerNorm", (6, 5, 13, 11), 5, {"axis": 1, "eps": 1e-3}),
    ("InstanceNorm", (6, 5, 13, 11), 5, {}),
    ("InstanceNorm", (3, 17, 1, 33), 17, {"eps": 1e-5}),
    ("GroupNorm", (4, 12, 9, 7), 3, {"num_groups": 3, "output_mean_var": True}),
    ("GroupNorm", (2, 5, 19), 5, {"num_groups": 5}),
]


def _compiled_case(op, shape, entries, attrs, dtype=np.float32, offset=0.0) -> OpCase:
    rng = np.random.default_rng(entries)
    data = (rng.standard_normal(shape) + offset).astype(dtype)
    gamma, beta = (rng.standard_normal(entries).astype(dtype) for _ in range(2))
    return OpCase(op, [data, gamma, beta], attrs)


@pytest.mark.parametrize("op, shape, entries, attrs", COMPILED_CASES, ids=lambda v: str(v))
def test_compiled_kernel_matches_reference(op, shape, entries, attrs):
    check_op_case(_compiled_case(op, shape, entries, attrs))


@pytest.mark.parametrize("op, shape, entries, attrs", COMPILED_CASES[::3], ids=lambda v: str(v))
def test_compiled_kernel_float16_float64_and_offset_data(op, shape, entries, attrs):
    for dtype in (np.float16, np.float64):
        check_op_case(_compiled_case(op, shape, entries, attrs, dtype))
    check_op_case(_compiled_case(op, shape, entries, attrs, offset=1000.0))


def _executor_step(monkeypatch, engine: str, case: OpCase) -> list[np.ndarray]:
    """Outputs and the data, gamma and beta gradients of one training step of `case` on `engine`."""
    monkeypatch.setenv("EMBER_EXECUTOR", engine)
    symbol = getattr(mx.sym, case.op)(mx.sym.Variable("data"), name="n", **case.attrs)
    data, gamma, beta = case.inputs
    executor = symbol.simple_bind(mx.cpu(), data=data.shape)
    for name, value in zip(("data", "n_gamma", "n_beta"), case.inputs):
        executor.arg_dict[name][:] = value
    outputs = executor.forward(is_train=True)
    rng = np.random.default_rng(3)
    executor.backward([mx.nd.array(rng.standard_normal(o.shape)) for o in outputs])
    return [o.asnumpy() for o in outputs] + [
        executor.grad_dict[n].asnumpy() for n in ("data", "n_gamma", "n_beta")
    ]


@pytest.mark.parametrize("op, shape, entries, attrs", COMPILED_CASES[::2], ids=lambda v: str(v))
def test_compiled_training_step_matches_reference(monkeypatch, op, shape, entries, attrs):
    case = _compiled_case(op, shape, entries, attrs)
    want = _executor_step(monkeypatch, "reference", case)
    got = _executor_step(monkeypatch, "compiled", case)
    for position, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5, err_msg=f"{case.id} result {position}")
