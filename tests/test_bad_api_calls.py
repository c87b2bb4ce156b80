"""Bad API calls raise MXNetError subclasses with messages that say what was wrong.

Unknown optimizer, metric and initializer names and their wrong arguments raise RegistryError or
RegistryTypeError (also the ValueError and TypeError MXNet raises there); a 'cpu' string where a
Context belongs raises MXNetError naming the argument (MXNet 1.9.1 takes no strings there either);
a bind whose arrays the machine cannot hold, and a memory plan whose byte counts overflow, raise
before anything is allocated.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import ember as mx
import ember.context
from ember.compiler.passes import infer_shapes, infer_types
from ember.compiler.passes.plan_memory import plan_memory
from ember.metric.registry import RegistryError, RegistryTypeError
from ember.runtime import manifest
from ember.runtime.errors import CompileError, MXNetError, ShapeError

OPTIMIZERS = "adadelta, adagrad, adam, adamax, ccsgd, ftrl, nadam, nag, rmsprop, sgd, signum, test"


def classifier():
    data = mx.sym.Variable("data")
    return mx.sym.SoftmaxOutput(mx.sym.FullyConnected(data, num_hidden=3, name="fc"), name="softmax")


def bound_module(**kwargs) -> mx.mod.Module:
    module = mx.mod.Module(classifier(), **kwargs)
    module.bind(data_shapes=[("data", (2, 4))], label_shapes=[("softmax_label", (2,))])
    module.init_params()
    return module


# -- names and arguments of registered classes ---------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: mx.optimizer.create("nope"),
            RegistryError,
            f"^Cannot find optimizer nope; the registered optimizers are: {OPTIMIZERS}$",
        ),
        (
            lambda: mx.optimizer.create(3),
            RegistryTypeError,
            "^optimizer names are strings such as 'sgd'; got int 3$",
        ),
        (
            lambda: mx.optimizer.create(None),
            RegistryTypeError,
            "^optimizer names are strings such as 'sgd'; got NoneType None$",
        ),
        (
            lambda: mx.optimizer.create("sgd", bogus=1),
            RegistryTypeError,
            r"^cannot create optimizer 'sgd': .*unexpected keyword argument 'bogus'$",
        ),
        (
            lambda: mx.optimizer.create("SGD", param_idx2name=[1]),
            RegistryTypeError,
            "^cannot create optimizer 'SGD': param_idx2name should be a dict",
        ),
        (
            lambda: mx.optimizer.register(3),
            RegistryTypeError,
            "^register expects an optimizer class, not int$",
        ),
        (
            lambda: mx.metric.create("nope"),
            RegistryError,
            r"^nope is not registered\. Please register with metric\.register first "
            r"\(registered metrics: acc, ",
        ),
        (lambda: mx.metric.create(3), RegistryTypeError, "^metric must be of string type, got int$"),
        (lambda: mx.metric.create(None), RegistryTypeError, "^metric must be of string type, got NoneType$"),
        (
            lambda: mx.metric.create("[acc"),
            RegistryError,
            r"^metric spec '\[acc' is not valid JSON: Expecting value",
        ),
        (
            lambda: mx.metric.create('["acc"]'),
            RegistryError,
            r"""^metric spec '\["acc"\]' is neither \[name, \{arguments\}\] nor \{"metric": name, ...\}$""",
        ),
        (
            lambda: mx.metric.create("acc", bogus=1),
            RegistryTypeError,
            r"^cannot create metric 'acc': .*unexpected keyword argument 'bogus'$",
        ),
        (
            lambda: mx.metric.create("top_k_accuracy", top_k=1),
            RegistryError,
            "^cannot create metric 'top_k_accuracy': Please use Accuracy if top_k is no more than 1$",
        ),
        (
            lambda: mx.metric.create(len, bogus=1),
            RegistryTypeError,
            r"^cannot create a custom metric: .*unexpected keyword argument 'bogus'$",
        ),
        (
            lambda: mx.metric.register(int),
            RegistryTypeError,
            "^Can only register subclass of EvalMetric, got <class 'int'>$",
        ),
        (
            lambda: mx.init.create("nope"),
            RegistryError,
            r"^nope is not registered\. Please register with initializer\.register first",
        ),
        (
            lambda: mx.init.create('{"scale": 2}'),
            RegistryError,
            r"""^initializer spec '\{"scale": 2\}' is neither""",
        ),
    ],
)
def test_registries_refuse_names_and_arguments(call, error, message):
    with pytest.raises(error, match=message) as caught:
        call()
    assert isinstance(caught.value, MXNetError)
    # what MXNet raises here, so that code written for MXNet still catches it
    assert isinstance(caught.value, ValueError if error is RegistryError else TypeError)


def test_init_optimizer_refuses_unknown_names_and_wrong_types():
    module = bound_module()
    with pytest.raises(
        RegistryError, match="^Cannot find optimizer nope; the registered optimizers are: adadelta"
    ):
        module.init_optimizer(optimizer="nope")
    with pytest.raises(
        MXNetError,
        match=r"^init_optimizer: optimizer must be the name of a registered optimizer "
        r"\('sgd', 'adam', \.\.\.\) "
        r"or an mx\.optimizer\.Optimizer, not int 3$",
    ):
        module.init_optimizer(optimizer=3)
    with pytest.raises(
        MXNetError,
        match="^init_optimizer: optimizer_params must be a dict or \\(name, value\\) pairs, not int 5$",
    ):
        module.init_optimizer(optimizer_params=5)
    with pytest.raises(
        RegistryTypeError, match="^cannot create optimizer 'sgd': .*unexpected keyword argument 'lr'$"
    ):
        module.init_optimizer(optimizer_params={"lr": 0.1})
    assert not module.optimizer_initialized


def test_fit_refuses_an_unknown_metric_name():
    module = mx.mod.Module(classifier())
    data = mx.io.NDArrayIter(np.ones((4, 4), np.float32), np.zeros(4, np.float32), batch_size=2)
    with pytest.raises(
        RegistryError, match=r"^nope is not registered\. Please register with metric\.register first"
    ):
        module.fit(data, eval_metric="nope", num_epoch=1)


# -- contexts ---------------------------------------------------------------------------------------


def context_message(argument: str, value: str = "str 'cpu'") -> str:
    return f"^{argument} must be a Context: pass mx\\.cpu\\(\\) or mx\\.gpu\\(i\\), not {value}$"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: mx.mod.Module(classifier(), context="cpu"), context_message("Module's context")),
        (
            lambda: mx.mod.Module(classifier(), context=[mx.cpu(), "gpu"]),
            context_message("Module's context", "str 'gpu'"),
        ),
        (lambda: mx.mod.Module(classifier(), context=0), context_message("Module's context", "int 0")),
        (
            lambda: mx.mod.Module(classifier(), context=[]),
            r"^Module's context is an empty list; pass mx\.cpu\(\) or mx\.gpu\(i\), or a list of them$",
        ),
        (lambda: classifier().simple_bind("cpu", data=(2, 4)), context_message("simple_bind's ctx")),
        (
            lambda: classifier().simple_bind(ctx="cpu(0)", data=(2, 4)),
            context_message("simple_bind's ctx", r"str 'cpu\(0\)'"),
        ),
        (lambda: mx.nd.array([1, 2], ctx="cpu"), context_message("ctx")),
        (lambda: mx.nd.zeros((2,), ctx="cpu"), context_message("ctx")),
        (lambda: mx.nd.ones((2,), "gpu"), context_message("ctx", "str 'gpu'")),
        (lambda: mx.nd.empty((2,), "cpu"), context_message("ctx")),
        (lambda: mx.nd.full((2,), 1.0, ctx="cpu"), context_message("ctx")),
        (lambda: mx.nd.arange(3, ctx="cpu"), context_message("ctx")),
        (
            lambda: mx.nd.ones((2,)).copyto("cpu"),
            r"^copyto does not support type str: pass an NDArray, or a Context such as "
            r"mx\.cpu\(\) or mx\.gpu\(i\)$",
        ),
        (
            lambda: mx.nd.ones((2,)).as_in_context("cpu"),
            r"^copyto does not support type str: pass an NDArray",
        ),
        (lambda: mx.cpu("a"), "^device_id must be an integer such as 0 or 1, not 'a'$"),
        (lambda: mx.gpu(None), "^device_id must be an integer such as 0 or 1, not None$"),
        (
            lambda: mx.Context(["cpu"]),
            r"^unknown device type \['cpu'\]; expected one of cpu, gpu, cpu_pinned, cpu_shared$",
        ),
    ],
)
def test_a_string_where_a_context_belongs_is_refused(call, message):
    with pytest.raises(MXNetError, match=message) as caught:
        call()
    assert type(caught.value) is MXNetError


def test_contexts_are_still_taken_as_mxnet_takes_them():
    assert mx.mod.Module(classifier(), context=(mx.cpu(0), mx.cpu(1))).contexts == [mx.cpu(0), mx.cpu(1)]
    assert mx.nd.zeros((1,), ctx=mx.cpu(1)).context == mx.cpu(1)
    assert mx.Context("cpu", "2") == mx.cpu(2)  # MXNet keeps whatever id it is given; int() of it here
    assert classifier().simple_bind(None, data=(2, 4)).arg_dict["fc_weight"].context == mx.cpu(0)


# -- sizes that no machine holds --------------------------------------------------------------------


def test_binding_arrays_larger_than_the_machine_is_refused_before_allocating():
    data = mx.sym.Variable("data")
    huge = mx.sym.FullyConnected(data, num_hidden=10**12, name="fc")
    with pytest.raises(
        MXNetError,
        match=r"^simple_bind: fc_weight of shape \(1000000000000, 3\) \(float32\) needs 12000000000000 bytes "
        r"\(10\.9 TiB\), more than this machine's \d+ bytes \(.*\) of memory$",
    ):
        huge.simple_bind(mx.cpu(), data=(2, 3))
    with pytest.raises(
        MXNetError,
        match=r"^simple_bind: data of shape \(2147483648, 2147483648, 16\) \(float32\) "
        r"needs 295147905179352825856 bytes \(256\.0 EiB\)",
    ):
        mx.sym.relu(data).simple_bind(mx.cpu(), data=(2**31, 2**31, 16))


def test_bound_arrays_are_counted_together(monkeypatch):
    monkeypatch.setattr(ember.context, "host_memory_bytes", lambda: 1000)
    with pytest.raises(
        MXNetError,
        match=r"^simple_bind: the arrays need 1200 bytes \(1\.2 KiB\) in all, more than this machine's "
        r"1000 bytes of memory; the largest: data of shape \(10, 10\) \(float32\) needs 400 bytes; "
        r"data's gradient of shape \(10, 10\) \(float32\) needs 400 bytes; "
        r"output relu_output of shape \(10, 10\) \(float32\) needs 400 bytes$",
    ):
        mx.sym.relu(mx.sym.Variable("data"), name="relu").simple_bind(mx.cpu(), data=(10, 10))
    executor = mx.sym.relu(mx.sym.Variable("data"), name="relu").simple_bind(
        mx.cpu(), grad_req="null", data=(10, 10)
    )
    assert executor.arg_dict["data"].shape == (10, 10)  # 800 bytes fit


def test_an_allocation_the_os_refuses_names_the_array(monkeypatch):
    monkeypatch.setattr(ember.context, "host_memory_bytes", lambda: 2**62)  # a machine that claims enough
    data = mx.sym.Variable("data")
    with pytest.raises(
        MXNetError,
        match=r"^simple_bind: cannot allocate fc_weight of shape \(1099511627776, 1024\) \(float32\): ",
    ):
        mx.sym.FullyConnected(data, num_hidden=2**40, name="fc").simple_bind(
            mx.cpu(), grad_req="null", data=(2, 1024)
        )


def relu_plan(shape):
    graph = mx.sym.relu(mx.sym.Variable("data"), name="r")._graph
    shapes = infer_shapes(graph, {"data": shape})
    return plan_memory(graph, shapes, infer_types(graph, {}, default="float32"))


def test_memory_plans_count_bytes_exactly_and_refuse_overflowing_buffers():
    # 2**31 * 2**31 * 16 float32 elements: NumPy's int64 product wrapped this to 0 bytes
    with pytest.raises(
        ShapeError,
        match=r"^data of shape \(2147483648, 2147483648, 16\) \(float32\) needs 295147905179352825856 bytes, "
        r"more than the 281474976710656 a buffer may have$",
    ):
        relu_plan((2**31, 2**31, 16))
    with pytest.raises(
        CompileError, match=r"^the planned arena needs 562949953421312 bytes, more than the 281474976710656"
    ):
        relu_plan((2**46,))  # two buffers of exactly 2**48 bytes each: each fits, the two do not
    plan = relu_plan((2**42,))
    assert [b.nbytes for b in plan.buffers] == [2**44, 2**44] and plan.arena_bytes == 2**45


def test_the_planner_and_the_artifact_loader_share_one_size_bound():
    """A plan the planner accepts is never refused as corrupt when its artifact is loaded."""
    # the package re-exports a function of the module's name
    planner = importlib.import_module("ember.compiler.passes.plan_memory")
    assert planner.MAX_BYTES == manifest.MAX_BYTES


def test_hyper_parameters_an_update_cannot_use_are_named():
    updater = mx.optimizer.get_updater(
        mx.optimizer.Adam(beta1=1.0)
    )  # bias correction divides by 1 - beta1**t
    weight = mx.nd.ones((2,))
    with pytest.raises(
        MXNetError, match=r"^Adam's update of index 0 failed with ZeroDivisionError: float division by zero$"
    ):
        updater(0, mx.nd.ones((2,)), weight)
    assert weight.asnumpy().tolist() == [1.0, 1.0]
