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

TARGETS = ("llvm", "cpu", "cuda")
GPU_TARGETS = ("cuda",)


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
    from ember.codegen.package import library_for, make_artifact  # the compiler, on demand
    from ember.compiler.build import build_program
    from ember.runtime.model import CompiledModel

    device_id = 0
    if ctx is not None:
        device_id = ctx.device_id
        target = target or ("cuda" if ctx.device_type == "gpu" else "llvm")
    target = target or "llvm"
    if target not in TARGETS:
        raise MXNetError(f"unknown compile target {target!r}; this build supports {', '.join(TARGETS)}")
    arrays = _param_arrays(params)
    arguments, aux = symbol.list_arguments(), symbol.list_auxiliary_states()
    shapes = _complete_shapes(symbol, dict(shapes), arrays, arguments + aux)
    all_shapes = {**{k: a.shape for k, a in arrays.items()}, **{k: tuple(v) for k, v in shapes.items()}}
    all_dtypes = {**{k: a.dtype.name for k, a in arrays.items()}, **dict(dtypes or {})}
    roles = {k: ("state" if k in aux else "parameter") for k in arrays}
    built = build_program(symbol._graph, all_shapes, all_dtypes, name=name, roles=roles)
    code = cuda_code_of(built, arch, device_id) if target in GPU_TARGETS else library_for(built)
    used = {k: a for k, a in arrays.items() if k in built.program.parameters or k in built.program.states}
    optional = sorted(loss_labels(symbol._graph) & set(built.program.inputs))
    artifact = make_artifact(built, code, symbol.tojson(), used, name, optional_inputs=optional)
    return CompiledModel(artifact, source=f"compiled model {name!r}", device_id=device_id)


def cuda_code_of(built, arch: str | None = None, device_id: int = 0):
    """The built program's CUDA code for `arch`, or for GPU `device_id`'s architecture when there is
    such a GPU, else for the default (sm_80)."""
    from ember.codegen.nvptx import DEFAULT_ARCH
    from ember.codegen.package import cuda_code_for

    if arch is None:
        arch = gpu_arch(device_id) or DEFAULT_ARCH
    return cuda_code_for(built, arch)


def gpu_arch(device_id: int) -> str | None:
    """GPU `device_id`'s architecture ("sm_90"), or None where there is no usable GPU."""
    from ember.runtime.cuda_driver import cuda_device
    from ember.runtime.errors import DeviceError

    try:
        return cuda_device(device_id).arch()
    except DeviceError:
        return None


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
    from ember.compiler.ops import grad_rules

    uses: dict[str, list[tuple[str, int]]] = {}
    for node in graph.nodes:
        for slot, value in enumerate(node.inputs):
            if value.node.is_variable:
                uses.setdefault(value.node.name, []).append((node.op, slot))
    return {
        name
        for name, used in uses.items()
        if all(getattr(grad_rules.get(op), "is_loss", False) and slot >= 1 for op, slot in used)
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
