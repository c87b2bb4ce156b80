"""The one loop shape all generated code uses: a counted loop that may carry values around.

`counted_loop(b, (start, stop, step), body, carried)` emits `for i in range(start, stop, step)` at the
builder's position (start, stop and a positive step are ints or i64 values); `body(i, values)` emits one iteration and returns the next values of the
`carried` ones (accumulators live in registers as phi nodes, never in memory). It returns the carried
values after the loop (their initial values when the loop runs zero times).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from llvmlite import ir

from .llvm_types import I64


def counted_loop(
    b: ir.IRBuilder,
    bounds: tuple[int, int, int],
    body: Callable[[ir.Value, list[ir.Value]], Sequence[ir.Value] | None],
    carried: Sequence[ir.Value] = (),
    name: str = "i",
) -> list[ir.Value]:
    """Emit the loop; see the module docstring."""
    start, stop, step = bounds
    if isinstance(start, int) and isinstance(stop, int) and start >= stop:
        return list(carried)
    start, stop = (ir.Constant(I64, v) if isinstance(v, int) else v for v in (start, stop))
    pre = b.block
    header = b.append_basic_block(f"{name}.head")
    inner = b.append_basic_block(f"{name}.body")
    done = b.append_basic_block(f"{name}.done")
    b.branch(header)
    b.position_at_end(header)
    i = b.phi(I64, name)
    i.add_incoming(start, pre)
    phis = [b.phi(v.type) for v in carried]
    for phi, value in zip(phis, carried):
        phi.add_incoming(value, pre)
    b.cbranch(b.icmp_signed("<", i, stop), inner, done)
    b.position_at_end(inner)
    updated = list(body(i, list(phis)) or [])
    end = b.block
    i.add_incoming(b.add(i, step if isinstance(step, ir.Value) else ir.Constant(I64, step)), end)
    for phi, value in zip(phis, updated):
        phi.add_incoming(value, end)
    b.branch(header)
    b.position_at_end(done)
    return list(phis)
