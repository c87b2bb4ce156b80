"""Contexts (MXNET_COMPAT.md 10.1): names, equality, codes, the `with ctx:` default, GPU allocation errors."""

from __future__ import annotations

import threading

import pytest

import ember.ndarray as nd
from ember.context import Context, cpu, cpu_pinned, current_context, gpu, num_gpus
from ember.runtime.errors import DeviceError, MXNetError


def test_repr_and_str_are_mxnet_names():
    assert repr(cpu()) == "cpu(0)"
    assert str(gpu(1)) == "gpu(1)"
    assert str(cpu_pinned(0)) == "cpu_pinned(0)"
    assert str(Context("cpu_shared", 2)) == "cpu_shared(2)"


def test_device_type_and_typeid():
    assert [
        (c.device_type, c.device_typeid) for c in (cpu(), gpu(), cpu_pinned(), Context("cpu_shared"))
    ] == [
        ("cpu", 1),
        ("gpu", 2),
        ("cpu_pinned", 3),
        ("cpu_shared", 5),
    ]
    assert gpu(3).device_id == 3


def test_equality_and_hash_by_type_and_id():
    assert cpu(0) == Context("cpu", 0)
    assert cpu(0) != cpu(1)
    assert cpu(0) != gpu(0)
    assert cpu(0) != "cpu(0)"
    assert len({cpu(0), Context("cpu"), cpu(1), gpu(0), gpu(0)}) == 3
    assert Context(gpu(2)) == gpu(2)


def test_unknown_device_type_is_a_clear_error():
    with pytest.raises(
        MXNetError, match=r"unknown device type 'tpu'; expected one of cpu, gpu, cpu_pinned, cpu_shared"
    ):
        Context("tpu")


def test_with_changes_the_default_and_restores_it():
    assert current_context() == cpu(0)
    with cpu(1) as entered:
        assert entered == cpu(1)
        assert current_context() == cpu(1)
        with cpu_pinned(2):
            assert current_context() == cpu_pinned(2)
        assert current_context() == cpu(1)
    assert current_context() == cpu(0)


def test_with_restores_after_an_exception_and_when_reentered():
    ctx = cpu(4)
    with pytest.raises(RuntimeError), ctx:
        raise RuntimeError("boom")
    assert current_context() == cpu(0)
    with ctx:
        with ctx:
            assert current_context() == cpu(4)
        assert current_context() == cpu(4)
    assert current_context() == cpu(0)


def test_default_context_is_per_thread():
    seen = []
    with cpu(7):
        thread = threading.Thread(target=lambda: seen.append(current_context()))
        thread.start()
        thread.join()
        assert current_context() == cpu(7)
    assert seen == [cpu(0)]


def test_arrays_are_created_on_the_default_context():
    with cpu(1):
        assert nd.zeros((2,)).context == cpu(1)
        assert nd.array([1, 2]).context == cpu(1)
    assert nd.ones((2,)).context == cpu(0)
    assert nd.ones((2,), ctx=cpu_pinned(0)).context == cpu_pinned(0)


def test_num_gpus_is_zero_without_a_driver(monkeypatch):
    from ember.runtime import cuda_driver

    monkeypatch.setenv("EMBER_CUDA_BACKEND", "driver")
    monkeypatch.setattr(cuda_driver, "_backends", {})
    monkeypatch.setattr(cuda_driver, "_load_library", lambda: None)
    assert num_gpus() == 0


def test_allocating_on_a_missing_gpu_fails_naming_why():
    if num_gpus() > 0:
        pytest.skip("this machine has a GPU: allocating on gpu(0) succeeds (tests/test_cuda_gpu.py)")
    ctx = gpu(0)
    expected = r"cannot allocate an NDArray on gpu\(0\): no NVIDIA GPU is available"
    with pytest.raises(DeviceError, match=expected):
        nd.zeros((2, 2), ctx=ctx)
    with pytest.raises(DeviceError, match=expected):
        nd.array([1.0], ctx=ctx)
    with pytest.raises(DeviceError, match=expected):
        nd.ones((1,)).copyto(ctx)
    with pytest.raises(DeviceError, match=r"gpu\(1\)"), gpu(1):
        nd.ones((3,))
