"""Every save is atomic (runtime/files.py): a full disk and kill -9 mid-save leave the old files loadable.

The full disk is real: a forked child ignores SIGXFSZ and lowers RLIMIT_FSIZE, so the kernel fails its
writes past the limit with EFBIG, and each save must raise DiskFullError and leave the files the parent
wrote before as they were. The kills are real too: a forked child saves in a loop and is sent SIGKILL
after a seeded random delay, again and again; after each kill the files must load and form one whole
checkpoint, old or new, and no temporary may stay (a named one is swept by the next process's first
write into the folder). The reader's side, `read_regular_file`, is tested at the end.
"""

from __future__ import annotations

import errno
import json
import os
import random
import re
import resource
import select
import signal
import socket
import stat
import time
import traceback

import numpy as np
import pytest

import ember as mx
from ember.base import ArtifactError, MXNetError
from ember.bench.report import write_json
from ember.cli import CliError, save_npy
from ember.runtime import files
from ember.runtime.errors import DiskFullError
from ember.runtime.files import write_atomic
from ember.runtime.model import load as load_compiled
from tests.fuzzing import time_limit

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the child processes are forked (POSIX only)")

FILE_SIZE_LIMIT = 512  # bytes a full-disk child may write to one file; every new file below is larger
KILLS = 15  # SIGKILLs per kill test
CHILD_SECONDS = 60  # a full-disk child that has not reported by then is stuck: killed, and the test fails
TEMPORARY = re.compile(r"\.(?P<dest>.+)\.(?P<pid>\d+)-[0-9a-f]{8}-[0-9a-f]{8}\.tmp")


# -- helpers ------------------------------------------------------------------------------------------


def dense_module(inputs: int, hidden: int, name: str = "fc") -> mx.mod.Module:
    """A bound one-layer classifier with SGD-momentum states (one update made, so the states exist)."""
    data = mx.sym.Variable("data")
    net = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(data, num_hidden=hidden, name=name), name="softmax")
    module = mx.mod.Module(net)
    module.bind(data_shapes=[("data", (2, inputs))], label_shapes=[("softmax_label", (2,))])
    module.init_params()
    module.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.1, "momentum": 0.9})
    module.forward_backward(mx.io.DataBatch([mx.nd.zeros((2, inputs))], [mx.nd.zeros((2,))]))
    module.update()
    return module


def fill_module(module: mx.mod.Module, value: float) -> None:
    """Every parameter and every optimizer state of `module` set to `value` (which then names a save)."""
    arg_params, aux_params = module.get_params()
    module.set_params({n: mx.nd.full(a.shape, value) for n, a in arg_params.items()}, aux_params)
    for state in module._updater.states.values():
        state[:] = value


def uniform_value(arrays) -> float:
    """The one value every element of `arrays` holds; fails when they hold several (a torn save)."""
    values = {float(v) for array in arrays for v in np.unique(array.asnumpy())}
    assert len(values) == 1, f"arrays of one save hold several values: {sorted(values)[:5]}"
    return values.pop()


def states_value(loader: mx.mod.Module, path) -> float:
    """The value filling the optimizer states saved at `path`, read through `loader`."""
    loader.load_optimizer_states(str(path))
    return uniform_value(loader._updater.states.values())


def temporaries(folder) -> list[str]:
    """Names in `folder` that are a writer's temporary files."""
    return sorted(name for name in os.listdir(folder) if name.endswith(".tmp"))


def compiled_dense(inputs: int, hidden: int, value: float):
    """`ember.compile` of a FullyConnected layer whose weights and bias all hold `value`."""
    data = mx.sym.Variable("data")
    net = mx.sym.FullyConnected(data, num_hidden=hidden, name="fc")
    params = {"fc_weight": mx.nd.full((hidden, inputs), value), "fc_bias": mx.nd.full((hidden,), value)}
    return mx.compile(net, shapes={"data": (1, inputs)}, params=params)


def compiled_output(path, inputs: int) -> np.ndarray:
    """What the artifact at `path` computes for an all-ones input."""
    return load_compiled(path)(data=np.ones((1, inputs), np.float32))[0][0]


def in_child(action, file_size_limit: int | None = None) -> dict:
    """Run `action()` in a forked child (under RLIMIT_FSIZE when a limit is given, SIGXFSZ ignored, so
    writes past it fail with EFBIG) and return what it raised: {'type': qualified name, 'message': ...}."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 0
        try:
            os.close(reader)
            if file_size_limit is not None:
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))
            try:
                action()
                outcome = {"type": None, "message": ""}
            except BaseException as err:  # noqa: BLE001  (reported to the parent, which asserts on it)
                outcome = {"type": f"{type(err).__module__}.{type(err).__qualname__}", "message": str(err)}
            os.write(writer, json.dumps(outcome).encode())
        except BaseException:  # noqa: BLE001
            traceback.print_exc()
            code = 3
        finally:
            os._exit(code)
    os.close(writer)
    if not select.select([reader], [], [], CHILD_SECONDS)[0]:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail(f"the child did not finish its save within {CHILD_SECONDS} s")
    with os.fdopen(reader, "rb") as stream:
        report = stream.read()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"the child failed (status {status})"
    return json.loads(report)


def kill_during(loop, delay: float) -> int:
    """Fork a child running `loop()` (which never ends), SIGKILL it after `delay` seconds, reap it;
    its pid."""
    pid = os.fork()
    if pid == 0:
        try:
            loop()
        except BaseException:  # noqa: BLE001
            traceback.print_exc()
        finally:
            os._exit(3)
    time.sleep(delay)
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (
        f"the saving child ended by itself (status {status}) before it was killed; its error is above"
    )
    return pid


def check_leftovers_are_swept(folder, killed_pid: int, path) -> int:
    """Any temporary after a kill is the killed writer's (named between link and rename, or by the
    fallback), and a new process's first write into the folder (here: `path` rewritten unchanged, after
    this process forgets it swept the folder) removes it. Returns how many there were."""
    left = temporaries(folder)
    for name in left:
        match = TEMPORARY.fullmatch(name)
        assert match and int(match["pid"]) == killed_pid, f"{name} is not a temporary of the killed child"
    content = open(path, "rb").read()
    files.forget_swept_folders()
    write_atomic(path, [content])
    assert temporaries(folder) == [] and open(path, "rb").read() == content
    return len(left)


# -- full disk ----------------------------------------------------------------------------------------


FULL_DISK = re.compile(r"cannot write '(?P<path>[^']+)': File too large")


def assert_full_disk(outcome: dict, path) -> None:
    assert outcome["type"] == "ember.runtime.errors.DiskFullError", outcome
    match = FULL_DISK.fullmatch(outcome["message"])
    assert match and match["path"] == str(path), outcome["message"]


def test_full_disk_during_module_save_checkpoint_keeps_the_old_checkpoint(tmp_path):
    module, loader = dense_module(16, 32), dense_module(16, 32)
    prefix = str(tmp_path / "net")
    fill_module(module, 1.0)
    module.save_checkpoint(prefix, 1, save_optimizer_states=True)
    saved = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    fill_module(module, 2.0)

    # the same epoch again (the states, written first, fail), then a new epoch
    outcome = in_child(lambda: module.save_checkpoint(prefix, 1, save_optimizer_states=True), FILE_SIZE_LIMIT)
    assert_full_disk(outcome, f"{prefix}-0001.states")
    outcome = in_child(lambda: module.save_checkpoint(prefix, 2, save_optimizer_states=True), FILE_SIZE_LIMIT)
    assert_full_disk(outcome, f"{prefix}-0002.states")

    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == saved
    symbol, arg_params, _ = mx.model.load_checkpoint(prefix, 1)
    assert symbol.tojson() == module.symbol.tojson()
    assert uniform_value(arg_params.values()) == 1.0
    assert states_value(loader, f"{prefix}-0001.states") == 1.0


def test_full_disk_during_save_optimizer_states_keeps_the_old_states(tmp_path):
    module, loader = dense_module(16, 32), dense_module(16, 32)
    path = tmp_path / "opt.states"
    fill_module(module, 1.0)
    module.save_optimizer_states(str(path))
    fill_module(module, 2.0)
    assert_full_disk(in_child(lambda: module.save_optimizer_states(str(path)), FILE_SIZE_LIMIT), path)
    assert os.listdir(tmp_path) == ["opt.states"]
    assert states_value(loader, path) == 1.0


def test_full_disk_during_nd_save_keeps_the_old_file(tmp_path):
    path = tmp_path / "w.params"
    mx.nd.save(str(path), {"w": mx.nd.full((8,), 1.0)})
    outcome = in_child(lambda: mx.nd.save(str(path), {"w": mx.nd.full((1000,), 2.0)}), FILE_SIZE_LIMIT)
    assert_full_disk(outcome, path)
    assert os.listdir(tmp_path) == ["w.params"]
    np.testing.assert_array_equal(mx.nd.load(str(path))["w"].asnumpy(), np.full((8,), 1.0, np.float32))


def test_full_disk_during_symbol_save_keeps_the_old_file(tmp_path):
    path = tmp_path / "net-symbol.json"
    small = mx.sym.FullyConnected(mx.sym.Variable("data"), num_hidden=2, name="fc")
    small.save(str(path))
    large = small
    for i in range(20):
        large = mx.sym.Activation(large, act_type="relu", name=f"relu{i}")
    assert len(large.tojson()) > FILE_SIZE_LIMIT
    assert_full_disk(in_child(lambda: large.save(str(path)), FILE_SIZE_LIMIT), path)
    assert os.listdir(tmp_path) == ["net-symbol.json"]
    assert mx.sym.load(str(path)).tojson() == small.tojson()


def test_full_disk_during_compiled_model_save_keeps_the_old_artifact(tmp_path):
    path = tmp_path / "fc.ember"
    compiled_dense(8, 4, 1.0).save(path)
    newer = compiled_dense(8, 4, 2.0)
    assert_full_disk(in_child(lambda: newer.save(path), FILE_SIZE_LIMIT), path)
    assert os.listdir(tmp_path) == ["fc.ember"]
    np.testing.assert_array_equal(compiled_output(path, 8), np.full((4,), 9.0, np.float32))  # 8 * 1 + 1


def test_full_disk_during_model_save_checkpoint_keeps_the_old_symbol_with_its_params(tmp_path):
    """The reproduced defect: the symbol was replaced before the params were written."""
    prefix = str(tmp_path / "net")
    old_symbol = mx.sym.FullyConnected(mx.sym.Variable("data"), num_hidden=2, name="fc")
    new_symbol = mx.sym.Activation(old_symbol, act_type="relu", name="relu")
    mx.model.save_checkpoint(prefix, 1, old_symbol, {"fc_weight": mx.nd.full((2, 2), 1.0)}, {})
    big_params = {"fc_weight": mx.nd.full((2, 200), 2.0)}
    limit = 1024  # the new symbol would fit, the new params would not
    assert len(new_symbol.tojson()) < limit < len(mx.nd.save_tobuffer(big_params))
    outcome = in_child(lambda: mx.model.save_checkpoint(prefix, 1, new_symbol, big_params, {}), limit)
    assert_full_disk(outcome, f"{prefix}-0001.params")
    assert sorted(os.listdir(tmp_path)) == ["net-0001.params", "net-symbol.json"]
    symbol, arg_params, aux_params = mx.model.load_checkpoint(prefix, 1)
    assert symbol.tojson() == old_symbol.tojson()
    assert list(arg_params) == ["fc_weight"] and aux_params == {}
    np.testing.assert_array_equal(arg_params["fc_weight"].asnumpy(), np.full((2, 2), 1.0, np.float32))


def test_disk_full_error_is_an_artifact_error_naming_the_file():
    """Each errno that means 'no room' raises DiskFullError (an ArtifactError, so an MXNetError)."""
    for number in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        error = files.write_error("m.params", OSError(number, os.strerror(number)), MXNetError)
        assert type(error) is DiskFullError
        assert str(error) == f"cannot write 'm.params': {os.strerror(number)}"
    assert issubclass(DiskFullError, ArtifactError) and issubclass(DiskFullError, MXNetError)
    other = files.write_error("m.params", OSError(errno.EACCES, "Permission denied"), MXNetError)
    assert type(other) is MXNetError and str(other) == "cannot write 'm.params': Permission denied"


# -- kill -9 ------------------------------------------------------------------------------------------


def test_kill_during_module_save_checkpoint_leaves_one_whole_checkpoint(tmp_path):
    """Epoch k's params and states all hold k; after every kill the newest epoch with a .params file has
    states of the same k, the symbol loads, and the newest epoch never goes back."""
    module, loader = dense_module(1024, 512), dense_module(1024, 512)  # 2 MB of params, 2 MB of states
    prefix = str(tmp_path / "net")
    fill_module(module, 1.0)
    module.save_checkpoint(prefix, 1, save_optimizer_states=True)
    rng = random.Random(12)
    newest = 1

    def save_epochs_from(first: int):
        def loop():
            for epoch in range(first, first + 1000):
                fill_module(module, float(epoch))
                module.save_checkpoint(prefix, epoch, save_optimizer_states=True)
                for old in (f"{prefix}-{epoch - 2:04d}.params", f"{prefix}-{epoch - 2:04d}.states"):
                    if os.path.exists(old):
                        os.unlink(old)  # keep two checkpoints, as a training script would

        return loop

    for _ in range(KILLS):
        killed = kill_during(save_epochs_from(newest + 1), rng.uniform(0.0, 0.25))
        epochs = [int(p.name[4:8]) for p in tmp_path.glob("net-*.params")]
        epoch = max(epochs)
        assert epoch >= newest
        symbol, arg_params, _ = mx.model.load_checkpoint(prefix, epoch)
        assert symbol.tojson() == module.symbol.tojson()
        assert uniform_value(arg_params.values()) == epoch
        assert states_value(loader, f"{prefix}-{epoch:04d}.states") == epoch
        check_leftovers_are_swept(tmp_path, killed, f"{prefix}-{epoch:04d}.params")
        newest = epoch
    assert newest > 1, "no save finished in any round: the delays are too short to test anything"


@pytest.mark.parametrize("unnamed", [True, False], ids=["O_TMPFILE", "named-temporary"])
def test_kill_during_nd_save_leaves_the_old_or_the_new_file(tmp_path, monkeypatch, unnamed):
    if unnamed and not files.UNNAMED_TEMPORARIES:
        pytest.skip("this system has no O_TMPFILE (or no /proc/self/fd)")
    monkeypatch.setattr(files, "UNNAMED_TEMPORARIES", unnamed)
    path = str(tmp_path / "w.params")
    mx.nd.save(path, {"w": mx.nd.full((512, 1024), 0.0)})
    rng = random.Random(13)
    newest, swept = 0.0, 0

    def save_values_from(first: float):
        def loop():
            for value in range(int(first), int(first) + 100000):
                mx.nd.save(path, {"w": mx.nd.full((512, 1024), float(value))})

        return loop

    for _ in range(KILLS):
        killed = kill_during(save_values_from(newest + 1), rng.uniform(0.0, 0.1))
        value = uniform_value(mx.nd.load(path).values())
        assert value >= newest
        swept += check_leftovers_are_swept(tmp_path, killed, path)
        newest = value
    assert newest > 0, "no save finished in any round: the delays are too short to test anything"
    print(f"{'unnamed' if unnamed else 'named'} temporaries: {swept} of {KILLS} kills left one, swept")


def test_kill_during_compiled_model_save_leaves_the_old_or_the_new_artifact(tmp_path):
    path = tmp_path / "fc.ember"
    models = [compiled_dense(1024, 512, 1.0), compiled_dense(1024, 512, 2.0)]  # 2 MB artifacts
    expected = [np.full((512,), 1025.0, np.float32), np.full((512,), 2050.0, np.float32)]
    models[0].save(path)
    rng = random.Random(14)
    seen = set()

    def alternate():
        for i in range(100000):
            models[i % 2].save(path)

    for _ in range(KILLS):
        killed = kill_during(alternate, rng.uniform(0.0, 0.1))
        output = compiled_output(path, 1024)
        which = [i for i, e in enumerate(expected) if np.array_equal(output, e)]
        assert len(which) == 1, f"the artifact computes neither model's output: {output[:4]}"
        seen.add(which[0])
        check_leftovers_are_swept(tmp_path, killed, path)
    assert seen == {0, 1}, f"only model(s) {seen} seen after the kills: the delays do not spread the kills"


# -- the writer's mechanics ---------------------------------------------------------------------------


def test_checkpoint_writes_states_then_params_then_the_symbol_only_when_it_changed(tmp_path, monkeypatch):
    written = []
    real_write = files.write_atomic

    def recording_write(path, chunks, error_class=ArtifactError):
        written.append(os.path.basename(path))
        real_write(path, chunks, error_class)

    monkeypatch.setattr(mx.model, "write_atomic", recording_write)
    module = dense_module(4, 2)
    prefix = str(tmp_path / "net")
    module.save_checkpoint(prefix, 1, save_optimizer_states=True)
    assert written == ["net-0001.states", "net-0001.params", "net-symbol.json"]
    symbol_inode = os.stat(f"{prefix}-symbol.json").st_ino
    module.save_checkpoint(prefix, 2, save_optimizer_states=True)
    mx.model.save_checkpoint(prefix, 3, module.symbol, *module.get_params())
    assert written[3:] == ["net-0002.states", "net-0002.params", "net-0003.params"]
    assert os.stat(f"{prefix}-symbol.json").st_ino == symbol_inode  # not rewritten
    other = mx.sym.Activation(module.symbol, act_type="relu", name="relu")
    mx.model.save_checkpoint(prefix, 4, other, *module.get_params())
    assert written[6:] == ["net-0004.params", "net-symbol.json"]
    assert mx.sym.load(f"{prefix}-symbol.json").tojson() == other.tojson()


def test_a_fifo_at_the_symbol_path_is_replaced_without_blocking(tmp_path):
    prefix = str(tmp_path / "net")
    os.mkfifo(f"{prefix}-symbol.json")
    symbol = mx.sym.FullyConnected(mx.sym.Variable("data"), num_hidden=2, name="fc")
    mx.model.save_checkpoint(prefix, 1, symbol, {"fc_weight": mx.nd.ones((2, 2))}, {})
    assert stat.S_ISREG(os.stat(f"{prefix}-symbol.json").st_mode)
    assert mx.sym.load(f"{prefix}-symbol.json").tojson() == symbol.tojson()


@pytest.mark.parametrize("unnamed", [True, False], ids=["O_TMPFILE", "named-temporary"])
def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, unnamed):
    if unnamed and not files.UNNAMED_TEMPORARIES:
        pytest.skip("this system has no O_TMPFILE (or no /proc/self/fd)")
    monkeypatch.setattr(files, "UNNAMED_TEMPORARIES", unnamed)
    path = tmp_path / "f.bin"
    write_atomic(path, [b"old"])

    def chunks():
        yield b"new, half"
        raise OSError(errno.EIO, "Input/output error")

    with pytest.raises(ArtifactError, match=re.escape(f"cannot write '{path}': Input/output error")):
        write_atomic(path, chunks())
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["f.bin"]
    umask = os.umask(0)
    os.umask(umask)
    write_atomic(path, [b"new"])
    assert path.read_bytes() == b"new" and stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_the_folder_is_fsynced_after_the_rename(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(files.os, "fsync", lambda fd: synced.append(os.fstat(fd).st_mode) or real_fsync(fd))
    write_atomic(tmp_path / "f.bin", [b"data"])
    assert [stat.S_ISDIR(mode) for mode in synced] == [False, True]  # the file, then its folder


def ended_pid() -> int:
    """The pid of a child that has ended and been reaped (free, unless the system reuses it at once)."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def test_the_next_write_sweeps_the_temporaries_of_dead_writers_and_keeps_live_ones(tmp_path):
    files.forget_swept_folders()
    dead = ended_pid()
    host = files._WRITER_TAG
    names = {
        "dead": f".f.bin.{dead}-{host}-0a1b2c3d.tmp",
        "dead, another file": f".net-0005.params.{dead}-{host}-0a1b2c3d.tmp",  # never written again
        "alive": f".f.bin.{os.getpid()}-{host}-0a1b2c3d.tmp",  # a writer in another thread of this process
        "another host's (or pid namespace's)": f".f.bin.{dead}-{int(host, 16) ^ 1:08x}-0a1b2c3d.tmp",
        "no pid": ".f.bin.a1b2c3.tmp",  # mkstemp's, as older Ember versions named them
        "not a temporary": f"f.bin.{dead}-{host}-0a1b2c3d.tmp.keep",
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b"partial")
    write_atomic(tmp_path / "f.bin", [b"data"])
    swept = {names["dead"], names["dead, another file"]}
    assert set(os.listdir(tmp_path)) == set(names.values()) - swept | {"f.bin"}


def test_a_temporary_from_another_pid_namespace_is_kept_though_its_pid_is_free_here(tmp_path, monkeypatch):
    """Containers sharing a hostname and a volume: a pid that runs nothing here may be a live writer in
    the other container, so only temporaries of this pid namespace (and boot) are swept."""
    dead = ended_pid()
    here = files.writer_tag("node1", "pid:[4026531836]", "0f6c2a3e-boot-a")
    other_namespace = files.writer_tag("node1", "pid:[4026532513]", "0f6c2a3e-boot-a")
    other_boot = files.writer_tag("node1", "pid:[4026531836]", "7d1e9b40-boot-b")
    assert len({here, other_namespace, other_boot}) == 3
    monkeypatch.setattr(files, "_WRITER_TAG", here)
    files.forget_swept_folders()
    names = [f".f.bin.{dead}-{tag}-0a1b2c3d.tmp" for tag in (here, other_namespace, other_boot)]
    for name in names:
        (tmp_path / name).write_bytes(b"partial")
    write_atomic(tmp_path / "f.bin", [b"data"])
    assert sorted(os.listdir(tmp_path)) == sorted(["f.bin", *names[1:]])


def test_this_process_tag_names_its_host_pid_namespace_and_boot():
    with open("/proc/sys/kernel/random/boot_id") as stream:
        boot_id = stream.read().strip()
    expected = files.writer_tag(socket.gethostname(), os.readlink("/proc/self/ns/pid"), boot_id)
    assert files._WRITER_TAG == expected
    assert re.fullmatch(r"[0-9a-f]{8}", expected)


def test_each_folder_is_swept_once_per_process(tmp_path, monkeypatch):
    listed = []
    real_listdir = os.listdir
    monkeypatch.setattr(files.os, "listdir", lambda fd: listed.append(fd) or real_listdir(fd))
    files.forget_swept_folders()
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    stale = f".f.bin.{ended_pid()}-{files._WRITER_TAG}-0a1b2c3d.tmp"
    for _ in range(3):
        write_atomic(first / "f.bin", [b"data"])
    write_atomic(second / "f.bin", [b"data"])
    assert len(listed) == 2  # one listing per folder, not one per write
    (first / stale).write_bytes(b"partial")  # a writer that died after this process swept the folder
    write_atomic(first / "f.bin", [b"data"])
    assert stale in real_listdir(first)  # left for the next process
    files.forget_swept_folders()  # as a new process starts
    write_atomic(first / "f.bin", [b"data"])
    assert real_listdir(first) == ["f.bin"] and len(listed) == 3
    child = os.fork()
    if child == 0:  # a forked child is a new process: its first writes sweep again
        os._exit(1 if files._SWEPT_FOLDERS else 0)
    assert files._SWEPT_FOLDERS and os.waitpid(child, 0)[1] == 0


@pytest.mark.parametrize("unnamed", [True, False], ids=["O_TMPFILE", "named-temporary"])
def test_a_rewritten_file_keeps_its_mode(tmp_path, monkeypatch, unnamed):
    if unnamed and not files.UNNAMED_TEMPORARIES:
        pytest.skip("this system has no O_TMPFILE (or no /proc/self/fd)")
    monkeypatch.setattr(files, "UNNAMED_TEMPORARIES", unnamed)
    path = tmp_path / "f.bin"
    write_atomic(path, [b"old"])
    for mode in (0o600, 0o640, 0o755):
        path.chmod(mode)
        write_atomic(path, [b"new"])
        assert path.read_bytes() == b"new" and stat.S_IMODE(path.stat().st_mode) == mode


def test_a_failed_folder_sync_says_the_file_was_replaced(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    write_atomic(path, [b"old"])

    def failing_sync(folder_fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(files, "sync_folder", failing_sync)
    with pytest.raises(MXNetError) as caught:
        write_atomic(path, [b"new"], MXNetError)
    assert str(caught.value) == (
        f"'{path}' was replaced, but its folder could not be synced: Input/output error"
    )
    assert path.read_bytes() == b"new" and os.listdir(tmp_path) == ["f.bin"]


def test_process_is_running_says_no_only_for_an_ended_process():
    ended = ended_pid()
    assert files.process_is_running(os.getpid()) is True
    assert files.process_is_running(ended) is False
    assert files.process_is_running(1) is True  # init: running, maybe under another user (EPERM)


def test_cli_outputs_are_written_atomically_with_npy_added_as_numpy_does(tmp_path):
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert save_npy(str(tmp_path / "out"), array, "output 'y'") == str(tmp_path / "out.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), array)
    missing = tmp_path / "no" / "out.npy"
    with pytest.raises(CliError) as caught:
        save_npy(str(missing), array, "output 'y'")
    assert str(caught.value) == f"output 'y': cannot write '{missing}': No such file or directory"


def test_bench_json_is_written_atomically(tmp_path):
    path = tmp_path / "bench.json"
    path.write_text("{}")
    write_json({"rows": [1, 2]}, str(path))
    assert json.loads(path.read_text()) == {"rows": [1, 2]} and os.listdir(tmp_path) == ["bench.json"]


def test_a_long_name_gets_a_temporary_name_the_filesystem_accepts(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "UNNAMED_TEMPORARIES", False)  # the temporary is named from the start
    path = tmp_path / ("é" * 120 + ".params")  # 247 bytes: legal, but not with a suffix added
    write_atomic(path, [b"data"])
    assert path.read_bytes() == b"data" and os.listdir(tmp_path) == [path.name]
    assert len(os.fsencode(files.temporary_name(path.name))) <= 255


# -- the reader's side --------------------------------------------------------------------------------


def test_read_regular_file_reads_a_file_up_to_its_limit(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"0123456789")
    assert files.read_regular_file(path) == b"0123456789"
    assert files.read_regular_file(str(path), limit=10) == b"0123456789"
    with pytest.raises(OSError) as caught:
        files.read_regular_file(path, limit=9)
    assert caught.value.errno == errno.EFBIG and caught.value.filename == path
    assert caught.value.strerror == "it holds 10 bytes, more than the 9 allowed"


@pytest.mark.parametrize("special", ["fifo", "device", "folder"])
def test_read_regular_file_refuses_at_once_what_is_not_a_regular_file(tmp_path, special):
    path = str(tmp_path / "pipe")
    if special == "fifo":
        os.mkfifo(path)  # a blocking open would wait for a writer
    elif special == "device":
        path = "/dev/zero"  # a read would never end
    else:
        path = str(tmp_path)
    with time_limit(5), pytest.raises(OSError) as caught:
        files.read_regular_file(path)
    if special == "folder":
        assert type(caught.value) is IsADirectoryError and caught.value.errno == errno.EISDIR
    else:
        assert type(caught.value) is files.NotRegularFileError
        assert (caught.value.errno, caught.value.strerror) == (errno.EINVAL, "not a regular file")
        assert stat.S_ISFIFO(caught.value.mode) if special == "fifo" else stat.S_ISCHR(caught.value.mode)
    assert caught.value.filename == path
