"""The autograd tape beneath the NDArray: the recording and training flags, and one `TapeEntry` per
recorded op application.

While recording, every op whose inputs include a recorded array adds an Ember IR `Node` (the same
node type symbols build) and keeps every output it computed, hidden ones included, so the backward
pass can run the registry's gradient rules over the recorded graph without recomputing the forward.
An array marked with `attach_grad` is a variable node. Entries point at their inputs' entries, so a
recorded graph lives exactly as long as some array refers to its result. The flags are per thread,
as MXNet's are. `ember.autograd` is the public face of this module.
"""

from __future__ import annotations

import itertools
import threading

import numpy as np

from ember.compiler import Attrs, Node, Value, variable

_names = itertools.count()


class _Flags(threading.local):
    recording = False
    training = False
    step_log = None  # the calls recorded since the last backward pass (compiled_steps.StepLog)
    deferred = None  # a backward pass waiting for the optimizer update (compiled_steps.DeferredBackward)
    finished = None  # (trace, step log) of the last step whose compiled program ran at its backward pass


FLAGS = _Flags()


def is_recording() -> bool:
    """Whether operations are being recorded for autograd (this thread)."""
    return FLAGS.recording


def is_training() -> bool:
    """Whether ops run in training mode (Dropout drops, BatchNorm uses batch statistics)."""
    return FLAGS.training


def set_recording(is_recording: bool) -> bool:
    """Set the recording flag; returns the previous value."""
    previous, FLAGS.recording = FLAGS.recording, bool(is_recording)
    return previous


def set_training(train_mode: bool) -> bool:
    """Set the training flag; returns the previous value."""
    previous, FLAGS.training = FLAGS.training, bool(train_mode)
    return previous


class TapeEntry:
    """One node of a recorded graph: `node` (an IR node, or a variable for a leaf), the NumPy value of
    each of its outputs (`values`, None once the graph is freed by a backward pass), and the entries of
    its inputs. A leaf's `grad_req` is 'write', 'add' or 'null' for a marked variable and None for a
    constant (an unmarked array some recorded op read)."""

    __slots__ = (
        "node", "values", "inputs", "grad_req", "grad_array", "fresh_grad", "call", "aux_update", "mark"
    )  # fmt: skip

    def __init__(self, node: Node, values: list | None, inputs: tuple, grad_req=None, grad_array=None):
        self.node, self.values, self.inputs = node, values, inputs
        self.grad_req, self.grad_array, self.fresh_grad = grad_req, grad_array, False
        self.call = None  # the FunctionCall whose output this leaf is (autograd.Function)
        self.aux_update = None  # a training-mode BatchNorm's update of its moving statistics
        self.mark = None  # (step log, its place in the log): see compiled_steps.StepLog

    def value(self, index: int) -> Value:
        """The IR value of output `index`."""
        return Value(self.node, index)


class FunctionCall:
    """One recorded call of an `autograd.Function`: its inputs' (entry, index) pairs (None for inputs that
    were not recorded), one leaf entry per output (the autodiff rewrite stops there), the call's place
    in recording order, and `backward(out_grads) -> in_grads` on NumPy arrays (one per input)."""

    def __init__(self, inputs: list, backward, order: int):
        self.inputs, self.backward, self.order = inputs, backward, order
        self.outputs: list[TapeEntry] = []


def new_name(hint: str) -> str:
    """A name no other recorded node has (variables are fed by name)."""
    return f"{hint}{next(_names)}"


def leaf_entry(
    data: np.ndarray, grad_req: str | None = None, grad_array=None, hint: str = "var"
) -> TapeEntry:
    """The entry of a variable (`grad_req` given) or of a constant input (`grad_req` None)."""
    return TapeEntry(variable(new_name(hint)), [data], (), grad_req, grad_array)


def record_node(op: str, attrs: Attrs, params: dict, name: str, inputs: list, values: list) -> TapeEntry:
    """Add one op application to the tape. `inputs` are (entry, output index) pairs, `values` every
    output the op computed; `params` (the parsed `attrs`) is stored on the node so no pass parses
    them again."""
    node = _new_node(
        op, tuple([_new_value(entry.node, index) for entry, index in inputs]), attrs, name, params
    )
    return TapeEntry(node, values, tuple([entry for entry, _ in inputs]))


# Recording runs once per imperative op, so its IR objects are made without the dataclasses' generic
# __init__ (frozen fields set one object.__setattr__ at a time, attrs re-normalized): the fields are
# known to be well-formed here (`attrs` an Attrs, `inputs` a tuple of Values).


def _new_node(op: str, inputs: tuple, attrs: Attrs, hint: str, params: dict) -> Node:
    node = object.__new__(Node)
    # `params` primes Node.params, a cached_property, so no pass parses the attributes again
    node.__dict__.update(op=op, inputs=inputs, attrs=attrs, name=new_name(hint), params=params)
    return node


def _new_value(node: Node, index: int) -> Value:
    value = object.__new__(Value)
    value.__dict__.update(node=node, index=index)
    return value


def reachable(heads: list[TapeEntry]) -> list[TapeEntry]:
    """Every entry the heads depend on, inputs before their users (iterative post-order)."""
    order, seen = [], set()
    for head in heads:
        stack = [(head, 0)]
        while stack:
            entry, next_input = stack.pop()
            if next_input == 0:
                if id(entry) in seen:
                    continue
                seen.add(id(entry))
            if next_input < len(entry.inputs):
                stack.append((entry, next_input + 1))
                child = entry.inputs[next_input]
                if id(child) not in seen:
                    stack.append((child, 0))
            else:
                order.append(entry)
    return order
