"""Lowering: a fused graph and its buffer plan become a `Program` of kernels.

Each fusion group becomes one kernel. Its input values are read from their planned buffers; each
node's lowering rule (`ops.registry.lower_rules`) turns its input tensors into output tensors, lazily
where it can, so a chain of cheap ops becomes one expression. An anchor's result (a reduction, a
matmul, an opaque op) is materialized into a buffer when more than one op of the group reads it;
otherwise it is computed where it is read. Finally every value the group must write is stored into
its planned buffer, all values of one shape in one loop nest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from math import prod

from ember.runtime.errors import CompileError

from ..buffers import BufferPlan, BufferSpec, value_name
from ..ir import TensorType, Value
from ..kernels import FusedGraph, FusionGroup
from ..names import RNG_BUFFER  # shared with the runners that write the seed
from ..ops.registry import FusionKind, fusion_kinds, lower_rules
from ..program import Kernel, LoopStage, Program, Store
from . import expr as E
from . import (  # noqa: F401  (each rules module registers its ops' lowering rules)
    rules_elementwise,
    rules_matmul,
    rules_nn,
    rules_norm_pool,
    rules_optimizer,
    rules_reduce,
    rules_shape,
)
from .context import SCRATCH_ALIGNMENT, KernelContext
from .tensor import Tensor, from_buffer

CHAIN_KINDS = (FusionKind.ELEMENTWISE, FusionKind.BROADCAST, FusionKind.INJECTIVE)


def buffer_names(plan: BufferPlan) -> list[str]:
    """The name each planned buffer has in the program: `b<index>`."""
    return [f"b{i}" for i in range(len(plan.buffers))]


def lower_program(
    name: str,
    fused: FusedGraph,
    plan: BufferPlan,
    types: Mapping[Value, TensorType],
    *,
    is_train: bool = False,
    updates: tuple[tuple[Value, Value], ...] = (),
) -> Program:
    """The program running `fused`'s groups in order over `plan`'s arena (+ kernel scratch).

    `updates` pairs a state variable's value with the value that replaces it after each run
    (BatchNorm's moving statistics, updated parameters): the program copies one into the other last.
    """
    names = buffer_names(plan)
    value_buffer = {v: names[i] for v, i in plan.value_to_buffer}
    buffers: dict[str, BufferSpec] = dict(zip(names, plan.buffers))
    base = _round_up(plan.arena_bytes)
    rng_spec = BufferSpec(RNG_BUFFER, base, 8, (1,), "int64", "state")
    scratch_base = base + SCRATCH_ALIGNMENT
    kernels, scratch_end, uses_random = [], scratch_base, False
    for group in fused.groups:
        ctx = KernelContext(group.name, is_train=is_train, rng_buffer=RNG_BUFFER, scratch_base=scratch_base)
        kernels.append(lower_group(ctx, group, types, value_buffer))
        buffers.update(ctx.scratch)
        scratch_end = max(scratch_end, ctx.scratch_end)
        uses_random |= ctx.uses_random
    tail = _update_stages(updates, value_buffer, types)
    if uses_random:
        buffers[RNG_BUFFER] = rng_spec
        seed = E.Load(RNG_BUFFER, E.index(0), "int64")
        tail.append(LoopStage((), (), (Store(RNG_BUFFER, E.index(0), E.add(seed, E.index(1))),)))
    if tail:
        kernels.append(Kernel(f"{name}_finish", tuple(tail), ("state update",)))
    roles = _roles(plan, names)
    graph = fused.graph
    return Program(
        name=name,
        kernels=tuple(kernels),
        buffers=buffers,
        arena_bytes=scratch_end,
        inputs={v.name: value_buffer[v.output()] for v in graph.variables if roles.get(value_buffer[v.output()]) == "input"},
        outputs=tuple((value_name(v), value_buffer[v]) for v in graph.outputs),
        parameters={v.name: value_buffer[v.output()] for v in graph.variables if roles.get(value_buffer[v.output()]) == "parameter"},
        states={v.name: value_buffer[v.output()] for v in graph.variables if roles.get(value_buffer[v.output()]) == "state"},
        updates=tuple((value_buffer[s], value_buffer[n]) for s, n in updates),
        plan_bytes=plan.arena_bytes,
    )  # fmt: skip


def lower_group(
    ctx: KernelContext,
    group: FusionGroup,
    types: Mapping[Value, TensorType],
    value_buffer: Mapping[Value, str],
) -> Kernel:
    """One group's kernel: its nodes' rules in order, then the stores of what it writes."""
    tensors: dict[Value, Tensor] = {}
    for value in group.inputs:
        t = types[value]
        tensors[value] = from_buffer(value_buffer[value], t.shape, t.dtype)
    readers = Counter(v for node in group.nodes for v in node.inputs)
    writes = set(group.outputs)
    single_output = group.outputs[0] if len(group.outputs) == 1 else None
    for node in group.nodes:
        outputs = [node.output(i) for i in range(node.num_outputs)]
        ctx.node = node
        ctx.out_types = [(types[v].shape, types[v].dtype) for v in outputs]
        ctx.destination = _destination(node, single_output, types, value_buffer)
        results = _run_rule(ctx, node, [tensors[v] for v in node.inputs], outputs, types)
        anchored = fusion_kinds[node.schema.name] not in CHAIN_KINDS
        if anchored:
            results = _materialize(ctx, outputs, results, writes, readers, value_buffer)
        tensors.update(zip(outputs, results))
    pending = [(tensors[v], value_buffer[v]) for v in group.outputs if tensors[v].buffer != value_buffer[v]]
    for shape in dict.fromkeys(t.shape for t, _ in pending):
        ctx.store_many([(t, b) for t, b in pending if t.shape == shape])
    return Kernel(group.name, tuple(ctx.stages), tuple(n.op for n in group.nodes))


def _materialize(ctx, outputs, results, writes, readers, value_buffer) -> list[Tensor]:
    """An anchor's results stored where they must be: into the group's output buffers when the
    group writes them (all results of one shape in one loop), into scratch when several ops of the
    group read them; the rest stay lazy, computed where their single reader reads them."""
    results = list(results)
    stores = {}
    for k, (value, result) in enumerate(zip(outputs, results)):
        if value in writes and result.buffer != value_buffer[value]:
            stores[k] = value_buffer[value]
        elif readers[value] > 1 and result.buffer is None:
            stores[k] = ctx.scratch_buffer(result.shape, result.dtype)
    for shape in dict.fromkeys(results[k].shape for k in stores):
        same = [k for k in stores if results[k].shape == shape]
        ctx.store_many([(results[k], stores[k]) for k in same])
        for k in same:
            results[k] = from_buffer(stores[k], results[k].shape, results[k].dtype)
    return results


def _destination(node, single_output: Value | None, types, value_buffer) -> str | None:
    """The group's only output buffer, offered to an anchor node whose one result has its type."""
    if single_output is None or node.num_outputs != 1:
        return None
    if fusion_kinds[node.schema.name] in CHAIN_KINDS:
        return None
    if types[node.output(0)] != types[single_output]:
        return None
    return value_buffer[single_output]


def _run_rule(ctx, node, inputs: list[Tensor], outputs: list[Value], types) -> list[Tensor]:
    rule = lower_rules.get(node.schema.name)
    if rule is None:
        raise CompileError(f"op {node.op} (node {node.name!r}) has no lowering rule for compiled code yet")
    results = list(rule(ctx, node, inputs))
    if len(results) != len(outputs):
        raise CompileError(
            f"lowering rule of {node.op} gave {len(results)} outputs for node {node.name!r}, expected {len(outputs)}"
        )
    for value, result in zip(outputs, results):
        expected = types[value]
        if result.shape != expected.shape or result.dtype != expected.dtype:
            raise CompileError(
                f"lowering rule of {node.op} (node {node.name!r}) made {result.shape} {result.dtype} for "
                f"{value_name(value)}, inferred {expected.shape} {expected.dtype}"
            )
    return results


def _update_stages(updates, value_buffer, types) -> list[LoopStage]:
    stages = []
    for state, new in updates:
        target, source = value_buffer[state], value_buffer[new]
        if target == source:
            continue
        t = types[state]
        count = prod(t.shape)
        if count == 0:
            continue
        i = E.Var("u")
        stages.append(LoopStage((i,), (count,), (Store(target, i, E.Load(source, i, t.dtype)),)))
    return stages


def _roles(plan: BufferPlan, names: list[str]) -> dict[str, str]:
    return {name: spec.role for name, spec in zip(names, plan.buffers)}


def _round_up(n: int) -> int:
    return -(-n // SCRATCH_ALIGNMENT) * SCRATCH_ALIGNMENT
