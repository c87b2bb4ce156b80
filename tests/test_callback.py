"""`mx.callback`: MXNet's exact log lines (with a fake clock) and the checkpoint period rules."""

from __future__ import annotations

import logging
import sys

import pytest

import ember as mx
from ember import callback, metric


@pytest.fixture
def clock(monkeypatch):
    """A settable fake `time.time()` for ember.callback."""
    now = {"t": 1000.0}
    monkeypatch.setattr(callback.time, "time", lambda: now["t"])
    return now


@pytest.fixture
def log(caplog):
    """The messages the root logger receives at INFO level."""
    caplog.set_level(logging.INFO)

    def messages():
        return [r.getMessage() for r in caplog.records if r.name == "root"]

    return messages


def accuracy(correct: int, total: int) -> metric.Accuracy:
    acc = metric.Accuracy()
    acc.update([mx.nd.array([1] * correct + [0] * (total - correct))], [mx.nd.array([1] * total)])
    return acc


def batch(nbatch, eval_metric=None, epoch=0):
    return callback.BatchEndParam(epoch=epoch, nbatch=nbatch, eval_metric=eval_metric, locals=None)


def test_batch_end_param_fields():
    param = batch(3)
    assert param._fields == ("epoch", "nbatch", "eval_metric", "locals")
    assert type(param).__name__ == "BatchEndParams"


def test_speedometer_line_and_auto_reset(clock, log):
    speedometer = callback.Speedometer(batch_size=10, frequent=2)
    acc = accuracy(3, 4)
    speedometer(batch(0, acc))  # first call only starts the clock
    speedometer(batch(1, acc))
    clock["t"] += 0.5
    speedometer(batch(2, acc))
    assert log() == ["Epoch[0] Batch [0-2]\tSpeed: 40.00 samples/sec\taccuracy=0.750000"]
    assert acc.num_inst == 0  # local statistics cleared after the line ...
    assert acc.get_global() == ("accuracy", 0.75)  # ... global ones kept for the epoch line
    acc.update([mx.nd.array([1, 1])], [mx.nd.array([1, 0])])
    clock["t"] += 2.0
    speedometer(batch(3, acc))
    speedometer(batch(4, acc))
    assert log()[1] == "Epoch[0] Batch [2-4]\tSpeed: 10.00 samples/sec\taccuracy=0.500000"


def test_speedometer_without_auto_reset_counts_from_zero(clock, log):
    speedometer = callback.Speedometer(batch_size=4, frequent=2, auto_reset=False)
    acc = accuracy(1, 2)
    for nbatch in range(5):
        clock["t"] += 1.0
        speedometer(batch(nbatch, acc, epoch=1))
    assert log() == [
        "Epoch[1] Batch [0-2]\tSpeed: 4.00 samples/sec\taccuracy=0.500000",
        "Epoch[1] Batch [0-4]\tSpeed: 4.00 samples/sec\taccuracy=0.500000",
    ]
    assert acc.num_inst == 2


def test_speedometer_without_metric_and_with_several_values(clock, log):
    speedometer = callback.Speedometer(batch_size=1, frequent=1)
    speedometer(batch(0))
    clock["t"] += 0.25
    speedometer(batch(1))
    comp = metric.CompositeEvalMetric([accuracy(1, 2), metric.Loss()])
    comp.get_metric(1).update(None, [mx.nd.array([2.0])])
    clock["t"] += 0.5
    speedometer(batch(2, comp))
    assert log() == [
        "Iter[0] Batch [1]\tSpeed: 4.00 samples/sec",
        "Epoch[0] Batch [1-2]\tSpeed: 2.00 samples/sec\taccuracy=0.500000\tloss=2.000000",
    ]


def test_speedometer_restarts_its_clock_each_epoch(clock, log):
    speedometer = callback.Speedometer(batch_size=1, frequent=2)
    for nbatch in range(4):
        speedometer(batch(nbatch, epoch=0))
    clock["t"] += 100.0
    speedometer(batch(0, epoch=1))  # nbatch went down: a new epoch, the clock restarts here
    speedometer(batch(1, epoch=1))
    clock["t"] += 1.0
    speedometer(batch(2, epoch=1))
    assert log()[-1] == "Iter[1] Batch [2]\tSpeed: 2.00 samples/sec"
    assert len(log()) == 2


def test_speedometer_zero_elapsed_time_is_infinite_speed(clock, log):
    speedometer = callback.Speedometer(batch_size=1, frequent=1)
    speedometer(batch(0))
    speedometer(batch(1))
    assert log() == ["Iter[0] Batch [1]\tSpeed: inf samples/sec"]


def test_speedometer_lines_reach_basic_config_output(clock, capsys):
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(logging.BASIC_FORMAT))
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    try:
        speedometer = callback.Speedometer(batch_size=100, frequent=50)
        acc = accuracy(1, 2)
        speedometer(batch(0, acc))
        clock["t"] += 2.0
        speedometer(batch(50, acc))
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    assert capsys.readouterr().out == (
        "INFO:root:Epoch[0] Batch [0-50]\tSpeed: 2500.00 samples/sec\taccuracy=0.500000\n"
    )


def test_log_train_metric(log):
    acc = accuracy(3, 4)
    cb = callback.log_train_metric(period=2, auto_reset=True)
    cb(batch(1, acc, epoch=1))
    cb(batch(2, acc, epoch=1))
    assert log() == ["Iter[1] Batch[2] Train-accuracy=0.750000"]
    assert acc.num_inst == 0 and acc.global_num_inst == 4


def test_progress_bar(log):
    bar = callback.ProgressBar(total=4, length=8)
    bar(batch(2))
    bar(batch(3))
    assert log() == ["[====----] 50%\r", "[======--] 75%\r"]


def test_log_validation_metrics(log):
    callback.LogValidationMetricsCallback()(batch(0, accuracy(3, 4), epoch=3))
    callback.LogValidationMetricsCallback()(batch(0, None, epoch=3))
    assert log() == ["Epoch[3] Validation-accuracy=0.750000"]


# -- checkpoints -------------------------------------------------------------------------------


@pytest.fixture
def saved(monkeypatch):
    """Calls of `ember.model.save_checkpoint` (as `ember.callback` holds it), replaced by a recording stub."""
    calls = []
    monkeypatch.setattr(callback, "save_checkpoint", lambda *args: calls.append(args))
    return calls


def test_do_checkpoint_saves_every_period_with_the_next_epoch_number(saved):
    cb = callback.do_checkpoint("mlp", period=2)
    for epoch in range(5):
        cb(epoch, "sym", {"w": 1}, {"a": 2})
    assert saved == [("mlp", 2, "sym", {"w": 1}, {"a": 2}), ("mlp", 4, "sym", {"w": 1}, {"a": 2})]


def test_do_checkpoint_default_and_nonpositive_period_save_every_epoch(saved):
    every = callback.do_checkpoint("a")
    clamped = callback.do_checkpoint("b", period=0)
    for epoch in range(2):
        every(epoch, None, {}, {})
        clamped(epoch, None, {}, {})
    assert [(c[0], c[1]) for c in saved] == [("a", 1), ("b", 1), ("a", 2), ("b", 2)]


def test_module_checkpoint_calls_the_module():
    class FakeModule:
        def __init__(self):
            self.calls = []

        def save_checkpoint(self, prefix, epoch, save_optimizer_states=False):
            self.calls.append((prefix, epoch, save_optimizer_states))

    mod = FakeModule()
    cb = callback.module_checkpoint(mod, "net", period=3, save_optimizer_states=True)
    for epoch in range(6):
        cb(epoch)
    assert mod.calls == [("net", 3, True), ("net", 6, True)]


def test_do_checkpoint_writes_mxnet_files(tmp_path):
    pytest.importorskip("ember.model")
    data = mx.sym.Variable("data")
    net = mx.sym.FullyConnected(data, num_hidden=2, name="fc")
    arg = {"fc_weight": mx.nd.ones((2, 3)), "fc_bias": mx.nd.zeros((2,))}
    prefix = str(tmp_path / "ck")
    callback.do_checkpoint(prefix)(0, net, arg, {})
    assert (tmp_path / "ck-symbol.json").exists()
    loaded = mx.nd.load(str(tmp_path / "ck-0001.params"))
    assert sorted(loaded) == ["arg:fc_bias", "arg:fc_weight"]
