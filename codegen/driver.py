"""The compile driver: the one path from a graph to a loaded program, for every target.

    graph (typed, or with its variables' facts) + roles, updates, mode
        -> build_program (compiler/build.py: simplify, fuse, plan memory, lower) -> Program
        -> the target's code, through the compile cache               (Target.generate / decode)
        -> the runtime layout, built here once                         (runtime_layout)
        -> a loaded program (`CompiledProgram.load`) or an artifact   (`CompiledProgram.artifact`)

Every caller that turns a graph into runnable code goes through `compile_graph`: `ember.compile`,
an executor's programs, Module's fused training step, the CLI and the benchmarks. Targets
(`targets.py`) hold what differs between the CPU and a GPU; nothing here asks which one it has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ember.compiler.build import Built, build_program
from ember.compiler.cache import CompileCache, cache_enabled
from ember.compiler.ir import Graph
from ember.compiler.program import Program
from ember.runtime.artifact import Artifact
from ember.runtime.manifest import ember_version

from .targets import Target, target_for


@dataclass(frozen=True)
class CompiledProgram:
    """A built program, its code for one target and the layout the runtime runs it by."""

    built: Built
    target: Target
    code: object  # the target's code object: a shared library's bytes, a `CudaCode`
    layout: dict  # plain JSON data (runtime_layout + the target's fields)

    @property
    def program(self) -> Program:
        return self.built.program

    def load(self, params: Mapping[str, np.ndarray] | None = None, what: str = "the program"):
        """The program loaded for its target, `params` copied in (an `Executable`, `CudaExecutable`)."""
        return self.target.load(self.code, self.layout, params, what)

    def artifact(
        self,
        graph_json: str,
        params: Mapping[str, np.ndarray],
        name: str = "model",
        optional_inputs: Sequence[str] = (),
    ) -> Artifact:
        """An artifact holding everything needed to run this program without the compiler.
        `optional_inputs` may be left out of a call (they are zeros then: loss labels, which no
        output depends on)."""
        program = self.built.program
        layout = {**self.layout, "optional_inputs": list(optional_inputs)}

        def specs(pairs):
            return [
                {"name": user, "shape": list(program.buffers[b].shape), "dtype": program.buffers[b].dtype}
                for user, b in pairs
            ]

        manifest = {
            "name": name,
            "ember_version": ember_version(),
            **self.target.machine_fields(self.code),
            "inputs": specs(program.inputs.items()),
            "outputs": specs(program.outputs),
            "buffer_plan": {
                "arena_bytes": layout["arena_bytes"],
                "alignment": self.built.plan.alignment,
                "buffers": [{"name": n, **spec} for n, spec in layout["buffers"].items()],
            },
            "layout": layout,
            "kernels": str(program),
        }
        return Artifact(manifest, graph_json, dict(params), self.target.binaries(self.code))


def compile_graph(graph: Graph, target: Target | str | None = None, *, cache: CompileCache | bool = True,
                  **options) -> CompiledProgram:  # fmt: skip
    """`graph` compiled for `target` (a `Target`, 'llvm'/'cpu' or 'cuda'; default the host CPU).

    `options` are `build`'s: `graph` is typed (`graph.types`) or `shapes`/`dtypes` give its variables'
    facts by name; `roles` marks variables as 'parameter' or 'state' (others are inputs); `updates`
    maps a state variable to the output position of its next value; `is_train` is the mode (Dropout,
    BatchNorm); `name`, `optimize`, `debug`. The code comes from the compile cache when this program
    was compiled for this target before: `cache` is the user's cache (True, unless EMBER_CACHE=0), a
    given `CompileCache`, or False to compile without one (tests compiling thousands of one-off
    programs).
    """
    target = target_for(target)
    return compiled_from(build(graph, **options), target, cache)


def build(
    graph: Graph,
    *,
    shapes: Mapping[str, tuple] | None = None,
    dtypes: Mapping[str, str] | None = None,
    roles: Mapping[str, str] | None = None,
    updates: Mapping[str, int] | None = None,
    is_train: bool = False,
    name: str = "main",
    optimize: bool = True,
    debug: int | None = None,
) -> Built:
    """The target-independent half of `compile_graph`: the graph typed (from `shapes`/`dtypes` by
    name unless it comes typed), simplified, fused, planned and lowered to a `Program`. `roles`,
    `updates`, `is_train`: see `compile_graph`. Callers that only inspect the program use it alone."""
    return build_program(
        graph, shapes, dtypes, name=name, roles=roles, is_train=is_train, updates=updates, optimize=optimize,
        debug=debug,
    )  # fmt: skip


def compiled_from(built: Built, target: Target, cache: CompileCache | bool = True) -> CompiledProgram:
    """An already built program compiled for `target` (for callers that inspect the build first)."""
    code = code_for(built.program, target, cache)
    layout = {**runtime_layout(built.program), **target.layout_fields(built.program, code)}
    return CompiledProgram(built, target, code, layout)


def code_for(program: Program, target: Target, cache: CompileCache | bool = True):
    """`program`'s code for `target`: from the compile cache (see `compile_graph`) when it holds it,
    else generated now and stored (the generated object is returned as is; only a hit decodes bytes)."""
    if cache is False or not cache_enabled():
        return target.generate(program)
    if cache is True:
        cache = CompileCache()
    key = target.cache_key(program)
    data = cache.get(key)
    if data is not None:
        return target.decode(data)
    code = target.generate(program)
    cache.put(key, target.encode(code))
    return code


def runtime_layout(program: Program) -> dict:
    """The plain data every runtime needs to run `program`: the arena, every buffer, and which buffers
    are its inputs, outputs, parameters and state (targets add their own fields)."""
    return {
        "arena_bytes": program.arena_bytes,
        "plan_bytes": program.plan_bytes,
        "buffers": {
            name: {"offset": b.offset, "nbytes": b.nbytes, "shape": list(b.shape), "dtype": b.dtype,
                   "role": b.role}  # fmt: skip
            for name, b in program.buffers.items()
        },
        "inputs": dict(program.inputs),
        "outputs": [list(pair) for pair in program.outputs],
        "parameters": dict(program.parameters),
        "states": dict(program.states),
        "kernels": [k.name for k in program.kernels],
    }


__all__ = ["CompiledProgram", "build", "code_for", "compile_graph", "compiled_from", "runtime_layout"]
