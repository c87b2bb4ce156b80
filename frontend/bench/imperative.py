"""The imperative workloads of `ember bench`: `mx.nd` and `mx.autograd` timed as user code calls them.

- `nd_small_op`: one small op from Python (`a + b`, `a * 2.0` on shape (10,)): the per-call overhead of the
  imperative engine, against NumPy's `x + y` and PyTorch eager's.
- `nd_mlp_train`: the seed MLP (784-128-64-10) trained imperatively: `autograd.record()`, FullyConnected and
  relu, softmax cross-entropy as `-pick(log_softmax(out), label).mean()`, `loss.backward()`, and a
  hand-written SGD update on the NDArrays (`w -= lr * w.grad`), against the same step hand-written in
  NumPy and PyTorch eager's; one step is first checked against the float64 NumPy step. A training loop
  runs thousands of steps, so Ember is timed in its steady state: after the warm-up steps in which the
  step turns hot, is compiled and passes its trial (`ndarray/compiled_steps.py`); the notes give the
  same step run eagerly (EMBER_EXECUTOR=reference) for comparison.
"""

from __future__ import annotations

import time

import numpy as np

import ember as mx

from ..engine_switches import compile_after
from ..ndarray import compiled_steps
from .workloads import (
    LR,
    MLP_SHAPES,
    Case,
    Context,
    Workload,
    centred_pixels,
    check_close,
    environment,
    float64_step,
    measure,
    numpy_mlp_step,
    peer_steps,
    step_checks,
    torch_mlp_forward,
    uniform_params,
)

SMALL_OPS = {
    "add": (lambda a, b: a + b, "a + b"),
    "mul_scalar": (lambda a, b: a * 2.0, "a * 2.0"),
}


def small_op_case(param: tuple[str, tuple], ctx: Context) -> Case:
    """One small op on NDArrays, on NumPy arrays and on PyTorch tensors of the same values."""
    kind, shape = param
    op, _ = SMALL_OPS[kind]
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal(shape).astype(np.float32), rng.standard_normal(shape).astype(np.float32)
    a, b = mx.nd.array(x), mx.nd.array(y)
    checks = [check_close(f"mx.nd {kind}", op(a, b).asnumpy(), op(x, y), rtol=0, atol_frac=0)]
    torch_call = None
    if ctx.torch is not None:
        ctx.torch.set_num_threads(ctx.threads)
        ta, tb = ctx.torch.from_numpy(x), ctx.torch.from_numpy(y)
        checks.append(check_close(f"PyTorch {kind}", op(ta, tb).numpy(), op(x, y), rtol=0, atol_frac=0))

        def torch_call():
            return op(ta, tb)

    return Case(
        ember=lambda: op(a, b),
        numpy=lambda: op(x, y),
        torch=torch_call,
        against="NumPy's result, exactly",
        checks=checks,
    )


def imperative_mlp_step(params: dict, x, label):
    """One imperative SGD step of the seed MLP on NDArrays (params marked with attach_grad)."""
    with mx.autograd.record():
        h = mx.nd.relu(mx.nd.FullyConnected(x, params["fc1_weight"], params["fc1_bias"], num_hidden=128))
        h = mx.nd.relu(mx.nd.FullyConnected(h, params["fc2_weight"], params["fc2_bias"], num_hidden=64))
        out = mx.nd.FullyConnected(h, params["fc3_weight"], params["fc3_bias"], num_hidden=10)
        loss = -mx.nd.pick(mx.nd.log_softmax(out), label).mean()
    loss.backward()
    for weight in params.values():
        weight -= LR * weight.grad
    return loss


def warm_up_training(step) -> None:
    """Run `step` until a training loop's steady state: past the eager steps, the compile and the
    compiled-steps tier's warm-up and trial (compiled_steps.py)."""
    for _ in range(compile_after() + 1):
        step()
    start = time.perf_counter()
    for _ in range(2 * compiled_steps.TRIAL_RUNS + 5):
        step()
    while time.perf_counter() - start < compiled_steps.WARMUP_SECONDS + 0.25:
        step()


def mlp_train_case(batch: int, ctx: Context) -> Case:
    """The imperative seed MLP step, checked (one step) against the float64 NumPy step."""
    rng = np.random.default_rng(300 + batch)
    x = centred_pixels(rng, (batch, 784))
    y = rng.integers(0, 10, batch)
    start = uniform_params(rng, MLP_SHAPES)
    params = {name: mx.nd.array(value) for name, value in start.items()}
    for weight in params.values():
        weight.attach_grad()
    data, label = mx.nd.array(x), mx.nd.array(y.astype(np.float32))
    oracle = float64_step(numpy_mlp_step, start, x, y)
    imperative_mlp_step(params, data, label)
    checks = step_checks("Ember (imperative)", start, {k: v.asnumpy() for k, v in params.items()}, oracle)
    peer_checks, numpy_call, torch_call = peer_steps(
        numpy_mlp_step, torch_mlp_forward, start, x, y, oracle, ctx
    )
    with environment(EMBER_EXECUTOR="reference"):
        eager = measure(lambda: imperative_mlp_step(params, data, label), ctx.seconds / 2, ctx.max_repeats)
    warm_up_training(lambda: imperative_mlp_step(params, data, label))
    return Case(
        ember=lambda: imperative_mlp_step(params, data, label),
        numpy=numpy_call,
        torch=torch_call,
        against="the float64 NumPy step (parameter updates)",
        checks=checks + peer_checks,
        extras={"eager_step_s": eager["median_s"]},
    )


IMPERATIVE_WORKLOADS = (
    Workload("nd_small_op", "one small mx.nd op from Python, float32 (per-call overhead)", small_op_case,
             full=(("a + b (10,)", ("add", (10,))), ("a * 2.0 (10,)", ("mul_scalar", (10,)))),
             quick=(("a + b (10,)", ("add", (10,))),)),
    Workload("nd_mlp_train", "seed MLP trained imperatively: autograd.record, backward, SGD on NDArrays",
             mlp_train_case, full=(("batch 100", 100),), quick=(("batch 100", 100),)),
)  # fmt: skip
