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

from ..engine_switches import compile_after, executor_kind
from . import backprop, dispatch, tape
from .step_programs import NOT_COMPILABLE, StepProgram, compile_step

log = logging.getLogger(__name__)

MAX_LOGGED_CALLS = 4096  # a longer step is not traced
MAX_TRACES = 64  # traces kept (counted or compiled, each compiled one with its memory); cleared when full
TRIAL_RUNS = 5  # speculated steps timed against the last eager ones before the choice is final
WARMUP_SECONDS = 0.5  # speculated steps before the trial starts (and at least TRIAL_RUNS of them)
MAX_REPLAYS = 3  # speculations of a trace replayed in a row before it is no longer speculated
COMPILING = "compiling"  # StepTrace.program while one thread compiles it
MAX_FUSED = 4  # fused update programs per trace (models of the same structure trained side by side)
OFFERS_BEFORE_FUSING = 2  # separate updates after a compiled step before its fused program is compiled
REFUSED = -1  # StepTrace.offers of an owner whose update is not fused into the trace
PENDING_ARRAY: type = type(None)  # ndarray.PendingNDArray, set by ndarray.py (which imports this module)

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
    """Start this thread's step log (the first call of a step, before it runs: the step's time starts).
    A backward pass still waiting for its update runs first."""
    flags = tape.FLAGS
    if flags.deferred is not None:
        flags.deferred.step.settle()
        flags.deferred = None  # (settled by another thread already, if it was)
    flags.finished = None
    step = flags.step_log = StepLog()
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
    flags = tape.FLAGS
    step = flags.step_log
    if step is not None and step.speculation is not None and pair[0].mark[0] == step.id:
        step.settle()
    deferred = flags.deferred
    if deferred is not None and pair[0].mark[0] == deferred.step.id:
        deferred.step.settle()


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
        self.fused: list[FusedUpdate] = []  # the step with an optimizer's update, one per updater
        self.offers = weakref.WeakKeyDictionary()  # owner -> separate updates it offered; REFUSED: no more

    def fused_for(self, leaves: list) -> FusedUpdate | None:
        """The fused program whose weights are these leaves (a step's), if any."""
        for fused in self.fused:
            for j, weight, _, _ in fused.plan:
                pair = weight._entry
                if pair is None or pair[0] is not leaves[j]:
                    break
            else:
                return fused
        return None

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
        self.program = compile_step(self)
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
        self.lazy = any(trace.fused for trace in traces)  # leaves copied at the backward pass
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
        return self.follow_all((call,), index)

    def follow_all(self, calls: tuple, index: int) -> bool:
        """`follow` for several calls from `index` on: the traces that have them all are kept; False
        (nothing changed) when none has."""
        end = index + len(calls)
        following = [t for t in self.traces if end <= len(t.calls) and t.calls[index:end] == calls]
        if not following:
            return False
        for trace in self.traces:
            if trace not in following:
                trace.lock.release()
        self.traces = following
        return True

    def copy_new_leaves(self, step: StepLog) -> None:
        """Copy the leaves first read by this call into the programs' input buffers - at the backward
        pass instead (`copy_leaves_into`), when which program runs depends on the leaves (`fused`)."""
        if self.lazy:
            return
        while self.copied < len(step.leaves):
            data = step.leaves[self.copied].values[0]
            for trace in self.traces:
                view = trace.program.leaf_views[self.copied]
                if view is not None:
                    view[...] = data
            self.copied += 1

    def copy_leaves_into(self, step: StepLog, program: StepProgram) -> None:
        """The leaves not copied yet into `program`'s buffers (a fused program's own weights stay)."""
        views = program.leaf_views
        for j in range(self.copied, len(step.leaves)):
            view = views[j] if j < len(views) else None
            data = step.leaves[j].values[0]
            if view is not None and view is not data:
                view[...] = data
        self.copied = len(step.leaves)

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
        for other in self.traces:  # keep only the trace that ends here
            if other is not trace:
                other.lock.release()
        self.traces = [trace]
        fused = trace.fused_for(step.leaves) if trace.fused else None
        deferring = fused is not None
        if deferring:  # the trace stays locked until the update or a replay
            self.copy_leaves_into(step, fused.program)
            DeferredBackward(self, step, trace, fused, grads)
            trace.replays_in_a_row = 0  # no trial: a deferred step's time has no program in it
            return True
        self.copy_leaves_into(step, trace.program)
        self.complete(step, trace.program, grads)
        tape.FLAGS.finished = (trace, step)
        trace.after_speculated_run(time.perf_counter() - step.start)  # still holding its lock
        self.release()
        return True

    def complete(self, step: StepLog, program: StepProgram, head_grads: list) -> None:
        """Run `program` (forward and backward, no update): fill the pending arrays still alive and write
        the gradients."""
        forward, gradient_values = program.run(head_grads)
        self.fill_forward(program, forward)
        program.write_gradients(step.leaves, gradient_values)
        step.speculation = None

    def fill_forward(self, program: StepProgram, forward: list) -> None:
        """Give the deferred calls' pending arrays still alive their values (copies: the program's
        buffers are overwritten by its next run)."""
        for k, refs in enumerate(self.outputs):
            entry = None
            for index, ref in enumerate(refs):
                array = ref()
                if array is not None:
                    if entry is None:  # the call's entry, freed as a backward pass frees it
                        entry = tape.TapeEntry(program.nodes[k], None, ())
                    array._fill(forward[k][index].copy(), (entry, index))

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
                ] + [leaf.values[0] for leaf in step.leaves[self.copied :]]
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


# -- the optimizer update fused into the step ---------------------------------------------------------


class FusedUpdate:
    """A trace's program with one owner's optimizer update (StepProgram with `updated` leaves): the
    plan it was built for - (leaf number, weight NDArray, its state NDArrays, the owner's tag) per
    updated parameter, their arrays living in the program's memory - and how often in a row its step
    was needed before the update came (`misses`)."""

    def __init__(self, owner, program: StepProgram, specs: dict):
        self.owner, self.program, self.specs = owner, program, specs
        self.plan: list[tuple] = []
        self.misses = 0

    def adopt(self, placed: list) -> None:
        """Make the program's memory the planned weights' and states' (their values copied in once)."""
        program = self.program
        for j, weight, states, _ in placed:
            _hold(weight, program.leaf_views[j], copy=True)
            for state, view in zip(states, program.updated[j][0]):
                _hold(state, view, copy=True)
        self.plan = placed


class DeferredBackward:
    """A speculated step's backward pass held back for the optimizer update that follows it.

    When a trace has a fused program for the step's weights (`StepTrace.fused_for`: forward, backward
    and an owner's update of them), `backward` runs nothing: the gradient arrays of the step's
    variables become pending, and `update` (from Trainer.step) runs the fused program once - weights
    and optimizer states live in its memory and are updated in place, the gradient arrays become views
    of its gradient outputs. Reading anything of the step first (a gradient, a forward output, a write
    into a parameter, the next step starting) runs the step's own program instead (`replay`), and the
    update then runs on its own as it would have; after MAX_REPLAYS of those in a row the fused program
    is dropped."""

    def __init__(self, speculation: Speculation, step: StepLog, trace: StepTrace, fused: FusedUpdate,
                 head_grads: list):  # fmt: skip
        self.speculation, self.step, self.trace, self.fused = speculation, step, trace, fused
        self.own_program: StepProgram = trace.program  # the step without the update (for `replay`)
        self.head_grads = head_grads
        self.grads = []  # (gradient array made pending, its data)
        for j in fused.program.gradient_of:
            entry = step.leaves[j]
            grad = entry.grad_array
            if "_data" not in grad.__dict__:  # one gradient array given to two variables: pending already
                continue
            data = grad._data
            del grad.__dict__["_data"]
            grad.__class__ = PENDING_ARRAY
            grad._pending = (step, None, data.shape, data.dtype)
            self.grads.append((grad, data))
            entry.fresh_grad = True
        step.speculation = self
        tape.FLAGS.deferred = self

    def _resume(self, fused: bool) -> None:
        """No longer deferred: the gradient arrays hold their own data again (fused: the fused program's
        gradient outputs, given afterwards)."""
        if tape.FLAGS.deferred is self:
            tape.FLAGS.deferred = None
        self.step.speculation = None
        if not fused:
            for grad, data in self.grads:
                grad._fill(data, None)

    def replay(self, step: StepLog, miss: bool = True) -> None:
        """Run the step's own program (no update): someone needs the step's values before an update
        (a `miss`), or the owner's update changed since the plan (`decline`)."""
        self._resume(fused=False)
        trace, fused = self.trace, self.fused
        fused.misses += miss
        if fused.misses >= MAX_REPLAYS and executor_kind() != "compiled" and fused in trace.fused:
            log.info("autograd: this training step no longer waits for its update (needed before it %d "
                     "times in a row)", MAX_REPLAYS)  # fmt: skip
            trace.fused.remove(fused)
            trace.offers[fused.owner] = REFUSED
        program = self.own_program
        try:
            for source, target in zip(fused.program.leaf_views, program.leaf_views):
                if source is not None and target is not None:
                    target[...] = source
            self.speculation.complete(step, program, self.head_grads)
        finally:
            self.speculation.release()

    def decline(self) -> None:
        """The owner's update cannot take the fused program as planned (its optimizer states or
        parameters were replaced): run the step on its own, not counted as a miss, so that the update
        that follows offers itself again (`offer_update` plans anew, without compiling)."""
        self.replay(self.step, miss=False)
        tape.FLAGS.finished = (self.trace, self.step)

    def plan_of(self, owner) -> list | None:
        """The waiting fused program's plan when it is `owner`'s update, else None."""
        fused = self.fused
        return fused.plan if fused.owner is owner else None

    def update(self, scalars: list[dict]) -> None:
        """Run the fused program (its owner, after `plan_of`) with `scalars`: each planned parameter's
        hyper-parameters by name, in plan order."""
        fused, leaves = self.fused, self.step.leaves
        program = fused.program
        for (j, weight, states, _), values in zip(fused.plan, scalars):
            _hold(weight, program.leaf_views[j], copy=False)  # its value was copied in at backward
            state_views, scalar_views = program.updated[j]
            for state, view in zip(states, state_views):
                _hold(state, view, copy=True)
            for name, value in values.items():
                scalar_views[name][0] = value
        self._resume(fused=True)
        forward, outputs = program.run(self.head_grads)
        self.speculation.fill_forward(program, forward)
        for grad, data in self.grads:
            grad._fill(data, None)
        for j in program.own_gradients:  # the updated weights' gradients, without a copy
            leaves[j].grad_array._data = outputs[program.gradient_of[j]]
        program.write_gradients(leaves, outputs, skip=program.own_gradients)
        fused.misses = 0
        self.speculation.release()


def _hold(array, view, copy: bool) -> None:
    """Make `view` (a fused program's buffer) `array`'s memory, copying its value in when asked.
    (`NDArray.adopt_host_buffer` without its `before_write`, which would run the very step being
    updated.)"""
    data = array._data
    if data is view:
        return
    if copy:
        view[...] = data
    array._data = view
    pair = array._entry
    if pair is not None and not pair[0].inputs and pair[0].values:
        pair[0].values[0] = view


def deferred_backward() -> DeferredBackward | None:
    """This thread's backward pass waiting for its update, if any (None once anything - another
    thread too - ran it)."""
    deferred = tape.FLAGS.deferred
    if deferred is not None and deferred.step.speculation is not deferred:
        tape.FLAGS.deferred = deferred = None
    return deferred


def may_offer_update(owner) -> bool:
    """Whether `owner`'s update may `offer_update`: this thread's last backward pass ran a compiled
    step whose trace has not refused it."""
    finished = tape.FLAGS.finished
    return finished is not None and finished[0].offers.get(owner) != REFUSED


def offer_update(owner, plan: list) -> None:
    """Called after an optimizer update that ran on its own: `plan` is what it updated, one
    (weight NDArray, UpdateSpec, state NDArrays, tag) per parameter (the tag is the owner's, handed
    back by `DeferredBackward.plan_of`). When that followed a compiled step
    whose variables these weights are, and it happens OFFERS_BEFORE_FUSING times, the step's trace
    gets a program fusing `owner`'s update in (compiled once; the arrays move into its memory), and
    its next backward passes over these weights wait for the update (DeferredBackward)."""
    flags = tape.FLAGS
    finished, flags.finished = flags.finished, None
    if finished is None:
        return
    trace, step = finished
    if trace.offers.get(owner) == REFUSED or not trace.lock.acquire(blocking=False):
        return
    try:
        placed = _placed(step, plan)
        if placed is None:
            return
        specs = {j: spec for (j, _, _, _), (_, spec, _, _) in zip(placed, plan)}
        fused = next((f for f in trace.fused if f.owner is owner), None)
        if fused is not None and fused.specs != specs:  # another optimizer: compile again
            trace.fused.remove(fused)
            fused = None
        if fused is None:
            offers = trace.offers[owner] = trace.offers.get(owner, 0) + 1
            if offers < OFFERS_BEFORE_FUSING or len(trace.fused) >= MAX_FUSED:
                return
            program = compile_step(trace, specs)
            if not program:
                trace.offers[owner] = REFUSED
                return
            fused = FusedUpdate(owner, program, specs)
            trace.fused.append(fused)
        fused.adopt(placed)
    finally:
        trace.lock.release()


def _placed(step: StepLog, plan: list) -> list | None:
    """(leaf number, weight, states, tag) per planned weight when each is a distinct variable of `step`."""
    placed, seen = [], set()
    for weight, _, states, tag in plan:
        pair = weight._entry
        mark = pair[0].mark if pair is not None else None
        if mark is None or mark[0] != step.id or type(mark[1]) is int or mark[1][1] in seen:
            return None  # not a variable of this step (another model's, or one it did not read)
        seen.add(mark[1][1])
        placed.append((mark[1][1], weight, states, tag))
    return placed


__all__ = ["backward", "defer", "deferred_backward", "end_step", "forget_traces", "may_offer_update",
           "note_call", "offer_update"]
