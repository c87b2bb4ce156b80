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

import numpy as np

from ember.compiler import Graph
from ember.compiler.ops import grad_rules

from .ndarray import register as nd_register

EXECUTOR_ENV = "EMBER_EXECUTOR"
EXECUTORS = ("compiled", "reference")


def executor_kind() -> str:
    """'compiled' (default) or 'reference', from EMBER_EXECUTOR; anything else is an error."""
    kind = os.environ.get(EXECUTOR_ENV, "compiled").strip().lower() or "compiled"
    if kind not in EXECUTORS:
        from .base import MXNetError

        raise MXNetError(f"{EXECUTOR_ENV} must be one of {', '.join(EXECUTORS)}, got {kind!r}")
    return kind


def is_loss_head(value) -> bool:
    """Whether `value` is the output of a loss head (its gradient rule needs no head gradient)."""
    return getattr(grad_rules.get(value.node.op), "is_loss", False)


class CompiledRunner:
    """The compiled programs of one executor and the values of its last step."""

    def __init__(self, executor):
        self.executor = executor
        self.programs: dict[tuple[str, bool], tuple] = {}
        self.pending: dict[str, np.ndarray] | None = None  # the last step's outputs by role
        self.seed = 0

    # -- programs ---------------------------------------------------------------------------------

    def program(self, kind: str, is_train: bool):
        """(Executable, output layout) of the forward ('forward') or forward+backward ('step') program."""
        key = (kind, is_train)
        if key not in self.programs:
            self.programs[key] = self._compile(kind, is_train)
        return self.programs[key]

    def _compile(self, kind: str, is_train: bool):
        from ember.compiler.build import build_program

        ex = self.executor
        graph = ex._graph
        outputs = list(graph.outputs)
        roles = {"outputs": len(outputs), "grads": [], "aux": []}
        if kind == "step":
            plan = ex._plan_backward()
            grads = [(i, v) for i, v in plan.grads.items() if v is not None]
            aux = list(plan.aux_updates.items()) if is_train else []
            roles["grads"] = [i for i, _ in grads]
            roles["aux"] = [name for name, _ in aux]
            outputs += [v for _, v in grads] + [v for _, v in aux]
        shapes, dtypes = self._facts(kind)
        built = build_program(
            Graph(outputs),
            shapes,
            dtypes,
            name=f"{kind}_{'train' if is_train else 'infer'}",
            is_train=is_train,
        )
        return self._load(built, f"the {kind} program of {ex._symbol.name}"), roles

    def _load(self, built, what: str):
        """The built program as native code for the executor's device: the CPU, or a GPU (PTX)."""
        from ember.codegen.package import layout_of, library_for

        ctx = self.executor._ctx
        if ctx.device_type != "gpu":
            from ember.runtime.executable import Executable

            return Executable(library_for(built), layout_of(built), what=what)
        from ember.runtime.cuda_executable import CudaExecutable

        from .compiling import cuda_code_of

        code = cuda_code_of(built, device_id=ctx.device_id)
        return CudaExecutable(code.ptx, layout_of(built, code), what=what, ordinal=ctx.device_id)

    def _facts(self, kind: str):
        ex = self.executor
        names = ex._arg_names + ex._aux_names
        arrays = ex.arg_arrays + ex.aux_arrays
        shapes = {n: a.shape for n, a in zip(names, arrays)}
        dtypes = {n: a._data.dtype.name for n, a in zip(names, arrays)}
        if kind == "step":
            for i, value in enumerate(ex._graph.outputs):
                shapes[f"__head_grad{i}__"] = tuple(ex._shapes[value])
                dtypes[f"__head_grad{i}__"] = ex._dtypes.get(value, "float32")
        return shapes, dtypes

    # -- running ----------------------------------------------------------------------------------

    def forward(self, is_train: bool) -> list[np.ndarray]:
        """Run the forward pass (or, in training with only loss heads, the whole step)."""
        self.seed = int(nd_register.RNG.integers(1 << 62))
        self.pending = None
        if is_train and self._step_runs_at_forward():
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

    def _step_runs_at_forward(self) -> bool:
        ex = self.executor
        wanted = any(req != "null" for req in ex._grad_reqs)
        return wanted and all(is_loss_head(v) for v in ex._graph.outputs)

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
        names = ex._arg_names + ex._aux_names
        for name, array in zip(names, ex.arg_arrays + ex.aux_arrays):
            if name in exe.layout["inputs"]:
                exe.set_param(name, array._data)
        for name, array in extra.items():
            if name in exe.layout["inputs"]:
                exe.set_param(name, array)
        if "rng" in exe.buffers:
            exe.write_buffer("rng", self.seed)


__all__ = ["CompiledRunner", "executor_kind"]
