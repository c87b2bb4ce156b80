"""The workloads of `ember bench`: each builds its inputs from a fixed seed, checks Ember's result (and the
NumPy and PyTorch implementations it is compared with) before anything is timed, then hands back the
callables to time.

A workload is one row of `WORKLOADS`: a name, a title, the function that prepares one case, and the
cases of the full and the `--quick` suite. Preparing a case raises `BenchCheckError` when a result is
wrong; `run_workload` records that and times nothing of that case.

Timing (`measure`): one warm-up call, then calls timed one by one until the repeat cap or the time
budget is reached (at least `MIN_REPEATS`); the median is reported. Ember is timed through its
`Executable.run()` - one native call over the program's memory as it is, writing into its own output
buffers, the inputs having been copied in once; NumPy allocates its results, as NumPy code does.
"""

from __future__ import annotations

import gc
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

import ember as mx
from ember.base import MXNetError
from ember.compiler import Graph

LR = 0.1  # the SGD learning rate of both training workloads
MIN_REPEATS = 3
FORWARD_TOL = {"rtol": 1e-4, "atol_frac": 1e-5}  # forward results: relative, plus a fraction of max|expected|
STEP_TOL = {"rtol": 1e-3, "atol_frac": 1e-3}  # the change a float32 training step makes to each parameter


class BenchError(MXNetError):
    """The benchmark suite cannot run as asked, or a workload failed its correctness check."""


class BenchCheckError(BenchError):
    """A result (Ember's, or an implementation it is compared with) differs from the expected one."""


# -- the pieces every workload uses -----------------------------------------------------------------


@dataclass
class Context:
    """What every case builder needs: suite size, the timing budget, PyTorch (or None), a memo."""

    quick: bool
    seconds: float  # timing budget per contender and case
    max_repeats: int
    threads: int  # the threads PyTorch may use (NumPy's BLAS is limited by the caller)
    torch: object | None = None
    memo: dict = field(default_factory=dict)


@dataclass
class Case:
    """One prepared, checked case: the callables to time and what to report besides their times."""

    ember: Callable[[], object]
    numpy: Callable[[], object] | None = None
    torch: Callable[[], object] | None = None
    against: str = ""  # what the check compared with
    checks: list[dict] = field(default_factory=list)
    rate: tuple[str, float] | None = None  # (unit, amount): each contender's amount / median time
    extras: dict = field(default_factory=dict)
    warmup: bool = True
    max_repeats: int | None = None


@dataclass(frozen=True)
class Workload:
    """One row of the suite: `build(param, ctx) -> Case` for each (label, param) of the chosen size."""

    name: str
    title: str
    build: Callable[[object, Context], Case]
    full: tuple
    quick: tuple


def check_close(what: str, got, want, rtol: float, atol_frac: float) -> dict:
    """A record of `got` matching `want` elementwise within rtol*|want| + atol_frac*max|want|;
    BenchCheckError naming `what`, the worst element and the tolerance when it does not (NaN never
    matches)."""
    got64, want64 = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got64.shape != want64.shape:
        raise BenchCheckError(f"{what}: got shape {got64.shape}, expected {want64.shape}")
    scale = float(np.max(np.abs(want64))) if want64.size else 0.0
    error = np.abs(got64 - want64)
    allowed = rtol * np.abs(want64) + atol_frac * scale
    bad = ~(error <= allowed)
    if bad.any():
        worst = np.unravel_index(
            int(np.argmax(np.where(bad, np.nan_to_num(error, nan=np.inf), -1.0))), bad.shape
        )
        where = tuple(int(i) for i in worst)
        raise BenchCheckError(
            f"{what}: {int(bad.sum())} of {bad.size} values are wrong; worst at index {where}: "
            f"got {got64[worst]:.7g}, expected {want64[worst]:.7g} (allowed |error| <= {rtol:g}*|expected| + "
            f"{atol_frac * scale:.3g})"
        )
    max_error = float(np.max(error)) if error.size else 0.0
    return {"what": what, "max_abs_error": max_error, "max_abs_expected": scale, "passed": True}


def measure(fn: Callable[[], object], seconds: float, max_repeats: int, warmup: bool = True) -> dict:
    """Median, minimum and count of timed calls of `fn` (garbage collection paused while timing)."""
    if warmup:
        fn()
    times: list[float] = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    start = time.perf_counter()
    try:
        while len(times) < max_repeats and (
            len(times) < MIN_REPEATS or time.perf_counter() - start < seconds
        ):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    finally:
        if gc_was_enabled:
            gc.enable()
    return {"median_s": statistics.median(times), "min_s": min(times), "repeats": len(times)}


@contextmanager
def environment(**values: str | None):
    """Environment variables set (or, for None, removed) for the duration of the block."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        _set_environment(values)
        yield
    finally:
        _set_environment(saved)


def _set_environment(values: dict) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def compiled_exe(symbol, shapes: dict, params: dict | None = None, name: str = "bench"):
    """`ember.compile(...)` and its Executable, the model's parameters already in place."""
    model = mx.compile(symbol, shapes=shapes, params=params or {}, name=name)
    return model, model._exe


def reference(symbol, feeds: dict) -> list[np.ndarray]:
    """The outputs of `symbol` on `feeds` computed by Ember's reference interpreter."""
    from ember.compiler import run

    return run(symbol._graph, feeds)


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax, in z's dtype."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def uniform_params(rng, shapes: dict[str, tuple], dtype=np.float32) -> dict[str, np.ndarray]:
    """Xavier-uniform weights and small random biases for parameters named `*_weight` / `*_bias`."""
    params = {}
    for name, shape in shapes.items():
        if name.endswith("_weight"):
            fan_in, fan_out = int(np.prod(shape[1:])), shape[0]
            bound = np.sqrt(6.0 / (fan_in + fan_out))
            params[name] = rng.uniform(-bound, bound, shape).astype(dtype)
        else:
            params[name] = (0.1 * rng.standard_normal(shape)).astype(dtype)
    return params


def centred_pixels(rng, shape: tuple) -> np.ndarray:
    """Training inputs: uniform in [-0.5, 0.5), as normalised pixels are. (Uncentred [0, 1) inputs make
    LeNet's SGD at lr 0.1 diverge to inf/NaN within the timed steps, which would time NaN arithmetic.)"""
    return (rng.random(shape, dtype=np.float32) - 0.5).astype(np.float32)


def fused_step(symbol, x: np.ndarray, labels: np.ndarray):
    """A Module fitted for one epoch on (x, labels), one batch (which compiles its fused training step),
    and that FusedStep; BenchError when Module.fit did not fuse the step."""
    batches = mx.io.NDArrayIter(x, labels, batch_size=len(x))
    module = mx.mod.Module(symbol)
    module.fit(batches, optimizer="sgd", optimizer_params={"learning_rate": LR}, num_epoch=1)
    fused = getattr(module, "_fused", None)
    if fused is None:
        raise BenchError(
            "Module.fit did not fuse the training step (EMBER_EXECUTOR=reference?); the training workloads "
            "time the fused step"
        )
    return module, fused


def step_checks(who: str, before: dict, after: dict, oracle: dict) -> list[dict]:
    """`who`'s change of each parameter in one SGD step checked against the float64 NumPy step's."""
    return [
        check_close(
            f"{who}'s update of {name} vs the float64 NumPy step",
            after[name].astype(np.float64) - before[name],
            oracle[name] - before[name],
            **STEP_TOL,
        )
        for name in before
    ]


def float64_step(step: Callable, params: dict, *args) -> dict:
    """The parameters after `step` run in float64 from `params` (the oracle of a training check)."""
    oracle = {k: v.astype(np.float64) for k, v in params.items()}
    step(oracle, *(a.astype(np.float64) if a.dtype.kind == "f" else a for a in args))
    return oracle


def torch_step(torch, forward: Callable, params: dict, x: np.ndarray, y: np.ndarray, threads: int):
    """A PyTorch SGD step (mean cross-entropy: MXNet's gradient rescaled by 1/batch) on copies of
    `params`: (step callable, the live parameter tensors)."""
    torch.set_num_threads(threads)
    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    tx, ty = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))

    def step():
        loss = torch.nn.functional.cross_entropy(forward(torch, tensors, tx), ty)
        loss.backward()
        with torch.no_grad():
            for t in tensors.values():
                t -= LR * t.grad
                t.grad = None

    return step, tensors


def peer_steps(numpy_step, torch_forward, params: dict, x, y, oracle: dict, ctx: Context):
    """NumPy's and PyTorch's SGD steps on copies of `params`, each checked once against `oracle`:
    (checks, the NumPy step to time, the PyTorch step to time or None)."""
    mine = {k: v.copy() for k, v in params.items()}
    numpy_step(mine, x, y)
    checks = step_checks("NumPy", params, mine, oracle)
    torch_call = None
    if ctx.torch is not None:
        torch_call, tensors = torch_step(ctx.torch, torch_forward, params, x, y, ctx.threads)
        torch_call()
        checks += step_checks("PyTorch", params, torch_numpy(tensors), oracle)
    return checks, (lambda: numpy_step(mine, x, y)), torch_call


def torch_numpy(tensors: dict) -> dict:
    """PyTorch tensors as NumPy arrays."""
    return {k: t.detach().numpy().copy() for k, t in tensors.items()}


# -- 1. the seed MLP training step ----------------------------------------------------------------------

MLP_SHAPES = {
    "fc1_weight": (128, 784), "fc1_bias": (128,), "fc2_weight": (64, 128), "fc2_bias": (64,),
    "fc3_weight": (10, 64), "fc3_bias": (10,),
}  # fmt: skip


def seed_mlp():
    """The seed MLP: 784-128-64-10, relu, SoftmaxOutput."""
    data = mx.sym.Variable("data")
    net = mx.sym.Activation(mx.sym.FullyConnected(data, num_hidden=128, name="fc1"), act_type="relu")
    net = mx.sym.Activation(mx.sym.FullyConnected(net, num_hidden=64, name="fc2"), act_type="relu")
    return mx.sym.SoftmaxOutput(mx.sym.FullyConnected(net, num_hidden=10, name="fc3"), name="softmax")


def numpy_mlp_forward(p: dict, x: np.ndarray) -> np.ndarray:
    """The seed MLP's softmax probabilities."""
    h1 = np.maximum(x @ p["fc1_weight"].T + p["fc1_bias"], 0)
    h2 = np.maximum(h1 @ p["fc2_weight"].T + p["fc2_bias"], 0)
    return softmax(h2 @ p["fc3_weight"].T + p["fc3_bias"])


def numpy_mlp_step(p: dict, x: np.ndarray, y: np.ndarray) -> None:
    """One SGD step of the seed MLP, in place: SoftmaxOutput's gradient (p - onehot) rescaled by
    1/batch, as Module.fit's SGD does."""
    h1 = np.maximum(x @ p["fc1_weight"].T + p["fc1_bias"], 0)
    h2 = np.maximum(h1 @ p["fc2_weight"].T + p["fc2_bias"], 0)
    d3 = softmax(h2 @ p["fc3_weight"].T + p["fc3_bias"])
    d3[np.arange(len(y)), y] -= 1
    d3 *= 1.0 / len(y)
    d2 = (d3 @ p["fc3_weight"]) * (h2 > 0)
    d1 = (d2 @ p["fc2_weight"]) * (h1 > 0)
    grads = {
        "fc3_weight": d3.T @ h2, "fc3_bias": d3.sum(0), "fc2_weight": d2.T @ h1, "fc2_bias": d2.sum(0),
        "fc1_weight": d1.T @ x, "fc1_bias": d1.sum(0),
    }  # fmt: skip
    for name, grad in grads.items():
        p[name] -= LR * grad


def torch_mlp_forward(torch, t: dict, x):
    """The seed MLP's logits in PyTorch."""
    f = torch.nn.functional
    h = torch.relu(f.linear(x, t["fc1_weight"], t["fc1_bias"]))
    h = torch.relu(f.linear(h, t["fc2_weight"], t["fc2_bias"]))
    return f.linear(h, t["fc3_weight"], t["fc3_bias"])


def mlp_train_case(batch: int, ctx: Context) -> Case:
    """Seed MLP SGD step at `batch`: Ember's fused step (`exe.run()`) vs NumPy (and PyTorch)."""
    rng = np.random.default_rng(100 + batch)
    x = centred_pixels(rng, (batch, 784))
    y = rng.integers(0, 10, batch)
    labels = y.astype(np.float32)
    _, fused = fused_step(seed_mlp(), x, labels)
    return training_case(fused, numpy_mlp_step, torch_mlp_forward, uniform_params(rng, MLP_SHAPES), x, y, ctx)


def training_case(fused, numpy_step, torch_forward, params: dict, x, y, ctx: Context) -> Case:
    """A training step case: Ember's fused step from `params` on (x, y) checked against the float64
    NumPy step (as are the float32 NumPy step and PyTorch's), then the step callables to time."""
    exe = fused.exe
    for name, value in params.items():
        exe.set_param(name, value)
    exe.set_param("data", x)
    exe.set_param("softmax_label", y.astype(np.float32))
    oracle = float64_step(numpy_step, params, x, y)
    exe.run()
    checks = step_checks("Ember", params, {k: exe.get(k) for k in params}, oracle)
    peer_checks, numpy_call, torch_call = peer_steps(numpy_step, torch_forward, params, x, y, oracle, ctx)
    batch = mx.io.DataBatch([mx.nd.array(x)], [mx.nd.array(y.astype(np.float32))])
    with_copy = measure(lambda: fused.run(batch), ctx.seconds / 2, ctx.max_repeats)
    return Case(
        ember=exe.run,
        numpy=numpy_call,
        torch=torch_call,
        against="the float64 NumPy step (parameter updates)",
        checks=checks + peer_checks,
        extras={"ember_step_with_batch_copy_s": with_copy["median_s"]},
    )


# -- 2. MLP inference ---------------------------------------------------------------------------------


def mlp_infer_case(batch: int, ctx: Context) -> Case:
    """Seed MLP forward at `batch`: ember.compile (`exe.run()`) vs NumPy; at batch 1 also the time of a
    whole `model(data=x)` call from Python."""
    rng = np.random.default_rng(200 + batch)
    params = uniform_params(rng, MLP_SHAPES)
    x = rng.random((batch, 784), dtype=np.float32)
    model, exe = compiled_exe(seed_mlp(), {"data": x.shape}, params, name=f"mlp_infer_{batch}")
    exe.set_param("data", x)
    exe.run()
    (want,) = reference(seed_mlp(), {"data": x, "softmax_label": np.zeros(batch, np.float32), **params})
    checks = [
        check_close(
            "Ember's probabilities vs the reference interpreter", exe.outputs_view()[0], want, **FORWARD_TOL
        )
    ]
    checks.append(
        check_close(
            "NumPy's probabilities vs the reference interpreter",
            numpy_mlp_forward(params, x),
            want,
            **FORWARD_TOL,
        )
    )
    torch_call = None
    if ctx.torch is not None:
        torch, tensors = ctx.torch, {k: ctx.torch.from_numpy(v) for k, v in params.items()}
        tx = torch.from_numpy(x)

        def torch_call():
            with torch.no_grad():
                return torch.softmax(torch_mlp_forward(torch, tensors, tx), dim=1)

        checks.append(
            check_close(
                "PyTorch's probabilities vs the reference interpreter",
                torch_call().numpy(),
                want,
                **FORWARD_TOL,
            )
        )
    extras = {}
    if batch == 1:
        call = measure(lambda: model(data=x), ctx.seconds / 2, ctx.max_repeats * 10)
        extras["python_call_us"] = call["median_s"] * 1e6
    return Case(
        ember=exe.run,
        numpy=lambda: numpy_mlp_forward(params, x),
        torch=torch_call,
        against="the reference interpreter",
        checks=checks,
        extras=extras,
    )


# -- 3. elementwise chains ------------------------------------------------------------------------------


def transcendental_chain(x):
    """relu(1.5x + 0.25) * sigmoid(x) + tanh(x) as a symbol."""
    return mx.sym.relu(1.5 * x + 0.25) * mx.sym.sigmoid(x) + mx.sym.tanh(x)


def plain_chain(x):
    """relu(1.5x + 0.25) * x + 0.5x as a symbol."""
    return mx.sym.relu(1.5 * x + 0.25) * x + 0.5 * x


def numpy_transcendental(x: np.ndarray) -> np.ndarray:
    """relu(1.5x + 0.25) * sigmoid(x) + tanh(x) in NumPy."""
    return np.maximum(1.5 * x + 0.25, 0) * (1 / (1 + np.exp(-x))) + np.tanh(x)


def numpy_plain(x: np.ndarray) -> np.ndarray:
    """relu(1.5x + 0.25) * x + 0.5x in NumPy."""
    return np.maximum(1.5 * x + 0.25, 0) * x + 0.5 * x


def torch_transcendental(torch, x):
    """relu(1.5x + 0.25) * sigmoid(x) + tanh(x) in PyTorch."""
    return torch.relu(1.5 * x + 0.25) * torch.sigmoid(x) + torch.tanh(x)


def torch_plain(torch, x):
    """relu(1.5x + 0.25) * x + 0.5x in PyTorch."""
    return torch.relu(1.5 * x + 0.25) * x + 0.5 * x


CHAINS = {
    "transcendental": (transcendental_chain, numpy_transcendental, torch_transcendental),
    "plain": (plain_chain, numpy_plain, torch_plain),
}


def elementwise_case(param: tuple[str, int], ctx: Context) -> Case:
    """One elementwise chain over n float32 values: Ember writing into its own output buffer vs NumPy
    allocating its result; GB/s counts one read and one write of each value."""
    kind, n = param
    chain, numpy_chain, torch_chain = CHAINS[kind]
    x = np.random.default_rng(300).standard_normal(n, dtype=np.float32)
    symbol = chain(mx.sym.Variable("data"))
    _, exe = compiled_exe(symbol, {"data": (n,)}, name=f"elementwise_{kind}")
    exe.set_param("data", x)
    exe.run()
    (want,) = reference(symbol, {"data": x})
    checks = [
        check_close("Ember's output vs the reference interpreter", exe.outputs_view()[0], want, **FORWARD_TOL)
    ]
    checks.append(
        check_close("NumPy's output vs the reference interpreter", numpy_chain(x), want, **FORWARD_TOL)
    )
    torch_call = None
    if ctx.torch is not None:
        tx = ctx.torch.from_numpy(x)

        def torch_call():
            return torch_chain(ctx.torch, tx)

        checks.append(
            check_close(
                "PyTorch's output vs the reference interpreter", torch_call().numpy(), want, **FORWARD_TOL
            )
        )
    return Case(
        ember=exe.run,
        numpy=lambda: numpy_chain(x),
        torch=torch_call,
        against="the reference interpreter",
        checks=checks,
        rate=("GB/s", 8 * n / 1e9),
    )


# -- 4. SGEMM -------------------------------------------------------------------------------------------


def sgemm_case(mkn: tuple[int, int, int], ctx: Context) -> Case:
    """(m x k) @ (k x n) in float32: a compiled `mx.sym.dot` vs `a @ b`, with GFLOP/s (2mkn flops)."""
    m, k, n = mkn
    rng = np.random.default_rng(400 + m)
    a, b = rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32)
    symbol = mx.sym.dot(mx.sym.Variable("a"), mx.sym.Variable("b"))
    _, exe = compiled_exe(symbol, {"a": a.shape, "b": b.shape}, name=f"sgemm_{m}_{k}_{n}")
    exe.set_param("a", a)
    exe.set_param("b", b)
    exe.run()
    want = a.astype(np.float64) @ b.astype(np.float64)
    checks = [
        check_close("Ember's product vs the float64 product", exe.outputs_view()[0], want, **FORWARD_TOL)
    ]
    checks.append(check_close("NumPy's product vs the float64 product", a @ b, want, **FORWARD_TOL))
    torch_call = None
    if ctx.torch is not None:
        ta, tb = ctx.torch.from_numpy(a), ctx.torch.from_numpy(b)

        def torch_call():
            return ta @ tb

        checks.append(
            check_close("PyTorch's product vs the float64 product", torch_call().numpy(), want, **FORWARD_TOL)
        )
    return Case(
        ember=exe.run,
        numpy=lambda: a @ b,
        torch=torch_call,
        against="the float64 product",
        checks=checks,
        rate=("GFLOP/s", 2 * m * k * n / 1e9),
    )


# -- 5. LeNet training step --------------------------------------------------------------------------------

LENET_SHAPES = {
    "conv1_weight": (20, 1, 5, 5), "conv1_bias": (20,), "conv2_weight": (50, 20, 5, 5), "conv2_bias": (50,),
    "fc1_weight": (500, 800), "fc1_bias": (500,), "fc2_weight": (10, 500), "fc2_bias": (10,),
}  # fmt: skip
LENET_GRAD_CHECK_BATCH = 4


def lenet():
    """LeNet: conv 5x5x20, maxpool 2, conv 5x5x50, maxpool 2, fc 500, relu, fc 10, SoftmaxOutput."""
    net = mx.sym.Convolution(mx.sym.Variable("data"), kernel=(5, 5), num_filter=20, name="conv1")
    net = mx.sym.Pooling(net, pool_type="max", kernel=(2, 2), stride=(2, 2), name="pool1")
    net = mx.sym.Convolution(net, kernel=(5, 5), num_filter=50, name="conv2")
    net = mx.sym.Pooling(net, pool_type="max", kernel=(2, 2), stride=(2, 2), name="pool2")
    net = mx.sym.Activation(
        mx.sym.FullyConnected(mx.sym.Flatten(net), num_hidden=500, name="fc1"), act_type="relu"
    )
    return mx.sym.SoftmaxOutput(mx.sym.FullyConnected(net, num_hidden=10, name="fc2"), name="softmax")


def conv_forward(a: np.ndarray, w: np.ndarray, b: np.ndarray):
    """A valid, stride-1 convolution of NHWC `a` by (F, C, k, k) `w` through im2col: (NHWC output,
    the columns)."""
    k = w.shape[2]
    windows = sliding_window_view(a, (k, k), axis=(1, 2))  # (n, ho, wo, c, k, k)
    n, ho, wo = windows.shape[:3]
    cols = windows.reshape(n * ho * wo, -1)
    out = cols @ w.reshape(w.shape[0], -1).T + b
    return out.reshape(n, ho, wo, -1), cols


def conv_backward(dout: np.ndarray, cols: np.ndarray, w: np.ndarray, in_shape: tuple | None):
    """Gradients of `conv_forward`: (dw, db, d input or None when `in_shape` is None), by col2im."""
    f, c, k, _ = w.shape
    d = dout.reshape(-1, f)
    dw, db = (d.T @ cols).reshape(w.shape), d.sum(0)
    if in_shape is None:
        return dw, db, None
    n, ho, wo = dout.shape[:3]
    dcols = (d @ w.reshape(f, -1)).reshape(n, ho, wo, c, k, k)
    da = np.zeros(in_shape, dout.dtype)
    for i in range(k):
        for j in range(k):
            da[:, i : i + ho, j : j + wo, :] += dcols[..., i, j]
    return dw, db, da


def pool_forward(a: np.ndarray):
    """2x2 stride-2 max pooling of NHWC `a`: (output, argmax within each window)."""
    n, h, w, c = a.shape
    windows = (
        a.reshape(n, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 5, 2, 4).reshape(n, h // 2, w // 2, c, 4)
    )
    arg = windows.argmax(-1)
    return np.take_along_axis(windows, arg[..., None], -1)[..., 0], arg


def pool_backward(dout: np.ndarray, arg: np.ndarray, shape: tuple) -> np.ndarray:
    """The gradient of `pool_forward`: each window's gradient goes to its maximum."""
    n, h, w, c = shape
    dwindows = np.zeros(dout.shape + (4,), dout.dtype)
    np.put_along_axis(dwindows, arg[..., None], dout[..., None], -1)
    return dwindows.reshape(n, h // 2, w // 2, c, 2, 2).transpose(0, 1, 4, 2, 5, 3).reshape(shape)


def numpy_lenet_grads(p: dict, x: np.ndarray, y: np.ndarray, scale: float = 1.0) -> dict:
    """LeNet's parameter gradients for NCHW `x`, labels `y`: SoftmaxOutput's (p - onehot) times `scale`
    (activations are NHWC inside; Flatten is in MXNet's NCHW order)."""
    n = len(y)
    c1, cols1 = conv_forward(x.transpose(0, 2, 3, 1), p["conv1_weight"], p["conv1_bias"])
    p1, arg1 = pool_forward(c1)
    c2, cols2 = conv_forward(p1, p["conv2_weight"], p["conv2_bias"])
    p2, arg2 = pool_forward(c2)
    flat = p2.transpose(0, 3, 1, 2).reshape(n, -1)
    h = np.maximum(flat @ p["fc1_weight"].T + p["fc1_bias"], 0)
    d = softmax(h @ p["fc2_weight"].T + p["fc2_bias"])
    d[np.arange(n), y] -= 1
    d *= scale
    g = {"fc2_weight": d.T @ h, "fc2_bias": d.sum(0)}
    dh = (d @ p["fc2_weight"]) * (h > 0)
    g["fc1_weight"], g["fc1_bias"] = dh.T @ flat, dh.sum(0)
    dp2 = (dh @ p["fc1_weight"]).reshape(p2.transpose(0, 3, 1, 2).shape).transpose(0, 2, 3, 1)
    dc2 = pool_backward(dp2, arg2, c2.shape)
    g["conv2_weight"], g["conv2_bias"], dp1 = conv_backward(dc2, cols2, p["conv2_weight"], p1.shape)
    dc1 = pool_backward(dp1, arg1, c1.shape)
    g["conv1_weight"], g["conv1_bias"], _ = conv_backward(dc1, cols1, p["conv1_weight"], None)
    return g


def numpy_lenet_step(p: dict, x: np.ndarray, y: np.ndarray) -> None:
    """One SGD step of LeNet in place (gradient rescaled by 1/batch, as Module.fit's SGD does)."""
    for name, grad in numpy_lenet_grads(p, x, y, scale=1.0 / len(y)).items():
        p[name] -= LR * grad


def torch_lenet_forward(torch, t: dict, x):
    """LeNet's logits in PyTorch."""
    f = torch.nn.functional
    h = f.max_pool2d(f.conv2d(x, t["conv1_weight"], t["conv1_bias"]), 2)
    h = f.max_pool2d(f.conv2d(h, t["conv2_weight"], t["conv2_bias"]), 2)
    h = torch.relu(f.linear(h.flatten(1), t["fc1_weight"], t["fc1_bias"]))
    return f.linear(h, t["fc2_weight"], t["fc2_bias"])


def reference_gradients(symbol, params: dict, x: np.ndarray, labels: np.ndarray) -> dict:
    """The parameter gradients of `symbol` computed by Ember's reference interpreter (an executor bound
    with EMBER_EXECUTOR=reference)."""
    with environment(EMBER_EXECUTOR="reference"):
        executor = symbol.simple_bind(mx.cpu(), data=x.shape)
    for name, value in params.items():
        executor.arg_dict[name][:] = value
    executor.forward(is_train=True, data=x, softmax_label=labels)
    executor.backward()
    return {name: executor.grad_dict[name].asnumpy() for name in params}


def lenet_gradient_checks(rng) -> list[dict]:
    """The NumPy im2col gradients checked once, at a small batch, against Ember's reference gradients."""
    params = uniform_params(rng, LENET_SHAPES)
    x = centred_pixels(rng, (LENET_GRAD_CHECK_BATCH, 1, 28, 28))
    y = rng.integers(0, 10, LENET_GRAD_CHECK_BATCH)
    want = reference_gradients(lenet(), params, x, y.astype(np.float32))
    got = numpy_lenet_grads({k: v.astype(np.float64) for k, v in params.items()}, x.astype(np.float64), y)
    return [
        check_close(f"NumPy's gradient of {k} vs the reference interpreter's", got[k], want[k], **STEP_TOL)
        for k in params
    ]


def lenet_train_case(batch: int, ctx: Context) -> Case:
    """LeNet SGD step at `batch`: Ember's fused step vs the NumPy im2col step, whose gradients are first
    checked against Ember's reference gradients."""
    rng = np.random.default_rng(500 + batch)
    grad_checks = lenet_gradient_checks(rng)
    x = centred_pixels(rng, (batch, 1, 28, 28))
    y = rng.integers(0, 10, batch)
    _, fused = fused_step(lenet(), x, y.astype(np.float32))
    case = training_case(
        fused, numpy_lenet_step, torch_lenet_forward, uniform_params(rng, LENET_SHAPES), x, y, ctx
    )
    case.checks = grad_checks + case.checks
    case.against = "the reference interpreter's gradients (NumPy) and the float64 NumPy step (updates)"
    return case


# -- 6. compile time --------------------------------------------------------------------------------------


def rebuild_options(built, is_train: bool) -> dict:
    """`compile_graph` options that rebuild the program of `built` (made in mode `is_train`) from its
    graph: the variables' shapes and dtypes by name (so the rebuild infers types, as a cold compile
    does), and the same name, roles and state updates."""
    program, types = built.program, built.types
    shapes = {v.name: types[v.output()].shape for v in built.graph.variables}
    dtypes = {v.name: types[v.output()].dtype for v in built.graph.variables}
    roles = {**dict.fromkeys(program.parameters, "parameter"), **dict.fromkeys(program.states, "state")}
    names = {buffer: name for name, buffer in {**program.parameters, **program.states}.items()}
    outputs = [buffer for _, buffer in program.outputs]
    updates = {names[state]: outputs.index(new) for state, new in program.updates if new in outputs}
    return {"shapes": shapes, "dtypes": dtypes, "name": program.name, "roles": roles, "updates": updates,
            "is_train": is_train}  # fmt: skip


def step_builder(ctx: Context) -> tuple[Callable, str]:
    """A function compiling the seed MLP's fused training step (batch 100, SGD lr 0.1) from its graph,
    and the program text the Module's own compile produced (memoized per suite run)."""
    if "step_builder" not in ctx.memo:
        from ember.codegen.driver import compile_graph

        x = np.zeros((100, 784), np.float32)
        _, fused = fused_step(seed_mlp(), x, np.zeros(100, np.float32))
        built = fused.built
        options = rebuild_options(built, is_train=True)

        def compile_step():
            again = compile_graph(Graph(built.graph.outputs), "llvm", **options)
            return str(again.program), again.code

        ctx.memo["step_builder"] = (compile_step, str(built.program))
    return ctx.memo["step_builder"]


def compile_checks(ctx: Context) -> list[dict]:
    """The compile workload's checks, run once per suite: a cold compile gives the program Module.fit
    compiled, and a compile served from the cache gives a byte-identical library."""
    if "compile_checks" not in ctx.memo:
        compile_step, module_program = step_builder(ctx)
        with (
            tempfile.TemporaryDirectory(prefix="ember-bench-cache-") as folder,
            environment(EMBER_CACHE_DIR=folder),
        ):
            text, library = compile_step()
            _, cached_library = compile_step()
        checks = [
            {
                "what": "a cold compile gives the program Module.fit compiled",
                "passed": text == module_program,
            },
            {
                "what": "the cached library is byte-identical to the cold compile's",
                "passed": cached_library == library,
            },
        ]
        for record in checks:
            if not record["passed"]:
                raise BenchCheckError(f"{record['what']}: it does not")
        ctx.memo["compile_checks"] = checks
    return ctx.memo["compile_checks"]


def compile_case(kind: str, ctx: Context) -> Case:
    """Compile time of the seed MLP training step: 'cold' (each compile with a fresh, empty
    EMBER_CACHE_DIR; the process has compiled before, so LLVM is initialised) or 'cached' (the library
    comes from the compile cache; the graph passes still run)."""
    checks = compile_checks(ctx)
    compile_step, _ = step_builder(ctx)
    folder = tempfile.TemporaryDirectory(prefix="ember-bench-cache-")  # removed with the Case

    def cold():
        with (
            tempfile.TemporaryDirectory(prefix="ember-bench-cold-") as fresh,
            environment(EMBER_CACHE_DIR=fresh),
        ):
            return compile_step()

    def cached():
        with environment(EMBER_CACHE_DIR=folder.name):
            return compile_step()

    if kind == "cold":
        return Case(
            ember=cold,
            against="the Module's program and a cached compile",
            checks=checks,
            warmup=False,
            max_repeats=1 if ctx.quick else 3,
        )
    return Case(ember=cached, against="the Module's program and a cached compile", checks=checks)


# -- the table of workloads ---------------------------------------------------------------------------------


def _batches(*sizes: int) -> tuple:
    return tuple((f"batch {b}", b) for b in sizes)


def _gemms(*shapes: tuple[int, int, int]) -> tuple:
    return tuple(("x".join(map(str, s)), s) for s in shapes)


def _chains(n: int) -> tuple:
    power = n.bit_length() - 1
    return tuple((f"{kind} 2^{power}", (kind, n)) for kind in CHAINS)


WORKLOADS = (
    Workload("mlp_train", "seed MLP training step 784-128-64-10, relu, softmax CE, SGD lr 0.1 (fused step)",
             mlp_train_case, full=_batches(100, 1000), quick=_batches(100)),
    Workload("mlp_infer", "seed MLP inference (ember.compile, exe.run)", mlp_infer_case,
             full=_batches(1, 100, 10000), quick=_batches(1, 100)),
    Workload("elementwise", "relu(1.5x+0.25)*sigmoid(x)+tanh(x) / relu(1.5x+0.25)*x+0.5x, float32",
             elementwise_case, full=_chains(1 << 24), quick=_chains(1 << 16)),
    Workload("sgemm", "float32 matrix product m x k x n (mx.sym.dot vs a @ b)", sgemm_case,
             full=_gemms((1024, 1024, 1024), (100, 784, 128), (1000, 784, 128)),
             quick=_gemms((64, 64, 64), (100, 784, 128))),
    Workload("lenet_train", "LeNet training step (conv5x5x20, pool, conv5x5x50, pool, fc500, relu, fc10)",
             lenet_train_case, full=_batches(64), quick=_batches(8)),
    Workload("compile", "compile time of the seed MLP training step (no NumPy counterpart)", compile_case,
             full=(("cold", "cold"), ("cached", "cached")), quick=(("cold", "cold"), ("cached", "cached"))),
)  # fmt: skip
WORKLOAD_NAMES = tuple(w.name for w in WORKLOADS)


# -- running ------------------------------------------------------------------------------------------------


def time_case(case: Case, ctx: Context) -> dict:
    """The timings of a prepared case: each contender's median, the ratios to Ember, rates, extras."""
    repeats = case.max_repeats or ctx.max_repeats
    result = {"ember": measure(case.ember, ctx.seconds, repeats, case.warmup)}
    for who in ("numpy", "torch"):
        fn = getattr(case, who)
        result[who] = measure(fn, ctx.seconds, repeats, case.warmup) if fn is not None else None
    ember_s = result["ember"]["median_s"]
    for who in ("numpy", "torch"):
        result[f"{who}_over_ember"] = result[who]["median_s"] / ember_s if result[who] else None
    if case.rate:
        unit, amount = case.rate
        result["rate_unit"] = unit
        for who in ("ember", "numpy", "torch"):
            if result[who]:
                result[who]["rate"] = amount / result[who]["median_s"]
    result["extras"] = case.extras
    return result


def run_workload(workload: Workload, ctx: Context, progress: Callable[[str], None] | None = None) -> dict:
    """Every case of `workload` checked and timed; a failed check is recorded (its message naming the
    workload and the case) and that case is not timed."""
    record = {"name": workload.name, "title": workload.title, "check_passed": True, "cases": []}
    for label, param in workload.quick if ctx.quick else workload.full:
        if progress:
            progress(f"{workload.name} {label}")
        entry = {"case": label}
        try:
            case = workload.build(param, ctx)
        except BenchCheckError as err:
            message = f"{workload.name} ({label}): {err}"
            entry["check"] = {"passed": False, "message": message}
            record["check_passed"] = False
            record.setdefault("errors", []).append(message)
            record["cases"].append(entry)
            continue
        entry["check"] = {"passed": True, "against": case.against, "compared": case.checks}
        entry.update(time_case(case, ctx))
        record["cases"].append(entry)
    return record
