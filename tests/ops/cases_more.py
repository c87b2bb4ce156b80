"""Shape/type cases for array creation (init_ops.py), ordering (sorting.py) and layout (layout.py).

The creation ops have no inputs: their size-1 and odd dims come from their attributes (the coverage
check counts the inferred output dims of input-less cases). Integer and float64 inputs check that
dtypes are kept or replaced as MXNet does.
"""

import numpy as np

from .harness import OpCase

INTS = np.array([[-3, 0, 2], [5, -1, 7]], dtype=np.int32)
FLOAT64 = np.linspace(-0.9, 0.9, 15).reshape(5, 1, 3)
IMAGE = (1, 3, 2, 5)  # N, C, H, W
VOLUME = (2, 1, 3, 2, 3)  # N, C, D, H, W

CASES: list[OpCase] = []

for _op in ("_zeros", "_ones"):
    CASES += [
        OpCase(_op, [], {"shape": (5,)}),
        OpCase(_op, [], {"shape": (2, 1, 3), "dtype": "int32"}),
        OpCase(_op, [], {"shape": (1, 3), "dtype": "bool", "ctx": "cpu(0)"}),
    ]

CASES += [
    OpCase("_full", [], {"shape": (5,), "value": 2.5}),
    OpCase("_full", [], {"shape": (2, 1, 3), "value": -1.7, "dtype": "int64"}),
    OpCase("_full", [], {"shape": (1, 3), "value": 3, "dtype": "float16"}),
    OpCase("_arange", [], {"start": 5}),
    OpCase("_arange", [], {"start": 1, "stop": 2}),
    OpCase("_arange", [], {"start": 2.0, "stop": -1.0, "step": -0.5, "dtype": "float64"}),
    OpCase("_arange", [], {"start": 0, "stop": 3, "repeat": 3, "dtype": "int32"}),
    OpCase("_arange", [], {"start": 1, "stop": 4, "infer_range": True, "dtype": "uint8"}),
    OpCase("_eye", [], {"N": 3}),
    OpCase("_eye", [], {"N": 1, "M": 4, "k": 1, "dtype": "int8"}),
    OpCase("_eye", [], {"N": 5, "M": 3, "k": -2, "dtype": "float64"}),
]

CASES += [
    OpCase("sort", [(5,)]),
    OpCase("sort", [(2, 1, 3)], {"axis": 0, "is_ascend": False}),
    OpCase("sort", [(2, 1, 3)], {"axis": None}),
    OpCase("sort", [INTS], {"axis": -1}),
    OpCase("sort", [FLOAT64], {"axis": 1}),
    OpCase("argsort", [(5,)]),
    OpCase("argsort", [(2, 1, 3)], {"axis": 0, "dtype": "int32"}),
    OpCase("argsort", [(2, 1, 3)], {"axis": None, "is_ascend": False, "dtype": "float64"}),
    OpCase("argsort", [INTS], {"dtype": "uint8"}),
    OpCase("topk", [(5,)]),
    OpCase("topk", [(2, 1, 3)], {"k": 2, "ret_typ": "value"}),
    OpCase("topk", [(2, 1, 3)], {"axis": 0, "k": 1, "ret_typ": "both", "dtype": "int64"}),
    OpCase("topk", [(2, 1, 3)], {"axis": None, "k": 4, "ret_typ": "mask", "is_ascend": True}),
    OpCase("topk", [(2, 1, 3)], {"axis": None, "k": 0, "ret_typ": "both"}),
    OpCase("topk", [INTS], {"axis": 0, "k": -1, "ret_typ": "value"}),
    OpCase("topk", [INTS], {"k": 3, "ret_typ": "mask"}),
    OpCase("topk", [FLOAT64], {"axis": 2, "k": 2, "ret_typ": "indices", "dtype": "float16"}),
]

CASES += [
    OpCase("Pad", [IMAGE], {"pad_width": (0, 0, 0, 0, 1, 2, 3, 0)}),
    OpCase("Pad", [IMAGE], {"mode": "edge", "pad_width": (0, 0, 0, 0, 2, 2, 0, 1)}),
    OpCase("Pad", [IMAGE], {"mode": "reflect", "pad_width": (0, 0, 0, 0, 1, 1, 4, 2)}),
    OpCase(
        "Pad",
        [VOLUME],
        {"mode": "constant", "constant_value": 2.5, "pad_width": (0, 0, 0, 0, 1, 0, 0, 1, 2, 0)},
    ),
    OpCase(
        "Pad", [np.arange(12, dtype=np.int32).reshape(1, 1, 3, 4)], {"pad_width": (0, 0, 0, 0, 1, 1, 1, 1)}
    ),
    OpCase("reverse", [(5,)], {"axis": (0,)}),
    OpCase("reverse", [(2, 1, 3)], {"axis": (2, 0)}),
    OpCase("reverse", [INTS], {"axis": (1,)}),
    OpCase("reverse", [FLOAT64], {"axis": (0, 0, 2)}),
    OpCase("reshape_like", [(6,), (2, 3)]),
    OpCase("reshape_like", [(2, 1, 3), (3, 2)]),
    OpCase("reshape_like", [(6, 5), (3, 2, 1)], {"lhs_begin": 0, "lhs_end": 1, "rhs_begin": 0, "rhs_end": 2}),
    OpCase("reshape_like", [(15, 4), (1, 3, 5)], {"lhs_begin": -2, "lhs_end": -1, "rhs_begin": 1}),
    OpCase("reshape_like", [INTS, np.zeros((3, 2), np.float64)]),
    OpCase("slice_like", [(5,), (3,)]),
    OpCase("slice_like", [(2, 1, 3), (1, 1, 2)]),
    OpCase("slice_like", [(2, 3, 5), (1, 7)], {"axes": (0,)}),
    OpCase("slice_like", [(2, 3, 5), (2, 1, 3)], {"axes": (-1, 1)}),
    OpCase("slice_like", [INTS, np.zeros((1, 2), np.float64)]),
    OpCase("slice_like", [FLOAT64, (3,)], {"axes": (0,)}),
]


def _update_case(rule: str, shape: tuple, **scalars) -> OpCase:
    """One `_optimizer_update` application: random weight/grad, non-negative states, given scalars."""
    from ember.compiler.ops.optimizer import UPDATE_RULES

    spec = UPDATE_RULES[rule]
    rng = np.random.default_rng(len(shape) + spec.states)
    arrays = [rng.standard_normal(shape).astype(np.float32) for _ in range(2)]
    arrays += [np.abs(rng.standard_normal(shape)).astype(np.float32) + 0.5 for _ in range(spec.states)]
    defaults = {"lr": 0.1, "wd": 0.01, "rescale_grad": 0.5, "clip_gradient": -1.0, "momentum": 0.9, "beta1": 0.9,
                "beta2": 0.999, "epsilon": 1e-8, "gamma1": 0.9, "gamma2": 0.9, "clip_weights": -1.0, "lamda1": 0.01,
                "beta": 1.0, "wd_lh": 0.0, "eps": 1e-7, "rho": 0.9, "momentum_t": 0.5, "momentum_t_1": 0.6,
                "m_schedule": 0.5, "m_schedule_next": 0.3, "v_correction": 0.001}  # fmt: skip
    values = {**defaults, **scalars}
    arrays += [np.array([values[name]], np.float32) for name in spec.scalars]
    return OpCase(
        "_optimizer_update", arrays, {"rule": rule}, id=f"_optimizer_update[{rule}-{shape}-{scalars}]"
    )


def _update_cases() -> list[OpCase]:
    from ember.compiler.ops.optimizer import UPDATE_RULES

    cases = [_update_case(rule, (3, 1, 5)) for rule in UPDATE_RULES]
    cases += [_update_case("sgd", (7,), clip_gradient=0.1), _update_case("rmsprop", (2, 3), clip_weights=0.2)]
    return cases


CASES += _update_cases()
