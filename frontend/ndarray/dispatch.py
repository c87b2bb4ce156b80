"""How one imperative op call is prepared, once per call signature, below the NDArray.

A call's signature is the op, its Python-valued parameters, the node name and every input's shape and
dtype. The first call with a signature does all the checking: parameters parsed by the op's schema,
the input count, the shape and type rules (ShapeError naming the op and the shapes), and the choice of
kernel (a `fast_kernels` specialization, else the op's reference rule). The result, a `PreparedOp`,
is kept in a bounded table, so a repeated call costs a dictionary lookup before its NumPy work: about
1 us, which is what keeps `a + b` on small arrays under 5 us.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ember.compiler import Attrs, RefContext
from ember.compiler.interpreter import call_reference
from ember.compiler.ops import get_schema
from ember.runtime.errors import MXNetError

from .. import random
from . import op_call, tape
from .aux_updates import updater_for
from .fast_kernels import fast_kernel

MAX_PREPARED = 8192  # signatures kept; the table is cleared when full (a loop over shapes refills it)


class PreparedOp:
    """Everything about one call signature that does not depend on the input values."""

    __slots__ = (
        "op", "attrs", "params", "node_name", "visible", "kernel", "in_shapes", "in_dtypes", "out_shapes",
        "out_dtypes", "aux_update",
    )  # fmt: skip

    def __init__(self, op, attrs, params, node_name, visible, kernel, inputs, outputs, aux_update=None):
        self.op, self.attrs, self.params, self.node_name = op, attrs, params, node_name
        self.visible, self.kernel = visible, kernel
        self.in_shapes, self.in_dtypes = inputs  # the signature's: tuples of shapes and NumPy dtypes
        self.out_shapes, self.out_dtypes = outputs  # every output's, as the rules infer them (NumPy dtypes)
        self.aux_update = aux_update  # writes new auxiliary states after a training-mode call


_PREPARED: dict[tuple, PreparedOp] = {}


def params_key(params: Mapping[str, Any] | None) -> tuple:
    """A hashable form of a call's parameters (lists become tuples) in which equal keys mean equal
    calls: -0.0 and NaN, which Python's == confuses with 0.0 or with nothing, get their own tokens."""
    if not params:
        return ()
    items = tuple(params.items())
    try:
        hash(items)
    except TypeError:
        items = tuple((k, _hashable(v)) for k, v in items)
    for _, value in items:
        if type(value) is float and (value != value or (value == 0.0 and math.copysign(1.0, value) < 0)):
            return tuple((k, _float_token(v)) for k, v in items)
    return items


def _float_token(value):
    if type(value) is float and (value != value or (value == 0.0 and math.copysign(1.0, value) < 0)):
        return ("float", value.hex())
    return value


def _hashable(value):
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, np.ndarray):
        return ("ndarray", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


def prepared(op: str, params: Mapping | None, name: str | None, shapes: tuple, dtypes: tuple) -> PreparedOp:
    """The PreparedOp of this signature, made (and checked) on first use: the one lookup every
    imperative call makes."""
    key = (op, params_key(params) if params else (), name, shapes, dtypes)
    found = _PREPARED.get(key)
    if found is None:
        found = prepare(op, params, name, shapes, dtypes)
        if len(_PREPARED) >= MAX_PREPARED:
            _PREPARED.clear()
        _PREPARED[key] = found
    return found


def prepare(op: str, params: Mapping | None, name: str | None, shapes: tuple, dtypes: tuple) -> PreparedOp:
    """Check a call against `op`'s schema and rules and choose its kernel."""
    schema = get_schema(op)
    node_name = name or schema.name.lower()
    attrs = op_call.format_params(params or {}, schema)
    if schema.variadic and schema.variadic not in attrs:
        attrs[schema.variadic] = str(len(shapes))
    parsed = schema.parse_params(attrs, node_name)
    names = schema.input_names(parsed)
    if len(shapes) != len(names):
        listed = ", ".join(names) or "none"
        raise MXNetError(f"operator {schema.name} takes {len(names)} inputs ({listed}), got {len(shapes)}")
    attrs = Attrs(attrs)
    out_shapes, out_dtypes = op_call.check_inputs(
        schema.name, tuple(attrs), tuple(names), shapes, tuple(d.name for d in dtypes), node_name
    )
    kernel = fast_kernel(schema.name, parsed, dtypes, shapes) or _reference_kernel(
        schema.name, node_name, parsed
    )
    visible = schema.num_visible_outputs(parsed)
    aux_update = updater_for(schema.name, attrs, parsed, shapes, dtypes, out_shapes, schema)
    inputs = (shapes, dtypes)
    outputs = (out_shapes, tuple(None if d is None else np.dtype(d) for d in out_dtypes))
    return PreparedOp(schema.name, attrs, parsed, node_name, visible, kernel, inputs, outputs, aux_update)


def _reference_kernel(op: str, node_name: str, params: dict):
    """The op's reference rule, in the current training mode and random stream, every output a fresh
    C-contiguous array that never aliases an input."""

    def kernel(arrays):
        ctx = RefContext(tape.FLAGS.training, random.generator())
        return [op_call.fresh(r, arrays) for r in call_reference(op, node_name, params, arrays, ctx)]

    return kernel


def kernel_for(node, dtypes: tuple, shapes: tuple):
    """The kernel of an IR node whose inputs have these dtypes and shapes (a gradient graph's node:
    already checked)."""
    return fast_kernel(node.op, node.params, dtypes, shapes) or _reference_kernel(
        node.op, node.name, node.params
    )
