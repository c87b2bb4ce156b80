"""Compiling a recorded training step into one native program (the compile half of compiled_steps.py).

A `StepTrace`'s key - its calls, heads and mode - is enough to rebuild the step's forward graph over
one variable per leaf (`leaf{j}`) and one per head gradient (`head{h}`); the autodiff pass adds the
backward graph, and the compile driver makes one program of both (`StepProgram`).

Given `updates` (leaf number -> `UpdateSpec`), the program also applies an optimizer's update to those
leaves, as the fused `Module.fit` step does: one `_optimizer_update` node per updated leaf (rule and
formulas: `compiler/ops/optimizer.py`), the leaf a *parameter* of the program and the rule's state
arrays its *states*, both updated in place, and each rule's hyper-parameters (learning rate, weight
decay, rescale, ...) one-element inputs written before every run. Gluon's `Trainer.step` runs this
program when it follows the step's backward pass (see `DeferredBackward` in compiled_steps.py).
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np

from ember.compiler import Graph, Node, Value, variable
from ember.compiler.names import optimizer_state, update_scalar
from ember.compiler.ops.facts import draws_random
from ember.compiler.ops.optimizer import UPDATE_RULES
from ember.compiler.passes.autodiff import gradients
from ember.runtime.errors import GraphError, MXNetError

from .compiled_backward import MIN_ELEMENTS as BACKWARD_MIN_ELEMENTS

log = logging.getLogger(__name__)

MIN_ELEMENTS = BACKWARD_MIN_ELEMENTS  # gradient elements below which a step stays eager
NOT_COMPILABLE = False  # StepTrace.program once compiling was refused, failed or measured slower


class UpdateSpec(NamedTuple):
    """How the fused program updates one leaf: an UPDATE_RULES rule and its state arrays' (shape,
    NumPy dtype name), in the rule's order."""

    rule: str
    states: tuple


class StepProgram:
    """A trace's forward and backward graph (and optional updates) as one loaded program.

    Inputs: `leaf{j}` per leaf (`leaf_views[j]`, None where the program does not read it) and
    `head{h}` per head gradient. Outputs: every call's visible outputs, then each gradient;
    `gradient_of[j]` is leaf j's output position, None where no gradient flows, or absent (not a
    variable the heads depend on). `updated[j]`, for each leaf the program updates: its state views
    (in the rule's order) and its hyper-parameter views by scalar name; `own_gradients`, those of
    them whose gradient output no other gradient or forward output shares."""

    def __init__(self, exe, nodes, leaf_views, head_views, forward_slots, gradient_of, updated=None):
        self.exe, self.nodes = exe, nodes
        self.leaf_views, self.head_views = leaf_views, head_views
        self.forward_slots, self.gradient_of = forward_slots, gradient_of
        self.updated: dict[int, tuple[list, dict]] = updated or {}
        slots = [slot for slots in forward_slots for slot in slots] + list(gradient_of.values())
        # updated leaves whose gradient output is theirs alone: their gradient arrays may be its view
        self.own_gradients = {j for j in self.updated if slots.count(gradient_of[j]) == 1}

    def run(self, head_grads: list) -> tuple[list, list]:
        """Run once (leaves already copied in): each call's forward outputs and every output, as live
        views of the program's buffers (valid until its next run)."""
        for view, grad in zip(self.head_views, head_grads):
            view[...] = grad
        exe = self.exe
        exe.run()
        outputs = exe.outputs_view()
        forward = [[outputs[slot] for slot in slots] for slots in self.forward_slots]
        return forward, outputs

    def write_gradients(self, leaves: list, outputs: list, skip=()) -> None:
        """Each variable's gradient into its gradient array, by grad_req (as `backprop.write_gradients`);
        the leaves numbered in `skip` have theirs already."""
        for j, slot in self.gradient_of.items():
            entry = leaves[j]
            if j in skip:
                entry.fresh_grad = True
                continue
            target = entry.grad_array._data
            if slot is None:
                if entry.grad_req == "write":
                    target[...] = 0
            elif entry.grad_req == "add":
                target += outputs[slot]
            else:
                target[...] = outputs[slot]
            entry.fresh_grad = True


def compile_step(trace, updates: dict[int, UpdateSpec] | None = None):
    """The trace's StepProgram (with `updates` applied to their leaves), or NOT_COMPILABLE (one log line)
    when it cannot or should not be. A failure of the compiler itself is logged as a warning: the step
    keeps running as it did."""
    try:
        return _build(trace, updates or {})
    except (MXNetError, GraphError) as err:
        log.info("autograd: this training step %s (%s)", "keeps its update separate" if updates else
                 "stays eager", str(err).splitlines()[0])  # fmt: skip
    except Exception as err:  # noqa: BLE001 - a compiler bug must not break a step that runs eagerly
        log.warning("autograd: compiling this training step failed, it stays as it was (%s: %s)",
                    type(err).__name__, err)  # fmt: skip
    return NOT_COMPILABLE


def _graph_of(trace) -> tuple[list, dict, list]:
    """The trace's calls as IR nodes over one variable per leaf: (nodes, leaf variables by number,
    the leaves' (shape, dtype, grad_req))."""
    nodes, leaf_vars, leaf_facts = [], {}, {}
    if {training for _, _, training in trace.calls} != {trace.train_mode}:
        raise MXNetError("its calls and its backward pass differ in training mode")
    for k, (prepared, wiring, _) in enumerate(trace.calls):
        if prepared.aux_update is not None and trace.train_mode:
            raise MXNetError(f"{prepared.op} updates auxiliary states")
        inputs = []
        for position, wire in enumerate(wiring):
            if wire[0] == 0:
                inputs.append(Value(nodes[wire[1]], wire[2]))
                continue
            number = wire[1]
            if number not in leaf_vars:
                leaf_vars[number] = variable(f"leaf{number}")
                leaf_facts[number] = (prepared.in_shapes[position], prepared.in_dtypes[position], wire[2])
            inputs.append(leaf_vars[number].output())
        node = Node(prepared.op, tuple(inputs), prepared.attrs, f"{prepared.node_name}_{k}")
        if draws_random(node):
            raise MXNetError(f"{prepared.op} draws random numbers")
        if node.params.get("mode") == "raise":  # an error that depends on values: compiled code clips
            raise MXNetError(f"{prepared.op}(mode='raise') checks its indices")
        if None in prepared.out_shapes[: prepared.visible] or None in prepared.out_dtypes[: prepared.visible]:
            raise MXNetError(f"the output types of {prepared.op} are not known before it runs")
        nodes.append(node)
    return nodes, leaf_vars, leaf_facts


class _Outputs:
    """The program's outputs in order, each value once."""

    def __init__(self):
        self.values: list[Value] = []
        self.position: dict[Value, int] = {}

    def slot(self, value: Value) -> int:
        if value.node.is_variable:
            raise MXNetError("a gradient is an input of the step")
        if value not in self.position:
            self.position[value] = len(self.values)
            self.values.append(value)
        return self.position[value]

    def append(self, value: Value) -> int:
        """A slot of its own (an update's result: written in place, never shared)."""
        self.values.append(value)
        return len(self.values) - 1


def _build(trace, updates: dict[int, UpdateSpec]) -> StepProgram:
    from ember.codegen.driver import compile_graph
    from ember.codegen.targets import target_for

    nodes, leaf_vars, leaf_facts = _graph_of(trace)
    shapes = {leaf_vars[j].output(): facts[0] for j, facts in leaf_facts.items()}
    dtypes = {leaf_vars[j].output(): facts[1].name for j, facts in leaf_facts.items()}
    for k, (prepared, _, _) in enumerate(trace.calls):
        for index in range(nodes[k].num_outputs):
            shapes[Value(nodes[k], index)] = prepared.out_shapes[index]
            dtype = prepared.out_dtypes[index]
            dtypes[Value(nodes[k], index)] = None if dtype is None else dtype.name
    heads = [Value(nodes[k], index) for k, index in trace.heads]
    if len(set(heads)) != len(heads):
        raise MXNetError("a head is given twice")
    head_vars = [variable(f"head{h}") for h in range(len(heads))]
    for var, head in zip(head_vars, heads):
        shapes[var.output()], dtypes[var.output()] = shapes[head], dtypes[head]
    reachable = {id(n) for n in Graph(tuple(heads)).nodes}
    wrt_numbers = [
        j for j, facts in sorted(leaf_facts.items())
        if facts[2] in ("write", "add") and id(leaf_vars[j]) in reachable
    ]  # fmt: skip
    if not wrt_numbers:
        raise MXNetError("no variable that needs a gradient is reached from the heads")
    wrt = [leaf_vars[j].output() for j in wrt_numbers]
    head_grads = [v.output() for v in head_vars]
    grads = gradients(Graph(tuple(heads)), shapes, wrt, head_grads, dtypes) if wrt else []
    elements = sum(int(np.prod(shapes[w], dtype=np.int64)) for w, g in zip(wrt, grads) if g is not None)
    if elements < MIN_ELEMENTS:
        raise MXNetError(f"{elements} gradient elements are too few to gain from compiling")
    outputs = _Outputs()
    forward_slots = [
        [outputs.slot(Value(node, index)) for index in range(prepared.visible)]
        for node, (prepared, _, _) in zip(nodes, trace.calls)
    ]
    gradient_of = {j: None if g is None else outputs.slot(g) for j, g in zip(wrt_numbers, grads)}
    input_shapes = {f"leaf{j}": facts[0] for j, facts in leaf_facts.items()}
    input_shapes |= {v.name: shapes[v.output()] for v in head_vars}
    input_dtypes = {f"leaf{j}": facts[1].name for j, facts in leaf_facts.items()}
    input_dtypes |= {v.name: dtypes[v.output()] for v in head_vars}
    grad_by_leaf = dict(zip(wrt_numbers, grads))
    roles, in_place = _add_updates(updates, leaf_vars, leaf_facts, grad_by_leaf, outputs,
                                   input_shapes, input_dtypes)  # fmt: skip
    compiled = compile_graph(
        Graph(tuple(outputs.values)), target_for("llvm"), shapes=input_shapes, dtypes=input_dtypes,
        is_train=trace.train_mode, name="autograd_step", roles=roles or None, updates=in_place or None,
    )  # fmt: skip
    exe = compiled.load(what="a compiled training step")
    return _loaded(exe, nodes, leaf_facts, head_vars, forward_slots, gradient_of, updates)


def _add_updates(updates, leaf_vars, leaf_facts, grad_by_leaf, outputs, shapes, dtypes):
    """Append one `_optimizer_update` node per updated leaf to `outputs`; add its state and scalar
    variables to `shapes`/`dtypes`. Returns the compile driver's (roles, in-place updates)."""
    roles, in_place = {}, {}
    for j, spec in sorted(updates.items()):
        grad = grad_by_leaf.get(j)
        if grad is None or leaf_facts[j][2] != "write":
            raise MXNetError(f"leaf {j} has no gradient written by the step to update from")
        name, dtype = f"leaf{j}", leaf_facts[j][1].name
        state_vars = [variable(optimizer_state(name, k)) for k in range(len(spec.states))]
        scalar_vars = [variable(update_scalar(name, s)) for s in UPDATE_RULES[spec.rule].scalars]
        inputs = (leaf_vars[j].output(), grad, *(v.output() for v in state_vars + scalar_vars))
        node = Node("_optimizer_update", inputs, {"rule": spec.rule}, f"{name}_update")
        roles[name] = "parameter"
        in_place[name] = outputs.append(node.output(0))
        for k, (var, (shape, state_dtype)) in enumerate(zip(state_vars, spec.states)):
            roles[var.name] = "state"
            in_place[var.name] = outputs.append(node.output(1 + k))
            shapes[var.name], dtypes[var.name] = tuple(shape), state_dtype
        for var in scalar_vars:
            shapes[var.name], dtypes[var.name] = (1,), dtype
    return roles, in_place


def _loaded(exe, nodes, leaf_facts, head_vars, forward_slots, gradient_of, updates) -> StepProgram:
    """The StepProgram over a loaded program: views of its leaf, head, state and scalar buffers."""
    layout = exe.layout
    named = {**layout["inputs"], **layout.get("parameters", {}), **layout.get("states", {})}

    def view(name, absent=None):
        return exe.view(named[name]) if name in named else absent

    leaf_views = [view(f"leaf{j}") for j in range(max(leaf_facts) + 1)]  # None: a leaf no call reads
    head_views = [view(v.name, _Discard()) for v in head_vars]
    updated = {}
    for j, spec in updates.items():
        name = f"leaf{j}"
        states = [view(optimizer_state(name, k)) for k in range(len(spec.states))]
        scalars = {s: view(update_scalar(name, s), _Discard()) for s in UPDATE_RULES[spec.rule].scalars}
        updated[j] = (states, scalars)
    return StepProgram(exe, nodes, leaf_views, head_views, forward_slots, gradient_of, updated)


class _Discard:
    """The input buffer of a head gradient no output reads (the program dropped it): writes vanish."""

    def __setitem__(self, key, value) -> None:
        pass
