"""Calls from several threads: on one CompiledModel and on one Executor, every call gets the outputs of
its own inputs (8 threads x 1,000 calls, compared exactly with single-thread results, which are checked
against the reference interpreter); a forward paired with its backward under `Executor.lock` gets its own
gradients; and the native call holds neither the GIL nor any other lock of Ember's, so a thread using
another model makes progress while one model runs."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import ember as mx
from ember.base import MXNetError
from ember.compiler import run


@pytest.fixture(autouse=True)
def compiled_executors(monkeypatch):
    """These tests are about compiled programs: executors compile from their first run, not 'tiered'."""
    monkeypatch.setenv("EMBER_EXECUTOR", "compiled")


THREADS = 8
CALLS = 1000


@pytest.fixture(autouse=True)
def fresh_names():
    with mx.name.NameManager():
        yield


def seed_mlp():
    data = mx.sym.Variable("data")
    net = mx.sym.Activation(mx.sym.FullyConnected(data, num_hidden=128, name="fc1"), act_type="relu")
    net = mx.sym.Activation(mx.sym.FullyConnected(net, num_hidden=64, name="fc2"), act_type="relu")
    return mx.sym.SoftmaxOutput(mx.sym.FullyConnected(net, num_hidden=10, name="fc3"), name="softmax")


SEED_SHAPES = {"fc1_weight": (128, 784), "fc1_bias": (128,), "fc2_weight": (64, 128), "fc2_bias": (64,),
               "fc3_weight": (10, 64), "fc3_bias": (10,)}  # fmt: skip


def seed_params(rng) -> dict[str, np.ndarray]:
    return {k: (0.1 * rng.standard_normal(s)).astype(np.float32) for k, s in SEED_SHAPES.items()}


def in_threads(work, count: int = THREADS) -> list:
    """work(i) on `count` threads started together; their results in thread order (errors re-raised)."""
    start = threading.Barrier(count)

    def body(i):
        start.wait()
        return work(i)

    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(body, i) for i in range(count)]
        return [future.result() for future in futures]


def test_eight_threads_on_one_compiled_model_get_their_own_outputs():
    rng = np.random.default_rng(0)
    params = seed_params(rng)
    model = mx.compile(seed_mlp(), {"data": (1, 784)}, params)
    inputs = [rng.standard_normal((1, 784)).astype(np.float32) for _ in range(THREADS)]
    expected = [model(data=x)[0] for x in inputs]
    for x, want in zip(inputs, expected):
        reference = run(seed_mlp()._graph, {"data": x, "softmax_label": np.zeros(1, np.float32), **params})[0]
        np.testing.assert_allclose(want, reference, rtol=1e-5, atol=1e-6)
    assert len({w.tobytes() for w in expected}) == THREADS  # distinct inputs give distinct outputs

    def calls(i):
        return sum(not np.array_equal(model(data=inputs[i])[0], expected[i]) for _ in range(CALLS))

    assert in_threads(calls) == [0] * THREADS


def test_a_failed_call_in_one_thread_leaves_the_model_usable_by_the_others(monkeypatch):
    """Half the threads' native runs fail (inside the lock); the others' results stay their own."""
    rng = np.random.default_rng(1)
    model = mx.compile(seed_mlp(), {"data": (1, 784)}, seed_params(rng))
    inputs = [rng.standard_normal((1, 784)).astype(np.float32) for _ in range(4)]
    expected = [model(data=x)[0] for x in inputs]
    failing = threading.local()
    exe = model._exe
    native_run = exe._run

    def run_or_fail():
        if getattr(failing, "on", False):
            raise MXNetError("the native run failed (injected)")
        native_run()

    monkeypatch.setattr(exe, "_run", run_or_fail)

    def calls(i):
        failing.on = bool(i % 2)
        if failing.on:
            for _ in range(100):
                with pytest.raises(MXNetError, match=r"^the native run failed \(injected\)$"):
                    model(data=inputs[i])
            return True
        return all(np.array_equal(model(data=inputs[i])[0], expected[i]) for _ in range(100))

    assert in_threads(calls, 4) == [True] * 4
    assert exe.lock.acquire(blocking=False)  # every failed call let go of the lock
    exe.lock.release()


class FakeGpu:
    """Stands in for cuda_driver's device: host memory as the arena; the one "kernel" computes y = 2x + 1.
    Copies and the launch give other threads a turn, as real driver calls release the GIL."""

    def __init__(self):
        self.memory = np.zeros(0, np.uint8)

    def alloc(self, nbytes):
        self.memory = np.zeros(nbytes, np.uint8)
        return type("Buffer", (), {"address": 0, "nbytes": nbytes})()

    def memset(self, address, nbytes, byte=0):
        self.memory[address : address + nbytes] = byte

    def copy_to_device(self, address, host):
        self.memory[address : address + host.nbytes] = host.reshape(-1).view(np.uint8)
        time.sleep(0)

    def copy_to_host(self, host, address):
        host.reshape(-1).view(np.uint8)[...] = self.memory[address : address + host.nbytes]

    def load_ptx(self, ptx, what):
        return self

    def function(self, symbol):
        return self

    def launch(self, grid, block, args):
        x = self.memory[0:16].view(np.float32).copy()
        time.sleep(0)
        self.memory[16:32] = (2 * x + 1).view(np.uint8)

    def synchronize(self):
        pass


def test_eight_threads_on_one_cuda_executable_get_their_own_outputs(monkeypatch):
    from ember.runtime import cuda_executable

    monkeypatch.setattr(cuda_executable, "cuda_device", lambda ordinal: FakeGpu())
    layout = {
        "buffers": {"x": {"offset": 0, "shape": [4], "dtype": "float32"},
                    "y": {"offset": 16, "shape": [4], "dtype": "float32"}},
        "inputs": {"x": "x"}, "outputs": [["y", "y"]], "arena_bytes": 32,
        "launches": [{"symbol": "twice_plus_one", "grid": [1, 1, 1], "block": [4, 1, 1]}],
    }  # fmt: skip
    program = cuda_executable.CudaExecutable("fake ptx", layout, what="the fake GPU program")
    inputs = [np.arange(4, dtype=np.float32) + 10 * i for i in range(THREADS)]

    def calls(i):
        return sum(not np.array_equal(program(x=inputs[i])[0], 2 * inputs[i] + 1) for _ in range(200))

    assert in_threads(calls) == [0] * THREADS


def small_net():
    data = mx.sym.Variable("data")
    hidden = mx.sym.Activation(mx.sym.FullyConnected(data, num_hidden=16, name="fc1"), act_type="tanh")
    return mx.sym.SoftmaxOutput(mx.sym.FullyConnected(hidden, num_hidden=5, name="fc2"), name="softmax")


def bound_small_net(rng):
    executor = small_net().simple_bind(mx.cpu(), data=(4, 12), softmax_label=(4,))
    for name in ("fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias"):
        executor.arg_dict[name][:] = rng.uniform(-1, 1, executor.arg_dict[name].shape)
    return executor


def test_eight_threads_on_one_executor_forward_get_their_own_outputs():
    rng = np.random.default_rng(2)
    executor = bound_small_net(rng)
    inputs = [rng.uniform(-1, 1, (4, 12)).astype(np.float32) for _ in range(THREADS)]
    expected = [executor.forward(data=x)[0].asnumpy() for x in inputs]
    params = {n: a.asnumpy() for n, a in executor.arg_dict.items() if n not in ("data", "softmax_label")}
    for x, want in zip(inputs, expected):
        reference = run(small_net()._graph, {"data": x, "softmax_label": np.zeros(4, np.float32), **params})[
            0
        ]
        np.testing.assert_allclose(want, reference, rtol=1e-5, atol=1e-6)

    def calls(i):
        return sum(
            not np.array_equal(executor.forward(data=inputs[i])[0].asnumpy(), expected[i])
            for _ in range(CALLS)
        )

    assert in_threads(calls) == [0] * THREADS
    last = executor.outputs[0].asnumpy()
    assert any(np.array_equal(last, want) for want in expected)  # outputs: the last call's, whole


def test_forward_returns_its_own_outputs_and_executor_outputs_the_last_call():
    rng = np.random.default_rng(3)
    executor = bound_small_net(rng)
    first_input, second_input = (rng.uniform(-1, 1, (4, 12)).astype(np.float32) for _ in range(2))
    first = executor.forward(data=first_input)[0]
    first_values = first.asnumpy().copy()
    held = executor.outputs[0]
    second = executor.forward(data=second_input)[0]
    assert np.array_equal(first.asnumpy(), first_values)  # a copy: the next forward leaves it alone
    assert held is executor.outputs[0]  # MXNet's outputs, overwritten in place
    assert np.array_equal(held.asnumpy(), second.asnumpy())
    assert not np.array_equal(first_values, second.asnumpy())


def test_training_steps_paired_under_the_executor_lock_get_their_own_gradients():
    rng = np.random.default_rng(4)
    executor = bound_small_net(rng)
    inputs = [rng.uniform(-1, 1, (4, 12)).astype(np.float32) for _ in range(THREADS)]
    labels = [rng.integers(0, 5, 4).astype(np.float32) for _ in range(THREADS)]

    def step(i):
        with executor.lock:
            executor.forward(is_train=True, data=inputs[i], softmax_label=labels[i])
            executor.backward()
            return {name: executor.grad_dict[name].asnumpy().copy() for name in ("fc1_weight", "fc2_bias")}

    expected = [step(i) for i in range(THREADS)]
    assert not np.array_equal(expected[0]["fc1_weight"], expected[1]["fc1_weight"])

    def steps(i):
        wrong = 0
        for _ in range(100):
            got = step(i)
            wrong += any(not np.array_equal(got[name], expected[i][name]) for name in got)
        return wrong

    assert in_threads(steps) == [0] * THREADS


def test_the_native_call_blocks_no_other_thread(monkeypatch):
    """While one thread is inside a long native call, another thread completes calls on another model:
    the call holds neither the GIL nor a lock of Ember's beyond its own program's."""
    monkeypatch.setenv("EMBER_NUM_THREADS", "1")  # one core for the long call, one left for the other thread
    rng = np.random.default_rng(5)
    long_model = mx.compile(
        mx.sym.dot(mx.sym.var("a"), mx.sym.var("b")), {"a": (1024, 4096), "b": (4096, 1024)}
    )
    program = long_model._exe
    program.set_param("a", rng.uniform(-1, 1, (1024, 4096)))
    program.set_param("b", rng.uniform(-1, 1, (4096, 1024)))
    small_model = mx.compile(seed_mlp(), {"data": (1, 784)}, seed_params(rng))
    x = rng.standard_normal((1, 784)).astype(np.float32)
    small_model(data=x)
    done_at: list[float] = []
    stop = threading.Event()

    def other_model_calls():
        while not stop.is_set():
            small_model(data=x)
            done_at.append(time.perf_counter())

    other = threading.Thread(target=other_model_calls)
    other.start()
    try:
        middles = []
        for _ in range(5):
            start = time.perf_counter()
            program.run()
            end = time.perf_counter()
            quarter = (end - start) / 4
            middles.append((end - start, sum(start + quarter < t < end - quarter for t in list(done_at))))
            if middles[-1][0] > 0.03 and middles[-1][1] > 0:
                break
    finally:
        stop.set()
        other.join()
    # With the GIL held, the other thread could run only in the first switch interval (5 ms) of a call.
    assert any(seconds > 0.03 and count > 0 for seconds, count in middles), middles
