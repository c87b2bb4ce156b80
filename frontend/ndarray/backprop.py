"""The backward pass of imperative autograd: the registry's gradient rules over the recorded graph.

`run_backward` takes head arrays, walks their tape entries (`tape.py`), and asks the compiler's
autodiff rewrite (`compiler/passes/autodiff.gradients`, the same one symbolic executors use) for the
gradient graph of the recorded nodes. The forward values are not recomputed: the recorded outputs are
fed in as known values. A loop records the same structure every iteration, so the gradient graph is
kept per *structure* (`BackwardPlan`, keyed by op, attributes, wiring, shapes and dtypes): a repeated
backward costs a signature walk and the gradient kernels, which run through the imperative engine's
kernels (`dispatch.kernel_for`). With `create_graph=True` the gradient nodes are recorded on the tape
themselves (no plan cache), so gradients of gradients follow the same rules.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from ember.compiler import Graph, Value, variable
from ember.compiler.ops.facts import reshapes_input
from ember.compiler.passes.autodiff import gradients
from ember.runtime.errors import GraphError, MXNetError

from . import compiled_backward, dispatch, tape

NOT_IN_GRAPH = (
    "Cannot differentiate node because it is not in a computational graph. You need to set "
    "is_recording to true or use autograd.record() to save computational graphs for backward. If you "
    "want to differentiate the same graph twice, you need to pass retain_graph=True to backward."
)
MAX_PLANS = 256


class BackwardPlan:
    """The gradient graph of one recorded structure, over the nodes of the first recording of it.

    `nodes[k]` is the template node at position k of the structure's entry order; a later recording with
    the same signature feeds its own values by position. Every value the evaluation touches has an
    integer slot: entry k's outputs start at `entry_slots[k]`, head gradients follow, then the outputs of
    each `Step` (a gradient-graph node to compute, with its kernel); `grads` are the slots (or None) of
    the gradients, aligned with the wrt positions."""

    def __init__(self, nodes, head_vars, wrt_positions, grads, grad_graph):
        self.nodes, self.head_vars, self.wrt_positions = nodes, head_vars, wrt_positions
        self.grad_values = grads
        slot_of: dict[Value, int] = {}
        self.entry_slots = []
        for node in nodes:
            self.entry_slots.append(len(slot_of))
            for index in range(node.num_outputs):
                slot_of[Value(node, index)] = len(slot_of)
        self.head_slots = []
        for var in head_vars:
            self.head_slots.append(len(slot_of))
            slot_of[var.output()] = len(slot_of)
        forward_ids = {id(n) for n in nodes} | {id(v) for v in head_vars}
        self.steps = []
        for node in grad_graph.nodes:
            if id(node) in forward_ids:
                continue
            first = len(slot_of)
            for index in range(node.num_outputs):
                slot_of[Value(node, index)] = len(slot_of)
            self.steps.append(Step(node, [slot_of[v] for v in node.inputs], first))
        self.num_slots = len(slot_of)
        self.grads = [None if g is None else slot_of[g] for g in grads]
        self.slot_of = slot_of
        self.runs = 0
        self.interpreted_times: list[float] = []  # the last interpreted runs' durations (seconds)
        self.program = None  # its compiled BackwardProgram once hot (compiled_backward.py)


class Step:
    """One node of a gradient graph: where its inputs are, where its outputs go, and its kernel (chosen
    on the first run, when the dtypes are known)."""

    __slots__ = ("node", "inputs", "first_output", "kernel")

    def __init__(self, node, inputs: list[int], first_output: int):
        self.node, self.inputs, self.first_output, self.kernel = node, inputs, first_output, None

    def choose_kernel(self, arrays: list) -> list:
        """Pick the kernel and run it once; a reshape becomes a view of its input (nothing in a backward
        pass writes into its values)."""
        node = self.node
        self.kernel = dispatch.kernel_for(
            node, tuple(a.dtype for a in arrays), tuple(a.shape for a in arrays)
        )
        outputs = self.kernel(arrays)
        if reshapes_input(node) and len(outputs) == 1:
            shape = outputs[0].shape
            self.kernel = lambda arrays: [arrays[0].reshape(shape)]
        return outputs


_PLANS: dict[tuple, BackwardPlan] = {}


def run_backward(
    heads: Sequence,
    head_grads: Sequence,
    variables: Sequence | None,
    retain_graph: bool,
    train_mode: bool,
    create_graph: bool = False,
    may_compile: bool = True,
) -> tuple[list, list]:
    """Gradients of `heads` (NDArrays) weighted by `head_grads` (NumPy arrays or None for ones).

    Returns (gradients, wrt entries): the wrt entries are the given `variables`' entries, or (variables
    None) every marked variable with a grad_req other than 'null' that the heads depend on; each gradient
    is None (nothing flows to it) or (array, its tape entry and output index when `create_graph`, else
    None). Recorded `autograd.Function` calls split the pass into stages: the gradient reaching a call's
    outputs goes through the function's own `backward`, and flows on from its inputs.
    """
    head_entries = [_head_entry(h, i) for i, h in enumerate(heads)]
    entries, calls = _reachable_through_calls([e for e, _ in head_entries])
    for entry in entries:
        if entry.values is None:
            raise MXNetError(NOT_IN_GRAPH)
    wrt = _wrt_entries(entries, variables)
    if not wrt:
        raise MXNetError("There are no inputs in computation graph that require gradients.")
    feeds_grads = [head_gradient(g, h.shape, h._data.dtype) for h, g in zip(heads, head_grads)]
    if calls and create_graph:
        raise MXNetError("autograd.grad(create_graph=True) cannot differentiate through an autograd.Function")
    if not calls:
        results = _stage(head_entries, feeds_grads, wrt, train_mode, create_graph, entries, may_compile)
    else:
        results = _staged(head_entries, feeds_grads, wrt, calls, train_mode)
    _update_auxiliary_states(entries)
    if not retain_graph:
        for entry in entries:
            if entry.inputs or entry.call is not None:
                entry.values = None
    return results, wrt


def _update_auxiliary_states(entries: list) -> None:
    """Training-mode BatchNorm calls write their new moving statistics into their inputs' arrays now,
    in the backward pass, as MXNet 1.9.1's CPU kernels do (a forward alone leaves them untouched)."""
    for entry in entries:
        if entry.aux_update is not None:
            arrays = [source.values[value.index] for source, value in zip(entry.inputs, entry.node.inputs)]
            entry.aux_update(arrays, entry.values)


def write_gradients(
    heads: Sequence, head_grads: Sequence, retain_graph: bool, train_mode: bool, may_compile: bool = True
) -> None:
    """`autograd.backward`: the gradients of `heads` written into (grad_req 'write') or added to ('add')
    the gradient arrays of every marked variable they depend on. `may_compile`: whether the pass may
    compile its plan once hot (not when the whole step is compiled instead: `compiled_steps`)."""
    results, wrt = run_backward(heads, head_grads, None, retain_graph, train_mode, may_compile=may_compile)
    for entry, result in zip(wrt, results):
        target = entry.grad_array._data
        if result is None:
            if entry.grad_req == "write":
                target[...] = 0
        elif entry.grad_req == "add":
            target += result[0]
        else:
            target[...] = result[0]
        entry.fresh_grad = True


def _stage(
    head_entries, head_grads, targets, train_mode: bool, create_graph: bool, entries=None, may_compile=True
) -> list:
    """One autodiff pass from the heads to the `targets` (leaf entries): per target None or
    (gradient, recorded (entry, index) or None). `entries`: the heads' reachable entries, when known;
    `may_compile`: whether the plan may be compiled once hot."""
    if entries is None:
        entries = tape.reachable([e for e, _ in head_entries])
    position = {id(e): k for k, e in enumerate(entries)}
    wanted = [t for t in targets if id(t) in position]
    wrt_positions = [position[id(e)] for e in wanted]
    if create_graph:  # the gradient nodes join the tape: this recording's own plan, interpreted
        plan = _make_plan(entries, head_entries, wrt_positions, head_grads)
        values, recorded = _evaluate(plan, entries, head_grads, train_mode, create_graph)
        grads = [None if slot is None else values[slot] for slot in plan.grads]
    else:  # the structure's cached plan, compiled once hot
        plan = _cached_plan(entries, head_entries, position, wanted, wrt_positions, head_grads, train_mode)
        grads = compiled_backward.run_compiled(plan, _first_slots(plan, entries, head_grads))
        if grads is None:
            start = time.perf_counter()
            values, recorded = _evaluate(plan, entries, head_grads, train_mode, create_graph)
            grads = [None if slot is None else values[slot] for slot in plan.grads]
            seconds = time.perf_counter() - start
            compiled_backward.after_interpreted_run(plan, values, train_mode, seconds, may_compile)
    found = {}
    for target, grad, data in zip(wanted, plan.grad_values, grads):
        if grad is not None:
            entry = recorded.get(id(grad.node)) if create_graph else None
            found[id(target)] = (data, None if entry is None else (entry, grad.index))
    return [found.get(id(t)) for t in targets]


def _cached_plan(entries, head_entries, position, wanted, wrt_positions, head_grads, train_mode):
    """The plan of this recording's structure, made on its first backward."""
    key = _signature(entries, head_entries, position, wanted, head_grads, train_mode)
    plan = _PLANS.get(key)
    if plan is None:
        plan = _make_plan(entries, head_entries, wrt_positions, head_grads)
        if len(_PLANS) >= MAX_PLANS:
            _PLANS.clear()
        _PLANS[key] = plan
    return plan


def _staged(head_entries, head_grads, wrt: list, calls: list, train_mode: bool) -> list:
    """Backward through recorded Function calls, latest call first: each stage differentiates down to
    the marked variables and to the outputs of calls, whose gradients go through `Function.backward`."""
    outputs = [leaf for call in calls for leaf in call.outputs]
    targets = wrt + outputs
    totals: dict[int, np.ndarray] = {}

    def run_stage(heads, grads):
        for target, result in zip(targets, _stage(heads, grads, targets, train_mode, False)):
            if result is not None:
                previous = totals.get(id(target))
                totals[id(target)] = result[0] if previous is None else previous + result[0]

    run_stage(head_entries, head_grads)
    for call in sorted(calls, key=lambda c: c.order, reverse=True):
        out_grads = [totals.get(id(leaf)) for leaf in call.outputs]
        if all(g is None for g in out_grads):
            continue
        out_grads = [
            np.zeros_like(leaf.values[0]) if g is None else g for g, leaf in zip(out_grads, call.outputs)
        ]
        in_grads = call.backward(out_grads)
        pairs = [(pair, g) for pair, g in zip(call.inputs, in_grads) if pair is not None]
        if pairs:
            run_stage([p for p, _ in pairs], [g for _, g in pairs])
    return [None if id(e) not in totals else (totals[id(e)], None) for e in wrt]


def _reachable_through_calls(heads: list) -> tuple[list, list]:
    """Every entry the heads depend on, crossing recorded Function calls to their inputs, and the calls."""
    entries, calls, seen_calls = [], [], set()
    frontier = heads
    while frontier:
        reached = tape.reachable(frontier)
        entries += reached
        frontier = []
        for entry in reached:
            call = entry.call
            if call is not None and id(call) not in seen_calls:
                seen_calls.add(id(call))
                calls.append(call)
                frontier += [pair[0] for pair in call.inputs if pair is not None]
    unique = list({id(e): e for e in entries}.values())
    return unique, calls


def _head_entry(head, index: int):
    if head._entry is None:
        raise MXNetError(f"{NOT_IN_GRAPH} (head {index} of shape {head.shape} was not recorded)")
    return head._entry


def head_gradient(given, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """The gradient fed to a head of this shape and dtype: ones when `given` is None, else `given` (an
    NDArray or array-like) in the head's dtype; MXNetError when its shape differs."""
    if given is None:
        return np.ones(shape, dtype)
    array = np.asarray(given._data if hasattr(given, "_data") else given)
    if array.shape != shape:
        raise MXNetError(
            f"backward: the head gradient has shape {array.shape} but its head has shape {shape}"
        )
    return array.astype(dtype, copy=False)


def _wrt_entries(entries: list, variables) -> list:
    if variables is None:
        return [e for e in entries if e.grad_req not in (None, "null") and not e.inputs and e.call is None]
    wrt = []
    for index, var in enumerate(variables):
        entry = var._entry[0] if var._entry is not None else None
        if entry is None or entry.grad_req is None or entry.inputs:
            raise MXNetError(
                f"Cannot differentiate with respect to the {index + 1}-th variable because it does not "
                "require gradient: call attach_grad() on it (or mark_variables) before recording"
            )
        wrt.append(entry)
    return wrt


def _signature(entries, head_entries, position, wrt, head_grads, train_mode) -> tuple:
    """What makes two recordings share a gradient graph: per entry its op, attributes and wiring (or a
    leaf's shape, dtype and role), then the heads, the wrt leaves and the head gradients' dtypes."""
    parts = []
    for entry in entries:
        if entry.inputs:
            node = entry.node
            wiring = tuple((position[id(e)], v.index) for e, v in zip(entry.inputs, node.inputs))
            parts.append((node.op, node.attrs, wiring))
        else:
            data = entry.values[0]
            parts.append((data.shape, data.dtype, entry.grad_req))
    heads = tuple((position[id(e)], i) for e, i in head_entries)
    return (tuple(parts), heads, tuple(position[id(e)] for e in wrt),
            tuple(g.dtype for g in head_grads), bool(train_mode))  # fmt: skip


def _make_plan(entries, head_entries, wrt_positions, head_grads) -> BackwardPlan:
    """Run the autodiff rewrite over this recording's nodes."""
    shapes, dtypes = {}, {}
    for entry in entries:
        for index, data in enumerate(entry.values):
            value = Value(entry.node, index)
            shapes[value], dtypes[value] = tuple(data.shape), data.dtype.name
    graph = Graph(tuple(Value(e.node, i) for e, i in head_entries))
    head_vars = [variable(tape.new_name("_head_grad")) for _ in head_entries]
    for var, grad in zip(head_vars, head_grads):
        shapes[var.output()], dtypes[var.output()] = grad.shape, grad.dtype.name
    wrt = [Value(entries[k].node, 0) for k in wrt_positions]
    try:
        grads = gradients(graph, shapes, wrt, [v.output() for v in head_vars], dtypes) if wrt else []
    except GraphError as err:
        raise MXNetError(f"autograd: {err}") from None
    grad_graph = Graph(tuple(g for g in grads if g is not None))
    return BackwardPlan([e.node for e in entries], head_vars, wrt_positions, grads, grad_graph)


def _first_slots(plan: BackwardPlan, entries, head_grads) -> list:
    """The plan's slots with this recording's forward values and head gradients filled in."""
    slots: list = [None] * plan.num_slots
    for first, entry in zip(plan.entry_slots, entries):
        slots[first : first + len(entry.values)] = entry.values
    for slot, grad in zip(plan.head_slots, head_grads):
        slots[slot] = grad
    return slots


def _evaluate(plan: BackwardPlan, entries, head_grads, train_mode: bool, create_graph: bool):
    """The slot values of the plan's gradient graph, from this recording's forward values; with
    `create_graph`, also a tape entry per gradient-graph node, by node id."""
    slots = _first_slots(plan, entries, head_grads)
    by_node = {}
    if create_graph:
        by_node = {id(n): e for n, e in zip(plan.nodes, entries)}
        for var, grad in zip(plan.head_vars, head_grads):
            by_node[id(var)] = tape.TapeEntry(var, [grad], ())
    previous = tape.set_training(train_mode)
    try:
        for step in plan.steps:
            arrays = [slots[i] for i in step.inputs]
            outputs = step.kernel(arrays) if step.kernel is not None else step.choose_kernel(arrays)
            first = step.first_output
            slots[first : first + len(outputs)] = outputs
            if create_graph:
                node = step.node
                inputs = tuple(by_node[id(v.node)] for v in node.inputs)
                by_node[id(node)] = tape.TapeEntry(node, outputs, inputs)
    finally:
        tape.set_training(previous)
    return slots, by_node
