"""The GPU workloads of `ember bench` (run only when named: `ember bench --only gpu_mlp_train gpu_sgemm`).

Each runs Ember's program on GPU 0 through the CUDA runtime and PyTorch's on the same GPU (cuBLAS),
after checking both against a float64 oracle; NumPy's column is the same computation on the CPU.
Every timed call ends by waiting for the GPU, so times are complete.
"""

from __future__ import annotations

import numpy as np

import ember as mx
from ember.compiler import Graph

from .workloads import (
    FORWARD_TOL,
    LR,
    MLP_SHAPES,
    Case,
    Context,
    Workload,
    centred_pixels,
    check_close,
    float64_step,
    fused_step,
    numpy_mlp_step,
    rebuild_options,
    seed_mlp,
    step_checks,
    torch_mlp_forward,
    uniform_params,
)


def gpu_program(graph, what: str, **options):
    """`graph` compiled for GPU 0 through the compile driver and loaded there (a CudaExecutable);
    `options` are `compile_graph`'s (shapes, roles, updates, ...)."""
    from ember.codegen.driver import compile_graph
    from ember.codegen.targets import CudaTarget

    return compile_graph(graph, CudaTarget(device_id=0), **options).load(what=what)


def _torch_cuda(ctx: Context):
    torch = ctx.torch
    if torch is None or not torch.cuda.is_available():
        return None
    return torch


def gpu_mlp_train_case(batch: int, ctx: Context) -> Case:
    """The seed MLP's whole SGD step (forward, backward, update) as one GPU program whose parameters
    stay on the device, vs NumPy on the CPU and PyTorch on the GPU."""
    rng = np.random.default_rng(700 + batch)
    x = centred_pixels(rng, (batch, 784))
    y = rng.integers(0, 10, batch)
    _, fused = fused_step(seed_mlp(), x, y.astype(np.float32))
    built = fused.built
    exe = gpu_program(Graph(built.graph.outputs), "the GPU training step", **rebuild_options(built, is_train=True))
    for table in ("inputs", "parameters", "states"):
        for name in exe.layout[table]:
            exe.set_param(name, fused.exe.get(name))
    params = uniform_params(rng, MLP_SHAPES)
    for name, value in params.items():
        exe.set_param(name, value)
    exe.set_param("data", x)
    exe.set_param("softmax_label", y.astype(np.float32))
    oracle = float64_step(numpy_mlp_step, params, x, y)
    exe.run()
    checks = step_checks("Ember (GPU)", params, {k: exe.get(k) for k in params}, oracle)
    mine = {k: v.copy() for k, v in params.items()}
    torch_call = None
    torch = _torch_cuda(ctx)
    if torch is not None:
        tensors = {k: torch.tensor(v, device="cuda", requires_grad=True) for k, v in params.items()}
        gx, gy = torch.from_numpy(x).cuda(), torch.from_numpy(y.astype(np.int64)).cuda()

        def torch_call():
            loss = torch.nn.functional.cross_entropy(torch_mlp_forward(torch, tensors, gx), gy)
            loss.backward()
            with torch.no_grad():
                for t in tensors.values():
                    t -= LR * t.grad
                    t.grad = None
            torch.cuda.synchronize()

        torch_call()
        checks += step_checks(
            "PyTorch (GPU)", params, {k: t.detach().cpu().numpy() for k, t in tensors.items()}, oracle
        )
    return Case(
        ember=exe.run,
        numpy=lambda: numpy_mlp_step(mine, x, y),
        torch=torch_call,
        against="the float64 NumPy step (parameter updates)",
        checks=checks,
        extras={"device": exe.device.name},
    )


def gpu_sgemm_case(size: int, ctx: Context) -> Case:
    """size^3 float32 product on the GPU: Ember's tiled GEMM vs cuBLAS through PyTorch."""
    rng = np.random.default_rng(800)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    symbol = mx.sym.dot(mx.sym.Variable("a"), mx.sym.Variable("b"))
    exe = gpu_program(symbol._graph, "GPU SGEMM", shapes={"a": a.shape, "b": b.shape}, name="gpu_sgemm")
    exe.set_param("a", a)
    exe.set_param("b", b)
    exe.run()
    rows = slice(0, 64)  # the float64 oracle for a band of rows keeps the check cheap
    want = a[rows].astype(np.float64) @ b.astype(np.float64)
    checks = [
        check_close(
            "Ember's product (GPU) vs the float64 product", exe.outputs_view()[0][rows], want, **FORWARD_TOL
        )
    ]
    torch_call = None
    torch = _torch_cuda(ctx)
    if torch is not None:
        torch.backends.cuda.matmul.allow_tf32 = False  # a float32 product, as Ember's
        ta, tb = torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda()

        def torch_call():
            product = ta @ tb
            torch.cuda.synchronize()
            return product

        got = torch_call()[rows].cpu().numpy()
        checks.append(check_close("PyTorch's product (GPU) vs the float64 product", got, want, **FORWARD_TOL))
    return Case(
        ember=exe.run,
        numpy=lambda: a @ b,
        torch=torch_call,
        against="the float64 product (first 64 rows)",
        checks=checks,
        rate=("GFLOP/s", 2 * size**3 / 1e9),
        extras={"device": exe.device.name},
    )


GPU_WORKLOADS = (
    Workload("gpu_mlp_train", "seed MLP training step on GPU 0 (one program: forward, backward, SGD)",
             gpu_mlp_train_case, full=(("batch 100", 100), ("batch 1000", 1000)), quick=(("batch 100", 100),)),
    Workload("gpu_sgemm", "float32 matrix product on GPU 0 (Ember's tiled GEMM vs cuBLAS)", gpu_sgemm_case,
             full=(("4096x4096x4096", 4096),), quick=(("1024x1024x1024", 1024),)),
)  # fmt: skip
