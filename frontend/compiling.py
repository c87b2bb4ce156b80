"""`ember.compile`: a symbol, its input shapes and its parameters -> a `CompiledModel`.

The model runs as native code generated through LLVM (target 'llvm', the host CPU) or as PTX on an
NVIDIA GPU (target 'cuda'), and can be saved as one artifact file that `ember.runtime.load` runs
without the compiler.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from .base import MXNetError
from .ndarray import NDArray
from .ndarray import load as load_params


def compile(
    symbol,
    shapes: Mapping[str, tuple],
    params=None,
    target: str | None = None,
    dtypes=None,
    name: str = "model",
    ctx=None,
    arch: str | None = None,
):
    """Compile `symbol` for `target` with input `shapes` (name -> shape) and `params`.

    `params` is a dict of arrays (NumPy or NDArray, names optionally prefixed `arg:`/`aux:` as in a
    `.params` file) or the path of a `.params` file; every variable that is neither an input in
    `shapes` nor a parameter is an error. `dtypes` gives input dtypes (float32 by default). The result
    is called as `model(data=x)` and returns a list of NumPy arrays; `model.save(path)` writes it.

    `target` is 'llvm' (the host CPU, the default) or 'cuda'; `ctx=mx.gpu(i)` implies 'cuda' and runs
    the model on GPU i. A CUDA model's PTX is made for `arch` (default: the GPU's own architecture
    when one is present, else sm_80, which newer GPUs also run).
    """
    from ember.codegen.driver import compile_graph  # the compiler, on demand
    from ember.codegen.targets import target_for
    from ember.runtime.model import CompiledModel

    chosen = target_for(target, ctx, arch)
    arrays = _param_arrays(params)
    arguments, aux = symbol.list_arguments(), symbol.list_auxiliary_states()
    shapes = _complete_shapes(symbol, dict(shapes), arrays, arguments + aux)
    all_shapes = {**{k: a.shape for k, a in arrays.items()}, **{k: tuple(v) for k, v in shapes.items()}}
    all_dtypes = {**{k: a.dtype.name for k, a in arrays.items()}, **dict(dtypes or {})}
    roles = {k: ("state" if k in aux else "parameter") for k in arrays}
    compiled = compile_graph(
        symbol._graph, chosen, shapes=all_shapes, dtypes=all_dtypes, name=name, roles=roles
    )
    program = compiled.program
    used = {k: a for k, a in arrays.items() if k in program.parameters or k in program.states}
    optional = sorted(loss_labels(symbol._graph) & set(program.inputs))
    artifact = compiled.artifact(symbol.tojson(), used, name, optional_inputs=optional)
    return CompiledModel(artifact, source=f"compiled model {name!r}", device_id=chosen.device_id)


def _param_arrays(params) -> dict[str, np.ndarray]:
    if params is None:
        return {}
    if isinstance(params, (str, os.PathLike)):
        params = load_params(params)
        if isinstance(params, list):
            raise MXNetError("the .params file holds unnamed arrays; compile needs them by name")
    if not isinstance(params, Mapping):
        raise MXNetError(
            f"params must be a dict of arrays or a .params file path, not {type(params).__name__}"
        )
    arrays = {}
    for key, value in params.items():
        name = key.split(":", 1)[1] if key.startswith(("arg:", "aux:")) else key
        arrays[name] = value.asnumpy() if isinstance(value, NDArray) else np.asarray(value)
    return arrays


def loss_labels(graph) -> set[str]:
    """Variables read only as the label of loss heads (SoftmaxOutput, the regression outputs): their
    forward outputs do not depend on them, so a compiled model may be called without them."""
    from ember.compiler.ops.facts import is_loss_head

    uses: dict[str, list[tuple[object, int]]] = {}
    for node in graph.nodes:
        for slot, value in enumerate(node.inputs):
            if value.node.is_variable:
                uses.setdefault(value.node.name, []).append((node, slot))
    return {
        name for name, used in uses.items() if all(is_loss_head(node) and slot >= 1 for node, slot in used)
    }


def _complete_shapes(symbol, shapes: dict, arrays: dict, variables: list[str]) -> dict:
    """`shapes` checked, and completed as MXNet's binding does with the shapes inference decides from
    the others (a SoftmaxOutput's label from its data)."""
    _check_names(shapes, arrays, variables, strict=False)
    missing = [n for n in variables if n not in shapes and n not in arrays]
    if missing:
        known = {**{k: a.shape for k, a in arrays.items()}, **shapes}
        arg_shapes, _, aux_shapes = symbol.infer_shape_partial(**known)
        inferred = dict(
            zip(symbol.list_arguments() + symbol.list_auxiliary_states(), arg_shapes + aux_shapes)
        )
        for name in missing:
            shape = tuple(inferred.get(name) or ())
            if shape and all(shape):
                shapes[name] = shape
    _check_names(shapes, arrays, variables)
    return shapes


def _check_names(shapes, arrays, variables, strict: bool = True) -> None:
    unknown = [n for n in list(shapes) + list(arrays) if n not in variables]
    if unknown:
        raise MXNetError(
            f"compile: {unknown[0]!r} is not a variable of the symbol; its variables are {variables}"
        )
    both = [n for n in shapes if n in arrays]
    if both:
        raise MXNetError(f"compile: {both[0]!r} is given both as an input shape and as a parameter")
    missing = [n for n in variables if n not in shapes and n not in arrays]
    if missing and strict:
        raise MXNetError(
            f"compile: no shape and no parameter value for {', '.join(repr(m) for m in missing)}; "
            "give input shapes in `shapes` and parameter arrays in `params`"
        )
