"""`mx.kv` / `mx.kvstore`: MXNet 1.9.1's single-process key-value stores, 'local' and 'device'.

`push` sums the values given for a key (the reduction over devices) and either stores the sum or, once
an updater or optimizer is set, hands it to `updater(key, merged, stored)` as the gradient of the stored
weight; `pull` copies the stored value into `out` arrays. Distributed types ('dist_*', 'nccl',
'horovod', 'byteps') raise MXNetError: they come with distributed training.
"""

from __future__ import annotations

import numbers
import threading

import numpy as np

from ember.runtime.errors import ArtifactError, MXNetError, ShapeError
from ember.runtime.files import read_regular_file, write_atomic

from . import optimizer as opt
from .context import cpu
from .metric.registry import Registry
from .ndarray import NDArray


class KVStoreTypeError(MXNetError, TypeError):
    """An argument of the wrong type (a key that is neither int nor str, a name that is not a str)."""


class KVStoreValueError(MXNetError, ValueError):
    """An argument value the store does not know (an unknown capability)."""


class KVStoreBase:
    """The interface every key-value store has, and the registry of store classes `create` looks in
    first (MXNet's `KVStoreBase`)."""

    OPTIMIZER = "optimizer"

    def broadcast(self, key, value, out, priority=0):
        """Store `value` under `key` and copy it into `out`."""
        raise NotImplementedError()

    def pushpull(self, key, value, out=None, priority=0):
        """Push `value` for `key`, then pull the result into `out` (or into `value`)."""
        raise NotImplementedError()

    def set_optimizer(self, optimizer):
        """Apply `optimizer` to every push from now on."""
        raise NotImplementedError()

    def is_capable(self, capability):
        """Whether the store supports `capability` (KVStoreBase.OPTIMIZER, ...)."""
        raise NotImplementedError()

    def save_optimizer_states(self, fname, dump_optimizer=False):
        """Write the optimizer states to `fname`."""
        raise NotImplementedError()

    def load_optimizer_states(self, fname):
        """Read the optimizer states from `fname`."""
        raise NotImplementedError()

    @property
    def type(self):
        """The store's type name."""
        raise NotImplementedError()

    @property
    def rank(self):
        """This worker's rank."""
        raise NotImplementedError()

    @property
    def num_workers(self):
        """The number of workers."""
        raise NotImplementedError()


# -- keys and values --------------------------------------------------------------------------------


# The store classes `create` looks up by name, MXNet's `KVStoreBase.register` (a decorator) and
# `kv_registry`: the registry metrics and initializers use.
_STORES = Registry(KVStoreBase, "kvstore")
KVStoreBase.register = staticmethod(_STORES.register)
KVStoreBase.kv_registry = _STORES.classes


def _key(key, what: str):
    """`key` as an int or str; KVStoreTypeError for anything else."""
    if isinstance(key, str):
        return key
    if isinstance(key, numbers.Integral) and not isinstance(key, bool):
        return int(key)
    raise KVStoreTypeError(f"kvstore.{what}: a key is an int or a str, not {type(key).__name__} {key!r}")


def _arrays(value, key, what: str, role: str) -> list[NDArray]:
    """The NDArrays given for one key: one NDArray, or a list or tuple of them."""
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    for item in values:
        if not isinstance(item, NDArray):
            raise KVStoreTypeError(
                f"kvstore.{what}: the {role} of key {key!r} must be NDArrays, not {type(item).__name__}"
            )
    if not values:
        raise MXNetError(f"kvstore.{what}: no {role} given for key {key!r}")
    return values


def _pairs(key, value, what: str, role: str = "values") -> list[tuple[int | str, list[NDArray]]]:
    """(key, its arrays) for a key and its value(s), or for a list of keys and one value(s) per key;
    keys of one call are all ints or all strs."""
    if isinstance(key, (list, tuple)):
        if not isinstance(value, (list, tuple)) or len(value) != len(key):
            count = len(value) if isinstance(value, (list, tuple)) else "one NDArray"
            raise MXNetError(f"kvstore.{what}: {len(key)} keys need a list of {len(key)} {role}, got {count}")
        pairs = [(_key(k, what), _arrays(v, k, what, role)) for k, v in zip(key, value)]
    else:
        pairs = [(_key(key, what), _arrays(value, key, what, role))]
    if len({type(k) for k, _ in pairs}) > 1:
        raise MXNetError(f"kvstore.{what}: the keys {[k for k, _ in pairs]} mix ints and strs")
    return pairs


def _grouped(pairs) -> dict:
    """The arrays of each key, gathered over every place the key appears in one call."""
    groups: dict = {}
    for key, arrays in pairs:
        groups.setdefault(key, []).extend(arrays)
    return groups


# -- gradient compression ('device' stores) ---------------------------------------------------------


def _quantize_2bit(residual: np.ndarray, threshold: float) -> np.ndarray:
    """+threshold, -threshold or 0 per element of the residual (which already holds the new gradient);
    what is sent is taken off the residual."""
    sent = np.where(residual >= threshold, threshold, np.where(residual <= -threshold, -threshold, 0.0))
    residual -= sent
    return sent.astype(np.float32)


def _quantize_1bit(residual: np.ndarray, threshold: float) -> np.ndarray:
    """+1 where the residual exceeds the threshold, else -1; what is sent is taken off the residual."""
    sent = np.where(residual > threshold, 1.0, -1.0)
    residual -= sent
    return sent.astype(np.float32)


_QUANTIZERS = {"2bit": _quantize_2bit, "1bit": _quantize_1bit}


def _compression_settings(params) -> tuple[str, float]:
    """(type, threshold) from set_gradient_compression's dict, checked as MXNet checks it."""
    if not isinstance(params, dict):
        raise KVStoreTypeError(
            f"set_gradient_compression takes a dict such as {{'type': '2bit', 'threshold': 0.5}}, "
            f"not {type(params).__name__}"
        )
    if "type" not in params:
        raise MXNetError("set_gradient_compression: the dict needs a 'type' ('2bit' or '1bit')")
    kind = str(params["type"])
    try:
        threshold = float(params.get("threshold", 0.5))
    except (TypeError, ValueError):
        raise MXNetError(f"set_gradient_compression: threshold must be a number, not {params['threshold']!r}")
    if kind not in _QUANTIZERS:
        raise MXNetError(f"set_gradient_compression: unknown type {kind!r}; the types are '2bit' and '1bit'")
    if kind == "2bit" and not threshold > 0:
        raise MXNetError(
            f"set_gradient_compression: 2bit compression needs a threshold above 0, not {threshold}"
        )
    return kind, threshold


# -- the store --------------------------------------------------------------------------------------


class KVStore(KVStoreBase):
    """A single-process key-value store ('local' or 'device', or any other non-distributed name, as in
    MXNet); create one with `mx.kv.create(name)`. Thread-safe: each call holds the store's lock."""

    def __init__(self, name: str = "local"):
        self._type = name
        self._values: dict = {}  # key -> stored NDArray
        self._str_order: dict[str, int] = {}  # str key -> init order (MXNet's int id of a str key)
        self._key_kind: type | None = None  # int or str, fixed by the first call that names a key
        self._updater = None
        self._compression: tuple[str, float] | None = None
        self._residuals: dict = {}  # (key, source index) -> float32 residual of gradient compression
        self._lock = threading.RLock()

    # -- keys ---------------------------------------------------------------------------------------

    def _check_key_kind(self, keys, what: str) -> None:
        kind = type(next(iter(keys)))
        if self._key_kind is not None and kind is not self._key_kind:
            raise MXNetError(
                f"kvstore.{what}: key {next(iter(keys))!r} is {kind.__name__} but this store's keys are "
                f"{self._key_kind.__name__}s; one store does not mix int and str keys"
            )
        self._key_kind = kind

    def _stored(self, key, what: str) -> NDArray:
        if key not in self._values:
            raise MXNetError(f"kvstore.{what}: key {key!r} has not been initialized (call init first)")
        return self._values[key]

    def _in_order(self, keys) -> list:
        """Keys in the order MXNet handles them: ints ascending, strs in the order they were initialized."""
        return sorted(keys, key=lambda k: self._str_order.get(k, 0) if isinstance(k, str) else k)

    # -- init, push, pull ---------------------------------------------------------------------------

    def init(self, key, value) -> None:
        """Store a copy of `value` under `key` (or of each value under each key of a list); every key
        is initialized once (use push to change it)."""
        pairs = _pairs(key, value, "init")
        with self._lock:
            self._check_key_kind([k for k, _ in pairs], "init")
            seen = set()
            for k, arrays in pairs:
                if k in self._values or k in seen or len(arrays) > 1:
                    raise MXNetError(f"kvstore.init: duplicate init of key {k!r} (init or broadcast it once)")
                seen.add(k)
            for k, (array,) in pairs:
                if isinstance(k, str):
                    self._str_order[k] = len(self._str_order)
                self._values[k] = NDArray(array.asnumpy(), self._home(array))

    def _home(self, array: NDArray):
        """Where a store keeps a value: the CPU for 'local' stores, the value's device for 'device'."""
        return array.context if "device" in self._type else cpu()

    def push(self, key, value, priority: int = 0) -> None:
        """Sum the values given for each key; store the sum, or with an updater set call
        `updater(key, sum, stored)` (a str key reaches the updater as bytes, as in MXNet)."""
        groups = _grouped(_pairs(key, value, "push"))
        with self._lock:
            self._check_key_kind(groups, "push")
            merged = {k: self._merged(k, groups[k]) for k in self._in_order(groups)}
            for k, total in merged.items():
                if self._updater is None:
                    self._replace(k, total, groups[k][0])
                else:
                    updater_key = k.encode() if isinstance(k, str) else k
                    self._updater(updater_key, NDArray(total, self._values[k].context), self._values[k])

    def _merged(self, key, arrays: list[NDArray]) -> np.ndarray:
        """The sum of one key's pushed arrays (each compressed first where compression is set)."""
        if isinstance(key, str) or self._updater is not None:
            stored = self._stored(key, "push")
            shape, dtype = stored.shape, np.dtype(stored.dtype)
        else:  # MXNet lets a push without an updater create an int key
            stored = self._values.get(key)
            shape = stored.shape if stored is not None else arrays[0].shape
            dtype = np.dtype((stored if stored is not None else arrays[0]).dtype)
        for array in arrays:
            if array.shape != shape:
                raise ShapeError(
                    f"kvstore.push: key {key!r} holds shape {shape}, got a value of shape {array.shape}"
                )
        sources = [a.asnumpy() for a in arrays]
        if self._compression is not None:
            sources = [self._compressed(key, i, source) for i, source in enumerate(sources)]
        total = sources[0].astype(dtype, copy=True)
        for source in sources[1:]:
            total += source.astype(dtype, copy=False)
        return total

    def _compressed(self, key, index: int, gradient: np.ndarray) -> np.ndarray:
        """What the quantized gradient of source `index` of `key` carries; the rest stays in its residual."""
        kind, threshold = self._compression
        residual = self._residuals.setdefault((key, index), np.zeros(gradient.shape, np.float32))
        residual += gradient.astype(np.float32)
        return _QUANTIZERS[kind](residual, threshold)

    def _replace(self, key, total: np.ndarray, first: NDArray) -> None:
        if key in self._values:
            self._values[key].host_buffer()[...] = total
        else:
            self._values[key] = NDArray(total, self._home(first))

    def pull(self, key, out=None, priority: int = 0, ignore_sparse: bool = True) -> None:
        """Copy the value stored under each key into its `out` array(s) (one NDArray or a list per key)."""
        if out is None:
            raise MXNetError("kvstore.pull: give the arrays to pull into as out=")
        groups = _grouped(_pairs(key, out, "pull", role="out arrays"))
        with self._lock:
            self._check_key_kind(groups, "pull")
            stored = {k: self._stored(k, "pull") for k in groups}
            for k, outs in groups.items():
                for target in outs:
                    if target.shape != stored[k].shape:
                        raise ShapeError(
                            f"kvstore.pull: key {k!r} holds shape {stored[k].shape}, but an out array has "
                            f"shape {target.shape}"
                        )
            for k in self._in_order(groups):
                for target in groups[k]:
                    target[:] = stored[k].host_buffer()

    def pushpull(self, key, value, out=None, priority: int = 0) -> None:
        """push(key, value), then pull the result into `out` (into `value` itself when out is None)."""
        with self._lock:
            self.push(key, value, priority)
            self.pull(key, value if out is None else out, priority)

    def broadcast(self, key, value, out, priority: int = 0) -> None:
        """init(key, value), then pull(key, out): each key can be broadcast once, as in MXNet."""
        with self._lock:
            self.init(key, value)
            self.pull(key, out, priority)

    def row_sparse_pull(self, key, out=None, priority: int = 0, row_ids=None) -> None:
        """Not supported: Ember's NDArrays are dense (use pull)."""
        raise MXNetError("kvstore.row_sparse_pull: sparse storage is not supported, Ember's NDArrays are "
                         "dense; use pull")  # fmt: skip

    # -- updates ------------------------------------------------------------------------------------

    def set_gradient_compression(self, compression_params: dict) -> None:
        """Quantize every pushed value ('2bit': +-threshold or 0; '1bit': +-1 around threshold), keeping
        what is not sent as a residual added to the next push. 'device' stores only, as in MXNet."""
        if "device" not in self._type and "dist" not in self._type:
            raise MXNetError(
                "Gradient compression is not supported for this type of kvstore: "
                f"{self._type!r}; use 'device'"
            )
        settings = _compression_settings(compression_params)
        with self._lock:
            self._compression = settings

    def set_optimizer(self, optimizer) -> None:
        """Apply `optimizer` to every push from now on: `push` hands the summed value to it as the
        gradient of the stored weight (see `mx.optimizer.get_updater`)."""
        if not isinstance(optimizer, opt.Optimizer):
            raise KVStoreTypeError(
                f"kvstore.set_optimizer takes an mx.optimizer.Optimizer, not {type(optimizer).__name__}"
            )
        self._set_updater(opt.get_updater(optimizer))

    def _set_updater(self, updater) -> None:
        """Call `updater(key, merged, stored)` on every push from now on; it updates `stored` in place."""
        if not callable(updater):
            raise KVStoreTypeError(f"kvstore._set_updater takes a callable, not {type(updater).__name__}")
        with self._lock:
            self._updater = updater

    def is_capable(self, capability: str) -> bool:
        """True for KVStoreBase.OPTIMIZER (updates run in the store); KVStoreValueError for others."""
        if str(capability).lower() == KVStoreBase.OPTIMIZER:
            return True
        raise KVStoreValueError(f"Unknown capability: {capability}")

    def _states_updater(self, what: str):
        if self._updater is None:
            raise MXNetError(f"kvstore.{what}: no optimizer is set on this store (call set_optimizer first)")
        if not isinstance(self._updater, opt.Updater):
            raise MXNetError(f"kvstore.{what}: the updater given to _set_updater keeps no optimizer states")
        return self._updater

    def save_optimizer_states(self, fname, dump_optimizer: bool = False) -> None:
        """Write the optimizer's states (and the optimizer, with dump_optimizer=True) to `fname`,
        atomically: a failed write leaves the previous file as it was."""
        updater = self._states_updater("save_optimizer_states")
        with self._lock:
            write_atomic(fname, [updater.get_states(dump_optimizer)], MXNetError)

    def load_optimizer_states(self, fname) -> None:
        """Restore the optimizer's states from a file of save_optimizer_states (read as data: nothing the
        file names runs; a bad file raises ArtifactError naming it)."""
        updater = self._states_updater("load_optimizer_states")
        try:
            data = read_regular_file(fname)
        except OSError as err:
            raise ArtifactError(f"cannot load optimizer states from {fname}: {err.strerror or err}") from None
        with self._lock:
            updater.set_states(data, source=f"'{fname}'")

    # -- the process group (one worker) -------------------------------------------------------------

    @property
    def type(self) -> str:
        """The type name the store was created with ('local', 'device', ...; `create` lower-cases it)."""
        return self._type

    @property
    def rank(self) -> int:
        """0: a single-process store has one worker."""
        return 0

    @property
    def num_workers(self) -> int:
        """1: a single-process store has one worker."""
        return 1

    def _barrier(self) -> None:
        """Wait for every worker: with one worker, returns at once."""

    def _send_command_to_servers(self, head, body) -> None:
        """Servers exist in distributed stores only."""
        raise MXNetError("kvstore: a single-process store has no servers to send commands to")


# -- creation ---------------------------------------------------------------------------------------

_DISTRIBUTED = ("dist", "nccl", "horovod", "byteps")


def create(name: str = "local") -> KVStoreBase:
    """A new store: a registered KVStoreBase class by name, else a single-process KVStore ('local'
    reduces on the CPU, 'device' on the values' devices; 'local_update_cpu', 'local_allreduce_cpu' and
    'local_allreduce_device' are accepted as MXNet accepts them). Distributed types raise MXNetError."""
    if not isinstance(name, str):
        raise KVStoreTypeError(f"kvstore.create: name must be a string, not {type(name).__name__}")
    name = name.lower()
    if name in KVStoreBase.kv_registry:
        return KVStoreBase.kv_registry[name]()
    if any(kind in name for kind in _DISTRIBUTED):
        raise MXNetError(
            f"kvstore type {name!r} is distributed; distributed kvstores come with the distributed-training "
            "issue. In one process use 'local' or 'device'"
        )
    return KVStore(name)


__all__ = ["KVStore", "KVStoreBase", "create"]
