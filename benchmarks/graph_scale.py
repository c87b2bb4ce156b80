"""Compile time against graph size: bind + forward + backward (training) of very large graphs, with the
compile cache off, so each figure is a cold compile.

Cases: an N-op chain (`*1.01, tanh, +0.5, sigmoid` repeated) for N = 500, 1,000, 2,000; `add_n` and
`Concat` of 1,000 variables of shape (2, 3); a `Group` of 1,000 outputs `tanh(x * i)`.

Usage: python benchmarks/graph_scale.py
"""

import os
import time

import numpy as np

os.environ["EMBER_CACHE"] = "0"  # cold compiles: the figure is the compiler's work

import ember as mx  # noqa: E402

CHAIN_STEPS = (lambda h: h * 1.01, mx.sym.tanh, lambda h: h + 0.5, mx.sym.sigmoid)


def chain(n: int):
    h = mx.sym.var("x")
    for i in range(n):
        h = CHAIN_STEPS[i % 4](h)
    return mx.sym.MakeLoss(mx.sym.sum(h)), {"x": (8, 16)}


def wide(n: int, join):
    variables = [mx.sym.var(f"x{i}") for i in range(n)]
    joined = join(variables)
    return mx.sym.MakeLoss(mx.sym.sum(joined * joined)), {f"x{i}": (2, 3) for i in range(n)}


def group(n: int):
    x = mx.sym.var("x")
    return mx.sym.Group([mx.sym.tanh(x * float(i)) for i in range(n)]), {"x": (8, 16)}


CASES = {
    "chain of 500 ops": lambda: chain(500),
    "chain of 1,000 ops": lambda: chain(1000),
    "chain of 2,000 ops": lambda: chain(2000),
    "add_n of 1,000": lambda: wide(1000, lambda xs: mx.sym.add_n(*xs)),
    "Concat of 1,000": lambda: wide(1000, lambda xs: mx.sym.Concat(*xs, dim=1)),
    "Group of 1,000 outputs": lambda: group(1000),
}


def train_once(symbol, shapes) -> float:
    """Seconds for simple_bind, one training forward and one backward (the compile happens here)."""
    start = time.perf_counter()
    ex = symbol.simple_bind(mx.cpu(), **shapes)
    ex.forward(is_train=True, **{name: np.full(shape, 0.5, np.float32) for name, shape in shapes.items()})
    ex.backward([mx.nd.ones(o.shape) for o in ex.outputs] if len(ex.outputs) > 1 else None)
    return time.perf_counter() - start


def main() -> None:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line), "?")
    print(f"{cpu}, {os.cpu_count()} CPUs; bind + forward + backward, compile cache off")
    for name, make in CASES.items():
        try:
            print(f"{name:24s} {train_once(*make()):7.2f} s", flush=True)
        except Exception as err:  # noqa: BLE001 - a failure is a result to report, as before issue 12
            print(f"{name:24s} {type(err).__name__}: {str(err)[:60]}", flush=True)


if __name__ == "__main__":
    main()
