"""`mx.optimizer` (MXNET_COMPAT.md 6.1, 6.2): every optimizer step for step against a float64 NumPy
transcription of MXNet 1.9.1's formula written out here, plus hand-computed first steps; multipliers,
the `_weight`/`_gamma` weight-decay rule, the registry, update counting and the Updater's states."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

import ember.lr_scheduler as lrs
import ember.ndarray as nd
import ember.optimizer as opt
import ember.symbol as sym
from ember.runtime.errors import ShapeError

W0 = np.array([0.5, -1.5, 2.0, -0.25])
GRADS = np.array([[3.0, -0.4, 1.0, -6.0], [-2.0, 0.8, 0.1, 2.5], [1.2, -3.0, -0.6, 0.05]])
# rescale_grad 0.5 and clip_gradient 1.0 clip some entries (3.0 -> 1.5 -> 1.0) and leave others alone
BASE = {"rescale_grad": 0.5, "clip_gradient": 1.0, "wd": 0.1}


def run(optimizer, w0=W0, grads=GRADS, index=0) -> list[np.ndarray]:
    """The weight after each update of one parameter, through an Updater (as Module drives it)."""
    updater = opt.get_updater(optimizer)
    weight = nd.array(w0)
    history = []
    for g in grads:
        updater(index, nd.array(g), weight)
        history.append(weight.asnumpy())
    return history


def check(history, expected, rtol=1e-5, atol=1e-7):
    assert len(history) == len(expected)
    for step, (got, want) in enumerate(zip(history, expected), start=1):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=f"after update {step}")


def clip(x, c):
    return np.clip(x, -c, c)


# -- float64 transcriptions of MXNet's formulas (MXNET_COMPAT.md 6.2, optimizer_op-inl.h) -------------


def ref_sgd(lr, wd, rescale_grad, clip_gradient, momentum=0.0):
    w, mom, out = W0.copy(), np.zeros(4), []
    for g in GRADS:
        gc = clip(rescale_grad * g, clip_gradient)
        if momentum:
            mom = momentum * mom - lr * wd * w - lr * gc
            w = w + mom
        else:
            w = (1 - lr * wd) * w - lr * gc
        out.append(w)
    return out


def ref_nag(lr, wd, rescale_grad, clip_gradient, momentum):
    # the classic formulation (momentum without lr inside); equal to MXNet's kernel for a constant lr
    w, mom, out = W0.copy(), np.zeros(4), []
    for g in GRADS:
        d = clip(rescale_grad * g, clip_gradient) + wd * w
        mom = momentum * mom + d
        w = w - lr * (d + momentum * mom)
        out.append(w)
    return out


def ref_adam(lr, wd, rescale_grad, clip_gradient, beta1=0.9, beta2=0.999, eps=1e-8):
    w, m, v, out = W0.copy(), np.zeros(4), np.zeros(4), []
    for t, g in enumerate(GRADS, start=1):
        gp = clip(rescale_grad * g + wd * w, clip_gradient)
        m = beta1 * m + (1 - beta1) * gp
        v = beta2 * v + (1 - beta2) * gp * gp
        lr_t = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
        w = w - lr_t * m / (np.sqrt(v) + eps)
        out.append(w)
    return out


def ref_rmsprop(lr, wd, rescale_grad, clip_gradient, gamma1, eps, clip_weights=None):
    w, n, out = W0.copy(), np.zeros(4), []
    for g in GRADS:
        gp = clip(rescale_grad * g + wd * w, clip_gradient)
        n = (1 - gamma1) * gp * gp + gamma1 * n
        w = w - lr * gp / np.sqrt(n + eps)
        w = w if clip_weights is None else clip(w, clip_weights)
        out.append(w)
    return out


def ref_rmsprop_centered(lr, wd, rescale_grad, clip_gradient, gamma1, gamma2, eps):
    w, n, gbar, delta, out = W0.copy(), np.zeros(4), np.zeros(4), np.zeros(4), []
    for g in GRADS:
        gp = clip(rescale_grad * g + wd * w, clip_gradient)
        n = (1 - gamma1) * gp * gp + gamma1 * n
        gbar = (1 - gamma1) * gp + gamma1 * gbar
        delta = gamma2 * delta - lr * gp / np.sqrt(n - gbar * gbar + eps)
        w = w + delta
        out.append(w)
    return out


def ref_adagrad(lr, wd, rescale_grad, clip_gradient, eps):
    w, h, out = W0.copy(), np.zeros(4), []
    for g in GRADS:
        gp = clip(rescale_grad * g, clip_gradient)
        h = h + gp * gp
        w = w - lr * (gp / np.sqrt(h + eps) + wd * w)
        out.append(w)
    return out


def ref_adadelta(wd, rescale_grad, clip_gradient, rho, eps):
    w, acc_g, acc_d, out = W0.copy(), np.zeros(4), np.zeros(4), []
    for g in GRADS:
        gp = clip(rescale_grad * g, clip_gradient)
        acc_g = rho * acc_g + (1 - rho) * gp * gp
        d = np.sqrt(acc_d + eps) / np.sqrt(acc_g + eps) * gp
        acc_d = rho * acc_d + (1 - rho) * d * d
        w = w - (d + wd * w)
        out.append(w)
    return out


def ref_signum(lr, wd, rescale_grad, clip_gradient, momentum, wd_lh):
    w, mom, out = W0.copy(), np.zeros(4), []
    for g in GRADS:
        mom = momentum * mom - (1 - momentum) * (wd * w + clip(rescale_grad * g, clip_gradient))
        w = (1 - lr * wd_lh) * w + lr * np.sign(mom)
        out.append(w)
    return out


def ref_ftrl(lr, wd, rescale_grad, clip_gradient, lamda1, beta):
    w, z, n, out = W0.copy(), np.zeros(4), np.zeros(4), []
    for g in GRADS:
        gp = clip(rescale_grad * g, clip_gradient)
        z = z + gp - (np.sqrt(n + gp * gp) - np.sqrt(n)) * w / lr
        n = n + gp * gp
        w = np.where(np.abs(z) > lamda1, (np.sign(z) * lamda1 - z) / ((beta + np.sqrt(n)) / lr + wd), 0.0)
        out.append(w)
    return out


def ref_adamax(lr, wd, rescale_grad, clip_gradient, beta1=0.9, beta2=0.999):
    w, m, u, out = W0.copy(), np.zeros(4), np.zeros(4), []
    for t, g in enumerate(GRADS, start=1):
        gp = clip(rescale_grad * g + wd * w, clip_gradient)
        m = beta1 * m + (1 - beta1) * gp
        u = np.maximum(beta2 * u, np.abs(gp))
        w = w - lr / (1 - beta1**t) * m / u
        out.append(w)
    return out


def ref_nadam(lr, wd, rescale_grad, clip_gradient, beta1=0.9, beta2=0.999, eps=1e-8, decay=0.004):
    w, m, v, schedule, out = W0.copy(), np.zeros(4), np.zeros(4), 1.0, []
    for t, g in enumerate(GRADS, start=1):
        gp = clip(rescale_grad * g + wd * w, clip_gradient)
        mu_t = beta1 * (1 - 0.5 * 0.96 ** (t * decay))
        mu_next = beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * decay))
        schedule *= mu_t
        m = beta1 * m + (1 - beta1) * gp
        v = beta2 * v + (1 - beta2) * gp * gp
        m_bar = (1 - mu_t) * gp / (1 - schedule) + mu_next * m / (1 - schedule * mu_next)
        w = w - lr * m_bar / (np.sqrt(v / (1 - beta2**t)) + eps)
        out.append(w)
    return out


# -- each optimizer, three steps ---------------------------------------------------------------------


def test_sgd_first_step_by_hand():
    # w1 = (1 - lr*wd)*w0 - lr*clip(0.5*g): clip(0.5*[3, -0.4, 1, -6]) = [1, -0.2, 0.5, -1]
    (w1,) = run(opt.SGD(learning_rate=0.1, rescale_grad=0.5, clip_gradient=1.0, wd=0.01), grads=GRADS[:1])
    np.testing.assert_allclose(w1, [0.3995, -1.4785, 1.948, -0.14975], rtol=1e-6)


def test_sgd_three_steps():
    check(run(opt.SGD(learning_rate=0.1, **BASE)), ref_sgd(0.1, **BASE))


def test_sgd_momentum_keeps_the_learning_rate_inside_the_buffer():
    # by hand, w0 = 1, g = 0.5, lr 0.1, wd 0.01, momentum 0.9:
    # mom1 = -0.001 - 0.05 = -0.051, w1 = 0.949; mom2 = -0.0459 - 0.000949 - 0.05 = -0.096849
    history = run(opt.SGD(learning_rate=0.1, momentum=0.9, wd=0.01), w0=[1.0], grads=[[0.5], [0.5]])
    check(history, [[0.949], [0.852151]])
    check(run(opt.SGD(learning_rate=0.1, momentum=0.9, **BASE)), ref_sgd(0.1, momentum=0.9, **BASE))


def test_sgd_clip_gradient_zero_or_none_disables_clipping():
    unclipped = ref_sgd(0.1, wd=0.0, rescale_grad=1.0, clip_gradient=np.inf)
    check(run(opt.SGD(learning_rate=0.1, clip_gradient=0)), unclipped)
    check(run(opt.SGD(learning_rate=0.1, clip_gradient=None)), unclipped)


def test_nag_three_steps():
    check(run(opt.NAG(learning_rate=0.1, momentum=0.9, **BASE)), ref_nag(0.1, momentum=0.9, **BASE))
    # without momentum NAG is plain SGD
    check(run(opt.NAG(learning_rate=0.1, **BASE)), ref_sgd(0.1, **BASE))


def test_adam_first_step_by_hand():
    # step 1: m = 0.1*g', v = 0.001*g'^2 and lr_t = lr*sqrt(0.001)/0.1, so the step is
    # lr*g'/(|g'| + eps/sqrt(0.001)): epsilon is added to the uncorrected sqrt(v)
    eps = 1e-3
    (w1,) = run(opt.Adam(learning_rate=0.01, epsilon=eps), w0=[0.0, 0.0], grads=[[2.0, -0.5]])
    expected = [-0.01 * 2.0 / (2.0 + eps / math.sqrt(0.001)), 0.01 * 0.5 / (0.5 + eps / math.sqrt(0.001))]
    np.testing.assert_allclose(w1, expected, rtol=1e-5)
    # PyTorch's placement (eps on the bias-corrected root) would give -0.01*2/(2 + 1e-3) = -0.0099950
    assert abs(w1[0] - (-0.0099950)) > 1e-5


def test_adam_three_steps_weight_decay_enters_before_clipping():
    check(run(opt.Adam(learning_rate=0.01, **BASE)), ref_adam(0.01, **BASE))


def test_adam_bias_correction_uses_each_index_own_count():
    optimizer = opt.Adam(learning_rate=0.01)
    updater = opt.get_updater(optimizer)
    busy, fresh = nd.array([0.0]), nd.array([0.0])
    for _ in range(3):
        updater(0, nd.array([1.0]), busy)
    updater(1, nd.array([1.0]), fresh)
    assert optimizer.num_update == 3 and optimizer._index_update_count == {0: 3, 1: 1}
    # index 1's first update is a t=1 step of size lr (g/|g|), whatever num_update is
    np.testing.assert_allclose(fresh.asnumpy(), [-0.01], rtol=1e-5)


def test_rmsprop_three_steps():
    kw = {"gamma1": 0.9, "epsilon": 1e-8}
    check(run(opt.RMSProp(learning_rate=0.01, **kw, **BASE)), ref_rmsprop(0.01, eps=1e-8, gamma1=0.9, **BASE))


def test_rmsprop_first_step_by_hand_and_clip_weights():
    # n1 = 0.1*g^2, so w1 = w0 - lr*g/sqrt(0.1*g^2 + eps) = w0 - lr*sign(g)/sqrt(0.1) for tiny eps
    (w1,) = run(opt.RMSProp(learning_rate=0.01), w0=[1.0], grads=[[4.0]])
    np.testing.assert_allclose(w1, [1.0 - 0.01 / math.sqrt(0.1)], rtol=1e-6)
    history = run(opt.RMSProp(learning_rate=0.01, clip_weights=0.3, **BASE))
    check(history, ref_rmsprop(0.01, gamma1=0.9, eps=1e-8, clip_weights=0.3, **BASE))
    np.testing.assert_allclose(history[0][:3], [0.3, -0.3, 0.3], rtol=1e-6)


def test_rmsprop_centered_three_steps():
    optimizer = opt.RMSProp(learning_rate=0.01, gamma1=0.95, gamma2=0.8, centered=True, **BASE)
    check(run(optimizer), ref_rmsprop_centered(0.01, gamma1=0.95, gamma2=0.8, eps=1e-8, **BASE), rtol=1e-4)


def test_adagrad_three_steps():
    (w1,) = run(opt.AdaGrad(learning_rate=0.1, eps=0.0), w0=[1.0], grads=[[3.0]])
    assert w1[0] == pytest.approx(0.9)  # g/sqrt(g^2) = 1
    check(run(opt.AdaGrad(learning_rate=0.1, eps=1e-7, **BASE)), ref_adagrad(0.1, eps=1e-7, **BASE))


def test_adadelta_three_steps_ignores_the_learning_rate():
    expected = ref_adadelta(rho=0.9, eps=1e-5, **BASE)
    check(run(opt.AdaDelta(rho=0.9, epsilon=1e-5, **BASE)), expected, rtol=1e-4)
    check(run(opt.AdaDelta(learning_rate=5.0, **BASE)), expected, rtol=1e-4)


def test_signum_and_signsgd_three_steps():
    kw = {"momentum": 0.9, "wd_lh": 0.05}
    check(run(opt.Signum(learning_rate=0.1, **kw, **BASE)), ref_signum(0.1, **kw, **BASE))
    # without momentum: w = (1 - lr*wd)*w - lr*sign(g), rescale and clip have no effect
    (w1,) = run(opt.Signum(learning_rate=0.1, momentum=0.0, wd=0.1), grads=GRADS[:1])
    np.testing.assert_allclose(w1, 0.99 * W0 - 0.1 * np.sign(GRADS[0]), rtol=1e-6)


def test_ftrl_three_steps():
    kw = {"lamda1": 0.01, "beta": 1.0}
    check(run(opt.Ftrl(learning_rate=0.1, **kw, **BASE)), ref_ftrl(0.1, **kw, **BASE))
    assert opt.Ftrl().lr == 0.1


def test_adamax_three_steps():
    check(run(opt.Adamax(learning_rate=0.002, **BASE)), ref_adamax(0.002, **BASE))


def test_nadam_three_steps():
    check(run(opt.Nadam(learning_rate=0.001, **BASE)), ref_nadam(0.001, **BASE))


# -- learning rates, multipliers and weight decay ------------------------------------------------------


def test_default_learning_rates():
    assert opt.SGD().lr == 0.01 and opt.NAG().lr == 0.01 and opt.AdaGrad().lr == 0.01
    assert opt.Adam().lr == 0.001 and opt.RMSProp().lr == 0.001 and opt.Adamax().lr == 0.002


def test_only_weight_and_gamma_names_are_decayed_when_idx2name_is_given():
    names = {0: "fc_weight", 1: "fc_bias", 2: "bn_gamma", 3: "bn_beta", 4: "embed"}
    optimizer = opt.create("sgd", learning_rate=1.0, wd=0.1, param_idx2name=names)
    assert [optimizer._get_wd(i) for i in range(5)] == [0.1, 0.0, 0.1, 0.0, 0.0]
    updater = opt.get_updater(optimizer)
    weight, bias = nd.array([1.0]), nd.array([1.0])
    updater([0, 1], [nd.array([0.0]), nd.array([0.0])], [weight, bias])
    assert weight.asnumpy()[0] == pytest.approx(0.9) and bias.asnumpy()[0] == 1.0


def test_an_optimizer_object_given_names_later_decays_every_parameter():
    # what Module does with an optimizer instance: idx2name filled afterwards, multipliers not recomputed
    optimizer = opt.SGD(wd=0.1)
    optimizer.idx2name = {0: "fc_weight", 1: "fc_bias"}
    assert optimizer._get_wd(1) == 0.1


def make_symbol(bias_wd_mult=None):
    data = sym.Variable("data")
    weight = sym.Variable("fc_weight", lr_mult=2.0, wd_mult=0.5)
    bias = sym.Variable("fc_bias", lr_mult=3.0, wd_mult=bias_wd_mult)
    return sym.FullyConnected(data=data, weight=weight, bias=bias, num_hidden=2, name="fc")


def test_symbol_attributes_set_lr_and_wd_multipliers():
    names = {0: "fc_weight", 1: "fc_bias"}
    optimizer = opt.create("sgd", learning_rate=0.1, wd=0.1, sym=make_symbol(), param_idx2name=names)
    assert optimizer._get_lr(0) == pytest.approx(0.2) and optimizer._get_lr(1) == pytest.approx(0.3)
    assert optimizer._get_wd(0) == pytest.approx(0.05) and optimizer._get_wd(1) == 0.0
    # a __wd_mult__ attribute overrides the name rule
    optimizer = opt.create("sgd", wd=0.1, sym=make_symbol(bias_wd_mult=2.0), param_idx2name=names)
    assert optimizer._get_wd(1) == pytest.approx(0.2)
    # and explicit multipliers override the attributes; attributes of other names stay
    optimizer.set_wd_mult({"fc_bias": 0.0})
    optimizer.set_lr_mult({"fc_weight": 5.0})
    assert optimizer._get_wd(1) == 0.0
    assert optimizer._get_lr(0) == pytest.approx(0.05) and optimizer._get_lr(1) == pytest.approx(0.03)


def test_multiplier_lookup_order_param_dict_then_index_then_name():
    class Param:
        lr_mult, wd_mult = 4.0, 0.0

    optimizer = opt.SGD(learning_rate=1.0, wd=0.1, param_idx2name={0: "a_weight", 1: "b_weight"})
    optimizer.set_lr_mult({"a_weight": 2.0, "b_weight": 3.0, 1: 7.0})
    assert optimizer._get_lr(0) == 2.0 and optimizer._get_lr(1) == 7.0
    optimizer.param_dict = {0: Param()}
    assert optimizer._get_lr(0) == 4.0 and optimizer._get_wd(0) == 0.0
    # Gluon parameters are not pickled with the optimizer
    assert pickle.loads(pickle.dumps(optimizer)).param_dict == {}


def test_lr_mult_scales_the_step():
    optimizer = opt.SGD(learning_rate=0.1, param_idx2name={0: "x_weight"})
    optimizer.set_lr_mult({"x_weight": 3.0})
    (w1,) = run(optimizer, w0=[1.0], grads=[[1.0]])
    assert w1[0] == pytest.approx(0.7)


# -- the scheduler and update counting -----------------------------------------------------------------


def test_scheduler_base_lr_is_overwritten_and_queried_after_counting(capsys):
    scheduler = lrs.FactorScheduler(step=1, factor=0.5, base_lr=1.0)
    optimizer = opt.SGD(learning_rate=0.5, lr_scheduler=scheduler)
    assert capsys.readouterr().out == (
        "learning rate from ``lr_scheduler`` has been overwritten by ``learning_rate`` in optimizer.\n"
    )
    assert scheduler.base_lr == 0.5 and optimizer.learning_rate == 0.5
    # updates 1, 2, 3 use scheduler(1) = 0.5, scheduler(2) = 0.25, scheduler(3) = 0.125
    history = run(optimizer, w0=[0.0], grads=[[1.0]] * 3)
    check(history, [[-0.5], [-0.75], [-0.875]])
    assert optimizer.num_update == 3


def test_scheduler_keeps_its_base_lr_without_learning_rate(capsys):
    scheduler = lrs.FactorScheduler(step=10, base_lr=0.3)
    optimizer = opt.SGD(lr_scheduler=scheduler)
    assert capsys.readouterr().out == ""
    assert optimizer.lr is None and optimizer.learning_rate == 0.3
    with pytest.raises(UserWarning, match="LRScheduler of the optimizer has already been defined"):
        optimizer.set_learning_rate(0.1)
    plain = opt.SGD()
    plain.set_learning_rate(0.2)
    assert plain.learning_rate == 0.2


def test_begin_num_update_starts_the_counts():
    optimizer = opt.SGD(begin_num_update=10)
    run(optimizer, grads=GRADS[:2])
    assert optimizer.num_update == 12 and optimizer._index_update_count == {0: 12}


# -- the update step: one seam for the NumPy update and the compiled training step --------------------


def test_update_step_counts_the_update_and_hands_out_the_rule_and_scalars():
    adam = opt.Adam(learning_rate=0.1, beta1=0.5, beta2=0.75, rescale_grad=0.5, wd=0.1)
    step = adam.update_step(0, True)
    assert step.rule == "adam" and adam._index_update_count == {0: 1}
    assert step.scalars == {
        "lr": pytest.approx(0.1 * math.sqrt(1 - 0.75) / (1 - 0.5)),
        "wd": 0.1, "rescale_grad": 0.5, "clip_gradient": -1.0, "beta1": 0.5, "beta2": 0.75, "epsilon": 1e-8,
    }  # fmt: skip
    assert opt.SGD(momentum=0.9).update_step(0, False).rule == "sgd"
    assert opt.SGD(momentum=0.9).update_step(0, True).scalars["momentum"] == 0.9
    assert opt.NAG(momentum=0.9).update_step(0, True).rule == "nag_mom"
    assert opt.Signum().update_step(0, False) == opt.UpdateStep("signsgd", {"lr": 0.01, "wd": 0.0})


def test_probe_update_step_counts_nothing_and_advances_no_schedule():
    scheduler = lrs.FactorScheduler(step=1, factor=0.5, base_lr=1.0)
    nadam = opt.Nadam(lr_scheduler=scheduler)
    probe = nadam.probe_update_step(3)
    assert probe.rule == "nadam" and nadam._index_update_count == {} and nadam.num_update == 0
    assert nadam.m_schedule == 1.0
    counted = nadam.update_step(3, True)
    assert sorted(counted.scalars) == sorted(probe.scalars) and nadam._index_update_count == {3: 1}


def test_update_applies_exactly_the_step_update_step_hands_out():
    """Optimizer.update is update_step's rule run with NumPy: the same numbers as the rule itself."""
    from ember.compiler.ops.optimizer import numpy_step

    for optimizer in (opt.SGD(momentum=0.9, **BASE), opt.Adam(**BASE), opt.RMSProp(centered=True, **BASE),
                      opt.Ftrl(**BASE), opt.Nadam(**BASE)):  # fmt: skip
        twin = pickle.loads(pickle.dumps(optimizer))
        weight, grad = nd.array(W0), nd.array(GRADS[0])
        state = optimizer.create_state(0, weight)
        states = opt.base.state_arrays(state)
        step = twin.update_step(0, True)
        want_w, want_states = numpy_step(step.rule, W0.astype(np.float32), GRADS[0].astype(np.float32),
                                         [s.asnumpy() for s in states], step.scalars)  # fmt: skip
        optimizer.update(0, weight, grad, state)
        np.testing.assert_array_equal(weight.asnumpy(), want_w)
        for got, want in zip(states, want_states):
            np.testing.assert_array_equal(got.asnumpy(), want)


def test_update_step_scalars_must_match_the_rule():
    with pytest.raises(ValueError, match="update rule sgd takes the hyper-parameters lr, wd, rescale_grad"):
        opt.UpdateStep("sgd", {"lr": 0.1, "wd": 0.0}).check()


def test_has_update_rule_only_where_update_is_the_rule():
    class OwnStep(opt.Adam):
        def update_step(self, index, has_state):
            return super().update_step(index, has_state)

    class OwnUpdate(opt.SGD):
        def update(self, index, weight, grad, state):
            weight[:] = weight - grad

    class OwnStepAndUpdate(opt.Adam):  # its update, not its step, is what training must run
        def update_step(self, index, has_state):
            return super().update_step(index, has_state)

        def update(self, index, weight, grad, state):
            pass

    for name in ("sgd", "ccsgd", "nag", "adam", "rmsprop", "adagrad", "adadelta", "adamax", "nadam", "ftrl",
                 "signum"):  # fmt: skip
        assert opt.create(name).has_update_rule, name
    assert OwnStep().has_update_rule
    assert not OwnUpdate().has_update_rule and not opt.Test().has_update_rule
    assert not OwnStepAndUpdate().has_update_rule
    with pytest.raises(NotImplementedError, match="Test has no compiled update rule"):
        opt.Test().update_step(0, True)


# -- registry ------------------------------------------------------------------------------------------


def test_create_is_case_insensitive_and_passes_arguments():
    optimizer = opt.create("SGD", learning_rate=0.1, momentum=0.9)
    assert type(optimizer) is opt.SGD and optimizer.lr == 0.1 and optimizer.momentum == 0.9
    assert type(opt.Optimizer.create_optimizer("rmsprop")) is opt.RMSProp
    expected = {"sgd", "nag", "adam", "adagrad", "rmsprop", "adadelta", "adamax", "nadam", "ftrl", "signum"}
    assert expected <= set(opt.Optimizer.opt_registry)


def test_unknown_names_and_arguments_are_refused():
    with pytest.raises(
        ValueError, match="Cannot find optimizer AdamW; the registered optimizers are: .*adam"
    ):
        opt.create("AdamW")
    with pytest.raises(TypeError, match="foo"):
        opt.create("sgd", foo=1)
    with pytest.raises(TypeError, match="param_idx2name should be a dict"):
        opt.SGD(param_idx2name=["fc_weight"])


def test_register_a_custom_optimizer_and_warn_on_override():
    registry = dict(opt.Optimizer.opt_registry)
    try:

        @opt.register
        class HalfStep(opt.Optimizer):
            def update(self, index, weight, grad, state):
                weight[:] = weight - 0.5 * grad

        assert type(opt.create("halfstep")) is HalfStep
        with pytest.warns(UserWarning, match="New optimizer .*HalfStep is overriding existing optimizer"):
            opt.register(type("HalfStep", (opt.Optimizer,), {}))
    finally:
        opt.Optimizer.opt_registry.clear()
        opt.Optimizer.opt_registry.update(registry)


def test_rescale_grad_left_default_is_recognisable():
    # Ember deviation 1: Module sets 1/batch_size only when the user gave no rescale_grad
    assert opt.SGD().rescale_grad_is_default and opt.SGD().rescale_grad == 1.0
    assert not opt.SGD(rescale_grad=1.0).rescale_grad_is_default
    restored = pickle.loads(pickle.dumps(opt.Adam()))
    assert restored.rescale_grad_is_default
    changed = opt.SGD()
    changed.rescale_grad = 1.0 / 32
    assert not changed.rescale_grad_is_default


# -- Updater and states --------------------------------------------------------------------------------


def test_updater_creates_states_lazily_per_index():
    updater = opt.get_updater(opt.Adam())
    assert isinstance(updater, opt.Updater) and updater.states == {}
    weight = nd.array(np.ones((2, 3)), dtype="float64")
    updater(5, nd.array(np.ones((2, 3)), dtype="float64"), weight)
    assert list(updater.states) == [5]
    mean, var = updater.states[5]
    assert mean.shape == (2, 3) and mean.dtype is np.float64 and var.dtype is np.float64
    state_before = updater.states[5]
    updater(5, nd.array(np.ones((2, 3)), dtype="float64"), weight)
    assert updater.states[5] is state_before
    assert opt.get_updater(opt.SGD()).optimizer.create_state(0, weight) is None  # no momentum, no state


def test_updater_state_for_creates_once_and_syncs_loaded_states():
    updater = opt.get_updater(opt.SGD(momentum=0.9))
    weight = nd.array(W0)
    state = updater.state_for(0, weight)
    assert state.shape == (4,) and updater.state_for(0, weight) is state and updater.states_synced[0]
    updater.set_states(updater.get_states())
    assert not updater.states_synced[0]
    np.testing.assert_array_equal(updater.state_for(0, weight).asnumpy(), state.asnumpy())
    assert updater.states_synced[0]


def test_updater_accepts_lists_and_byte_keys():
    updater = opt.get_updater(opt.SGD(learning_rate=0.1, momentum=0.9))
    a, b = nd.array([1.0]), nd.array([2.0])
    updater([b"a", b"b"], [nd.array([1.0]), nd.array([-1.0])], [a, b])
    assert sorted(updater.states) == ["a", "b"]
    check([a.asnumpy(), b.asnumpy()], [[0.9], [2.1]])


def test_update_with_mismatched_shapes_names_the_index():
    with pytest.raises(ShapeError, match=r"index 3: the gradient's shape \(2,\) differs .* \(3,\)"):
        opt.get_updater(opt.SGD())(3, nd.array([1.0, 2.0]), nd.array([1.0, 2.0, 3.0]))


def test_get_states_set_states_round_trip_continues_training():
    uninterrupted = run(opt.SGD(learning_rate=0.1, momentum=0.9, **BASE))

    first = opt.get_updater(opt.SGD(learning_rate=0.1, momentum=0.9, **BASE))
    weight = nd.array(W0)
    for g in GRADS[:2]:
        first(0, nd.array(g), weight)
    # states only: a plain pickle of {index: momentum NDArray}
    states = pickle.loads(first.get_states())
    assert list(states) == [0] and isinstance(states[0], nd.NDArray)

    second = opt.get_updater(opt.SGD(learning_rate=0.1, momentum=0.9, **BASE))
    second.set_states(first.get_states())
    assert second.states_synced == {0: False}
    second(0, nd.array(GRADS[2]), weight)
    assert second.states_synced == {0: True}
    np.testing.assert_allclose(weight.asnumpy(), uninterrupted[2], rtol=1e-6)


def test_get_states_with_the_optimizer_restores_its_counts_and_scheduler():
    optimizer = opt.SGD(learning_rate=1.0, lr_scheduler=lrs.FactorScheduler(step=1, factor=0.5, base_lr=1.0))
    first = opt.get_updater(optimizer)
    weight = nd.array([0.0])
    first(0, nd.array([1.0]), weight)
    first(0, nd.array([1.0]), weight)
    restored = opt.get_updater(opt.Adam())
    restored.set_states(first.get_states(dump_optimizer=True))
    assert type(restored.optimizer) is opt.SGD and restored.optimizer.num_update == 2
    restored(0, nd.array([1.0]), weight)  # update 3 at scheduler(3) = 0.25
    np.testing.assert_allclose(weight.asnumpy(), [-1.75])


def test_set_states_reads_states_written_by_mxnet(mxnet_fixture):
    # lin-0003.states: MXNet 1.9.1's SGD momentum for a linear-regression Module, keyed by name
    updater = opt.get_updater(opt.SGD(momentum=0.9))
    updater.set_states(mxnet_fixture("lin-0003.states").read_bytes())
    assert sorted(updater.states) == ["fc_bias", "fc_weight"]
    weight_mom, bias_mom = updater.states["fc_weight"], updater.states["fc_bias"]
    assert weight_mom.shape == (1, 5) and weight_mom.dtype is np.float32
    np.testing.assert_allclose(
        weight_mom.asnumpy(), [[-0.01980653, 0.0187456, 0.01162516, -0.04233114, -0.01666967]], rtol=1e-6
    )
    np.testing.assert_allclose(bias_mom.asnumpy(), [0.04338404], rtol=1e-6)


def test_multi_precision_sgd_keeps_a_float32_master_copy():
    optimizer = opt.SGD(learning_rate=0.1, momentum=0.9, multi_precision=True, **BASE)
    updater = opt.get_updater(optimizer)
    weight = nd.array(W0, dtype="float16")
    for g in GRADS:
        updater(0, nd.array(g, dtype="float16"), weight)
    mom, master = updater.states[0]
    assert mom.dtype is np.float32 and master.dtype is np.float32
    expected = ref_sgd(0.1, momentum=0.9, **BASE)[-1]
    np.testing.assert_allclose(master.asnumpy(), expected, rtol=1e-3)  # float16 inputs
    np.testing.assert_array_equal(weight.asnumpy(), master.asnumpy().astype(np.float16))


def test_multi_precision_generic_wrapper_for_adam():
    updater = opt.get_updater(opt.Adam(learning_rate=0.01, multi_precision=True))
    weight = nd.array([1.0, -1.0], dtype="float16")
    updater(0, nd.array([2.0, -0.5], dtype="float16"), weight)
    master, (mean, _var) = updater.states[0]
    assert master.dtype is np.float32 and mean.dtype is np.float32
    np.testing.assert_allclose(master.asnumpy(), [0.99, -0.99], rtol=1e-5)
    assert weight.dtype is np.float16


def test_float16_without_multi_precision_warns():
    with pytest.warns(UserWarning, match="Consider using multi_precision=True option of the SGD optimizer"):
        opt.get_updater(opt.SGD(momentum=0.9))(
            0, nd.array([1.0], dtype="float16"), nd.array([1.0], dtype="float16")
        )
    with pytest.warns(UserWarning, match="Consider using multi_precision=True option of the optimizer"):
        opt.get_updater(opt.Adam())(0, nd.array([1.0], dtype="float16"), nd.array([1.0], dtype="float16"))
