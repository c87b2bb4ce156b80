"""`mx.autograd`: MXNet 1.x's imperative automatic differentiation (MXNET_COMPAT.md 3.4).

Inside `record()` every NDArray op that reads a marked variable (`attach_grad`, `mark_variables`) or a
recorded result is added to a tape of Ember IR nodes (`ndarray/tape.py`); `backward`/`grad` run the
registry's gradient rules over it through the compiler's autodiff rewrite (`ndarray/backprop.py`), the
one gradient implementation symbolic executors use too. `Function` lets Python code give its own
forward and backward. Flags are per thread; outside any scope, recording and training are both off.
"""

from __future__ import annotations

import numpy as np

from ember.runtime.errors import MXNetError

from .ndarray import NDArray, compiled_steps
from .ndarray.backprop import run_backward
from .ndarray.ndarray import _wrap, check_grad_req
from .ndarray.tape import is_recording, is_training, leaf_entry, set_recording, set_training

__all__ = [
    "set_recording", "set_training", "is_recording", "is_training", "record", "pause", "train_mode",
    "predict_mode", "mark_variables", "backward", "grad", "get_symbol", "Function",
]  # fmt: skip


class _RecordingStateScope:
    """Sets the recording and/or training flag on entry and restores both on exit (None: unchanged)."""

    def __init__(self, is_record: bool | None, train_mode: bool | None):
        self._enter_is_record, self._enter_train_mode = is_record, train_mode
        self._prev_is_record = self._prev_train_mode = None

    def __enter__(self):
        if self._enter_is_record is not None:
            self._prev_is_record = set_recording(self._enter_is_record)
        if self._enter_train_mode is not None:
            self._prev_train_mode = set_training(self._enter_train_mode)
        return self

    def __exit__(self, *exc):
        if self._enter_is_record is not None and self._prev_is_record != self._enter_is_record:
            set_recording(self._prev_is_record)
        if self._enter_train_mode is not None and self._prev_train_mode != self._enter_train_mode:
            set_training(self._prev_train_mode)
        return False


def record(train_mode: bool = True) -> _RecordingStateScope:
    """Scope in which ops are recorded for gradients; `train_mode` sets the training flag too."""
    return _RecordingStateScope(True, train_mode)


def pause(train_mode: bool = False) -> _RecordingStateScope:
    """Scope in which recording stops (inside a `record` scope), with the training flag `train_mode`."""
    return _RecordingStateScope(False, train_mode)


def train_mode() -> _RecordingStateScope:
    """Scope that sets only the training flag (Dropout drops, BatchNorm uses batch statistics)."""
    return _RecordingStateScope(None, True)


def predict_mode() -> _RecordingStateScope:
    """Scope that clears only the training flag."""
    return _RecordingStateScope(None, False)


def mark_variables(variables, gradients, grad_reqs="write") -> None:
    """Mark NDArrays as variables whose gradients backward writes into the given `gradients` arrays
    (`grad_reqs`: one of 'write', 'add', 'null', or one per variable)."""
    if isinstance(variables, NDArray):
        if not isinstance(gradients, NDArray):
            raise MXNetError("mark_variables: a single variable needs a single gradient NDArray")
        variables, gradients = [variables], [gradients]
    variables, gradients = list(variables), list(gradients)
    if len(variables) != len(gradients):
        raise MXNetError(f"mark_variables: {len(variables)} variables but {len(gradients)} gradient arrays")
    reqs = [grad_reqs] * len(variables) if isinstance(grad_reqs, str) else list(grad_reqs)
    if len(reqs) != len(variables):
        raise MXNetError(f"mark_variables: {len(variables)} variables but {len(reqs)} grad_reqs")
    for index, (var, gradient, req) in enumerate(zip(variables, gradients, reqs)):
        if not isinstance(var, NDArray) or not isinstance(gradient, NDArray):
            raise MXNetError(f"mark_variables: variable {index} and its gradient must be NDArrays")
        if gradient.shape != var.shape:
            raise MXNetError(
                f"mark_variables: variable {index} has shape {var.shape} but its gradient {gradient.shape}"
            )
        var._entry = (leaf_entry(var._data, check_grad_req(req), gradient), 0)


def _as_list(heads, what: str) -> list:
    if isinstance(heads, NDArray):
        return [heads]
    if isinstance(heads, (list, tuple)) and all(isinstance(h, NDArray) for h in heads):
        return list(heads)
    raise MXNetError(f"{what} must be an NDArray or a list of NDArrays, got {type(heads).__name__}")


def _head_grads(heads: list, head_grads) -> list:
    if head_grads is None:
        return [None] * len(heads)
    if isinstance(head_grads, NDArray):
        head_grads = [head_grads]
    head_grads = list(head_grads)
    if len(head_grads) != len(heads):
        raise MXNetError(f"{len(heads)} heads but {len(head_grads)} head gradients")
    return head_grads


def backward(heads, head_grads=None, retain_graph: bool = False, train_mode: bool = True) -> None:
    """Gradients of `heads` with respect to every marked variable they depend on, written into (or,
    for grad_req 'add', added to) the variables' gradient arrays."""
    heads = _as_list(heads, "heads")
    compiled_steps.backward(heads, _head_grads(heads, head_grads), retain_graph, train_mode)


def grad(
    heads,
    variables,
    head_grads=None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    train_mode: bool = True,
):
    """The gradients of `heads` with respect to `variables` (marked arrays), returned as new NDArrays
    without touching their `grad` arrays. With `create_graph=True` the gradient computation is recorded
    too, so the results can be differentiated again (higher-order gradients). `retain_graph` defaults
    to `create_graph`."""
    heads = _as_list(heads, "heads")
    variables = _as_list(variables, "variables")
    retain = create_graph if retain_graph is None else retain_graph
    compiled_steps.end_step()
    results, _ = run_backward(
        heads, _head_grads(heads, head_grads), variables, retain, train_mode, create_graph
    )
    grads = []
    for var, result in zip(variables, results):
        if result is None:
            grads.append(_wrap(np.zeros_like(var._data), var.context))
            continue
        data, entry = result
        array = _wrap(np.array(data, copy=True), var.context)  # never the caller's head gradient itself
        array._entry = entry
        grads.append(array)
    return grads


def get_symbol(x):
    """The recorded computation that produced `x`, as a Symbol (variables named as recorded)."""
    from .symbol import Symbol

    if not isinstance(x, NDArray) or x._entry is None:
        raise MXNetError("get_symbol: the array was not computed inside autograd.record() from a variable")
    entry, index = x._entry
    return Symbol([entry.value(index)])


class Function:
    """A differentiable operation written in Python: subclass it, define `forward(*inputs)` (NDArrays
    in, NDArray(s) out, run without recording) and `backward(*output_grads)` (returning one gradient
    per input), and call an instance on NDArrays. `save_for_backward` keeps values for backward."""

    def __init__(self):
        self._used = False
        self.saved_tensors = ()

    def save_for_backward(self, *args) -> None:
        """Keep `args` (NDArrays the backward needs) as `self.saved_tensors`."""
        self.saved_tensors = args

    def forward(self, *inputs):
        """The output NDArray(s) of the inputs; a subclass defines it (it runs without recording)."""
        raise NotImplementedError

    def backward(self, *output_grads):
        """One gradient NDArray per input from one gradient per output; a subclass defines it."""
        raise NotImplementedError

    def __call__(self, *inputs):
        from .ndarray.python_function import call_function

        if self._used:
            raise MXNetError(
                "Each autograd.Function instance can only be called once; create a new instance per call"
            )
        self._used = True
        return call_function(self, list(inputs))
