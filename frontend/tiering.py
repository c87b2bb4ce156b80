"""When a tiered executor stops interpreting and runs compiled programs (EMBER_EXECUTOR=tiered, the default).

A new executor runs forward/backward on the NumPy reference interpreter, which starts at once, and
switches to compiled programs (`compiled_runner.py`) once its graph is *hot*. Hotness is kept per
(graph fingerprint, mode) for the whole process, so re-binding the same graph and shapes in a loop
heats it too. A mode turns hot, and stays hot, at the first of:

- its runs (forward calls, any executor) reach EMBER_COMPILE_AFTER (default 20; 0 compiles at once);
- the interpreter time spent on it (forward plus backward, measured) reaches the estimated compile
  time (`compile_seconds`): from then on interpreting costs more than compiling would have;
- one interpreted run is estimated (`interpreter_seconds`, from its convolutions' multiply-adds) to
  cost more than compiling: a big convolution compiles before its first run;
- the compile cache holds a mark that this graph turned hot before (in any process), so its programs
  are very likely cached: they load in milliseconds, with no LLVM run.

The switch keeps semantics (outputs within float tolerance, gradients, grad_req='add', BatchNorm's
auxiliary updates), except that random ops (Dropout) draw from a different stream on each tier. A
backward always runs on the tier its forward ran on. When compiling fails with a CompileError the
mode stays on the interpreter, with a warning. Not synchronized on its own: the executor calls it
holding `Executor.lock`; the process-wide table has its own lock.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass

from ember.runtime.errors import CompileError

from .engine_switches import COMPILE_AFTER_ENV, compile_after

log = logging.getLogger(__name__)

# Measured on a 2-core AMD EPYC (benchmarks/bind_latency.py): compiling an executor's forward and
# step programs takes 0.25-0.9 s, about 0.15 s plus 0.07 s per node of the forward graph; the
# interpreter's convolutions run at 0.6-2 G multiply-adds per second (forward plus backward: 3x).
COMPILE_BASE_SECONDS = 0.15
COMPILE_SECONDS_PER_NODE = 0.07
INTERPRETER_MACS_PER_SECOND = 1e9
HOT_KEYS = 4096  # graph modes remembered per process (least recently used forgotten first)
HOT_MARK = b"hot"


def _convolution_macs(node, types) -> float:
    """Forward multiply-adds of a Convolution: each output element sums channels/groups * kernel."""
    out = types[node.output(0)].shape
    weight = types[node.inputs[1]].shape  # (filters, channels / groups, *kernel)
    return _product(out) * _product(weight[1:])


def _deconvolution_macs(node, types) -> float:
    """Forward multiply-adds of a Deconvolution: each input element scatters into filters * kernel."""
    data = types[node.inputs[0]].shape
    weight = types[node.inputs[1]].shape  # (channels, filters / groups, *kernel)
    return _product(data) * _product(weight[1:])


# Ops whose interpreter time dominates a graph's (NumPy's matrix products are fast already).
mac_rules = {
    "Convolution": _convolution_macs,
    "Deconvolution": _deconvolution_macs,
}


def _product(shape) -> float:
    total = 1.0
    for extent in shape:
        total *= extent
    return total


def interpreter_seconds(graph, types) -> float:
    """Estimated seconds of one interpreted forward plus backward of `graph` (typed by `types`)."""
    macs = sum(mac_rules[n.op](n, types) for n in graph.nodes if n.op in mac_rules)
    return 3.0 * macs / INTERPRETER_MACS_PER_SECOND


def compile_seconds(graph) -> float:
    """Estimated seconds to compile an executor's forward and step programs for `graph`."""
    ops = sum(1 for n in graph.nodes if not n.is_variable)
    return COMPILE_BASE_SECONDS + COMPILE_SECONDS_PER_NODE * ops


# -- the process-wide table ------------------------------------------------------------------------


@dataclass
class Heat:
    """What the process knows of one (graph fingerprint, mode): runs, interpreter seconds, whether hot
    (and why), and whether the compile cache has been marked."""

    runs: int = 0
    seconds: float = 0.0
    hot: str | None = None  # the reason, once hot
    marked: bool = False
    failed: bool = False  # compiling raised CompileError: interpret for good


class HeatTable:
    """`Heat` by key, shared by every executor of the process."""

    def __init__(self):
        self._lock = threading.Lock()
        self._heat: OrderedDict[str, Heat] = OrderedDict()

    def get(self, key: str) -> tuple[Heat, bool]:
        """(the key's Heat, whether it was new)."""
        with self._lock:
            heat = self._heat.get(key)
            if heat is not None:
                self._heat.move_to_end(key)
                return heat, False
            heat = self._heat[key] = Heat()
            while len(self._heat) > HOT_KEYS:
                self._heat.popitem(last=False)
            return heat, True

    def add(self, heat: Heat, runs: int = 0, seconds: float = 0.0) -> None:
        """Count `runs` more runs and `seconds` more interpreter time for `heat`."""
        with self._lock:
            heat.runs += runs
            heat.seconds += seconds

    def clear(self) -> None:
        """Forget every graph (tests, and callers measuring cold starts)."""
        with self._lock:
            self._heat.clear()


heat_table = HeatTable()


def reset() -> None:
    """Forget what this process knows of hot graphs and drop its shared compiled programs."""
    from .compiled_runner import shared_programs

    heat_table.clear()
    shared_programs.clear()


# -- one executor's policy -------------------------------------------------------------------------


class TierPolicy:
    """Which engine a tiered executor's next forward uses: 'reference' or 'compiled'."""

    def __init__(self, executor, runner):
        self.executor = executor
        self.runner = runner
        self.threshold = compile_after()
        self._heat: dict[bool, Heat] = {}  # by is_train
        self._compile_estimate: float | None = None

    def engine(self, is_train: bool) -> str:
        """'compiled' once this mode is hot (deciding it now if needed), else 'reference'."""
        if self.runner.has_programs(is_train):
            return "compiled"
        heat = self.heat(is_train)
        if heat.failed:
            return "reference"
        if heat.hot is None:
            heat.hot = self._why_hot(heat)
            if heat.hot is not None:
                log.info("%s (%s) turns hot: %s", self.executor.name, _mode(is_train), heat.hot)
        return "reference" if heat.hot is None else "compiled"

    def ran_interpreter(self, is_train: bool, seconds: float, forward: bool) -> None:
        """Count an interpreted forward (a run) or backward (time only)."""
        heat_table.add(self.heat(is_train), runs=int(forward), seconds=seconds)

    def ran_compiled(self, is_train: bool) -> None:
        """After a compiled run: mark the compile cache once, so later processes start compiled."""
        heat = self.heat(is_train)
        if not heat.marked:
            heat.marked = True
            _cache().put(self._mark_key(is_train), HOT_MARK)

    def compile_failed(self, is_train: bool, err: CompileError) -> None:
        """Keep this mode on the interpreter for good, saying why once."""
        heat = self.heat(is_train)
        heat.failed = True
        log.warning("%s stays on the reference interpreter (%s): compiling failed: %s",
                    self.executor.name, _mode(is_train), err)  # fmt: skip

    def heat(self, is_train: bool) -> Heat:
        """This mode's entry in the process-wide table (looked up once; a new one reads the cache mark)."""
        heat = self._heat.get(is_train)
        if heat is None:
            heat, new = heat_table.get(self._key(is_train))
            if new and _cache().get(self._mark_key(is_train)) == HOT_MARK:
                heat.hot, heat.marked = "it turned hot before (a mark in the compile cache)", True
            self._heat[is_train] = heat
        return heat

    def _why_hot(self, heat: Heat) -> str | None:
        """The first rule that makes this mode hot (see the module docstring), or None."""
        if heat.runs >= self.threshold:
            return f"{heat.runs} runs >= {COMPILE_AFTER_ENV}={self.threshold}"
        budget = self.compile_estimate()
        if heat.seconds >= budget:
            return f"{heat.seconds:.3f} s interpreting >= {budget:.3f} s estimated to compile"
        if heat.runs == 0:
            once = interpreter_seconds(self.executor.graph, self.executor.value_types)
            if once >= budget:
                return f"one interpreted run estimated at {once:.2f} s >= {budget:.2f} s to compile"
        return None

    def compile_estimate(self) -> float:
        """The estimated seconds compiling this executor's programs would take (computed once)."""
        if self._compile_estimate is None:
            self._compile_estimate = compile_seconds(self.executor.graph)
        return self._compile_estimate

    def _key(self, is_train: bool) -> str:
        return f"{self.runner.fingerprint()}:{_mode(is_train)}"

    def _mark_key(self, is_train: bool) -> str:
        from ember.runtime.manifest import ember_version

        text = f"ember tiering mark\n{ember_version()}\n{self._key(is_train)}"
        return hashlib.sha256(text.encode()).hexdigest()


def _mode(is_train: bool) -> str:
    return "training" if is_train else "inference"


def _cache():
    from ember.compiler.cache import CompileCache

    return CompileCache()


__all__ = [
    "HeatTable", "TierPolicy", "compile_seconds", "heat_table",
    "interpreter_seconds", "mac_rules", "reset",
]  # fmt: skip
