"""How an `Executor` runs on compiled programs (the default; `EMBER_EXECUTOR=reference` selects the
NumPy interpreter instead).

The programs run where the executor's context is: the CPU, or GPU i for `mx.gpu(i)` (PTX, with the
inputs copied to the device and the outputs back at each run). An executor needs up to four programs, each compiled on first use (and found in the compile cache
after that): the inference forward, the training forward, and a forward+backward "step" for each
mode whose outputs are the forward outputs, the gradients and the auxiliary-state updates. When every
output is a loss head, a training forward runs the step at once and keeps the gradients for
`backward()`; otherwise `backward()` runs the step with the head gradients, drawing the same random
numbers as the forward did (the seed is an input of both programs), so Dropout masks agree.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from ember.compiler import Graph, TensorType
from ember.compiler.names import RNG_BUFFER, head_grad
from ember.compiler.passes.typed import complete_types

from . import random

EXECUTOR_ENV = "EMBER_EXECUTOR"
EXECUTORS = ("compiled", "reference")


def executor_kind() -> str:
    """'compiled' (default) or 'reference', from EMBER_EXECUTOR; anything else is an error."""
    kind = os.environ.get(EXECUTOR_ENV, "compiled").strip().lower() or "compiled"
    if kind not in EXECUTORS:
        from .base import MXNetError

        raise MXNetError(f"{EXECUTOR_ENV} must be one of {', '.join(EXECUTORS)}, got {kind!r}")
    return kind


class CompiledRunner:
    """The compiled programs of one executor and the values of its last step. Not synchronized on its
    own: its executor calls it only while holding `Executor.lock`."""

    def __init__(self, executor):
        self.executor = executor
        self.programs: dict[tuple[str, bool], tuple] = {}
        self.pending: dict[str, np.ndarray] | None = None  # the last step's outputs by role
        self.seed = 0
        self._target = None

    # -- programs ---------------------------------------------------------------------------------

    def program(self, kind: str, is_train: bool):
        """(Executable, output layout) of the forward ('forward') or forward+backward ('step') program."""
        key = (kind, is_train)
        if key not in self.programs:
            self.programs[key] = self._compile(kind, is_train)
        return self.programs[key]

    def _compile(self, kind: str, is_train: bool):
        from ember.codegen.driver import compile_graph

        ex = self.executor
        outputs = list(ex.graph.outputs)
        roles = {"outputs": len(outputs), "grads": [], "aux": []}
        if kind == "step":
            plan = ex.backward_plan()
            grads = [(i, v) for i, v in plan.grads.items() if v is not None]
            aux = list(plan.aux_updates.items()) if is_train else []
            roles["grads"] = [i for i, _ in grads]
            roles["aux"] = [name for name, _ in aux]
            outputs += [v for _, v in grads] + [v for _, v in aux]
        compiled = compile_graph(
            self.typed(Graph(outputs)), self.target(), name=f"{kind}_{'train' if is_train else 'infer'}",
            is_train=is_train,
        )  # fmt: skip
        return compiled.load(what=f"the {kind} program of {ex.name}"), roles

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


__all__ = ["CompiledRunner", "executor_kind"]
