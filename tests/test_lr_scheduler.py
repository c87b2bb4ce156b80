"""`mx.lr_scheduler` (MXNET_COMPAT.md 6.3): each scheduler's rate at chosen update counts, warmup,
the INFO lines MXNet logs, argument checks, and how an optimizer drives a scheduler."""

from __future__ import annotations

import logging
import math

import ember.lr_scheduler as lrs
import ember.ndarray as nd
import ember.optimizer as opt
import pytest


def rates(scheduler, updates):
    return [scheduler(n) for n in updates]


def test_factor_scheduler_matches_mxnet_observation():
    # MXNet 1.9.1, step 2, factor 0.5, base 1, updates 1..7
    scheduler = lrs.FactorScheduler(step=2, factor=0.5, base_lr=1.0)
    assert rates(scheduler, range(1, 8)) == [1, 1, 0.5, 0.5, 0.25, 0.25, 0.125]


def test_factor_scheduler_logs_each_change_and_the_floor(caplog):
    # as in MXNet, every step past the floor clamps again and logs the floor line again
    scheduler = lrs.FactorScheduler(step=1, factor=0.1, stop_factor_lr=0.005, base_lr=1.0)
    with caplog.at_level(logging.INFO):
        assert rates(scheduler, [1, 2, 3, 4, 5]) == pytest.approx([1.0, 0.1, 0.01, 0.005, 0.005])
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("root", "Update[2]: Change learning rate to 1.00000e-01"),
        ("root", "Update[3]: Change learning rate to 1.00000e-02"),
        ("root", "Update[4]: now learning rate arrived at 5.00000e-03, will not change in the future"),
        ("root", "Update[5]: now learning rate arrived at 5.00000e-03, will not change in the future"),
    ]


def test_factor_scheduler_catches_up_when_resumed_late():
    # the first call at update 7 applies all three reductions at once
    assert lrs.FactorScheduler(step=2, factor=0.5, base_lr=1.0)(7) == 0.125


def test_multifactor_scheduler_matches_mxnet_observation(caplog):
    scheduler = lrs.MultiFactorScheduler(step=[2, 4], factor=0.1, base_lr=1.0)
    with caplog.at_level(logging.INFO):
        assert rates(scheduler, range(1, 8)) == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01, 0.01])
    assert [r.getMessage() for r in caplog.records] == [
        "Update[3]: Change learning rate to 1.00000e-01",
        "Update[5]: Change learning rate to 1.00000e-02",
    ]


def test_linear_and_constant_warmup():
    # linear: begin + (base - begin)*n/warmup_steps while n < warmup_steps
    linear = lrs.FactorScheduler(step=10, base_lr=1.0, warmup_steps=4, warmup_begin_lr=0.2)
    assert rates(linear, [0, 1, 2, 3, 4, 5]) == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0, 1.0])
    constant = lrs.MultiFactorScheduler(
        step=[6], factor=0.5, base_lr=1.0, warmup_steps=4, warmup_begin_lr=0.2, warmup_mode="constant"
    )
    assert rates(constant, [1, 3, 4, 6, 7]) == pytest.approx([0.2, 0.2, 1.0, 1.0, 0.5])


def test_poly_scheduler():
    # base*(1 - n/max)^2: update 5 of 10 -> 0.25; after max_update the rate stays where it ended
    scheduler = lrs.PolyScheduler(max_update=10, base_lr=1.0, pwr=2)
    assert rates(scheduler, [0, 5, 9, 10, 12]) == pytest.approx([1.0, 0.25, 0.01, 0.0, 0.0])
    # with warmup 2 and final_lr 0.1: update 6 is 4 of 8 decay steps -> 0.1 + 0.9*0.5^2
    warm = lrs.PolyScheduler(
        max_update=10, base_lr=1.0, pwr=2, final_lr=0.1, warmup_steps=2, warmup_begin_lr=0.5
    )
    assert rates(warm, [1, 2, 6, 10]) == pytest.approx([0.75, 1.0, 0.325, 0.1])


def test_cosine_scheduler():
    # final + (base - final)*(1 + cos(pi*n/max))/2
    scheduler = lrs.CosineScheduler(max_update=10, base_lr=1.0, final_lr=0.1)
    expected = [1.0, 0.1 + 0.9 * (1 + math.cos(math.pi * 0.3)) / 2, 0.55, 0.1, 0.1]
    assert rates(scheduler, [0, 3, 5, 10, 11]) == pytest.approx(expected)
    warm = lrs.CosineScheduler(max_update=12, base_lr=1.0, warmup_steps=2)
    assert rates(warm, [1, 7, 12]) == pytest.approx([0.5, 0.5, 0.0])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: lrs.FactorScheduler(step=0), "Schedule step must be greater or equal than 1 round"),
        (lambda: lrs.FactorScheduler(step=2, factor=1.5), "Factor must be no more than 1 to make lr reduce"),
        (lambda: lrs.MultiFactorScheduler(step=[3, 3]), "Schedule step must be an increasing integer list"),
        (
            lambda: lrs.MultiFactorScheduler(step=[0, 3]),
            "Schedule step must be greater or equal than 1 round",
        ),
        (lambda: lrs.MultiFactorScheduler(step=4), "step must be a non-empty list of ints"),
        (lambda: lrs.PolyScheduler(max_update=0), "maximum number of updates must be strictly positive"),
        (lambda: lrs.CosineScheduler(max_update=10, warmup_mode="cubic"), "only linear and constant modes"),
        (
            lambda: lrs.FactorScheduler(step=2, base_lr=0.1, warmup_begin_lr=0.5),
            "higher than warmup_begin_lr",
        ),
        (lambda: lrs.FactorScheduler(step=2, warmup_steps=-1), "Warmup steps has to be positive or 0"),
    ],
)
def test_bad_arguments_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_non_integer_counts_are_refused():
    with pytest.raises(TypeError, match="max_update must be an int"):
        lrs.PolyScheduler(max_update=10.0)
    with pytest.raises(TypeError, match="warmup_steps must be an int"):
        lrs.FactorScheduler(step=2, warmup_steps=1.5)


def test_base_class_must_be_overridden():
    with pytest.raises(NotImplementedError, match="must override this"):
        lrs.LRScheduler()(1)


def test_optimizer_drives_the_scheduler_with_post_increment_counts():
    # MultiFactor steps [1]: update 1 still uses 0.1, update 2 uses 0.01
    optimizer = opt.SGD(lr_scheduler=lrs.MultiFactorScheduler(step=[1], factor=0.1, base_lr=0.1))
    updater = opt.get_updater(optimizer)
    weight = nd.array([0.0])
    updater(0, nd.array([1.0]), weight)
    assert weight.asnumpy()[0] == pytest.approx(-0.1)
    updater(0, nd.array([1.0]), weight)
    assert weight.asnumpy()[0] == pytest.approx(-0.11)


def test_overwritten_base_lr_does_not_move_the_warmup_target_or_poly_start(capsys):
    # MXNet 1.9.1: the optimizer's learning_rate replaces base_lr only; warmup still climbs to the
    # constructor's base_lr and Poly/Cosine still decay from it
    warm = lrs.FactorScheduler(step=100, base_lr=1.0, warmup_steps=2)
    opt.SGD(learning_rate=0.5, lr_scheduler=warm)
    assert warm.base_lr == 0.5 and warm(1) == 0.5 and warm.warmup_final_lr == 1.0
    poly = lrs.PolyScheduler(max_update=10, base_lr=1.0)
    opt.SGD(learning_rate=0.5, lr_scheduler=poly)
    assert poly(5) == pytest.approx(0.25)
    capsys.readouterr()
