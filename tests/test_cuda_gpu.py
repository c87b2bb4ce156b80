"""The CUDA backend on a real NVIDIA GPU (tests marked `gpu`; without a GPU they skip, the reason
printed): every op of the registry's cases matches the reference interpreter, gradients of a
training step match, a compiled GPU artifact saves, loads and runs, and the seed MLP trains on
`mx.gpu()` to the accuracy it reaches on the CPU."""

from __future__ import annotations

import numpy as np
import pytest

import ember as mx
from ember.compiler import evaluate

from .compiled.harness import assert_close, check_op_case, load_on_gpu
from .compiled.test_ops_compiled import _deterministic
from .ops.test_op_registry import ALL_CASES

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("case", [c for c in ALL_CASES if _deterministic(c)], ids=lambda c: c.id)
def test_every_op_on_the_gpu_matches_the_reference(case):
    check_op_case(case, load_on_gpu, " (GPU)")


def test_the_lenet_training_step_on_the_gpu_matches_the_reference():
    from .compiled.test_kernel_variants import convolution_step

    graph, arrays, _ = convolution_step()
    shapes = {k: a.shape for k, a in arrays.items()}
    exe, _ = load_on_gpu(
        graph, shapes, {k: a.dtype.name for k, a in arrays.items()}, optimize=True, is_train=True
    )
    got = exe(**{k: v for k, v in arrays.items() if k in exe.input_names})
    want = evaluate(graph, arrays)
    for position, value in enumerate(graph.outputs):
        assert_close(got[position], want[value], what=f"output {position}")


def test_a_gpu_artifact_saves_loads_and_matches_the_cpu(tmp_path):
    data = mx.sym.var("data")
    net = mx.sym.FullyConnected(data, num_hidden=64, name="fc1")
    net = mx.sym.SoftmaxOutput(
        mx.sym.FullyConnected(mx.sym.relu(net), num_hidden=10, name="fc2"), name="softmax"
    )
    rng = np.random.default_rng(1)
    params = {
        "fc1_weight": rng.uniform(-0.1, 0.1, (64, 784)).astype(np.float32),
        "fc1_bias": rng.uniform(-0.1, 0.1, 64).astype(np.float32),
        "fc2_weight": rng.uniform(-0.1, 0.1, (10, 64)).astype(np.float32),
        "fc2_bias": rng.uniform(-0.1, 0.1, 10).astype(np.float32),
    }
    x = rng.uniform(0, 1, (100, 784)).astype(np.float32)
    gpu_model = mx.compile(net, {"data": (100, 784)}, params, ctx=mx.gpu(0))
    cpu_model = mx.compile(net, {"data": (100, 784)}, params)
    gpu_model.save(tmp_path / "mlp.ember")
    loaded = mx.runtime.load(tmp_path / "mlp.ember")
    assert loaded.manifest["target"] == "nvptx64-nvidia-cuda"
    want = cpu_model(data=x)[0]
    np.testing.assert_allclose(gpu_model(data=x)[0], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loaded(data=x)[0], want, rtol=1e-5, atol=1e-6)


def _train_digits(ctx, epochs=4):
    from ember.datasets import load_digits

    train_x, train_y = load_digits("train")
    test_x, test_y = load_digits("test")
    mx.random.seed(7)
    np.random.seed(7)
    train = mx.io.NDArrayIter(train_x, train_y, batch_size=100, shuffle=False)
    data = mx.sym.var("data")
    net = mx.sym.Activation(mx.sym.FullyConnected(data, num_hidden=128), act_type="relu")
    net = mx.sym.Activation(mx.sym.FullyConnected(net, num_hidden=64), act_type="relu")
    net = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(net, num_hidden=10), name="softmax")
    module = mx.mod.Module(net, context=ctx)
    module.fit(train, optimizer=mx.optimizer.SGD(learning_rate=0.05, momentum=0.9),
               initializer=mx.init.Xavier(), num_epoch=epochs)  # fmt: skip
    test = mx.io.NDArrayIter(test_x[:1000], test_y[:1000], batch_size=100)
    return module.score(test, "acc")[0][1]


def test_the_seed_mlp_trains_on_the_gpu_to_the_cpu_accuracy():
    on_gpu, on_cpu = _train_digits(mx.gpu(0)), _train_digits(mx.cpu())
    print(f"held-out accuracy after 4 epochs on 5,000 embedded digits: GPU {on_gpu:.4f}, CPU {on_cpu:.4f}")
    assert on_gpu >= 0.9 and abs(on_gpu - on_cpu) <= 0.01


def test_a_gemm_with_more_row_tiles_than_the_grid_holds_is_exact():
    from ember.compiler import Graph

    from .compiled.test_matmul_compiled import exact

    a_value, b_value = exact(1_100_000, 2), exact(2, 3)
    graph = Graph(list(mx.sym.dot(mx.sym.var("a"), mx.sym.var("b"))._graph.outputs))
    exe, _ = load_on_gpu(graph, {"a": a_value.shape, "b": b_value.shape})
    got = exe(a=a_value, b=b_value)[0]
    np.testing.assert_array_equal(got, a_value @ b_value)  # exact: multiples of 1/16
