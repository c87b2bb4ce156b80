"""`Block.summary(*inputs)`: one forward pass with a hook on every layer (containers excluded), then
MXNet 1.9.1's table: each layer's output shape and parameter count, totals, trainable and shared
counts. The network must be initialized and not hybridized (a hybridized call runs as one graph, with
no layer boundaries to hook)."""

from __future__ import annotations

from ..ndarray import NDArray
from .errors import check

ROW = "{:>20}  {:>42} {:>15}"


def _shapes_text(values) -> str:
    """The shapes of a (nested) output as MXNet prints them: `(3, 4)`, or `(3, 4), (3, 2)` for a list."""

    def shapes(value):
        if isinstance(value, (list, tuple)):
            return [shapes(v) for v in value]
        return value.shape if isinstance(value, NDArray) else value

    found = shapes(values)
    return str(found)[1:-1] if isinstance(found, list) else str(found)


def print_summary(net, inputs: tuple) -> None:
    """Run `net(*inputs)` once and print the table."""
    rows = [("Input", _shapes_text(inputs), 0, 0, 0)]
    seen: set[int] = set()
    handles = []

    def record(block, _inputs, outputs):
        total = trainable = shared = 0
        for param in block.params.values():
            size = param.data().size
            total += size
            trainable += 0 if param.grad_req == "null" else size
            if id(param) in seen:
                shared += size
            seen.add(id(param))
        name = f"{block.__class__.__name__}-{len(rows)}"
        rows.append((name, _shapes_text(outputs), total, trainable, shared))

    def hook(block):
        active = getattr(block, "_active", False)
        check(not active, f'"{block.name}" must not be hybridized to print summary.')
        if block._summary_row:  # containers (Sequential, HybridSequential) have no row of their own
            handles.append(block.register_forward_hook(record))

    try:
        net.apply(hook)
        net(*inputs)
    finally:
        for handle in handles:
            handle.detach()
    total = sum(r[2] for r in rows)
    trainable = sum(r[3] for r in rows)
    shared = sum(r[4] for r in rows)
    lines = ["-" * 80, ROW.format("Layer (type)", "Output Shape", "Param #"), "=" * 80]
    lines += [ROW.format(name, shape, count) for name, shape, count, _, _ in rows]
    lines += [
        "=" * 80,
        "Parameters in forward computation graph, duplicate included",
        f"   Total params: {total}",
        f"   Trainable params: {trainable}",
        f"   Non-trainable params: {total - trainable}",
        f"Shared params in forward computation graph: {shared}",
        f"Unique parameters in model: {total - shared}",
        "-" * 80,
    ]
    print("\n".join(lines))
