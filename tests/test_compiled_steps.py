"""Compiled training steps (frontend/ndarray/compiled_steps.py): a recorded step that repeats is deferred
and run as one compiled forward+backward program, and whatever else happens to a deferred step replays
it eagerly. Every test compares with the same code run eagerly (EMBER_EXECUTOR=reference)."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest

import ember as mx
from ember import autograd
from ember.ndarray import compiled_steps
from ember.ndarray.ndarray import PendingNDArray

HOT_AFTER = 2  # EMBER_COMPILE_AFTER of the hot_steps fixture
RTOL, ATOL = 1e-5, 1e-6


pytestmark = pytest.mark.usefixtures("hot_steps")  # tests/conftest.py: hot after HOT_AFTER runs


def _problem(seed: int = 0, grad_req: str = "write"):
    rng = np.random.default_rng(seed)
    shapes = [(16, 12), (16,), (5, 16), (5,)]
    params = [mx.nd.array(rng.standard_normal(s).astype(np.float32) * 0.3) for s in shapes]
    for p in params:
        p.attach_grad(grad_req=grad_req)
    data = mx.nd.array(rng.standard_normal((8, 12)).astype(np.float32))
    label = mx.nd.array(rng.integers(0, 5, 8).astype(np.float32))
    return params, data, label


def _forward(params, data, label):
    h = mx.nd.relu(mx.nd.FullyConnected(data, params[0], params[1], num_hidden=16))
    out = mx.nd.FullyConnected(h, params[2], params[3], num_hidden=5)
    loss = -mx.nd.pick(mx.nd.log_softmax(out), label).mean()
    return out, loss


def _train(steps: int, seed: int = 0, inside=None, after=None):
    """`steps` SGD steps; `inside(out, loss)` runs in the record scope, `after(out, loss)` after backward.
    Returns the parameters, each step's (out, loss) values and each step's gradients."""
    params, data, label = _problem(seed)
    outs, grads = [], []
    for _ in range(steps):
        with autograd.record():
            out, loss = _forward(params, data, label)
            if inside is not None:
                inside(out, loss)
        loss.backward()
        if after is not None:
            after(out, loss)
        outs.append((out.asnumpy(), loss.asnumpy()))
        grads.append([p.grad.asnumpy() for p in params])
        for p in params:
            p -= 0.5 * p.grad
    return [p.asnumpy() for p in params], outs, grads


def _eager(monkeypatch, fn, *args, **kwargs):
    with monkeypatch.context() as m:
        m.setenv("EMBER_EXECUTOR", "reference")
        compiled_steps.forget_traces()
        result = fn(*args, **kwargs)
        compiled_steps.end_step()
    compiled_steps.forget_traces()
    return result


def _assert_close(got, want):
    if isinstance(got, (list, tuple)):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            _assert_close(g, w)
    else:
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def _hot_trace():
    traces = [t for t in compiled_steps._TRACES.values() if t.program]
    assert len(traces) == 1
    return traces[0]


def test_a_hot_step_is_deferred_and_computes_what_eager_execution_computes(monkeypatch):
    seen = []
    got = _train(8, inside=lambda out, loss: seen.append(type(loss)))
    assert _hot_trace().speculated_runs == 8 - HOT_AFTER
    assert seen[:HOT_AFTER] == [mx.nd.NDArray] * HOT_AFTER  # eager until hot
    assert seen[HOT_AFTER:] == [PendingNDArray] * (8 - HOT_AFTER)  # then deferred
    _assert_close(got, _eager(monkeypatch, _train, 8))


def test_a_pending_array_knows_its_shape_dtype_and_context_without_running():
    facts = []

    def inside(out, loss):
        facts.append((type(out), out.shape, out.dtype, out.ndim, out.size, out.context))

    _train(HOT_AFTER + 1, inside=inside)
    assert facts[-1] == (PendingNDArray, (8, 5), np.float32, 2, 40, mx.cpu())
    assert compiled_steps._TRACES and _hot_trace().replays_in_a_row == 0


def test_reading_a_value_inside_the_step_replays_it_eagerly(monkeypatch, caplog):
    def inside(out, loss):
        out.asnumpy()

    with caplog.at_level(logging.INFO, logger="ember.ndarray"):
        got = _train(HOT_AFTER + compiled_steps.MAX_REPLAYS + 2, inside=inside)
    want = _eager(monkeypatch, _train, HOT_AFTER + compiled_steps.MAX_REPLAYS + 2, inside=inside)
    _assert_close(got, want)
    assert f"undone {compiled_steps.MAX_REPLAYS} times in a row" in caplog.text
    assert not compiled_steps.HOT_TRACES  # no longer speculated


def test_values_read_after_backward_come_from_the_program(monkeypatch):
    kinds = []
    got = _train(HOT_AFTER + 3, after=lambda out, loss: kinds.append(type(out)))
    assert kinds[-1] is mx.nd.NDArray  # filled in by the backward pass
    assert _hot_trace().speculated_runs == 3 and _hot_trace().replays_in_a_row == 0
    _assert_close(got[1], _eager(monkeypatch, _train, HOT_AFTER + 3)[1])


def test_a_step_that_differs_from_the_trace_replays_and_runs_eagerly(monkeypatch):
    def run():
        params, data, label = _problem(4)
        results = []
        for step in range(HOT_AFTER + 3):
            with autograd.record():
                out, loss = _forward(params, data, label)
                if step == HOT_AFTER + 1:  # one step adds a call the trace does not have
                    loss = loss + 0.01 * (out * out).mean()
            loss.backward()
            results.append([loss.asnumpy()] + [p.grad.asnumpy() for p in params])
        return results

    got = run()
    want = _eager(monkeypatch, run)
    _assert_close(got, want)


def test_writing_into_an_input_of_a_deferred_step_replays_it_first(monkeypatch):
    def run():
        params, data, label = _problem(5)
        losses = []
        for _ in range(HOT_AFTER + 2):
            with autograd.record():
                _, loss = _forward(params, data, label)
            before = data.asnumpy()
            data[:] = 100.0  # outside the record scope: allowed; the forward already read `data`
            loss.backward()
            losses.append(loss.asnumpy())
            data[:] = before
        return losses

    _assert_close(run(), _eager(monkeypatch, run))


def test_grad_req_add_accumulates_on_the_compiled_step(monkeypatch):
    def run():
        params, data, label = _problem(6, grad_req="add")
        for _ in range(HOT_AFTER + 3):
            with autograd.record():
                _, loss = _forward(params, data, label)
            loss.backward()
        return [p.grad.asnumpy() for p in params]

    got = run()
    assert _hot_trace().speculated_runs == 3
    _assert_close(got, _eager(monkeypatch, run))


def test_head_gradients_and_null_grad_reqs(monkeypatch):
    def run():
        params, data, label = _problem(7)
        params[3].attach_grad(grad_req="null")
        params[3].grad  # noqa: B018  (None for 'null')
        results = []
        for step in range(HOT_AFTER + 2):
            with autograd.record():
                out, _ = _forward(params, data, label)
            out.backward(mx.nd.ones(out.shape) * (step + 1))
            results.append([p.grad.asnumpy() for p in params[:3]])
        return results

    got = run()
    assert _hot_trace().speculated_runs == 2
    _assert_close(got, _eager(monkeypatch, run))


def test_retain_graph_and_autograd_grad_replay_the_deferred_step(monkeypatch):
    def run():
        params, data, label = _problem(8)
        results = []
        for step in range(HOT_AFTER + 4):
            with autograd.record():
                _, loss = _forward(params, data, label)
            if step == HOT_AFTER + 1:
                loss.backward(retain_graph=True)
                loss.backward()
            elif step == HOT_AFTER + 2:
                results.append([g.asnumpy() for g in autograd.grad(loss, params[:2])])
                continue
            else:
                loss.backward()
            results.append([p.grad.asnumpy() for p in params])
        return results

    _assert_close(run(), _eager(monkeypatch, run))


def test_backward_twice_without_retain_graph_fails_as_eagerly():
    params, data, label = _problem(9)
    for _ in range(HOT_AFTER + 1):
        with autograd.record():
            out, loss = _forward(params, data, label)
        loss.backward()
    with pytest.raises(mx.MXNetError, match="retain_graph=True"):
        loss.backward()
    with pytest.raises(mx.MXNetError, match="retain_graph=True"):
        with autograd.record():
            again = out * 2
        again.backward()


def test_attach_grad_on_a_pending_array_replays_first():
    params, data, label = _problem(10)
    for _ in range(HOT_AFTER + 1):
        with autograd.record():
            out, loss = _forward(params, data, label)
        assert type(out) is (PendingNDArray if compiled_steps.HOT_TRACES else mx.nd.NDArray)
        loss.backward()
    with autograd.record():
        out, loss = _forward(params, data, label)
    out.attach_grad()  # `out` becomes a leaf: the step is replayed, then marked
    assert type(out) is mx.nd.NDArray
    with autograd.record():
        total = (out * out).sum()
    total.backward()
    np.testing.assert_allclose(out.grad.asnumpy(), 2 * out.asnumpy(), rtol=RTOL)


def test_steps_that_draw_random_numbers_stay_eager(caplog):
    params, data, label = _problem(11)
    with caplog.at_level(logging.INFO, logger="ember.ndarray"):
        for _ in range(HOT_AFTER + 2):
            with autograd.record():
                h = mx.nd.Dropout(mx.nd.FullyConnected(data, params[0], params[1], num_hidden=16), p=0.5)
                loss = h.sum()
            assert type(loss) is mx.nd.NDArray
            loss.backward()
    assert "Dropout draws random numbers" in caplog.text
    assert not compiled_steps.HOT_TRACES


def test_indexing_a_recorded_array_leaves_the_step_untraced():
    params, data, label = _problem(12)
    for _ in range(HOT_AFTER + 2):
        with autograd.record():
            out, _ = _forward(params, data, label)
            loss = out[0].sum()  # recorded through NDArray indexing, not a logged call
        loss.backward()
    assert not compiled_steps._TRACES


def test_a_slower_compiled_step_goes_back_to_eager(monkeypatch, caplog):
    monkeypatch.setattr(compiled_steps, "TRIAL_RUNS", 2)
    monkeypatch.setattr(compiled_steps, "WARMUP_SECONDS", 0.0)
    params, data, label = _problem(13)
    with caplog.at_level(logging.INFO, logger="ember.ndarray"):
        for step in range(HOT_AFTER + 6):
            if step == HOT_AFTER:
                _hot_trace().eager_times = [1e-9] * 2  # as if eager steps took a nanosecond
            with autograd.record():
                _, loss = _forward(params, data, label)
            loss.backward()
    assert "runs eagerly from now on (measured" in caplog.text
    assert not compiled_steps.HOT_TRACES


def test_two_threads_training_the_same_step(monkeypatch):
    want = _eager(monkeypatch, _train, HOT_AFTER + 6, 14)
    _train(HOT_AFTER + 1, 14)  # the trace is hot: both threads find it
    results, errors = {}, []

    def worker(name):
        try:
            results[name] = _train(HOT_AFTER + 6, 14)
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for got in results.values():
        _assert_close(got, want)


def test_a_pending_head_gradient_runs_the_step_eagerly(monkeypatch):
    def run():
        params, data, label = _problem(15)
        results = []
        for _ in range(HOT_AFTER + 2):
            with autograd.record():
                out, _ = _forward(params, data, label)
                weights = out * 2.0
            assert type(weights) is (PendingNDArray if compiled_steps.HOT_TRACES else mx.nd.NDArray)
            out.backward(weights)  # a head gradient deferred in the same step
            results.append([p.grad.asnumpy() for p in params])
        return results

    _assert_close(run(), _eager(monkeypatch, run))


def test_reference_executor_kind_stops_speculating(monkeypatch):
    _train(HOT_AFTER + 1, 16)
    assert compiled_steps.HOT_TRACES
    monkeypatch.setenv("EMBER_EXECUTOR", "reference")
    seen = []
    _train(2, 16, inside=lambda out, loss: seen.append(type(loss)))
    assert seen == [mx.nd.NDArray] * 2


def test_an_eager_call_with_out_inside_a_deferred_step_replays_it_first(monkeypatch):
    def run():
        params, data, label = _problem(17)
        results = []
        for _ in range(HOT_AFTER + 2):
            scratch = mx.nd.zeros((8, 16))
            with autograd.record():
                h = mx.nd.relu(mx.nd.FullyConnected(data, params[0], params[1], num_hidden=16))
                # recorded inputs, an out= array: the call runs eagerly, in the middle of a deferred step
                mx.nd.FullyConnected(data, params[0], params[1], num_hidden=16, out=scratch)
                out = mx.nd.FullyConnected(h, params[2], params[3], num_hidden=5)
                loss = -mx.nd.pick(mx.nd.log_softmax(out), label).mean()
            loss.backward()
            results.append([loss.asnumpy(), scratch.asnumpy()] + [p.grad.asnumpy() for p in params])
        return results

    _assert_close(run(), _eager(monkeypatch, run))


def test_a_leaf_written_between_two_calls_of_one_step(monkeypatch):
    def run():
        params, data, label = _problem(18)
        results = []
        for step in range(HOT_AFTER + 4):
            with autograd.record():
                first = mx.nd.FullyConnected(data, params[0], params[1], num_hidden=16)
            data[:] = data * 0.5 + step  # outside record(), between two calls that read `data`
            with autograd.record():
                second = mx.nd.FullyConnected(data, params[0], params[1], num_hidden=16)
                loss = (first * second).mean()
            loss.backward()
            results.append([loss.asnumpy()] + [p.grad.asnumpy() for p in params[:2]])
        return results

    _assert_close(run(), _eager(monkeypatch, run))


def test_value_dependent_errors_are_raised_as_eagerly(caplog):
    weight = mx.nd.array(np.random.default_rng(19).standard_normal((16, 8)).astype(np.float32))
    weight.attach_grad()
    table = mx.nd.array(np.arange(40, dtype=np.float32).reshape(5, 8))

    def step(index):
        with autograd.record():
            hidden = mx.nd.FullyConnected(table, weight, num_hidden=16, no_bias=True)
            loss = mx.nd.take(hidden, mx.nd.array(index), mode="raise").sum()
        loss.backward()

    with caplog.at_level(logging.INFO, logger="ember.ndarray"):
        for _ in range(HOT_AFTER + 1):
            step([0, 2, 4])
    assert "take(mode='raise') checks its indices" in caplog.text
    with pytest.raises(mx.MXNetError, match="out of bound"):
        step([0, 2, 9])


def test_a_thread_that_ends_mid_step_frees_its_trace():
    params, data, label = _problem(20)
    _train(HOT_AFTER + 1, 20)  # hot

    def forward_only():
        with autograd.record():
            _forward(params, data, label)

    worker = threading.Thread(target=forward_only)
    worker.start()
    worker.join()
    import gc

    gc.collect()
    assert not _hot_trace().lock.locked()
    kinds = []
    _train(1, 20, inside=lambda out, loss: kinds.append(type(loss)))
    assert kinds == [PendingNDArray]
