"""Step macros: a block's recorded calls, captured once and appended to a deferred step without running
the block's Python again.

In a training loop that runs as a compiled step (compiled_steps.py), every recorded call is still made
from Python each iteration - through a Gluon block's `forward`, its children's, `hybrid_forward`, the
op wrapper - only to be compared with the hot trace and deferred. For a block whose Python computes
nothing the graph does not already say, that is pure overhead: a hybridized block (MXNet runs its
cached graph, never its Python, once hybridized) and Ember's own layers and losses. Such a block's
first recorded call under a given input signature is *captured*: the calls it added to the step log,
with each input described by its source - one of the block's inputs, one of its parameters, a reshaped
view of an input, or an earlier call of the same block. Later, while a step is being speculated, the
block's call is *replayed*: the calls are rebuilt from the sources, checked against the hot trace all
at once and appended, and only the block's outputs become pending arrays. Anything the macro cannot
describe (a constant made inside the block, an input recorded on another thread, a call differing
from the trace) leaves the block to run its Python as before.
"""

from __future__ import annotations

import weakref

from ember.runtime.errors import MXNetError

from . import compiled_steps, tape
from .ndarray import ARRAY_TYPES, _wrap

INPUT, PARAM, VIEW, CALL = range(4)  # kinds of source


def _dead() -> None:  # the weak reference of a deferred call output nobody holds
    return None


class Macro:
    """A block's captured calls: (PreparedOp, sources, training flag) each, a source being (INPUT, i),
    (PARAM, p), (VIEW, i, shape) or (CALL, m, output index); and the block's outputs as (m, index).
    For replaying: `sources`, the distinct non-call sources in first-use order (the order in which
    eager calls would number them as leaves), and `template`, each call with its inputs as an index
    into `sources` or (m, output index) of an earlier call of the block."""

    __slots__ = ("calls", "outputs", "kind", "sources", "template")

    def __init__(self, calls: list, outputs: list, kind):
        self.calls, self.outputs, self.kind = calls, outputs, kind  # kind: list, tuple or None (one array)
        numbers: dict = {}
        self.template = []
        for prepared, sources, training in calls:
            slots = tuple(
                (source[1], source[2]) if source[0] == CALL else numbers.setdefault(source, len(numbers))
                for source in sources
            )
            self.template.append((prepared, slots, training))
        self.sources = list(numbers)


def signature(inputs: tuple):
    """The key of a call's macro: each input's shape, dtype and context, which inputs are the same
    array, and the training flag; None when an input is not an NDArray (nested or None inputs are not
    captured)."""
    key = []
    for x in inputs:
        if type(x) not in ARRAY_TYPES:
            return None
        pending = x._pending
        key.append(x._data.shape if pending is None else pending[2])
        key.append(x.dtype)
        key.append(x._ctx)
    if len(inputs) > 1:
        ids = [id(x) for x in inputs]
        key.append(tuple([ids.index(i) for i in ids]))
    key.append(tape.FLAGS.training)
    return tuple(key)


def capture(inputs: tuple, params, run):
    """`run()` (the block's own forward) and the Macro of the calls it added to this thread's step
    log: (outputs, Macro or None when the calls cannot be described by their sources). `params()`
    gives the block's parameter arrays (after the run: it may initialize them)."""
    flags = tape.FLAGS
    step = flags.step_log
    if step is None:
        step = compiled_steps.open_step()
    start = len(step.calls)
    out = run()
    if flags.step_log is not step or step.broken or start == len(step.calls):
        return out, None
    try:
        arrays = params()
    except Exception:  # noqa: BLE001 - a parameter the call did not initialize (an unused child's)
        return out, None
    sources = {}
    for p, array in enumerate(arrays):
        sources.setdefault(_known_wire(step, array), (PARAM, p))
    for i, x in enumerate(inputs):
        sources.setdefault(_known_wire(step, x), (INPUT, i))
    sources.pop(None, None)
    calls = []
    for prepared, wiring, training in step.calls[start:]:
        described = []
        for wire in wiring:
            if wire[0] == 0 and wire[1] >= start:
                described.append((CALL, wire[1] - start, wire[2]))
                continue
            source = sources.get(wire) or _view_source(step, wire, inputs)
            if source is None:
                return out, None
            described.append(source)
        calls.append((prepared, tuple(described), training))
    kind = type(out) if type(out) in (list, tuple) else None
    outputs = []
    for array in out if kind else [out]:
        wire = _known_wire(step, array) if type(array) in ARRAY_TYPES else None
        if wire is None or wire[0] != 0 or wire[1] < start:
            return out, None
        outputs.append((wire[1] - start, wire[2]))
    if len(set(outputs)) != len(outputs):  # an array returned twice
        return out, None
    return out, Macro(calls, outputs, kind)


def _known_wire(step, array) -> tuple | None:
    """Where `array` comes from in `step` when the step already knows it (`StepLog.wire` without
    numbering a new leaf: capturing must not change the step's leaf numbers)."""
    pending = array._pending
    if pending is not None:
        return pending[1] if pending[0] is step else None
    pair = array._entry
    mark = pair[0].mark if pair is not None else None
    if mark is None or mark[0] != step.id:
        return None
    return (0, mark[1], pair[1]) if type(mark[1]) is int else mark[1]


def _view_source(step, wire: tuple, inputs: tuple):
    """(VIEW, i, shape) when leaf `wire` is a constant reshaped from input i (a label reshaped inside a
    loss), else None."""
    if wire[0] != 1 or wire[2] is not None:
        return None
    value = step.leaves[wire[1]].values[0]
    base = value.base
    for i, x in enumerate(inputs):
        if x._pending is not None or base is None:
            continue
        data = x._data
        if (base is data or base is data.base) and value.size == data.size and data.flags.c_contiguous:
            if value.__array_interface__["data"][0] == data.__array_interface__["data"][0]:
                return (VIEW, i, value.shape)
    return None


def replay(macro: Macro, inputs: tuple, params: list, ctx):
    """The block's outputs (an array, or a list as the block returned) as pending arrays of this
    thread's speculated step, or None (nothing done) when the step is not speculated or the macro's
    calls are not the hot trace's next ones."""
    flags = tape.FLAGS
    step = flags.step_log
    if step is None:
        step = compiled_steps.open_step()
    speculation = step.speculation
    if speculation is None and (step.calls or step.broken):
        return None  # an eager step
    base = len(step.calls)
    wires, new_leaves = [], []  # leaves are numbered only once the calls are known to follow the trace
    for source in macro.sources:
        array = _array(source, inputs, params, ctx)
        if array is None:
            return None
        wire = _known_wire(step, array)
        if wire is None:
            wire = next((w for a, w in new_leaves if a is array), None)
        if wire is None:
            wire = _new_leaf_wire(step, array, len(step.leaves) + len(new_leaves))
            if wire is None:
                return None
            new_leaves.append((array, wire))
        wires.append(wire)
    calls = tuple(
        [
            (prepared, tuple([wires[s] if type(s) is int else (0, base + s[0], s[1]) for s in slots]), flag)
            for prepared, slots, flag in macro.template
        ]
    )
    started = speculation is None
    if started:
        speculation = compiled_steps.Speculation.start(calls[0])
        if speculation is None:
            return None
    if not speculation.follow_all(calls, base):
        if started:
            speculation.release()
        return None
    step.speculation = speculation
    for array, wire in new_leaves:
        if step.wire(array) != wire:
            raise MXNetError("internal error: a step macro numbered a leaf differently from its step")
    if speculation.copied < len(step.leaves):
        speculation.copy_new_leaves(step)
    step.calls.extend(calls)
    refs = [[_dead] * prepared.visible for prepared, _, _ in calls]
    speculation.outputs.extend(refs)
    outputs = []
    for m, index in macro.outputs:
        prepared = calls[m][0]
        array = object.__new__(compiled_steps.PENDING_ARRAY)
        shape, dtype = prepared.out_shapes[index], prepared.out_dtypes[index]
        array.__dict__.update(_ctx=ctx, _pending=(step, (0, base + m, index), shape, dtype))
        refs[m][index] = weakref.ref(array)
        outputs.append(array)
    return macro.kind(outputs) if macro.kind else outputs[0]


def _new_leaf_wire(step, array, number: int) -> tuple | None:
    """The wire `StepLog.wire` would give `array`, not yet known to the step, as leaf `number`; None
    when it cannot be a leaf (a pending array of another step, an entry recorded elsewhere)."""
    if array._pending is not None:
        return None
    pair = array._entry
    if pair is None:
        return (1, number, None)  # a constant
    entry = pair[0]
    if entry.inputs or entry.call is not None or entry.values is None:
        return None
    return (1, number, entry.grad_req)


def _array(source: tuple, inputs: tuple, params: list, ctx):
    """The array a source names in this call (a new reshaped view for VIEW; None when it cannot be
    made without running the step)."""
    kind = source[0]
    if kind == INPUT:
        return inputs[source[1]]
    if kind == PARAM:
        return params[source[1]]
    viewed = inputs[source[1]]
    if viewed._pending is not None:  # reading its data would run the step: let the block run instead
        return None
    return _wrap(viewed._data.reshape(source[2]), ctx)
