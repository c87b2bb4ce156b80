"""Recording a call of an `autograd.Function` (a Python forward and backward) on the tape.

The forward runs with recording paused, as MXNet's does; while recording, each output becomes a leaf
entry tied to a `tape.FunctionCall`, so the autodiff rewrite stops at the outputs and `backprop.py`
hands the gradient reaching them to the function's `backward`, then continues from its inputs.
"""

from __future__ import annotations

import itertools

import numpy as np

from ember.runtime.errors import MXNetError

from . import tape
from .ndarray import NDArray, _wrap

_order = itertools.count()


def call_function(function, inputs: list):
    """`function.forward(*inputs)`, recorded so that backward passes call `function.backward`."""
    for index, item in enumerate(inputs):
        if not isinstance(item, NDArray):
            raise MXNetError(
                f"{type(function).__name__}: autograd.Function inputs must be NDArrays; input {index} is "
                f"a {type(item).__name__}"
            )
    previous = tape.set_recording(False)
    try:
        outputs = function.forward(*inputs)
    finally:
        tape.set_recording(previous)
    single = isinstance(outputs, NDArray)
    results = [outputs] if single else list(outputs)
    for index, item in enumerate(results):
        if not isinstance(item, NDArray):
            raise MXNetError(
                f"{type(function).__name__}.forward must return NDArrays; output {index} is a "
                f"{type(item).__name__}"
            )
    if tape.FLAGS.recording and any(x._entry is not None for x in inputs):
        _record(function, inputs, results)
    return outputs


def _record(function, inputs: list, results: list) -> None:
    call = tape.FunctionCall([x._entry for x in inputs], _backward_of(function, inputs), next(_order))
    for output in results:
        leaf = tape.leaf_entry(output._data, hint="function")
        leaf.call = call
        call.outputs.append(leaf)
        output._entry = (leaf, 0)


def _backward_of(function, inputs: list):
    """out_grads (one NumPy array per output) -> one NumPy gradient per input, through
    `function.backward`."""
    shapes = [x.shape for x in inputs]
    contexts = [x.context for x in inputs]
    name = type(function).__name__

    def backward(out_grads: list) -> list:
        grads = function.backward(*[_wrap(np.ascontiguousarray(g), contexts[0]) for g in out_grads])
        grads = list(grads) if isinstance(grads, (list, tuple)) else [grads]
        if len(grads) != len(inputs):
            raise MXNetError(f"{name}.backward returned {len(grads)} gradients for {len(inputs)} inputs")
        arrays = []
        for index, (grad, shape) in enumerate(zip(grads, shapes)):
            if not isinstance(grad, (NDArray, np.ndarray)):
                raise MXNetError(
                    f"{name}.backward must return NDArrays; gradient {index} is a {type(grad).__name__}"
                )
            data = grad._data if isinstance(grad, NDArray) else grad
            if data.shape != shape:
                raise MXNetError(
                    f"{name}.backward: the gradient of input {index} has shape {data.shape}, the input "
                    f"{shape}"
                )
            arrays.append(data)
        return arrays

    return backward
