"""How an `Executor` runs on compiled programs (EMBER_EXECUTOR=compiled, and the hot executors of the
default 'tiered' kind: see `tiering.py`; `EMBER_EXECUTOR=reference` selects the NumPy interpreter).

The programs run where the executor's context is: the CPU, or GPU i for `mx.gpu(i)` (PTX, with the
inputs copied to the device and the outputs back at each run). An executor needs up to four programs,
each compiled on first use (and found in the compile cache after that): the inference forward, the
training forward, and a forward+backward "step" for each mode whose outputs are the forward outputs,
the gradients and the auxiliary-state updates. When every output is a loss head, a training forward
runs the step at once and keeps the gradients for `backward()`; otherwise `backward()` runs the step
with the head gradients, drawing the same random numbers as the forward did (the seed is an input of
both programs), so Dropout masks agree. Under 'tiered', compiled programs are also kept in a small
process-wide table by `graph_fingerprint`, so a re-bound graph of the same shapes loads them at once.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np

from ember.compiler import Graph, TensorType
from ember.compiler.ir import format_graph
from ember.compiler.names import RNG_BUFFER, head_grad
from ember.compiler.passes.typed import complete_types

from . import random

SHARED_PROGRAMS = 64  # compiled programs kept process-wide for re-bound executors (tiered only)


def graph_fingerprint(executor) -> str:
    """SHA-256 hex naming everything an executor's programs are compiled from: its forward graph with
    every value's shape and dtype (node names and attributes included), the grad_reqs and the context
    (which decides the target; naming it here needs no import of the code generator)."""
    typed = Graph(executor.graph.outputs, executor.value_types)
    ctx = executor.context
    text = f"{format_graph(typed)}\ngrad_reqs {executor.grad_reqs}\non {ctx.device_type}({ctx.device_id})"
    return hashlib.sha256(text.encode()).hexdigest()


class _SharedPrograms:
    """Compiled programs (`CompiledProgram`, plain data) by (fingerprint, kind, is_train), least recently
    used first out beyond SHARED_PROGRAMS; each executor loads its own copy to run."""

    def __init__(self):
        self._lock = threading.Lock()
        self._programs: OrderedDict[tuple, object] = OrderedDict()

    def get(self, key: tuple):
        """The programs kept under `key` (None when none are), as most recently used."""
        with self._lock:
            compiled = self._programs.get(key)
            if compiled is not None:
                self._programs.move_to_end(key)
            return compiled

    def put(self, key: tuple, compiled) -> None:
        """Keep `compiled` under `key`, forgetting the least recently used beyond the limit."""
        with self._lock:
            self._programs[key] = compiled
            while len(self._programs) > SHARED_PROGRAMS:
                self._programs.popitem(last=False)

    def clear(self) -> None:
        """Forget every kept program."""
        with self._lock:
            self._programs.clear()


shared_programs = _SharedPrograms()


class CompiledRunner:
    """The compiled programs of one executor and the values of its last step. Not synchronized on its
    own: its executor calls it only while holding `Executor.lock`."""

    def __init__(self, executor, share: bool = False):
        self.executor = executor
        self.programs: dict[tuple[str, bool], tuple] = {}
        self.pending: dict[str, np.ndarray] | None = None  # the last step's outputs by role
        self.seed = 0
        self.share = share  # look programs up in (and add them to) `shared_programs`
        self._target = None
        self._fingerprint: str | None = None

    # -- programs ---------------------------------------------------------------------------------

    def program(self, kind: str, is_train: bool):
        """(Executable, output layout) of the forward ('forward') or forward+backward ('step') program."""
        key = (kind, is_train)
        if key not in self.programs:
            self.programs[key] = self._compile(kind, is_train)
        return self.programs[key]

    def has_programs(self, is_train: bool) -> bool:
        """Whether a program of this mode is loaded already (its first run will not compile)."""
        return any(mode == is_train for _, mode in self.programs)

    def fingerprint(self) -> str:
        """`graph_fingerprint` of the executor (computed once)."""
        if self._fingerprint is None:
            self._fingerprint = graph_fingerprint(self.executor)
        return self._fingerprint

    def _compile(self, kind: str, is_train: bool):
        ex = self.executor
        shared_key = (self.fingerprint(), kind, is_train) if self.share else None
        compiled = shared_programs.get(shared_key) if shared_key else None
        roles = self._roles(kind, is_train)
        if compiled is None:
            compiled = self._compile_program(kind, is_train)
            if shared_key:
                shared_programs.put(shared_key, compiled)
        return compiled.load(what=f"the {kind} program of {ex.name}"), roles

    def _roles(self, kind: str, is_train: bool) -> dict:
        """Where the program's outputs go: forward outputs, then gradients by argument index, then aux
        updates by name (the last two only in a step)."""
        ex = self.executor
        roles = {"outputs": len(ex.graph.outputs), "grads": [], "aux": []}
        if kind == "step":
            plan = ex.backward_plan()
            roles["grads"] = [i for i, v in plan.grads.items() if v is not None]
            roles["aux"] = list(plan.aux_updates) if is_train else []
        return roles

    def _compile_program(self, kind: str, is_train: bool):
        """The `CompiledProgram` of the forward or step graph of the given mode, through the driver."""
        from ember.codegen.driver import compile_graph

        ex = self.executor
        outputs = list(ex.graph.outputs)
        if kind == "step":
            plan = ex.backward_plan()
            outputs += [v for v in plan.grads.values() if v is not None]
            outputs += list(plan.aux_updates.values()) if is_train else []
        return compile_graph(
            self.typed(Graph(outputs)), self.target(), name=f"{kind}_{'train' if is_train else 'infer'}",
            is_train=is_train,
        )  # fmt: skip

    def target(self):
        """The compile target of the executor's context: the CPU, or CUDA on GPU i for `mx.gpu(i)`."""
        from ember.codegen.targets import target_for

        if self._target is None:
            self._target = target_for(ctx=self.executor.context)
        return self._target

    def typed(self, graph: Graph, extra: Mapping[str, TensorType] | None = None) -> Graph:
        """`graph` (over the executor's values, and maybe its gradients) typed from what bind inferred:
        forward values as inferred then, head gradients as their outputs, variables named in `extra`
        as given there, and new values from their inputs."""
        ex = self.executor
        known = ex.value_types
        by_name = {head_grad(i): known[v] for i, v in enumerate(ex.graph.outputs)}
        by_name.update(extra or {})
        for var in graph.variables:
            if var.name in by_name:
                known[var.output()] = by_name[var.name]
        return graph.with_types(complete_types(graph, known))

    # -- running ----------------------------------------------------------------------------------

    def forward(self, is_train: bool) -> list[np.ndarray]:
        """Run the forward pass (or, in training with only loss heads, the whole step)."""
        self.seed = int(random.generator().integers(1 << 62))
        self.pending = None
        if is_train and self.executor.trains_on_losses_only:
            return self._run_step(is_train, {})
        exe, _ = self.program("forward", is_train)
        self._feed(exe, {})
        exe.run()
        return exe.outputs_view()

    def backward(self, is_train: bool, head_grads: dict[str, np.ndarray]):
        """(gradients by argument index, aux updates by name) of the last forward."""
        if self.pending is None:
            self._run_step(is_train, head_grads)
        pending, self.pending = self.pending, None
        return pending["grads"], pending["aux"]

    def _run_step(self, is_train: bool, head_grads: dict[str, np.ndarray]) -> list[np.ndarray]:
        exe, roles = self.program("step", is_train)
        self._feed(exe, head_grads)
        exe.run()
        values = exe.outputs_view()
        count = roles["outputs"]
        grads = dict(zip(roles["grads"], values[count : count + len(roles["grads"])]))
        aux = dict(zip(roles["aux"], values[count + len(roles["grads"]) :]))
        self.pending = {"grads": grads, "aux": aux}
        return values[:count]

    def _feed(self, exe, extra: dict[str, np.ndarray]) -> None:
        ex = self.executor
        for name, array in zip(ex.arg_names + ex.aux_names, ex.arg_arrays + ex.aux_arrays):
            if name in exe.layout["inputs"]:
                exe.set_param(name, array.host_buffer())
        for name, array in extra.items():
            if name in exe.layout["inputs"]:
                exe.set_param(name, array)
        if RNG_BUFFER in exe.buffers:
            exe.write_buffer(RNG_BUFFER, self.seed)


__all__ = ["CompiledRunner", "graph_fingerprint", "shared_programs"]
