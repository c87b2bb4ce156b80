"""`.states` files are read as data: crafted pickles run no code, malformed ones raise ArtifactError.

Each malicious file would create a marker file if anything it names ran; the tests assert the marker
is absent and the exact refusal. MXNet 1.9.1's own file still loads with its values, Ember's
`get_states` round-trips under every pickle protocol, and a seeded fuzz of mutated files (via
tests/fuzzing.py) finds every case loading or raising an MXNetError.
"""

from __future__ import annotations

import builtins
import os
import pickle
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable

import numpy as np
import pytest

import ember as mx
from ember import lr_scheduler
from ember.optimizer import SGD, Adam
from ember.optimizer.states import _SCHEDULER_SAMPLES, load_states
from ember.runtime.errors import ArtifactError, MXNetError, ShapeError
from tests.fuzzing import mutations, outcomes

PROTOCOLS = range(pickle.HIGHEST_PROTOCOL + 1)


class Call:
    """Pickles as a call of `func(*args)`: what a crafted file does with REDUCE."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


class MarkerOptimizer(SGD):
    """A registered optimizer whose own __setstate__ would leave a marker: the loader never calls it."""

    marker = ""

    def __setstate__(self, state):
        open(self.marker, "w").close()
        super().__setstate__(state)


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "code-ran"
    yield str(path)
    assert not path.exists(), "a crafted .states file ran code"


def refused(data: bytes, fragment: str) -> str:
    with pytest.raises(ArtifactError, match=fragment) as caught:
        load_states(data, "crafted.states")
    assert str(caught.value).startswith("cannot load optimizer states from crafted.states: ")
    return str(caught.value)


# -- globals that run code --------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    ("call", "refused_global"),
    [
        (lambda m: Call(os.system, f"touch {m}"), f"{os.system.__module__}.system"),
        (lambda m: Call(subprocess.Popen, ["touch", m]), "subprocess.Popen"),
        (lambda m: Call(subprocess.check_call, ["touch", m]), "subprocess.check_call"),
        (lambda m: Call(builtins.eval, f"open({m!r}, 'w')"), "builtins.eval"),
        (lambda m: Call(builtins.exec, f"open({m!r}, 'w')"), "builtins.exec"),
        (lambda m: Call(builtins.getattr, SGD, "update"), "builtins.getattr"),
        (lambda m: Call(builtins.open, m, "w"), f"{builtins.open.__module__}.open"),
    ],
)
def test_globals_that_run_code_are_refused(marker, protocol, call, refused_global):
    # inside a valid states dict, as a planted file would hide it
    data = pickle.dumps({0: mx.nd.ones((2,)), 1: call(marker)}, protocol=protocol, fix_imports=False)
    refused(data, rf"the global {refused_global} is refused: a \.states file may name only NumPy arrays")


def test_a_hand_written_protocol_0_os_system_is_refused(marker):
    data = f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()
    message = refused(data, "the global os.system is refused")
    assert message.endswith("(at byte 0, opcode GLOBAL)")


def test_naming_a_global_imports_nothing(tmp_path, monkeypatch, marker):
    # a module whose import alone would leave the marker
    (tmp_path / "planted_states_module.py").write_text(f"open({marker!r}, 'w').close()\nvalue = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    refused(
        b"\x80\x04\x8c\x15planted_states_module\x8c\x05value\x93.", "the global planted_states_module.value"
    )
    assert "planted_states_module" not in sys.modules


@pytest.mark.parametrize(
    ("opcode", "name"),
    [
        (b"i", "INST"),
        (b"o", "OBJ"),
        (b"P", "PERSID"),
        (b"Q", "BINPERSID"),
        (b"\x82", "EXT1"),
        (b"\x97", "NEXT_BUFFER"),
    ],
)
def test_opcodes_that_reach_outside_the_data_are_refused(opcode, name):
    refused(b"\x80\x05(" + opcode, rf"the pickle opcode {name} is refused \(states files hold plain data\)")


# -- allowed classes called or filled the wrong way -----------------------------------------------


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (Call(SGD, 0.5), r"SGD \(created empty\) is called with \(float\), which it does not take"),
        (Call(lr_scheduler.FactorScheduler, 1), r"FactorScheduler \(created empty\) is called with \(int\)"),
        (Call(mx.nd.NDArray, np.ones(2)), r"NDArray \(created empty\) is called with \(ndarray\)"),
        (
            Call(np.dtype, "O8", False, True),
            "numpy.dtype is asked for 'O8', which is not a plain numeric type code",
        ),
        (Call(bytearray, 2**40), r"bytearray is called with \(int\), which it does not take"),
        (Call(np.ndarray, (3,)), "numpy.ndarray is called; a states file may only pass it as an argument"),
    ],
)
def test_allowed_globals_take_only_the_arguments_pickles_give_them(value, fragment):
    refused(pickle.dumps({0: value}, protocol=4), fragment)


def optimizer_with(**attributes) -> bytes:
    optimizer = SGD(momentum=0.9)
    vars(optimizer).update(attributes)
    return pickle.dumps(({}, optimizer), protocol=4)


@pytest.mark.parametrize(
    ("attributes", "fragment"),
    [
        ({"update_step": 1.0}, "SGD is given an attribute 'update_step', which would hide a method"),
        ({"learning_rate": 5.0}, "SGD is given an attribute 'learning_rate', which would hide a method"),
        ({"__class__": 1}, "SGD is given an attribute named str '__class__'"),
        (
            {"helper": mx.optimizer.base._DefaultRescale},
            "hold a reference to ember.optimizer.base._DefaultRescale",
        ),
        ({"inner": Adam()}, "the attributes of SGD hold a Adam, where only plain data belongs"),
        ({"lr_scheduler": mx.nd.ones((1,))}, "SGD.lr_scheduler is given a NDArray"),
        ({"momentum": "0.9"}, "SGD.momentum is given str '0.9'; a float belongs there"),
        ({"lr": None}, "SGD.lr is given None; a float belongs there"),  # None only beside a scheduler
        ({"lr_mult": {0: "x"}}, r"SGD.lr_mult holds an entry that is not index or name -> Real"),
        ({"idx2name": {0: 1.5}}, r"SGD.idx2name holds an entry that is not index or name -> str"),
    ],
)
def test_an_optimizer_is_filled_with_plain_data_only(attributes, fragment):
    refused(optimizer_with(**attributes), fragment)


def test_an_optimizer_missing_its_attributes_is_refused():
    optimizer = SGD(momentum=0.9)
    del optimizer.momentum, optimizer.lr
    refused(pickle.dumps(({}, optimizer)), "SGD is given no lr, momentum")


def test_a_class_own_setstate_never_runs(marker):
    MarkerOptimizer.marker = marker
    mx.optimizer.register(MarkerOptimizer)
    try:
        optimizer = MarkerOptimizer(learning_rate=0.5)
        states, loaded = load_states(pickle.dumps(({}, optimizer)), "registered.states")
    finally:
        del mx.optimizer.Optimizer.opt_registry["markeroptimizer"]
    assert type(loaded) is MarkerOptimizer and loaded.lr == 0.5 and loaded.param_dict == {} and states == {}


def test_build_of_a_shell_is_checked_and_happens_once():
    shell = b"\x80\x04\x8c\x15mxnet.ndarray.ndarray\x8c\x07NDArray\x93N\x85R"
    refused(
        b"\x80\x04}K\x00" + shell + b"}\x8c\x04code\x8c\x01xsbs.",
        r"pickled NDArray is corrupt: its state must be a dict whose 'handle' holds the bytes of one array "
        r"record, got a dict whose handle is NoneType",
    )
    refused(
        b"\x80\x04}K\x00" + shell + b"s.",
        "the file creates NDArray objects but never gives them their contents",
    )
    record = bytes(mx.nd.ones((1,)).__getstate__()["handle"])
    built = pickle.dumps(mx.nd.ones((1,)), protocol=4)[:-1]  # REDUCE + BUILD, without the STOP
    second_build = b"}\x8c\x06handleC" + bytes([len(record)]) + record + b"sb."
    refused(built + second_build, "a NDArray is given its contents a second time")


def test_containers_nested_past_what_hashing_survives_are_refused():
    # a million nested tuples used as a dict key would crash CPython's (unguarded) tuple hash
    refused(
        b"\x80\x04}" + b")" + b"\x85" * 1_000_000 + b"K\x01s.", "tuples or frozensets nest more than 100 deep"
    )
    refused(
        b"\x80\x04}K\x00" + b"]" * 100_000 + b"a" * 99_999 + b"s.",
        "the state of 0 nests more than 8 levels deep",
    )


# -- what a loaded file may hold ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ([mx.nd.ones((1,))], "the file holds a list, not a dict of states or \\(states, optimizer\\)"),
        ({0: "momentum"}, "the state of 0 holds str 'momentum', where NDArrays and None belong"),
        (
            {0: (mx.nd.ones((1,)), np.ones(1))},
            "the state of 0 holds a ndarray, where NDArrays and None belong",
        ),
        ({1.5: None}, "a state is keyed by float 1.5, not by a parameter index or name"),
        (({}, 5), "the states are paired with int 5, not an Optimizer"),
        (({0: None}, {"lr": 1}), "the states are paired with a dict, not an Optimizer"),
    ],
)
def test_the_loaded_structure_is_checked(value, fragment):
    message = refused(pickle.dumps(value), fragment)
    assert "(at byte" not in message  # the value is at fault, not an opcode


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", r"the file is truncated: an opcode needs 1 bytes, 0 remain \(at byte 0\)"),
        (
            b"\x80\x04\x8e" + (2**60).to_bytes(8, "little"),
            r"BINBYTES8 needs 1152921504606846976 bytes, 0 remain",
        ),
        (b"\x80\x09N.", "uses pickle protocol 9; the highest there is is 5"),
        (b"\x80\x04h\x07.", "memo entry 7 is read but was never stored"),
        (b"\x80\x04\x8c\x02\xff\xfe.", r"the file is corrupt \(UnicodeDecodeError"),
        (b"\x80\x04s.", r"2 values are taken from a stack of 0"),
        (b"\x80\x04I9" + b"9" * 5000 + b"\n.", r"the file is corrupt \(ValueError"),
    ],
)
def test_malformed_files_raise_artifact_error(data, fragment):
    refused(data, fragment)


def test_set_states_takes_bytes_and_keeps_its_states_when_refusing():
    updater = mx.optimizer.get_updater(SGD(momentum=0.9))
    updater(0, mx.nd.ones((2,)), mx.nd.ones((2,)))
    before = updater.states[0]
    with pytest.raises(MXNetError, match="states are the bytes get_states returns, not a str"):
        updater.set_states("not bytes")
    with pytest.raises(
        ArtifactError, match="cannot load optimizer states from my.states: the global os.system"
    ):
        updater.set_states(b"cos\nsystem\n(S'true'\ntR.", source="my.states")
    assert updater.states == {0: before}


# -- Module entry points -------------------------------------------------------------------------


def test_module_load_with_a_crafted_states_file_runs_nothing(mxnet_fixture, tmp_path, marker):
    for name in ("lin-symbol.json", "lin-0003.params"):
        shutil.copy(mxnet_fixture(name), tmp_path / name)
    planted = pickle.dumps({"fc_weight": Call(os.system, f"touch {marker}")})
    (tmp_path / "lin-0003.states").write_bytes(planted)
    prefix = str(tmp_path / "lin")

    module = mx.mod.Module.load(prefix, 3, load_optimizer_states=True, label_names=["lin_reg_label"])
    module.bind(data_shapes=[("data", (4, 5))], label_shapes=[("lin_reg_label", (4,))])
    with pytest.raises(MXNetError, match="system is refused"):
        module.init_optimizer(optimizer="sgd", optimizer_params={"momentum": 0.9})

    trained = mx.mod.Module.load(prefix, 3, label_names=["lin_reg_label"])
    trained.bind(data_shapes=[("data", (4, 5))], label_shapes=[("lin_reg_label", (4,))])
    trained.init_optimizer(optimizer="sgd", optimizer_params={"momentum": 0.9})
    with pytest.raises(MXNetError, match="system is refused"):
        trained.load_optimizer_states(prefix + "-0003.states")


# -- what must still load -----------------------------------------------------------------------


def test_mxnet_states_load_with_their_values(mxnet_fixture):
    states, optimizer = load_states(mxnet_fixture("lin-0003.states").read_bytes(), "lin-0003.states")
    assert optimizer is None and sorted(states) == ["fc_bias", "fc_weight"]
    assert states["fc_weight"].dtype is np.float32 and states["fc_weight"].context == mx.cpu(0)
    np.testing.assert_array_equal(
        states["fc_weight"].asnumpy(),
        np.array([[-0.019806527, 0.018745596, 0.011625162, -0.042331137, -0.016669674]], dtype=np.float32),
    )
    np.testing.assert_array_equal(states["fc_bias"].asnumpy(), np.array([0.043384038], dtype=np.float32))


def trained_updater() -> mx.optimizer.Updater:
    schedule = lr_scheduler.MultiFactorScheduler(step=[1, 3], factor=0.5, base_lr=0.1)
    updater = mx.optimizer.get_updater(Adam(0.1, lr_scheduler=schedule, multi_precision=True, wd=0.01))
    weight = mx.nd.array([[1.0, 2.0], [3.0, 4.0]], dtype="float16")
    for step in range(3):
        updater(0, mx.nd.array([[0.5, -0.5], [0.25, step]], dtype="float16"), weight)
        updater("bias", mx.nd.array([0.1, 0.2]), mx.nd.array([1.0, 1.0]))
    return updater


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_ember_states_round_trip_under_every_protocol(protocol):
    updater = trained_updater()
    vars(updater.optimizer).update(
        extra=(np.float32(0.5), np.arange(3), {1, 2}, frozenset("a"), b"x", 1 + 2j)
    )
    data = pickle.dumps((updater.states, updater.optimizer), protocol=protocol)
    states, optimizer = load_states(data, "ember.states")
    expected_states, expected_optimizer = pickle.loads(data)
    assert type(optimizer) is Adam and type(optimizer.lr_scheduler) is lr_scheduler.MultiFactorScheduler
    assert optimizer.num_update == 3 and optimizer.lr_scheduler.cur_step_ind == 1
    assert vars(optimizer.lr_scheduler) == vars(expected_optimizer.lr_scheduler)
    assert optimizer.extra[2:] == ({1, 2}, frozenset("a"), b"x", 1 + 2j)
    assert optimizer.extra[0] == np.float32(0.5) and optimizer.extra[1].tolist() == [0, 1, 2]
    assert sorted(states, key=str) == [0, "bias"]
    master, (mean, var) = states[0]
    assert master.dtype is np.float32 and mean.dtype is np.float32
    loaded = [master, mean, var, *states["bias"]]
    expected = [expected_states[0][0], *expected_states[0][1], *expected_states["bias"]]
    for got, want in zip(loaded, expected, strict=True):
        np.testing.assert_array_equal(got.asnumpy(), want.asnumpy())


def test_set_states_with_the_optimizer_continues_training_identically():
    uninterrupted, restored = trained_updater(), mx.optimizer.get_updater(SGD())
    restored.set_states(uninterrupted.get_states(dump_optimizer=True))
    assert type(restored.optimizer) is Adam and restored.states_synced == {0: False, "bias": False}
    weights = {}
    for name, updater in (("uninterrupted", uninterrupted), ("restored", restored)):
        weights[name] = mx.nd.array([1.0, 1.0])
        updater("bias", mx.nd.array([0.3, -0.3]), weights[name])
    assert weights["restored"].asnumpy().tolist() == weights["uninterrupted"].asnumpy().tolist()
    assert weights["restored"].asnumpy().tolist() != [1.0, 1.0]


@pytest.mark.parametrize(
    ("optimizer", "restored", "fragment"),
    [
        (
            Adam(),
            {0: mx.nd.zeros((2,))},
            r"holds array \(2,\), but Adam keeps \(array \(3,\), array \(3,\)\)",
        ),
        (
            Adam(),
            {0: None},
            r"holds None, but Adam keeps \(array \(3,\), array \(3,\)\) for a float32 weight",
        ),
        (SGD(momentum=0.9), {0: (mx.nd.zeros((3,)),)}, r"holds \(array \(3,\)\), but SGD keeps array \(3,\)"),
        (
            SGD(momentum=0.9),
            {0: mx.nd.zeros((3,), dtype="int8")},
            r"holds int8 array \(3,\), but SGD keeps array \(3,\)",
        ),
    ],
)
def test_a_restored_state_that_does_not_fit_its_weight_is_a_shape_error(optimizer, restored, fragment):
    updater = mx.optimizer.get_updater(optimizer)
    updater.set_states(pickle.dumps(restored))
    weight = mx.nd.ones((3,))
    with pytest.raises(ShapeError, match="the optimizer state restored for index 0 " + fragment):
        updater(0, mx.nd.ones((3,)), weight)
    assert weight.asnumpy().tolist() == [1.0, 1.0, 1.0]


def test_an_optimizer_without_lr_loads_beside_a_scheduler_which_gives_the_rate():
    optimizer = SGD(lr_scheduler=lr_scheduler.FactorScheduler(step=2, base_lr=0.5))
    optimizer.lr = None
    _, loaded = load_states(pickle.dumps(({}, optimizer)), "scheduled.states")
    assert loaded.lr is None and loaded._get_lr(0) == 0.5


@pytest.mark.parametrize(
    ("attributes", "fragment"),
    [
        ({"step": 0}, "Schedule step must be greater or equal than 1 round"),  # __call__ would loop forever
        ({"factor": 2.0}, "Factor must be no more than 1 to make lr reduce"),
    ],
)
def test_a_scheduler_is_checked_by_its_own_constructor(attributes, fragment):
    scheduler = lr_scheduler.FactorScheduler(step=1)
    vars(scheduler).update(attributes)
    paired = pickle.dumps(({}, SGD(lr_scheduler=scheduler)))
    refused(paired, "FactorScheduler is given values its constructor refuses: " + fragment)


def test_a_schedule_far_behind_its_optimizer_catches_up_at_once():
    """A file may pair a fresh schedule with an optimizer 10**12 updates on: one jump, not 10**12 rounds."""
    scheduler = lr_scheduler.FactorScheduler(step=1, factor=0.5, stop_factor_lr=1e-8, base_lr=1.0)
    assert scheduler(10**12) == 1e-8 and scheduler.count == 10**12 - 1
    near = lr_scheduler.FactorScheduler(step=10, factor=0.9, base_lr=0.1)  # close: stepped one by one,
    expected = 0.1  # each step rounding as MXNet's loop does
    for _ in range(10):
        expected *= 0.9
    assert near(105) == expected and near.count == 100


def test_every_lr_scheduler_class_can_be_loaded():
    assert sorted(_SCHEDULER_SAMPLES) == sorted(lr_scheduler.__all__)


# -- fuzz ---------------------------------------------------------------------------------------


def load_and_update(weights: dict) -> Callable[[str, bytes], None]:
    """A fuzz loader: the states into an Updater, then one update of each of `weights` (index -> the
    weight's shape and dtype), which is where a state that loaded but does not fit would fail."""

    def run(description: str, data: bytes) -> None:
        updater = mx.optimizer.get_updater(SGD(momentum=0.9))
        updater.set_states(data, source=description)
        for index, (shape, dtype) in weights.items():
            updater(index, mx.nd.ones(shape, dtype=dtype), mx.nd.ones(shape, dtype=dtype))

    return run


def test_mutated_states_files_load_or_raise_mxnet_error(mxnet_fixture, capsys):
    mxnet = mxnet_fixture("lin-0003.states").read_bytes()
    ember = trained_updater().get_states(dump_optimizer=True)
    mxnet_weights = {"fc_weight": ((1, 5), "float32"), "fc_bias": ((1,), "float32")}
    ember_weights = {0: ((2, 2), "float16"), "bias": ((2,), "float32")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # float16 advice from optimizers the mutations make
        counts = {
            "MXNet 1.9.1 lin-0003.states": outcomes(
                load_and_update(mxnet_weights), mutations(mxnet, seed=12, count=5000)
            ),
            "Ember Adam + scheduler, dump_optimizer": outcomes(
                load_and_update(ember_weights), mutations(ember, seed=13, count=5000)
            ),
        }
    with capsys.disabled():
        for name, counted in counts.items():
            print(
                f"\n.states fuzz (load, then one update per weight), {name}: {dict(sorted(counted.items()))}"
            )
    for counted in counts.values():
        assert sum(counted.values()) == 5000 and counted["ArtifactError"] > 0 and counted["loaded"] > 0
