"""Compiled training steps: a recorded step that repeats runs as one compiled forward+backward program.

An imperative training loop records the same calls every iteration (`with autograd.record(): ...`,
then `loss.backward()`). Each recorded call since the last backward pass is noted in the thread's
`StepLog`: its prepared op (op, parameters, input shapes and dtypes), its training flag and where its
inputs come from - an earlier call's output, or a leaf (a marked variable or a constant) numbered by
first use. At a backward pass the log and the heads are the key of a `StepTrace`. Once a trace is hot
(EMBER_COMPILE_AFTER eager runs, as for the other tiers), its forward and backward graph, rebuilt from
the key alone, is compiled through the compile driver into one native program (`StepProgram`).

From then on the engine speculates. When the first recorded call of a step matches a hot trace's first
call, calls return `PendingNDArray`s - shape, dtype and context, no values yet - for as long as each
call matches the trace's next one; a leaf's values are copied into the program's input buffer at the
call that first reads it, and writing into a leaf through the NDArray API replays the step first
(`before_write`), so each call reads what it would have read eagerly.
`backward` on the trace's heads then runs the program once, fills in the pending arrays still alive
from its forward outputs and writes the gradients as each variable's grad_req says. Anything else -
a call that differs, reading a pending array's values or its tape entry, a backward with other heads or
`retain_graph=True`, `autograd.grad` - first *replays* the deferred calls eagerly (the same kernels, the
same tape entries as eager execution), after which all is as if nothing had been deferred. After a warm-up
(TRIAL_RUNS steps and WARMUP_SECONDS), speculated steps are timed against the last eager ones, best
against best; a trace that is slower compiled, or whose speculation is replayed MAX_REPLAYS times in
a row, is not speculated again.

Left eager (one log line where a hot trace is refused): steps that draw random numbers (Dropout,
rrelu), that update auxiliary states (training-mode BatchNorm), whose ops fail on values
(`take(mode='raise')`: compiled code clips), that call an `autograd.Function`, index
or reshape recorded arrays through NDArray methods (those calls bypass the log), and steps with fewer
than MIN_ELEMENTS gradient elements, where one native call gains too little to pay for compiling.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import weakref

import numpy as np

from ember.compiler import Graph, Node, Value, variable
from ember.compiler.ops.facts import draws_random
from ember.compiler.passes.autodiff import gradients
from ember.runtime.errors import GraphError, MXNetError

from ..engine_switches import compile_after, executor_kind
from . import backprop, dispatch, tape
from .compiled_backward import MIN_ELEMENTS as BACKWARD_MIN_ELEMENTS

log = logging.getLogger(__name__)

MIN_ELEMENTS = BACKWARD_MIN_ELEMENTS  # gradient elements below which a step stays eager
MAX_LOGGED_CALLS = 4096  # a longer step is not traced
MAX_TRACES = 64  # traces kept (counted or compiled, each compiled one with its memory); cleared when full
TRIAL_RUNS = 5  # speculated steps timed against the last eager ones before the choice is final
WARMUP_SECONDS = 0.5  # speculated steps before the trial starts (and at least TRIAL_RUNS of them)
MAX_REPLAYS = 3  # speculations of a trace replayed in a row before it is no longer speculated
NOT_COMPILABLE = False  # StepTrace.program once compiling was refused, failed or measured slower
COMPILING = "compiling"  # StepTrace.program while one thread compiles it

_TRACES: dict[tuple, StepTrace] = {}
HOT_TRACES: dict[tuple, list] = {}  # a compiled trace's first call -> the traces starting with it
_TABLE_LOCK = threading.Lock()


# -- the log of a step's calls ------------------------------------------------------------------


class StepLog:
    """The recorded calls of this thread since its last backward pass.

    `calls[k]` is (PreparedOp, wiring, training flag) of the k-th call; a wiring holds one wire per
    input: (0, call, output index) for an earlier call's output, (1, leaf number, grad_req) for a leaf.
    Entries of logged calls and leaves carry `mark = (this log's id, k or wire)` (an id, not the log:
    a long-lived variable must not keep old logs alive). `broken`: the step read something the log
    cannot describe (an entry recorded elsewhere), so it is not traced."""

    __slots__ = ("id", "calls", "leaves", "broken", "start", "speculation")
    _ids = itertools.count(1)

    def __init__(self):
        self.id = next(StepLog._ids)
        self.calls: list[tuple] = []
        self.leaves: list[tape.TapeEntry] = []
        self.broken = False
        self.start = time.perf_counter()
        self.speculation: Speculation | None = None

    def wire(self, array) -> tuple | None:
        """Where input `array` comes from in this step, or None when the log cannot say."""
        pending = array._pending
        if pending is not None:
            return pending[1] if pending[0] is self else None  # another thread's deferred array
        pair = array._entry
        if pair is None:
            pair = array._entry = (tape.leaf_entry(array._data), 0)  # a constant, as eager recording does
        entry, index = pair
        mark = entry.mark
        if mark is not None and mark[0] == self.id:
            return (0, mark[1], index) if type(mark[1]) is int else mark[1]
        if entry.inputs or entry.call is not None or entry.values is None:
            return None
        wire = (1, len(self.leaves), entry.grad_req)
        entry.mark = (self.id, wire)
        self.leaves.append(entry)
        return wire

    def settle(self) -> None:
        """Replay the deferred calls, if any: afterwards every pending array of this log is an NDArray.
        (Should a kernel raise, the speculation stays and the next read replays the rest.)"""
        speculation = self.speculation
        if speculation is not None:
            speculation.replay(self)
            self.speculation = None


def open_step() -> StepLog:
    """Start this thread's step log (the first call of a step, before it runs: the step's time starts)."""
    step = tape.FLAGS.step_log = StepLog()
    return step


def note_call(prepared, inputs, entry) -> None:
    """Log an eagerly recorded call (`entry` its new tape entry)."""
    step = tape.FLAGS.step_log
    if step is None:
        step = open_step()
    elif step.broken:
        return
    elif step.speculation is not None:  # an eager call in a deferred step (out=, the profiler): replay
        step.settle()
    wiring = tuple([step.wire(x) for x in inputs])
    if None in wiring or len(step.calls) >= MAX_LOGGED_CALLS or entry.aux_update is not None:
        step.broken = True
        return
    entry.mark = (step.id, len(step.calls))
    step.calls.append((prepared, wiring, tape.FLAGS.training))


def before_write(array) -> None:
    """Called before anything writes into `array` through the NDArray API: when it is a leaf of this
    thread's deferred step, the step is replayed first, so its calls read the values they would have
    read eagerly. (Writes through `host_buffer()`, through another array sharing the memory, or from
    another thread are not seen.)"""
    pair = array._entry
    if pair is None or pair[0].mark is None:
        return
    step = tape.FLAGS.step_log
    if step is not None and step.speculation is not None and pair[0].mark[0] == step.id:
        step.settle()


def end_step() -> StepLog | None:
    """Close this thread's step (a backward pass ran or starts): deferred calls are replayed first.
    Returns the closed log."""
    step = tape.FLAGS.step_log
    if step is not None:
        step.settle()
        tape.FLAGS.step_log = None
    return step


# -- backward passes ---------------------------------------------------------------------------------


def backward(heads: list, head_grads: list, retain_graph: bool, train_mode: bool) -> None:
    """`autograd.backward` / `NDArray.backward`: the gradients of `heads` written into the marked
    variables' gradient arrays - by the step's compiled program when this step was speculated, else
    eagerly (`backprop.write_gradients`), counting the step towards its trace."""
    step = tape.FLAGS.step_log
    if step is not None and step.speculation is not None:
        if step.speculation.finish(step, heads, head_grads, retain_graph, train_mode):
            tape.FLAGS.step_log = None
            return
    step = end_step()
    trace = _trace_of(step, heads, retain_graph, train_mode)
    compiling = trace is not None and trace.count_eager_run()
    may_compile_backward = trace is None or trace.program is NOT_COMPILABLE
    backprop.write_gradients(heads, head_grads, retain_graph, train_mode, may_compile_backward)
    if trace is not None and not compiling:  # a step that compiled is no measure of eager steps
        trace.eager_times = (trace.eager_times + [time.perf_counter() - step.start])[-TRIAL_RUNS:]


def _trace_of(step: StepLog | None, heads: list, retain_graph: bool, train_mode: bool):
    """The trace of a closed step that is about to run eagerly, or None when it cannot be traced."""
    if step is None or step.broken or retain_graph or not step.calls or executor_kind() == "reference":
        return None
    head_wires = []
    for head in heads:
        pair = head._entry
        mark = pair[0].mark if pair is not None else None
        if mark is None or mark[0] != step.id or type(mark[1]) is not int:
            return None
        head_wires.append((mark[1], pair[1]))
    key = (tuple(step.calls), tuple(head_wires), bool(train_mode))
    with _TABLE_LOCK:
        trace = _TRACES.get(key)
        if trace is None:
            if len(_TRACES) >= MAX_TRACES:
                _forget_all()
            trace = _TRACES[key] = StepTrace(key)
    return trace


def _forget_all() -> None:
    _TRACES.clear()
    HOT_TRACES.clear()


def forget_traces() -> None:
    """Drop every trace and compiled step (tests; the engine also does it when the table is full)."""
    with _TABLE_LOCK:
        _forget_all()


class StepTrace:
    """One recorded step structure: its calls, heads and mode (the key), how often it ran eagerly and
    how long it took, and its compiled program once hot."""

    def __init__(self, key: tuple):
        self.key = key
        self.calls, self.heads, self.train_mode = key
        self.runs = 0
        self.eager_times: list[float] = []  # the last TRIAL_RUNS eager steps (seconds)
        self.warm_from: float | None = None  # when the first speculated step ended
        self.speculated_times: list[float] = []  # the trial's speculated steps (seconds)
        self.speculated_runs = 0
        self.replays_in_a_row = 0
        self.program: StepProgram | bool | None = None
        self.lock = threading.Lock()  # held by the one speculation that uses the program

    def count_eager_run(self) -> bool:
        """Count an eager run of this step (before its backward pass runs); compile the trace once it
        is hot, so that this pass already knows whether the step has a program. True when it compiled
        now."""
        self.runs += 1
        if self.program is not None or (executor_kind() != "compiled" and self.runs < compile_after()):
            return False
        with _TABLE_LOCK:  # one thread compiles; the others run eagerly meanwhile
            if self.program is not None:
                return False
            self.program = COMPILING
        self.program = _compile(self)
        if self.program:
            with _TABLE_LOCK:
                HOT_TRACES.setdefault(self.calls[0], []).append(self)
        return True

    def disable(self, reason: str) -> None:
        """Never speculate this trace again (one log line)."""
        log.info("autograd: this training step runs eagerly from now on (%s)", reason)
        self.program = NOT_COMPILABLE
        with _TABLE_LOCK:
            others = HOT_TRACES.get(self.calls[0], [])
            if self in others:
                others.remove(self)
            if not others:
                HOT_TRACES.pop(self.calls[0], None)

    def after_speculated_run(self, seconds: float) -> None:
        """Time the trial: after a warm-up of TRIAL_RUNS speculated steps and WARMUP_SECONDS (measured:
        while NumPy's BLAS threads still spin from the eager steps, a compiled step can take 3-10x
        longer for a few hundred milliseconds), TRIAL_RUNS steps are timed, and the best of them is
        compared with the best of the last eager ones - the best, so that one noisy moment of a shared
        machine does not decide."""
        self.replays_in_a_row = 0
        self.speculated_runs += 1
        if self.warm_from is None:
            self.warm_from = time.perf_counter()
        if len(self.speculated_times) >= TRIAL_RUNS or self.speculated_runs <= TRIAL_RUNS:
            return
        if time.perf_counter() - self.warm_from < WARMUP_SECONDS:
            return
        self.speculated_times.append(seconds)
        if len(self.speculated_times) == TRIAL_RUNS and executor_kind() != "compiled" and self.eager_times:
            compiled, eager = min(self.speculated_times), min(self.eager_times)
            if compiled > eager:
                self.disable(f"measured {compiled * 1e6:.0f} us a step compiled, {eager * 1e6:.0f} us eager")

    def after_replay(self) -> None:
        """Count a speculation of this trace undone by a replay."""
        self.replays_in_a_row += 1
        if self.replays_in_a_row >= MAX_REPLAYS and executor_kind() != "compiled":
            self.disable(f"its speculation was undone {MAX_REPLAYS} times in a row")


# -- speculation -------------------------------------------------------------------------------------


def defer(pending_class, op: str, inputs, params, name, ctx):
    """A recorded call made while hot traces exist: its pending outputs (new `pending_class` arrays,
    ndarray.PendingNDArray) when the step follows a hot trace (the first call starts a speculation), else
    None (the call runs eagerly, after the deferred calls were replayed when a speculation just failed)."""
    for x in inputs:
        if x._pending is not None or x._entry is not None:
            break
    else:
        return None  # no recorded input: not a recorded call
    flags = tape.FLAGS
    step = flags.step_log
    if step is None:
        step = open_step()
    speculation = step.speculation
    if speculation is None and (step.calls or step.broken):
        return None
    shapes, dtypes = [], []
    for x in inputs:
        pending = x._pending
        if pending is None:
            data = x._data
            shapes.append(data.shape)
            dtypes.append(data.dtype)
        else:
            shapes.append(pending[2])
            dtypes.append(pending[3])
    prepared = dispatch.prepared(op, params, name, tuple(shapes), tuple(dtypes))
    wiring = tuple([step.wire(x) for x in inputs])
    call = (prepared, wiring, flags.training)
    if speculation is None:
        speculation = Speculation.start(call)
        if speculation is None:
            return None
        step.speculation = speculation
    elif not speculation.follow(call, len(step.calls)):
        step.settle()
        return None
    if speculation.copied < len(step.leaves):
        speculation.copy_new_leaves(step)
    index = len(step.calls)
    step.calls.append(call)
    if ctx is None:
        ctx = inputs[0]._ctx if inputs else None
    outputs = []
    for output in range(prepared.visible):
        array = object.__new__(pending_class)
        shape, dtype = prepared.out_shapes[output], prepared.out_dtypes[output]
        array.__dict__.update(_ctx=ctx, _pending=(step, (0, index, output), shape, dtype))
        outputs.append(array)
    speculation.outputs.append([weakref.ref(a) for a in outputs])
    return outputs[0] if len(outputs) == 1 else outputs


class Speculation:
    """A step being deferred: the hot traces it still follows (each locked for this speculation), the
    weak references to each deferred call's pending outputs, and how many leaves were copied in."""

    def __init__(self, traces: list):
        self.traces = traces
        self.outputs: list[list] = []
        self.copied = 0
        self.leaf_values: list | None = None  # the leaves' values for a replay, once it started

    @classmethod
    def start(cls, call: tuple) -> Speculation | None:
        """A speculation following the hot traces that start with `call` (None when there are none,
        they are all in use by other threads, or EMBER_EXECUTOR=reference turned compiling off)."""
        if executor_kind() == "reference":
            return None
        traces = []
        for trace in list(HOT_TRACES.get(call, ())):
            if trace.lock.acquire(blocking=False):
                # only the lock's holder disables a trace: its program stays while we hold the lock
                if isinstance(trace.program, StepProgram):
                    traces.append(trace)
                else:
                    trace.lock.release()
        return cls(traces) if traces else None

    def follow(self, call: tuple, index: int) -> bool:
        """Keep the traces whose call `index` is `call`; False (all kept, for the replay) when none is."""
        traces = self.traces
        if len(traces) == 1:  # the usual case: one trace, nothing to release
            calls = traces[0].calls
            return index < len(calls) and calls[index] == call
        following = [t for t in traces if index < len(t.calls) and t.calls[index] == call]
        if not following:
            return False
        for trace in self.traces:
            if trace not in following:
                trace.lock.release()
        self.traces = following
        return True

    def copy_new_leaves(self, step: StepLog) -> None:
        """Copy the leaves first read by this call into the programs' input buffers."""
        while self.copied < len(step.leaves):
            data = step.leaves[self.copied].values[0]
            for trace in self.traces:
                view = trace.program.leaf_views[self.copied]
                if view is not None:
                    view[...] = data
            self.copied += 1

    def release(self) -> None:
        """Give the followed traces back to other speculations."""
        for trace in self.traces:
            trace.lock.release()
        self.traces = []

    def __del__(self) -> None:  # a step abandoned with its thread: its traces are free again
        self.release()

    def finish(self, step: StepLog, heads: list, head_grads: list, retain_graph: bool, train_mode) -> bool:
        """Run the step's program for a backward pass over `heads`; False when no followed trace ends
        here with these heads (the caller replays and runs the backward pass eagerly)."""
        if retain_graph or any(h._pending is None or h._pending[0] is not step for h in heads):
            return False
        if any(getattr(g, "_pending", None) is not None for g in head_grads):  # reading it would replay
            return False
        head_wires = tuple((h._pending[1][1], h._pending[1][2]) for h in heads)
        key_end = (len(step.calls), head_wires, bool(train_mode))
        for trace in self.traces:
            if (len(trace.calls), trace.heads, trace.train_mode) == key_end:
                break
        else:
            return False
        grads = [backprop.head_gradient(g, h.shape, h._pending[3]) for h, g in zip(heads, head_grads)]
        program = trace.program
        forward, gradient_values = program.run(grads)
        for k, refs in enumerate(self.outputs):
            entry = None
            for index, ref in enumerate(refs):
                array = ref()
                if array is not None:
                    if entry is None:  # the call's entry, freed as a backward pass frees it
                        entry = tape.TapeEntry(program.nodes[k], None, ())
                    array._fill(forward[k][index].copy(), (entry, index))
        program.write_gradients(step.leaves, gradient_values)
        step.speculation = None
        trace.after_speculated_run(time.perf_counter() - step.start)  # still holding its lock
        self.release()
        return True

    def replay(self, step: StepLog) -> None:
        """Run the deferred calls eagerly, as if they had never been deferred. The leaves' values are
        taken from a program's input buffers first (their values at the calls) and the traces released;
        arrays already given values by an interrupted replay are skipped."""
        if self.leaf_values is None:
            try:
                snapshots = self.traces[0].program.leaf_views
                self.leaf_values = [
                    view.copy() if view is not None else leaf.values[0]
                    for view, leaf in zip(snapshots, step.leaves[: self.copied])
                ]
                for trace in self.traces:
                    trace.after_replay()
            finally:
                self.release()
        leaf_values = self.leaf_values
        results, entries = [], []
        previous = tape.FLAGS.training
        try:
            for k, ((prepared, wiring, training), refs) in enumerate(zip(step.calls, self.outputs)):
                arrays = [results[w[1]][w[2]] if w[0] == 0 else leaf_values[w[1]] for w in wiring]
                tape.FLAGS.training = training
                values = prepared.kernel(arrays)
                pairs = [(entries[w[1]], w[2]) if w[0] == 0 else (step.leaves[w[1]], 0) for w in wiring]
                entry = tape.record_node(
                    prepared.op, prepared.attrs, prepared.params, prepared.node_name, pairs, values
                )
                entry.mark = (step.id, k)
                results.append(values)
                entries.append(entry)
                for index, ref in enumerate(refs):
                    array = ref()
                    if array is not None and array._pending is not None:
                        array._fill(values[index], (entry, index))
        finally:
            tape.FLAGS.training = previous


# -- compiling a trace -------------------------------------------------------------------------------


class StepProgram:
    """A trace's forward and backward graph as one loaded program.

    Inputs: `leaf{j}` per leaf (`leaf_views[j]`, None where the program does not read it) and
    `head{h}` per head gradient. Outputs: every call's visible outputs, then each gradient;
    `gradient_of[j]` is leaf j's output position, None where no gradient flows, or absent (not a
    variable the heads depend on)."""

    def __init__(self, exe, nodes, leaf_views, head_views, forward_slots, gradient_of):
        self.exe, self.nodes = exe, nodes
        self.leaf_views, self.head_views = leaf_views, head_views
        self.forward_slots, self.gradient_of = forward_slots, gradient_of

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

    def write_gradients(self, leaves: list, outputs: list) -> None:
        """Each variable's gradient into its gradient array, by grad_req (as `backprop.write_gradients`)."""
        for j, slot in self.gradient_of.items():
            entry = leaves[j]
            target = entry.grad_array._data
            if slot is None:
                if entry.grad_req == "write":
                    target[...] = 0
            elif entry.grad_req == "add":
                target += outputs[slot]
            else:
                target[...] = outputs[slot]
            entry.fresh_grad = True


def _compile(trace: StepTrace):
    """The trace's StepProgram, or NOT_COMPILABLE (one log line) when it cannot or should not be. A
    failure of the compiler itself is logged as a warning: the step keeps running eagerly, as it did."""
    try:
        return _build(trace)
    except (MXNetError, GraphError) as err:
        log.info("autograd: this training step stays eager (%s)", str(err).splitlines()[0])
    except Exception as err:  # noqa: BLE001 - a compiler bug must not break a step that runs eagerly
        log.warning("autograd: compiling this training step failed, it stays eager (%s: %s)",
                    type(err).__name__, err)  # fmt: skip
    return NOT_COMPILABLE


def _graph_of(trace: StepTrace) -> tuple[list, dict, list]:
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


def _build(trace: StepTrace) -> StepProgram:
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
    outputs, position = [], {}

    def output_slot(value: Value) -> int:
        if value.node.is_variable:
            raise MXNetError("a gradient is an input of the step")
        if value not in position:
            position[value] = len(outputs)
            outputs.append(value)
        return position[value]

    forward_slots = [
        [output_slot(Value(node, index)) for index in range(prepared.visible)]
        for node, (prepared, _, _) in zip(nodes, trace.calls)
    ]
    gradient_of = {j: None if g is None else output_slot(g) for j, g in zip(wrt_numbers, grads)}
    compiled = compile_graph(
        Graph(tuple(outputs)), target_for("llvm"),
        shapes={f"leaf{j}": facts[0] for j, facts in leaf_facts.items()}
        | {v.name: shapes[v.output()] for v in head_vars},
        dtypes={f"leaf{j}": facts[1].name for j, facts in leaf_facts.items()}
        | {v.name: dtypes[v.output()] for v in head_vars},
        is_train=trace.train_mode, name="autograd_step",
    )  # fmt: skip
    exe = compiled.load(what="a compiled training step")
    inputs = dict(exe.layout["inputs"])
    leaf_views = [  # by leaf number (a leaf of the log that no call reads leaves a gap)
        exe.view(inputs[f"leaf{j}"]) if f"leaf{j}" in inputs else None for j in range(max(leaf_facts) + 1)
    ]
    head_views = [exe.view(inputs[v.name]) if v.name in inputs else _Discard() for v in head_vars]
    return StepProgram(exe, nodes, leaf_views, head_views, forward_slots, gradient_of)


class _Discard:
    """The input buffer of a head gradient no output reads (the program dropped it): writes vanish."""

    def __setitem__(self, key, value) -> None:
        pass


__all__ = ["backward", "defer", "end_step", "forget_traces", "note_call"]
