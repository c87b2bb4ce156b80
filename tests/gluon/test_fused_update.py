"""Trainer.step fused into the compiled training step (gluon/fused_update.py and DeferredBackward in
ndarray/compiled_steps.py): once a Gluon step and its update repeat, backward waits and trainer.step
runs one program doing forward, backward and the update. Every test compares with the same loop run
eagerly (EMBER_EXECUTOR=reference: the NumPy interpreter and NumPy updates)."""

from __future__ import annotations

import numpy as np
import pytest

import ember as mx
from ember import autograd, gluon
from ember.ndarray import compiled_steps
from ember.ndarray.ndarray import PendingNDArray
from ember.ndarray.step_programs import StepProgram

STEPS = 9
RTOL, ATOL = 2e-5, 1e-6
OPTIMIZERS = {
    "sgd": {"learning_rate": 0.1},
    "sgd-momentum-wd": {"learning_rate": 0.1, "momentum": 0.9, "wd": 0.01},
    "adam": {"learning_rate": 0.01},
    "rmsprop": {"learning_rate": 0.01, "clip_gradient": 0.5},
}


pytestmark = pytest.mark.usefixtures("hot_steps")  # tests/conftest.py


def _net(seed: int):
    rng = np.random.default_rng(seed)
    net = gluon.nn.HybridSequential()
    with net.name_scope():
        net.add(gluon.nn.Dense(16, activation="relu", in_units=12), gluon.nn.Dense(5, in_units=16))
    net.initialize()
    for param in net.collect_params().values():
        param.set_data(mx.nd.array(rng.standard_normal(param.shape).astype(np.float32) * 0.3))
    net.hybridize()
    return net


def _train(optimizer: str, steps: int = STEPS, between=None, after=None, seed: int = 0):
    """`steps` Gluon steps; `between(step, net, trainer)` runs after backward, before trainer.step;
    `after(step, net, trainer)` after it. Returns each step's loss, the final parameters and gradients,
    and the trainer."""
    net = _net(seed)
    rng = np.random.default_rng(seed + 1)
    data = mx.nd.array(rng.standard_normal((8, 12)).astype(np.float32))
    label = mx.nd.array(rng.integers(0, 5, 8).astype(np.float32))
    trainer = gluon.Trainer(net.collect_params(), optimizer.split("-")[0], dict(OPTIMIZERS[optimizer]))
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    losses = []
    for step in range(steps):
        with autograd.record():
            loss = loss_fn(net(data), label)
        loss.backward()
        if between is not None:
            between(step, net, trainer)
        trainer.step(8)
        if after is not None:
            after(step, net, trainer)
        losses.append(loss.asnumpy())
    return (*_outcome(net, losses), trainer)


def _outcome(net, losses: list) -> tuple:
    """(losses, final weights, final gradients), the parameters named without the net's own prefix."""
    params = net.collect_params()
    weights = {name[len(net.prefix):]: p.data().asnumpy() for name, p in params.items()}
    grads = {name[len(net.prefix):]: p.grad().asnumpy() for name, p in params.items()}
    return losses, weights, grads


def _eager(monkeypatch, *args, **kwargs):
    return _in_eager(monkeypatch, lambda: _train(*args, **kwargs))


def _assert_same(got, want):
    for g_losses, w_losses in zip(got[0], want[0]):
        np.testing.assert_allclose(g_losses, w_losses, rtol=RTOL, atol=ATOL)
    for part in (1, 2):
        assert got[part].keys() == want[part].keys()
        for name in want[part]:
            np.testing.assert_allclose(got[part][name], want[part][name], rtol=RTOL, atol=ATOL, err_msg=name)


def _fused_trace():
    traces = [t for t in compiled_steps._TRACES.values() if t.fused]
    assert len(traces) == 1
    return traces[0]


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_the_fused_step_trains_as_eager_execution_does(monkeypatch, optimizer):
    kinds = []
    got = _train(optimizer, between=lambda step, net, trainer: kinds.append(
        compiled_steps.deferred_backward() is not None))  # fmt: skip
    fused = _fused_trace().fused
    assert len(fused) == 1 and isinstance(fused[0].program, StepProgram)
    # eager, eager (compiled at its backward), compiled + offer, compiled + offer (fused compiled), then
    # deferred every step
    assert kinds == [False] * 4 + [True] * (STEPS - 4)
    assert fused[0].misses == 0
    _assert_same(got, _eager(monkeypatch, optimizer))


def test_parameters_and_optimizer_states_live_in_the_fused_program(monkeypatch):
    _, _, _, trainer = _train("sgd-momentum-wd")
    program = _fused_trace().fused[0].program
    arena = program.exe.arena
    for index, param in enumerate(trainer._params):
        for array in (param.data(), param.grad(), trainer._updaters[0].states[index]):
            assert np.shares_memory(array.host_buffer(), arena), param.name


def test_reading_gradients_before_the_update_runs_the_step_unfused(monkeypatch):
    seen, pending = [], []

    def clip(step, net, trainer):
        grads = [p.grad() for p in net.collect_params().values()]
        pending.append(all(type(g) is PendingNDArray for g in grads))
        seen.append(gluon.utils.clip_global_norm(grads, 0.5))

    got = _train("sgd-momentum-wd", between=clip)
    traces = [t for t in compiled_steps._TRACES.values() if t.program]
    assert not traces[0].fused and compiled_steps.REFUSED in traces[0].offers.values()
    want_seen = []
    want = _eager(monkeypatch, "sgd-momentum-wd", between=lambda s, n, t: want_seen.append(
        gluon.utils.clip_global_norm([p.grad() for p in n.collect_params().values()], 0.5)))  # fmt: skip
    _assert_same(got, want)
    np.testing.assert_allclose(seen, want_seen, rtol=RTOL)
    # the gradients were read before the update MAX_REPLAYS times in a row: the step stops waiting
    assert pending == [False] * 4 + [True] * compiled_steps.MAX_REPLAYS + [False] * (STEPS - 4 - 3)


def test_writing_a_parameter_between_backward_and_step_is_seen(monkeypatch):
    def nudge(step, net, trainer):
        if step in (6, 7):
            weight = net[0].weight
            weight.set_data(weight.data() * 0.5)

    _assert_same(_train("sgd", between=nudge), _eager(monkeypatch, "sgd", between=nudge))


def test_a_learning_rate_change_and_reloaded_states_are_followed(monkeypatch, tmp_path):
    def adjust(step, net, trainer):
        if step == 6:
            trainer.set_learning_rate(0.03)
        if step == 7:
            trainer.save_states(str(tmp_path / f"{id(trainer)}.states"))
            trainer.load_states(str(tmp_path / f"{id(trainer)}.states"))

    waiting = []

    def note(step, net, trainer):
        waiting.append(compiled_steps.deferred_backward() is not None)

    got = _train("adam", steps=12, after=adjust, between=note)
    assert compiled_steps.deferred_backward() is None
    # the reloaded states are planned anew at step 8 (declined, then offered again): still fused after
    assert waiting == [False] * 4 + [True] * 8 and _fused_trace().fused[0].misses == 0
    _assert_same(got, _eager(monkeypatch, "adam", steps=12, after=adjust))


def test_the_next_step_starting_first_runs_the_waiting_one(monkeypatch):
    """A loop that records its next step before calling step (here: a second forward pass on other
    data between backward and step) gets what eager execution gives."""
    other = mx.nd.array(np.linspace(-1, 1, 96, dtype=np.float32).reshape(8, 12))
    extra = []

    def peek(step, net, trainer):
        with autograd.record():
            extra.append(net(other).asnumpy())

    got = _train("sgd", between=peek)
    want_extra = []
    want = _eager(monkeypatch, "sgd", between=lambda s, n, t: want_extra.append(n(other).asnumpy()))
    _assert_same(got, want)
    np.testing.assert_allclose(np.array(extra), np.array(want_extra), rtol=RTOL, atol=ATOL)


def test_two_models_of_the_same_structure_each_get_their_fused_update(monkeypatch):
    """Both models' steps match one trace; each Trainer's update is fused for its own weights."""

    def two_models():
        first, second = [], []
        results = []
        for seed, log in ((0, first), (5, second)):
            results.append(_Loop(seed, log))
        for _ in range(STEPS):
            for loop in results:
                loop.step()
        return [loop.result() for loop in results], first, second

    (got_a, got_b), kinds_a, kinds_b = two_models()
    trace = _fused_trace()
    assert len(trace.fused) == 2
    assert kinds_a[-3:] == [True] * 3 and kinds_b[-3:] == [True] * 3
    (want_a, want_b), _, _ = _in_eager(monkeypatch, two_models)
    _assert_same(got_a, want_a)
    _assert_same(got_b, want_b)


class _Loop:
    """`_train`'s loop one step at a time (for interleaving two models)."""

    def __init__(self, seed: int, log: list):
        self.net = _net(seed)
        rng = np.random.default_rng(seed + 1)
        self.data = mx.nd.array(rng.standard_normal((8, 12)).astype(np.float32))
        self.label = mx.nd.array(rng.integers(0, 5, 8).astype(np.float32))
        settings = {"learning_rate": 0.1, "momentum": 0.5}
        self.trainer = gluon.Trainer(self.net.collect_params(), "sgd", settings)
        self.loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
        self.losses, self.log = [], log

    def step(self):
        with autograd.record():
            loss = self.loss_fn(self.net(self.data), self.label)
        loss.backward()
        self.log.append(compiled_steps.deferred_backward() is not None)
        self.trainer.step(8)
        self.losses.append(loss.asnumpy())

    def result(self):
        return _outcome(self.net, self.losses)


def _in_eager(monkeypatch, fn):
    with monkeypatch.context() as m:
        m.setenv("EMBER_EXECUTOR", "reference")
        compiled_steps.forget_traces()
        result = fn()
        compiled_steps.end_step()
    compiled_steps.forget_traces()
    return result


def test_a_gradient_read_on_another_thread_runs_the_waiting_step_once(monkeypatch):
    import threading

    def read_elsewhere(step, net, trainer):
        if step >= 4:
            assert compiled_steps.deferred_backward() is not None
        if step == 5:
            reader = threading.Thread(target=lambda: net[0].weight.grad().asnumpy())
            reader.start()
            reader.join()
            assert compiled_steps.deferred_backward() is None  # ran: step then updates on its own

    _assert_same(_train("sgd", between=read_elsewhere), _eager(monkeypatch, "sgd"))
