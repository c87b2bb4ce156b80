"""`Symbol.simple_bind` and `Symbol.bind`: infer shapes and dtypes, allocate or take arrays, and make
an `Executor` (MXNET_COMPAT.md section 1.6). Arrays `simple_bind` allocates are zero-filled.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
from ember.compiler import Value
from ember.compiler.dtypes import DEFAULT_DTYPE, dtype_name
from ember.compiler.ops.rules import is_known
from ember.compiler.passes import infer_shapes, infer_types
from ember.compiler.passes.infer_shapes import legacy_to_partial
from ember.runtime.errors import MXNetError, ShapeError

from ..executor import Executor, normalize_grad_reqs
from ..ndarray import NDArray


def _infer(symbol, shapes: Mapping[str, tuple], type_dict: Mapping | None):
    """Complete shapes and dtypes of every value, or an error naming what stays unknown."""
    given = {k: legacy_to_partial(tuple(v)) for k, v in shapes.items()}
    try:
        inferred = infer_shapes(symbol._graph, given)
    except ShapeError as err:
        listed = "".join(f"  {k}: {tuple(v)}\n" for k, v in shapes.items())
        raise ShapeError(f"infer_shape error. Arguments:\n{listed}{err}") from None
    unknown = [v.name for v in symbol._graph.variables if not is_known(inferred.get(Value(v, 0)))]
    if unknown:
        raise ShapeError(f"cannot decide the shapes of {', '.join(unknown)}; give them as keyword shapes")
    dtypes = infer_types(symbol._graph, dict(type_dict or {}), default=DEFAULT_DTYPE)
    return inferred, dtypes


def _variable_specs(symbol, shapes, dtypes, names):
    index = {v.name: v for v in symbol._graph.variables}
    return [(tuple(shapes[Value(index[n], 0)]), dtypes[Value(index[n], 0)]) for n in names]


def simple_bind(symbol, ctx=None, grad_req="write", type_dict=None, stype_dict=None, group2ctx=None,
                shared_arg_names=None, shared_exec=None, shared_buffer=None, **kwargs) -> Executor:
    """Bind with arrays allocated from the given input shapes (keyword arguments)."""
    shapes, dtypes = _infer(symbol, kwargs, type_dict)
    arg_names, aux_names = symbol.list_arguments(), symbol.list_auxiliary_states()
    reqs = normalize_grad_reqs(grad_req, arg_names)
    args = [_zeros(s, d, ctx) for s, d in _variable_specs(symbol, shapes, dtypes, arg_names)]
    grads = [None if r == "null" else _zeros(a.shape, a._data.dtype, ctx) for a, r in zip(args, reqs)]
    aux = [_zeros(s, d, ctx) for s, d in _variable_specs(symbol, shapes, dtypes, aux_names)]
    return Executor(symbol, ctx, args, grads, reqs, aux, shapes, dtypes)


def bind(symbol, ctx=None, args=None, args_grad=None, grad_req="write", aux_states=None, group2ctx=None,
         shared_exec=None) -> Executor:
    """Bind given arrays: `args`/`args_grad`/`aux_states` as lists in argument order or dicts by name."""
    arg_names, aux_names = symbol.list_arguments(), symbol.list_auxiliary_states()
    arg_arrays = _arrays_in_order(args, arg_names, "args", required=True)
    aux_arrays = _arrays_in_order(aux_states or [], aux_names, "aux_states", required=True)
    grad_arrays = _arrays_in_order(args_grad, arg_names, "args_grad", required=False)
    reqs = normalize_grad_reqs(grad_req, arg_names)
    reqs = [r if g is not None else "null" for r, g in zip(reqs, grad_arrays)]
    shapes_given = {n: a.shape for n, a in zip(arg_names + aux_names, arg_arrays + aux_arrays)}
    types_given = {n: a._data.dtype for n, a in zip(arg_names + aux_names, arg_arrays + aux_arrays)}
    shapes, dtypes = _infer(symbol, shapes_given, types_given)
    for name, array, grad in zip(arg_names, arg_arrays, grad_arrays):
        if grad is not None and grad.shape != array.shape:
            raise ShapeError(f"gradient array for {name!r} has shape {grad.shape}, its argument {array.shape}")
    return Executor(symbol, ctx, arg_arrays, grad_arrays, reqs, aux_arrays, shapes, dtypes)


def _arrays_in_order(arrays, names, what: str, required: bool) -> list:
    if arrays is None:
        return [None] * len(names)
    if isinstance(arrays, Mapping):
        missing = [n for n in names if n not in arrays]
        if required and missing:
            raise MXNetError(f"bind: {what} lacks {', '.join(missing)}")
        ordered = [arrays.get(n) for n in names]
    else:
        ordered = list(arrays)
        if len(ordered) != len(names):
            raise MXNetError(f"bind: {what} has {len(ordered)} arrays for {len(names)} names ({', '.join(names)})")
    for name, array in zip(names, ordered):
        if array is not None and not isinstance(array, NDArray):
            raise TypeError(f"bind: {what}[{name!r}] must be an NDArray, not {type(array).__name__}")
    return ordered


def _zeros(shape, dtype, ctx) -> NDArray:
    return NDArray(np.zeros(shape, dtype_name(dtype)), ctx)


def install(symbol_class) -> None:
    """Attach `simple_bind` and `bind` to `Symbol`."""
    symbol_class.simple_bind = simple_bind
    symbol_class.bind = bind
