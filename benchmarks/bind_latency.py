"""Cold-start latency of executors: bind + forward + backward of a small graph on shapes never seen
before, per executor kind, and the per-call time of one graph run many times as it turns hot.

    python benchmarks/bind_latency.py [--shapes 20] [--runs 200]

Each kind runs in its own child process with its own empty compile cache folder, so nothing one
measured warms another: 'tiered' (the default: interpreter first), 'compiled' with EMBER_CACHE=0
(LLVM on every new shape) and 'reference' (the interpreter only). Every measured call's outputs and
gradients are checked against NumPy first. Prints the CPU model with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

KINDS = {  # label -> environment of the child process
    "tiered": {"EMBER_EXECUTOR": "tiered"},
    "compiled (EMBER_CACHE=0)": {"EMBER_EXECUTOR": "compiled", "EMBER_CACHE": "0"},
    "reference": {"EMBER_EXECUTOR": "reference"},
}


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, and the number of CPUs this process may use."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        model = names[0] if names else model
    except OSError:
        pass
    return f"{model}, {len(os.sched_getaffinity(0))} CPUs"


# -- the graphs: (symbol, input shapes, NumPy oracle of (outputs, gradients by argument)) --------------


def product_graph(mx, rng):
    """lhs * rhs on a random small 2-d shape; head gradient ones."""
    shape = (int(rng.integers(2, 64)), int(rng.integers(2, 64)))
    sym = mx.sym.var("lhs") * mx.sym.var("rhs")
    feeds = {"lhs": rng.standard_normal(shape), "rhs": rng.standard_normal(shape)}
    oracle = (feeds["lhs"] * feeds["rhs"], {"lhs": feeds["rhs"], "rhs": feeds["lhs"]})
    return sym, feeds, oracle


def fc_relu_graph(mx, rng):
    """relu(FullyConnected(data)) with a random batch, input width and hidden width."""
    batch, width, hidden = (int(rng.integers(2, 33)) for _ in range(3))
    sym = mx.sym.relu(mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=hidden, name="fc"))
    feeds = {
        "data": rng.standard_normal((batch, width)),
        "fc_weight": rng.standard_normal((hidden, width)),
        "fc_bias": rng.standard_normal(hidden),
    }
    pre = feeds["data"] @ feeds["fc_weight"].T + feeds["fc_bias"]
    head = (pre > 0).astype(np.float64)  # d relu / d pre with head gradient ones
    grads = {"data": head @ feeds["fc_weight"], "fc_weight": head.T @ feeds["data"], "fc_bias": head.sum(0)}
    return sym, feeds, (np.maximum(pre, 0), grads)


GRAPHS = {"lhs*rhs": product_graph, "FC+relu": fc_relu_graph}


def step(mx, sym, feeds):
    """bind + forward + backward (head gradient ones); the executor."""
    shapes = {name: array.shape for name, array in feeds.items()}
    ex = sym.simple_bind(mx.cpu(), **shapes)
    ex.forward(is_train=True, **feeds)
    ex.backward(mx.nd.ones(ex.outputs[0].shape))
    return ex


def check(ex, oracle, what: str) -> None:
    """The executor's output and gradients equal the NumPy oracle's (float32 tolerance)."""
    want_out, want_grads = oracle
    np.testing.assert_allclose(ex.outputs[0].asnumpy(), want_out, rtol=1e-4, atol=1e-4, err_msg=what)
    for name, want in want_grads.items():
        np.testing.assert_allclose(ex.grad_dict[name].asnumpy(), want, rtol=1e-4, atol=1e-4, err_msg=what)


def cold_binds(mx, make, count: int, seed: int) -> list[float]:
    """Seconds of bind+forward+backward on `count` never-seen shapes (after one warm-up on another)."""
    rng = np.random.default_rng(seed)
    check(step(mx, *make(mx, rng)[:2]), make(mx, np.random.default_rng(seed))[2], "warm-up")
    times, seen = [], set()
    while len(times) < count:
        sym, feeds, oracle = make(mx, rng)
        shapes = tuple(a.shape for a in feeds.values())
        if shapes in seen:
            continue
        seen.add(shapes)
        start = time.perf_counter()
        ex = step(mx, sym, feeds)
        times.append(time.perf_counter() - start)
        check(ex, oracle, f"shapes {shapes}")
    return times


def hot_loop(mx, make, runs: int, seed: int) -> list[tuple[str, float]]:
    """(engine, seconds) of each forward+backward of one executor run `runs` times."""
    sym, feeds, oracle = make(mx, np.random.default_rng(seed + 1000))
    shapes = {name: array.shape for name, array in feeds.items()}
    ex = sym.simple_bind(mx.cpu(), **shapes)
    head = mx.nd.ones(ex.outputs[0].shape)
    calls = []
    for _ in range(runs):
        start = time.perf_counter()
        ex.forward(is_train=True, **feeds)
        ex.backward(head)
        calls.append((ex.tier, time.perf_counter() - start))
    check(ex, oracle, "the hot loop's last run")
    return calls


def child(shapes: int, runs: int) -> None:
    """Measure in this process (its environment picks the executor kind); print JSON."""
    import ember as mx

    result = {}
    for name, make in GRAPHS.items():
        cold = cold_binds(mx, make, shapes, seed=1)
        result[name] = {"cold": cold, "loop": hot_loop(mx, make, runs, seed=1)}
    print(json.dumps(result))


def measure(env: dict, shapes: int, runs: int) -> dict:
    """Run `child` under `env` with a fresh compile cache folder."""
    with tempfile.TemporaryDirectory(prefix="ember-bind-latency-") as cache:
        full = {**os.environ, **env, "EMBER_CACHE_DIR": cache}
        command = [sys.executable, __file__, "--child", "--shapes", str(shapes), "--runs", str(runs)]
        done = subprocess.run(command, env=full, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the measuring process under {env} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summary(loop: list[tuple[str, float]]) -> str:
    """Where the loop switched engines and its per-call medians on each side."""
    first = next((i for i, (engine, _) in enumerate(loop) if engine == "compiled"), None)
    interp = [t for engine, t in loop if engine == "reference"]
    parts = []
    if interp:
        parts.append(f"interpreter {1e3 * float(np.median(interp)):.3f} ms/call")
    if first is not None:
        parts.append(f"run {first + 1} (compiles) {1e3 * loop[first][1]:.1f} ms")
        steady = [t for engine, t in loop[first + 1 :] if engine == "compiled"]
        if steady:
            parts.append(f"then compiled {1e3 * float(np.median(steady)):.3f} ms/call")
    parts.append(f"total {1e3 * sum(t for _, t in loop):.0f} ms")
    return ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", type=int, default=20, help="never-seen shapes per graph")
    parser.add_argument("--runs", type=int, default=200, help="runs of the hot loop")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.shapes, args.runs)
        return
    print(f"# {cpu_model()}; bind+forward+backward, median (min-max) over {args.shapes} new shapes")
    for kind, env in KINDS.items():
        result = measure(env, args.shapes, args.runs)
        for graph, figures in result.items():
            cold = 1e3 * np.array(figures["cold"])
            spread = f"({cold.min():.2f}-{cold.max():.2f})"
            print(f"{kind:26s} {graph:8s} new shape {np.median(cold):8.2f} ms {spread}")
            print(f"{'':26s} {graph:8s} {args.runs} runs: {summary(figures['loop'])}")


if __name__ == "__main__":
    main()
