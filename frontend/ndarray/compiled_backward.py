"""The compiled tier of imperative backward passes: a hot `BackwardPlan` becomes one native program.

A training loop records the same structure every iteration, so its backward plan (`backprop.py`) runs
again and again. Once a plan is hot - it has run EMBER_COMPILE_AFTER times (default 20; the tiered
executors' switch, `tiering.py`) and its gradient graph is big enough to gain (`MIN_ELEMENTS`) - its
gradient graph is cut at the recorded forward values (each becomes an input variable) and compiled
through the compile driver, like any executor's program: GEMMs and fused elementwise kernels in one
call instead of one NumPy call per node. The first compiled runs are timed against the interpreted ones
and the faster tier is kept. EMBER_EXECUTOR=compiled compiles after the first (interpreted) run and
keeps the program, =reference never compiles. A plan whose graph cannot be compiled (an op without a
lowering, a random op) stays interpreted, with one log line. The forward pass stays eager (NumPy, op
by op): values are there the moment user code asks for them.
"""

from __future__ import annotations

import logging
import statistics
import time

import numpy as np

from ember.compiler import Graph, Node, Value, variable
from ember.compiler.ops.facts import draws_random
from ember.runtime.errors import MXNetError

from ..engine_switches import compile_after, executor_kind

log = logging.getLogger(__name__)

MIN_ELEMENTS = 1 << 14  # gradient-graph values (elements) below which one native call gains nothing
NOT_COMPILABLE = False  # BackwardPlan.program once compiling was refused, failed or measured slower
TRIAL_RUNS = 5  # compiled runs timed against the last interpreted ones before the choice is final


def run_compiled(plan, slots: list) -> list | None:
    """The gradients (aligned with `plan.grads`) from the plan's compiled program; None while the plan
    is interpreted. `slots` holds the forward values and head gradients (`backprop._first_slots`).

    The first TRIAL_RUNS compiled runs are timed: when their median is slower than the interpreted
    runs' (measured: the native thread pool and NumPy's BLAS threads contending for the same cores
    can do that), the plan goes back to the interpreter for good, with one log line."""
    program = plan.program
    if not program:
        return None
    if len(program.times) >= TRIAL_RUNS:
        return program.run(slots)
    start = time.perf_counter()
    grads = program.run(slots)
    program.times.append(time.perf_counter() - start)
    if len(program.times) == TRIAL_RUNS and executor_kind() != "compiled":
        compiled, interpreted = statistics.median(program.times), statistics.median(plan.interpreted_times)
        if compiled > interpreted:
            log.info(
                "autograd: this backward pass goes back to the NumPy interpreter: measured %.0f us a run "
                "compiled, %.0f us interpreted", compiled * 1e6, interpreted * 1e6,
            )  # fmt: skip
            plan.program = NOT_COMPILABLE
    return grads


def after_interpreted_run(
    plan, values: list, train_mode: bool, seconds: float, may_compile: bool = True
) -> None:
    """Count an interpreted run of `plan` that took `seconds` (`values`: every slot, as
    `backprop._evaluate` filled them) and compile the plan once it is hot (and `may_compile`), for its
    next run."""
    plan.runs += 1
    plan.interpreted_times = (plan.interpreted_times + [seconds])[-TRIAL_RUNS:]
    if plan.program is None and may_compile and _is_hot(plan):
        plan.program = _compile(plan, values, train_mode)


def _is_hot(plan) -> bool:
    kind = executor_kind()
    if kind == "reference":
        return False
    return kind == "compiled" or plan.runs >= compile_after()


class BackwardProgram:
    """A plan's gradient graph compiled with the forward values as inputs (`inputs`: name -> slot)."""

    def __init__(self, exe, inputs: dict[str, int], outputs: list[int | None]):
        self.exe, self.inputs, self.outputs = exe, inputs, outputs
        self.times: list[float] = []  # the first TRIAL_RUNS runs' durations

    def run(self, slots: list) -> list:
        """Each gradient as a new array (None where no gradient flows)."""
        exe = self.exe
        with exe.lock:
            for name, slot in self.inputs.items():
                exe.set_param(name, slots[slot])
            exe.run()
            values = [v.copy() for v in exe.outputs_view()]
        return [None if index is None else values[index] for index in self.outputs]


def _compile(plan, slots: list, train_mode: bool):
    """The plan's BackwardProgram, or NOT_COMPILABLE (logged) when it cannot or should not be compiled."""
    reason = _refusal(plan, slots)
    if reason is None:
        try:
            return _build(plan, slots, train_mode)
        except MXNetError as err:
            reason = str(err).splitlines()[0]
    log.info("autograd: this backward pass stays on the NumPy interpreter (%s)", reason)
    return NOT_COMPILABLE


def _refusal(plan, slots: list) -> str | None:
    if any(draws_random(step.node) for step in plan.steps):
        return "its gradient graph draws random numbers"
    if not any(g is not None for g in plan.grads):
        return "no gradient flows"
    elements = sum(int(np.prod(slots[s].shape)) for s in plan.grads if s is not None)
    if elements < MIN_ELEMENTS:
        return f"{elements} gradient elements are too few to gain from compiling"
    return None


def _build(plan, slots: list, train_mode: bool) -> BackwardProgram:
    """Cut the gradient graph at the forward values and head gradients, and compile it."""
    from ember.codegen.driver import compile_graph
    from ember.codegen.targets import target_for

    computed = {id(step.node) for step in plan.steps}
    slot_of = plan.slot_of
    cut: dict[Value, Value] = {}
    inputs: dict[str, int] = {}

    def remap(value: Value) -> Value:
        if id(value.node) in computed:
            return Value(rebuilt[id(value.node)], value.index)
        if value not in cut:
            name = f"slot{slot_of[value]}"
            cut[value] = variable(name).output()
            inputs[name] = slot_of[value]
        return cut[value]

    rebuilt: dict[int, Node] = {}
    for step in plan.steps:
        node = step.node
        rebuilt[id(node)] = Node(node.op, tuple(remap(v) for v in node.inputs), node.attrs, node.name)
    outputs, positions = [], []
    for grad in plan.grad_values:
        if grad is None:
            positions.append(None)
            continue
        if id(grad.node) not in computed:
            raise MXNetError("a gradient is a forward value itself")
        positions.append(len(outputs))
        outputs.append(remap(grad))
    graph = Graph(tuple(outputs))
    shapes = {name: slots[slot].shape for name, slot in inputs.items()}
    dtypes = {name: slots[slot].dtype.name for name, slot in inputs.items()}
    compiled = compile_graph(
        graph, target_for("llvm"), shapes=shapes, dtypes=dtypes, is_train=train_mode, name="autograd_backward"
    )
    exe = compiled.load(what="an autograd backward program")
    # Imperative code runs NumPy's multi-threaded BLAS between backward passes; a second pool spinning
    # for the same cores costs more than it gains (measured: 4.3 ms against 1.4 ms a step, seed MLP).
    exe.limit_threads(1)
    return BackwardProgram(exe, inputs, positions)
