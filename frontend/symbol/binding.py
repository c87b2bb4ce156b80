"""`Symbol.simple_bind` and `Symbol.bind`: infer shapes and dtypes, allocate or take arrays, and make
an `Executor` (MXNET_COMPAT.md section 1.6). Arrays `simple_bind` allocates are zero-filled.
"""

from __future__ import annotations

from typing import Mapping

from ember.runtime.errors import MXNetError, ShapeError

from ..executor import Executor, infer_bound_types, normalize_grad_reqs
from ..ndarray import NDArray


def simple_bind(symbol, ctx=None, grad_req="write", type_dict=None, stype_dict=None, group2ctx=None,
                shared_arg_names=None, shared_exec=None, shared_buffer=None, **kwargs) -> Executor:
    """Bind with arrays allocated from the given input shapes (keyword arguments)."""
    return Executor.allocate(symbol, ctx, grad_req, type_dict, kwargs)


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
    types_given = {n: a.host_buffer().dtype for n, a in zip(arg_names + aux_names, arg_arrays + aux_arrays)}
    shapes, dtypes = infer_bound_types(symbol, shapes_given, types_given)
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


def install(symbol_class) -> None:
    """Attach `simple_bind` and `bind` to `Symbol`."""
    symbol_class.simple_bind = simple_bind
    symbol_class.bind = bind
