"""The op registry: every operator declared once, and one rule table per transformation.

`define_op` declares an operator's schema (inputs, parameters, outputs, auxiliary states). Each
pass then looks the op up in its own table, filled by a decorator placed right under the rule's
function:

    shape_rules[op]      (params, in_shapes, out_shapes) -> (in_shapes, out_shapes)   two-way
    type_rules[op]       (params, in_types, out_types) -> (in_types, out_types)       two-way
    fusion_kinds[op]     FusionKind
    reference_rules[op]  (params, inputs, ctx) -> list of outputs (NumPy; hidden outputs too)
    grad_rules[op]       (g: GradBuilder, node, out_grads) -> input grads   (passes/autodiff.py)
    lower_rules[op]      (ctx, node, input tensors) -> output tensors   (compiler/lowering)

`REQUIRED_TABLES` lists the tables every op must have an entry in; a test enforces it. Facts that are
not rules (a loss head, a reshape, a random draw, a read of the training mode) are `OpSchema` fields,
declared in `define_op`; passes ask them of a node through `facts.py`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ember.runtime.errors import GraphError

from .params import REQUIRED, Param, parse_all


class FusionKind(enum.Enum):
    """How an op may take part in fusion (the fusion pass reads only this)."""

    ELEMENTWISE = "elementwise"  # out[i] = f(in[i]) on same-shaped operands
    BROADCAST = "broadcast"  # elementwise after NumPy-style broadcasting
    INJECTIVE = "injective"  # each output element reads one input element (reshape, transpose)
    REDUCE = "reduce"  # reduces axes; elementwise prologues may fuse in
    MATMUL = "matmul"  # contraction; elementwise epilogues may fuse in
    OPAQUE = "opaque"  # fused with nothing


@dataclass(frozen=True)
class OpSchema:
    """What every pass needs to know about an op besides its rules."""

    name: str
    inputs: tuple[str, ...] | Callable[[dict], tuple[str, ...]] = ("data",)
    params: tuple[Param, ...] = ()
    outputs: int | Callable[[dict], int] = 1
    visible_outputs: int | Callable[[dict], int] | None = None
    output_names: tuple[str, ...] | Callable[[dict], tuple[str, ...]] | None = None
    mutable_inputs: tuple[str, ...] = ()  # auxiliary states (BatchNorm moving statistics)
    variadic: str | None = None  # the param counting a variable number of inputs (Concat: num_args)
    input_inits: Mapping[str, str] = field(default_factory=dict)  # `__init__` stamped on auto inputs
    # Outputs MXNet 1.9.1's (oneDNN) build counts in JSON `node_row_ptr`, when it has more than we do:
    # max Pooling's workspace. Only the JSON writer reads it.
    file_outputs: Callable[[dict], int] | None = None
    # A loss head (SoftmaxOutput, the regression outputs, MakeLoss): its gradient rule runs without a
    # head gradient and ignores any given, so autodiff starts from it and its label needs no value.
    loss_head: bool = False
    # The output is input 0's elements in row-major order, only the shape differs (Reshape, Flatten,
    # expand_dims, squeeze; reshape_like, whose rhs gives just a shape): fusion reads input 0
    # pointwise and memory planning may write the output over it.
    reshapes_input: bool = False
    # Whether an application draws from `ctx.rng` (a function of the params where it depends on them:
    # LeakyReLU only for rrelu); two applications to the same inputs then differ, so CSE keeps both.
    draws_random: bool | Callable[[dict], bool] = False
    # Whether the result depends on `ctx` (the training mode or the random generator) and not only on
    # the inputs and params: every random op, BatchNorm; constant folding never evaluates one.
    reads_context: bool = False
    doc: str = ""

    def parse_params(self, attrs, node_name: str = "") -> dict[str, Any]:
        return parse_all(self.name, node_name, self.params, attrs)

    def keeps_none(self, name: str) -> bool:
        """Whether a Python None given for parameter `name` means the value None ("None"), not "use the
        default": the parameter has a default other than None and accepts "None" (`pick`'s axis,
        `slice_axis`'s end), as MXNet's generated functions pass None through."""
        for param in self.params:
            if param.name == name:
                if param.default is None:
                    return False
                try:
                    return param.parse("None") is None
                except Exception:  # noqa: BLE001 - any parse failure means "None" is not a value
                    return False
        return False

    def input_names(self, params: dict) -> tuple[str, ...]:
        if self.variadic:
            return tuple(f"arg{i}" for i in range(params[self.variadic]))
        return self.inputs(params) if callable(self.inputs) else self.inputs

    def declared_inputs(self) -> tuple[str, ...]:
        """Every input the op can take whatever its parameters (FullyConnected's bias included, as in
        MXNet's generated signatures); () for variadic ops."""
        if self.variadic:
            return ()
        if not callable(self.inputs):
            return tuple(self.inputs)
        defaults = {p.name: (None if p.default is REQUIRED else p.default) for p in self.params}
        try:
            return tuple(self.inputs(defaults))
        except (KeyError, TypeError, ValueError):
            return ()

    def num_outputs(self, params: dict) -> int:
        return self.outputs(params) if callable(self.outputs) else self.outputs

    def num_file_outputs(self, params: dict) -> int:
        return self.file_outputs(params) if self.file_outputs else self.num_outputs(params)

    def num_visible_outputs(self, params: dict) -> int:
        visible = self.visible_outputs
        if visible is None:
            return self.num_outputs(params)
        return visible(params) if callable(visible) else visible

    def all_output_names(self, params: dict) -> tuple[str, ...]:
        """Output suffixes, hidden ones included: declared names, else 'output' or 'output0'.."""
        names = self.output_names(params) if callable(self.output_names) else self.output_names
        if names is not None:
            return tuple(names)
        count = self.num_outputs(params)
        return ("output",) if count == 1 else tuple(f"output{i}" for i in range(count))


SCHEMAS: dict[str, OpSchema] = {}
ALIASES: dict[str, str] = {}  # alternative name -> canonical op name

shape_rules: dict[str, Callable] = {}
type_rules: dict[str, Callable] = {}
fusion_kinds: dict[str, FusionKind] = {}
reference_rules: dict[str, Callable] = {}
grad_rules: dict[str, Callable] = {}
lower_rules: dict[str, Callable] = {}
# op -> (g: GradBuilder, node) -> {input name: new value}: how a training step updates the variables
# feeding an op (BatchNorm's moving statistics, and gamma under fix_gamma); the executor writes them back.
aux_update_rules: dict[str, Callable] = {}

REQUIRED_TABLES: dict[str, dict] = {
    "shape": shape_rules,
    "type": type_rules,
    "fusion": fusion_kinds,
    "reference": reference_rules,
    "grad": grad_rules,
    "lower": lower_rules,
}


def define_op(name: str, *, aliases: tuple[str, ...] = (), fusion: FusionKind, **schema_fields) -> OpSchema:
    """Declare an op; `aliases` are other names it is called by (`flatten` for `Flatten`)."""
    if name in SCHEMAS:
        raise ValueError(f"op {name} is defined twice")
    schema = OpSchema(name=name, **schema_fields)
    SCHEMAS[name] = schema
    fusion_kinds[name] = fusion
    for alias in aliases:
        ALIASES[alias] = name
    return schema


def canonical_name(op: str) -> str:
    return ALIASES.get(op, op)


def get_schema(op: str) -> OpSchema:
    """The schema of `op` (or of the op it is an alias of); GraphError naming an unknown op."""
    schema = SCHEMAS.get(canonical_name(op))
    if schema is None:
        raise GraphError(f"unknown operator {op!r}")
    return schema


def _registrar(table: dict, *ops: str):
    def register(fn):
        for op in ops:
            table[op] = fn
        return fn

    return register


def shape_rule(*ops: str):
    """Register the decorated function as the shape rule of `ops`."""
    return _registrar(shape_rules, *ops)


def type_rule(*ops: str):
    """Register the decorated function as the type rule of `ops`."""
    return _registrar(type_rules, *ops)


def reference(*ops: str):
    """Register the decorated function as the NumPy reference of `ops`."""
    return _registrar(reference_rules, *ops)


def lowering(*ops: str):
    """Register the decorated function as the lowering rule of `ops` (see `compiler/lowering`)."""
    return _registrar(lower_rules, *ops)


def grad_rule(*ops: str):
    """Register the decorated function as the gradient rule of `ops` (see `passes/autodiff.py`)."""
    return _registrar(grad_rules, *ops)


def aux_update_rule(*ops: str):
    """Register the decorated function as the auxiliary-state update of `ops` in training."""
    return _registrar(aux_update_rules, *ops)


def no_gradient(*ops: str):
    """Declare that `ops` pass no gradient to any input (BlockGrad, argmax, comparisons, ...)."""
    for op in ops:
        grad_rules[op] = _no_gradient


def _no_gradient(g, node, out_grads):
    return [None] * len(node.inputs)


def non_differentiable(*ops: str):
    """Declare that `ops` have no gradient at all (the backward ops of Convolution, Pooling, ...): a
    gradient reaching one is an error, as in MXNet, rather than a silent zero."""
    for op in ops:
        grad_rules[op] = _non_differentiable


def _non_differentiable(g, node, out_grads):
    if all(grad is None for grad in out_grads):
        return [None] * len(node.inputs)
    raise GraphError(
        f"Operator {node.op} (node {node.name!r}) is non-differentiable because it didn't register "
        "FGradient attribute: its gradient (a second-order gradient through the op it differentiates) "
        "is not supported"
    )


def missing_entries() -> dict[str, list[str]]:
    """Op name -> the required tables it has no entry in (empty when the registry is complete)."""
    missing = {}
    for op in SCHEMAS:
        lacks = [table for table, rules in REQUIRED_TABLES.items() if op not in rules]
        if lacks:
            missing[op] = lacks
    return missing
