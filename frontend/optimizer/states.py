"""Reading `.states` bytes (optimizer states) as data: a pickle reader that never runs what a file names.

`load_states(data, source)` turns what `Updater.get_states` writes - or MXNet 1.x's `.states` files,
which name `mxnet.*` classes - into `({index: state}, optimizer or None)`. It is a small pickle
machine of its own, not `pickle.Unpickler`: it knows the opcodes plain data needs, and the only
things a file may name are the constructors of `_CONSTRUCTORS` (NumPy arrays, dtypes and scalars,
bytes, sets, NDArrays, contexts), each called only with the arguments it checks, and the optimizer and
lr_scheduler classes, which are created empty and filled only with checked plain data. Any other
global or opcode, a constructor called any other way, or a malformed file raises ArtifactError naming
the source and what was refused. The loaded value must be a dict of index or name -> state (None, an
NDArray, or tuples/lists of them) or a (states, Optimizer) pair.
"""

from __future__ import annotations

import codecs
import functools
import inspect
import math
import numbers
import struct
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ember.runtime.errors import ArtifactError, MXNetError

from .. import lr_scheduler
from ..context import Context
from ..lr_scheduler import LRScheduler
from ..ndarray import NDArray
from .base import EMBER_OPTIMIZERS, Optimizer, _DefaultRescale

_HIGHEST_PROTOCOL = 5
_MAX_STATE_DEPTH = 8  # a state nests (master copy, (mean, var)) at most three deep
_MAX_DATA_DEPTH = 64  # containers inside an optimizer's or scheduler's attributes
_MAX_HASHABLE_DEPTH = 100  # nested tuples and frozensets: hashing them recurses in C, unguarded


class _Refused(Exception):
    """What the reader refuses, said in words; `load_states` adds the source and the byte offset."""


@dataclass(frozen=True)
class _Global:
    """A global the file names (GLOBAL/STACK_GLOBAL): REDUCE and NEWOBJ call `make(args)` with the
    arguments the file gives; `builds` says the result is an empty shell one BUILD must fill."""

    qualified_name: str
    make: Callable[[tuple], object]
    builds: bool = False


def load_states(data, source: str) -> tuple[dict, Optimizer | None]:
    """The `{index: state}` dict and the optimizer (None unless dumped with it) that `data` holds;
    ArtifactError naming `source` for anything else."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise MXNetError(
            f"cannot load optimizer states from {source}: states are the bytes get_states returns, "
            f"not a {type(data).__name__}"
        )
    machine = _Machine(bytes(data))
    try:
        return _checked_result(machine.run())
    except (_Refused, MXNetError) as err:
        why = str(err)
    except Exception as err:  # noqa: BLE001 - a corrupt file fails NumPy, int(), hashing... in many ways
        why = f"the file is corrupt ({type(err).__name__}: {err})"
    raise ArtifactError(f"cannot load optimizer states from {source}: {why}{machine.where()}")


# -- the pickle machine -----------------------------------------------------------------------------


class _Machine:
    """Runs pickle opcodes over `data` with a stack, marks and a memo, as pickle's own machine does,
    for the opcodes of `_OPCODES` only; `run` returns the value STOP finds."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0
        self.stack: list = []
        self.marks: list[list] = []
        self.memo: dict[int, object] = {}
        self.unbuilt: dict[int, object] = {}  # shells waiting for their BUILD, by id
        self.built: dict[int, object] = {}  # objects BUILD has filled, kept alive so ids stay unique
        self.depths: dict[int, tuple[int, object]] = {}  # tuple or frozenset id -> (nesting, itself)
        self.constructors = {**_CONSTRUCTORS, **_class_constructors()}
        self.op_start, self.op_name, self.finished = 0, "", False

    def where(self) -> str:
        """Where reading stopped, for messages; nothing once STOP was read (the value is at fault)."""
        if self.finished:
            return ""
        return f" (at byte {self.op_start}{f', opcode {self.op_name}' if self.op_name else ''})"

    def run(self):
        while True:
            self.op_start, self.op_name = self.pos, ""
            code = self.take(1, "an opcode")[0]
            if code == ord("."):
                self.op_name = "STOP"
                result = self.stop()
                self.finished = True
                return result
            name, action = _OPCODES.get(code, (None, None))
            if action is None:
                self.op_name = _REFUSED_OPCODES.get(code, f"0x{code:02x}")
                raise _Refused(f"the pickle opcode {self.op_name} is refused (states files hold plain data)")
            self.op_name = name
            action(self)

    def stop(self):
        if self.unbuilt:
            kinds = sorted({type(obj).__name__ for obj in self.unbuilt.values()})
            raise _Refused(f"the file creates {', '.join(kinds)} objects but never gives them their contents")
        return self.pop()

    # reading the stream

    def take(self, size: int, what: str) -> bytes:
        remaining = len(self.data) - self.pos
        if size < 0 or size > remaining:
            raise _Refused(f"the file is truncated: {what} needs {size} bytes, {remaining} remain")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def unpack(self, fmt: str, what: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))[0]

    def line(self, what: str) -> bytes:
        end = self.data.find(b"\n", self.pos)
        if end < 0:
            raise _Refused(f"the file is truncated: {what} has no end of line")
        text = self.data[self.pos : end]
        self.pos = end + 1
        return text

    def sized(self, fmt: str, what: str) -> bytes:
        return self.take(self.unpack(fmt, f"the length of {what}"), what)

    # the stack, marks and memo

    def push(self, value) -> None:
        if type(value) in (tuple, frozenset) and id(value) not in self.depths:
            self.note_depth(value)
        self.stack.append(value)

    def note_depth(self, value: tuple | frozenset) -> None:
        """Refuse tuples and frozensets nested deeper than hashing them can go without crashing."""
        depth = 1 + max((self.depths.get(id(item), (0, None))[0] for item in value), default=0)
        if depth > _MAX_HASHABLE_DEPTH:
            raise _Refused(f"tuples or frozensets nest more than {_MAX_HASHABLE_DEPTH} deep")
        self.depths[id(value)] = (depth, value)

    def pop(self):
        if not self.stack:
            raise _Refused("a value is taken from an empty stack")
        return self.stack.pop()

    def pop_many(self, count: int) -> list:
        if len(self.stack) < count:
            raise _Refused(f"{count} values are taken from a stack of {len(self.stack)}")
        items = self.stack[len(self.stack) - count :]
        del self.stack[len(self.stack) - count :]
        return items

    def top(self, kind: type, what: str):
        if not self.stack:
            raise _Refused(f"{what} finds an empty stack")
        target = self.stack[-1]
        if type(target) is not kind:
            raise _Refused(f"{what} adds to a {type(target).__name__}, not a {kind.__name__}")
        return target

    def mark(self) -> None:
        self.marks.append(self.stack)
        self.stack = []

    def pop_mark(self) -> list:
        if not self.marks:
            raise _Refused("the file pops to a mark it never set")
        items, self.stack = self.stack, self.marks.pop()
        return items

    def discard(self) -> None:
        """POP: the top value, or the values since the last mark when none were pushed after it."""
        if self.stack:
            self.stack.pop()
        else:
            self.pop_mark()

    def dup(self) -> None:
        if not self.stack:
            raise _Refused("DUP finds an empty stack")
        self.push(self.stack[-1])

    # containers

    def append(self) -> None:
        value = self.pop()
        self.top(list, "APPEND").append(value)

    def appends(self) -> None:
        items = self.pop_mark()
        self.top(list, "APPENDS").extend(items)

    def setitem(self) -> None:
        items = self.pop_many(2)
        self.top(dict, "SETITEM").update(_dict_from(items))

    def setitems(self) -> None:
        items = self.pop_mark()
        self.top(dict, "SETITEMS").update(_dict_from(items))

    def additems(self) -> None:
        items = self.pop_mark()
        self.top(set, "ADDITEMS").update(items)

    def tuple_of(self, count: int) -> None:
        self.push(tuple(self.pop_many(count)))

    def get(self, index: int) -> None:
        if index not in self.memo:
            raise _Refused(f"memo entry {index} is read but was never stored")
        self.push(self.memo[index])

    def put(self, index: int) -> None:
        if index < 0:
            raise _Refused(f"memo entry {index} is stored (entries are not negative)")
        if not self.stack:
            raise _Refused("an empty stack is memoized")
        self.memo[index] = self.stack[-1]

    # the objects a file may name

    def text_global(self) -> None:
        module = self.line("GLOBAL's module").decode("utf-8")
        name = self.line("GLOBAL's name").decode("utf-8")
        self.lookup(module, name)

    def stack_global(self) -> None:
        module, name = self.pop_many(2)
        if type(module) is not str or type(name) is not str:
            raise _Refused("STACK_GLOBAL names its global with something other than two strings")
        self.lookup(module, name)

    def lookup(self, module: str, name: str) -> None:
        found = self.constructors.get((module, name))
        if found is None:
            raise _Refused(
                f"the global {module}.{name} is refused: a .states file may name only NumPy arrays, dtypes "
                "and scalars, bytes, sets, NDArrays, contexts, and optimizer and lr_scheduler classes"
            )
        self.push(found)

    def reduce(self, what: str) -> None:
        target, args = self.pop_many(2)
        self.call(target, args, what)

    def newobj_ex(self) -> None:
        target, args, kwargs = self.pop_many(3)
        if type(kwargs) is not dict or kwargs:
            raise _Refused("NEWOBJ_EX passes keyword arguments, which no states constructor takes")
        self.call(target, args, "NEWOBJ_EX")

    def call(self, target, args, what: str) -> None:
        if not isinstance(target, _Global):
            raise _Refused(f"{what} calls {_describe(target)}, which is not a global a states file may call")
        if type(args) is not tuple:
            raise _Refused(f"{what} gives {target.qualified_name} {_describe(args)}, not an argument tuple")
        made = target.make(args)
        if target.builds:
            self.unbuilt[id(made)] = made
        self.push(made)

    def build(self) -> None:
        state = self.pop()
        if not self.stack:
            raise _Refused("BUILD finds an empty stack")
        target = self.stack[-1]
        if id(target) in self.built:
            raise _Refused(f"a {type(target).__name__} is given its contents a second time")
        builder = next((fill for kind, fill in _BUILDERS if isinstance(target, kind)), None)
        if builder is None:
            raise _Refused(f"BUILD fills a {type(target).__name__}, which states files never do")
        builder(target, state)
        self.unbuilt.pop(id(target), None)
        self.built[id(target)] = target


def _text_int(text: bytes) -> int:
    """INT's argument; protocol 0 writes True and False as 01 and 00."""
    return {b"01": True, b"00": False}[text] if text in (b"01", b"00") else int(text)


def _quoted_ascii(text: bytes) -> str:
    """STRING's argument: a Python 2 str literal in quotes, which must be ASCII text."""
    if len(text) < 2 or text[:1] not in (b"'", b'"') or text[-1:] != text[:1]:
        raise _Refused("a STRING argument is not a quoted literal")
    return codecs.escape_decode(text[1:-1])[0].decode("ascii")


def _utf8(data: bytes) -> str:
    return data.decode("utf-8", "surrogatepass")


def _signed(data: bytes) -> int:
    return int.from_bytes(data, "little", signed=True)


def _dict_from(items: list) -> dict:
    if len(items) % 2:
        raise _Refused("a dict is built from an odd number of items")
    return dict(zip(items[::2], items[1::2]))


def _check_protocol(protocol: int) -> None:
    if protocol > _HIGHEST_PROTOCOL:
        raise _Refused(f"uses pickle protocol {protocol}; the highest there is is {_HIGHEST_PROTOCOL}")


# opcode byte -> (name, what the machine does); pickletools.py documents each opcode.
_OPCODES: dict[int, tuple[str, Callable[[_Machine], None]]] = {
    ord(code): (name, action)
    for code, name, action in (
        ("\x80", "PROTO", lambda m: _check_protocol(m.unpack("<B", "the protocol"))),
        ("\x95", "FRAME", lambda m: m.unpack("<Q", "the frame size")),  # a read-ahead hint only
        ("(", "MARK", _Machine.mark),
        ("0", "POP", _Machine.discard),
        ("1", "POP_MARK", _Machine.pop_mark),
        ("2", "DUP", _Machine.dup),
        ("N", "NONE", lambda m: m.push(None)),
        ("\x88", "NEWTRUE", lambda m: m.push(True)),
        ("\x89", "NEWFALSE", lambda m: m.push(False)),
        ("I", "INT", lambda m: m.push(_text_int(m.line("INT")))),
        ("J", "BININT", lambda m: m.push(m.unpack("<i", "BININT"))),
        ("K", "BININT1", lambda m: m.push(m.unpack("<B", "BININT1"))),
        ("M", "BININT2", lambda m: m.push(m.unpack("<H", "BININT2"))),
        ("L", "LONG", lambda m: m.push(int(m.line("LONG").rstrip(b"L")))),
        ("\x8a", "LONG1", lambda m: m.push(_signed(m.sized("<B", "LONG1")))),
        ("\x8b", "LONG4", lambda m: m.push(_signed(m.sized("<i", "LONG4")))),
        ("F", "FLOAT", lambda m: m.push(float(m.line("FLOAT")))),
        ("G", "BINFLOAT", lambda m: m.push(m.unpack(">d", "BINFLOAT"))),
        ("S", "STRING", lambda m: m.push(_quoted_ascii(m.line("STRING")))),
        ("T", "BINSTRING", lambda m: m.push(m.sized("<i", "BINSTRING").decode("ascii"))),
        ("U", "SHORT_BINSTRING", lambda m: m.push(m.sized("<B", "SHORT_BINSTRING").decode("ascii"))),
        ("V", "UNICODE", lambda m: m.push(m.line("UNICODE").decode("raw-unicode-escape"))),
        ("X", "BINUNICODE", lambda m: m.push(_utf8(m.sized("<I", "BINUNICODE")))),
        ("\x8c", "SHORT_BINUNICODE", lambda m: m.push(_utf8(m.sized("<B", "SHORT_BINUNICODE")))),
        ("\x8d", "BINUNICODE8", lambda m: m.push(_utf8(m.sized("<Q", "BINUNICODE8")))),
        ("B", "BINBYTES", lambda m: m.push(m.sized("<I", "BINBYTES"))),
        ("C", "SHORT_BINBYTES", lambda m: m.push(m.sized("<B", "SHORT_BINBYTES"))),
        ("\x8e", "BINBYTES8", lambda m: m.push(m.sized("<Q", "BINBYTES8"))),
        ("\x96", "BYTEARRAY8", lambda m: m.push(bytearray(m.sized("<Q", "BYTEARRAY8")))),
        (")", "EMPTY_TUPLE", lambda m: m.push(())),
        ("t", "TUPLE", lambda m: m.push(tuple(m.pop_mark()))),
        ("\x85", "TUPLE1", lambda m: m.tuple_of(1)),
        ("\x86", "TUPLE2", lambda m: m.tuple_of(2)),
        ("\x87", "TUPLE3", lambda m: m.tuple_of(3)),
        ("]", "EMPTY_LIST", lambda m: m.push([])),
        ("l", "LIST", lambda m: m.push(m.pop_mark())),
        ("a", "APPEND", _Machine.append),
        ("e", "APPENDS", _Machine.appends),
        ("}", "EMPTY_DICT", lambda m: m.push({})),
        ("d", "DICT", lambda m: m.push(_dict_from(m.pop_mark()))),
        ("s", "SETITEM", _Machine.setitem),
        ("u", "SETITEMS", _Machine.setitems),
        ("\x8f", "EMPTY_SET", lambda m: m.push(set())),
        ("\x90", "ADDITEMS", _Machine.additems),
        ("\x91", "FROZENSET", lambda m: m.push(frozenset(m.pop_mark()))),
        ("g", "GET", lambda m: m.get(int(m.line("GET")))),
        ("h", "BINGET", lambda m: m.get(m.unpack("<B", "BINGET"))),
        ("j", "LONG_BINGET", lambda m: m.get(m.unpack("<I", "LONG_BINGET"))),
        ("p", "PUT", lambda m: m.put(int(m.line("PUT")))),
        ("q", "BINPUT", lambda m: m.put(m.unpack("<B", "BINPUT"))),
        ("r", "LONG_BINPUT", lambda m: m.put(m.unpack("<I", "LONG_BINPUT"))),
        ("\x94", "MEMOIZE", lambda m: m.put(len(m.memo))),
        ("c", "GLOBAL", _Machine.text_global),
        ("\x93", "STACK_GLOBAL", _Machine.stack_global),
        ("R", "REDUCE", lambda m: m.reduce("REDUCE")),
        ("\x81", "NEWOBJ", lambda m: m.reduce("NEWOBJ")),
        ("\x92", "NEWOBJ_EX", _Machine.newobj_ex),
        ("b", "BUILD", _Machine.build),
    )
}

# Opcodes that reach out of the data (instances by name, extension codes, persistent ids, buffers).
_REFUSED_OPCODES = {
    ord("i"): "INST",
    ord("o"): "OBJ",
    ord("P"): "PERSID",
    ord("Q"): "BINPERSID",
    0x82: "EXT1",
    0x83: "EXT2",
    0x84: "EXT4",
    0x97: "NEXT_BUFFER",
    0x98: "READONLY_BUFFER",
}


# -- the constructors a file may call -------------------------------------------------------------
# Each takes the argument tuple the file gives and checks it before building anything. Checks compare
# loaded values by type first: `==` on an NDArray would run an operator.

# NumPy's pickled dtypes name these type codes; anything else (objects, records, strings) is refused.
_NUMERIC_DTYPE_CODES = frozenset(
    ("b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "c8", "c16")
)


def _arguments(args: tuple, *kinds, what: str) -> tuple:
    """`args` if it has one value of each of `kinds` (a type or tuple of types), else _Refused."""
    if len(args) != len(kinds) or not all(isinstance(a, k) for a, k in zip(args, kinds)):
        given = ", ".join(type(a).__name__ for a in args)
        raise _Refused(f"{what} is called with ({given}), which it does not take")
    return args


def _optional_argument(args: tuple, kinds, what: str) -> tuple:
    """`args` if it is empty or one value of `kinds`."""
    return _arguments(args, kinds, what=what) if args else args


def _is_plain(value, expected) -> bool:
    """`value == expected` for plain values (ints, strings, None, and tuples of them) only."""
    if type(expected) is tuple:
        return (
            type(value) is tuple
            and len(value) == len(expected)
            and all(_is_plain(v, e) for v, e in zip(value, expected))
        )
    return type(value) is type(expected) and value == expected


def _numeric_dtype(dtype, what: str) -> np.dtype:
    """`dtype` if it is a plain numeric NumPy dtype (no objects, fields or sub-arrays)."""
    plain = isinstance(dtype, np.dtype) and not (dtype.hasobject or dtype.fields or dtype.subdtype)
    if not plain or dtype.kind not in "biufc":
        raise _Refused(f"{what} is given {_describe(dtype)}, which is not a plain numeric dtype")
    return dtype


def _shape(shape, what: str) -> tuple[int, ...]:
    if type(shape) is not tuple or not all(type(d) is int and d >= 0 for d in shape):
        raise _Refused(f"{what} is given the shape {_describe(shape)}, which is not a tuple of sizes")
    return shape


def _check_data_size(data, dtype: np.dtype, shape: tuple[int, ...], what: str) -> None:
    expected = math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        raise _Refused(f"{what} is given {len(data)} bytes; shape {shape} of {dtype} needs {expected}")


def _numpy_dtype(args: tuple) -> np.dtype:
    """numpy.dtype(code, align, copy): always a fresh copy, so that BUILD's byte order changes it alone."""
    code, _align, _copy = _arguments(args, str, (bool, int), (bool, int), what="numpy.dtype")
    if code not in _NUMERIC_DTYPE_CODES:
        raise _Refused(f"numpy.dtype is asked for {code[:20]!r}, which is not a plain numeric type code")
    return np.dtype(code, copy=True)


def _numpy_reconstruct(args: tuple) -> np.ndarray:
    """numpy's _reconstruct(numpy.ndarray, (0,), b'b'): the empty array BUILD then fills."""
    subtype, shape, _code = _arguments(args, _Global, tuple, (bytes, str), what="numpy's _reconstruct")
    if subtype is not _NDARRAY_TYPE or not _is_plain(shape, (0,)):
        raise _Refused(f"numpy's _reconstruct is asked for {subtype.qualified_name} {_describe(shape)}")
    return np.empty((0,), np.int8)


def _numpy_frombuffer(args: tuple) -> np.ndarray:
    """numpy's _frombuffer(data, dtype, shape, order) of protocol 5: a copy of the data."""
    what = "numpy's _frombuffer"
    data, dtype, shape, order = _arguments(args, (bytes, bytearray), np.dtype, tuple, str, what=what)
    dtype, shape = _numeric_dtype(dtype, what), _shape(shape, what)
    if order not in ("C", "F"):
        raise _Refused(f"{what} is given the order {order[:20]!r}")
    _check_data_size(data, dtype, shape, what)
    return np.frombuffer(bytes(data), dtype).reshape(shape, order=order).copy(order=order)


def _numpy_scalar(args: tuple) -> np.generic:
    """numpy's scalar(dtype, data): one number."""
    dtype, data = _arguments(args, np.dtype, bytes, what="numpy's scalar")
    dtype = _numeric_dtype(dtype, "numpy's scalar")
    _check_data_size(data, dtype, (), "numpy's scalar")
    return np.frombuffer(data, dtype)[0]


def _latin1_bytes(args: tuple) -> bytes:
    """_codecs.encode(text, 'latin1'): how protocols 0-2 write bytes."""
    text, encoding = _arguments(args, str, str, what="_codecs.encode")
    if encoding not in ("latin1", "latin-1"):
        raise _Refused(f"_codecs.encode is asked for the encoding {encoding[:20]!r}")
    return text.encode("latin-1")


def _bytearray(args: tuple) -> bytearray:
    """bytearray(), bytearray(data), or bytearray(text, 'latin-1') as protocols 0-2 write it."""
    if len(args) == 2:
        return bytearray(_latin1_bytes(args))
    return bytearray(*_optional_argument(args, bytes, "bytearray"))


def _bytes(args: tuple) -> bytes:
    return bytes(*_optional_argument(args, bytes, "bytes"))


def _collection(kind: type) -> Callable[[tuple], object]:
    """set(items) or frozenset(items), as protocols 0-3 write them."""

    def make(args: tuple):
        return kind(*_optional_argument(args, (list, tuple), kind.__name__))

    return make


def _complex(args: tuple) -> complex:
    return complex(*_arguments(args, numbers.Real, numbers.Real, what="complex"))


def _empty_instance(cls: type) -> Callable[[tuple], object]:
    """A shell of `cls` made without running any of its code; BUILD fills it with checked data.
    Objects are pickled with no arguments (NEWOBJ) and NDArrays as NDArray(None)."""

    def make(args: tuple):
        pickled_ndarray = cls is NDArray and len(args) == 1 and args[0] is None
        if args and not pickled_ndarray:
            _arguments(args, what=f"{cls.__name__} (created empty)")
        return cls.__new__(cls)

    return make


def _default_rescale(args: tuple) -> _DefaultRescale:
    (value,) = _arguments(args, numbers.Real, what="_DefaultRescale")
    return _DefaultRescale(float(value))


def _reconstructor(args: tuple):
    """copyreg._reconstructor(cls, object, None): how protocols 0 and 1 write an object."""
    cls, base, _state = _arguments(args, _Global, _Global, type(None), what="copyreg._reconstructor")
    if base is not _OBJECT_TYPE or not cls.builds:
        raise _Refused(f"copyreg._reconstructor is asked for {cls.qualified_name} on {base.qualified_name}")
    return cls.make(())


def _only_an_argument(qualified_name: str) -> Callable[[tuple], object]:
    def make(args: tuple):
        raise _Refused(f"{qualified_name} is called; a states file may only pass it as an argument")

    return make


_NDARRAY_TYPE = _Global("numpy.ndarray", _only_an_argument("numpy.ndarray"))
_OBJECT_TYPE = _Global("builtins.object", _only_an_argument("builtins.object"))
_RECONSTRUCTOR = _Global("copyreg._reconstructor", _reconstructor, builds=True)


def _spellings(modules: tuple[str, ...], name: str, found: _Global) -> dict[tuple[str, str], _Global]:
    return {(module, name): found for module in modules}


def _named(modules: tuple[str, ...], name: str, make, builds: bool = False) -> dict[tuple[str, str], _Global]:
    return _spellings(modules, name, _Global(f"{modules[0]}.{name}", make, builds))


_NUMPY_MULTIARRAY = ("numpy._core.multiarray", "numpy.core.multiarray")  # NumPy 2 and NumPy 1
_BUILTINS = ("builtins", "__builtin__")  # Python 3 and Python 2

# (module, name) as pickles write them -> what the file gets.
_CONSTRUCTORS: dict[tuple[str, str], _Global] = {
    **_named(_NUMPY_MULTIARRAY, "_reconstruct", _numpy_reconstruct, builds=True),
    **_named(_NUMPY_MULTIARRAY, "scalar", _numpy_scalar),
    **_named(("numpy._core.numeric", "numpy.core.numeric"), "_frombuffer", _numpy_frombuffer),
    **_named(("numpy",), "dtype", _numpy_dtype),
    **_spellings(("numpy",), "ndarray", _NDARRAY_TYPE),
    **_spellings(_BUILTINS, "object", _OBJECT_TYPE),
    **_spellings(("copyreg", "copy_reg"), "_reconstructor", _RECONSTRUCTOR),
    **_named(_BUILTINS, "bytearray", _bytearray),
    **_named(_BUILTINS, "bytes", _bytes),
    **_named(_BUILTINS, "set", _collection(set)),
    **_named(_BUILTINS, "frozenset", _collection(frozenset)),
    **_named(_BUILTINS, "complex", _complex),
    **_named(("_codecs",), "encode", _latin1_bytes),
    **_named(
        ("ember.ndarray.ndarray", "ember.ndarray", "mxnet.ndarray.ndarray", "mxnet.ndarray"),
        "NDArray",
        _empty_instance(NDArray),
        builds=True,
    ),
    **_named(("ember.context", "mxnet.context"), "Context", _empty_instance(Context), builds=True),
    **_named(("ember.optimizer.base",), "_DefaultRescale", _default_rescale),
}


def _class_constructors() -> dict[tuple[str, str], _Global]:
    """The optimizer classes registered now (by their own module and name; Ember's also under
    MXNet's module names) and Ember's lr_scheduler classes (also under `mxnet.lr_scheduler`)."""
    classes: dict[tuple[str, str], type] = {}
    for cls in set(Optimizer.opt_registry.values()):
        if isinstance(cls, type) and issubclass(cls, Optimizer):
            classes[(cls.__module__, cls.__qualname__)] = cls
            if cls.__module__.startswith(EMBER_OPTIMIZERS):
                for module in ("mxnet.optimizer.optimizer", "mxnet.optimizer"):
                    classes[(module, cls.__name__)] = cls
    for name in _SCHEDULER_SAMPLES:
        for module in ("ember.lr_scheduler", "mxnet.lr_scheduler"):
            classes[(module, name)] = getattr(lr_scheduler, name)
    return {
        key: _Global(f"{key[0]}.{key[1]}", _empty_instance(cls), builds=True) for key, cls in classes.items()
    }


# -- filling shells (BUILD) -----------------------------------------------------------------------


def _build_ndarray(array: NDArray, state) -> None:
    """An NDArray's state: {'handle': its record's bytes}, as MXNet and Ember pickle it."""
    if type(state) is not dict or len(state) != 1:  # the handle itself is checked as it is decoded
        raise _Refused(f"an NDArray is given {_describe(state)} as its state, not {{'handle': bytes}}")
    array.__setstate__(state)
    if array.host_buffer() is None:
        raise _Refused("an NDArray's record is a 'none' array (no shape, no data)")


def _build_context(context: Context, state) -> None:
    if type(state) is not dict or set(state) != {"device_typeid", "device_id"}:
        raise _Refused(f"a Context is given {_describe(state)} as its state")
    typeid, device_id = state["device_typeid"], state["device_id"]
    if type(typeid) is not int or typeid not in Context.devtype2str or type(device_id) is not int:
        raise _Refused(f"a Context is given device type {_describe(typeid)} and id {_describe(device_id)}")
    vars(context).update(state)


def _build_optimizer(optimizer: Optimizer, state) -> None:
    """An optimizer's attributes (checked as `_check_attributes` says; lr may be None only beside a
    scheduler, which then gives the rate), set as Optimizer.__setstate__ sets them; a subclass's own
    __setstate__ never runs."""
    cls = type(optimizer)
    fields = _optimizer_fields(cls)
    scheduled = type(state) is dict and isinstance(state.get("lr_scheduler"), LRScheduler)
    if scheduled and state.get("lr") is None:
        fields = {name: value for name, value in fields.items() if name != "lr"}
    _check_attributes(cls, state, fields)
    scheduler = state["lr_scheduler"]
    if scheduler is not None and not isinstance(scheduler, LRScheduler):
        raise _Refused(f"{cls.__name__}.lr_scheduler is given {_describe(scheduler)}")
    for name, kind in _TABLE_VALUE_KINDS.items():
        table = state.get(name, {})
        if any(type(key) not in (int, str) or not isinstance(value, kind) for key, value in table.items()):
            entry = f"index or name -> {kind.__name__}"
            raise _Refused(f"{cls.__name__}.{name} holds an entry that is not {entry}")
    Optimizer.__setstate__(optimizer, dict(state))


def _build_scheduler(scheduler: LRScheduler, state) -> None:
    """A scheduler's attributes, checked as `_check_attributes` says and then by its class's own
    constructor (Ember's code, given the file's values: a step below 1 or a factor above 1 is
    refused, as it would be when built), then set."""
    cls = type(scheduler)
    _check_attributes(cls, state, _scheduler_fields(cls))
    arguments = {name: state[name] for name in inspect.signature(cls).parameters if name in state}
    try:
        cls(**arguments)
    except (ValueError, TypeError, ArithmeticError) as err:
        raise _Refused(f"{cls.__name__} is given values its constructor refuses: {err}") from None
    vars(scheduler).update(state)


def _build_numpy_array(array: np.ndarray, state) -> None:
    """NumPy's array state (1, shape, dtype, is_fortran, data) of a numeric dtype, its size checked."""
    if type(state) is not tuple or len(state) != 5 or not _is_plain(state[0], 1):
        raise _Refused(f"a NumPy array is given {_describe(state)} as its state")
    _version, shape, dtype, fortran, data = state
    shape, dtype = _shape(shape, "a NumPy array"), _numeric_dtype(dtype, "a NumPy array")
    if type(fortran) is not bool or not isinstance(data, (bytes, bytearray)):
        raise _Refused("a NumPy array is given a layout flag or data of the wrong kind")
    _check_data_size(data, dtype, shape, "a NumPy array")
    array.__setstate__(state)


def _build_dtype(dtype: np.dtype, state) -> None:
    """NumPy's dtype state (3, byte order, None, None, None, -1, -1, 0): only the byte order may vary."""
    plain_state = type(state) is tuple and len(state) == 8 and _is_plain(state[0], 3)
    if not plain_state or not _is_plain(state[2:], (None, None, None, -1, -1, 0)):
        raise _Refused(f"a NumPy dtype is given {_describe(state)} as its state")
    if type(state[1]) is not str or state[1] not in ("<", ">", "=", "|"):
        raise _Refused(f"a NumPy dtype is given the byte order {_describe(state[1])}")
    dtype.__setstate__(state)


# the type of object BUILD fills -> how; NumPy scalars, containers and the rest are never filled.
_BUILDERS: tuple[tuple[type, Callable[[object, object], None]], ...] = (
    (NDArray, _build_ndarray),
    (Context, _build_context),
    (Optimizer, _build_optimizer),
    (LRScheduler, _build_scheduler),
    (np.ndarray, _build_numpy_array),
    (np.dtype, _build_dtype),
)


# -- optimizers' and schedulers' attributes ---------------------------------------------------------

# Arguments that build one of each lr_scheduler class, whose attributes a loaded one must have.
_SCHEDULER_SAMPLES: dict[str, dict] = {
    "LRScheduler": {},
    "FactorScheduler": {"step": 1},
    "MultiFactorScheduler": {"step": [1]},
    "PolyScheduler": {"max_update": 1},
    "CosineScheduler": {"max_update": 1},
}


# An optimizer's per-parameter tables: the kind of value each maps an index or name to.
_TABLE_VALUE_KINDS = {"lr_mult": numbers.Real, "wd_mult": numbers.Real, "idx2name": str}


@functools.cache
def _optimizer_fields(cls: type) -> dict:
    """The attributes of a default instance of optimizer class `cls` (of the base class when `cls`
    needs arguments), without the Gluon parameters pickling drops."""
    try:
        fields = vars(cls())
    except Exception:  # noqa: BLE001 - a user's optimizer may need arguments; fall back to the base's
        fields = vars(Optimizer())
    return {name: value for name, value in fields.items() if name != "param_dict"}


@functools.cache
def _scheduler_fields(cls: type) -> dict:
    return vars(cls(**_SCHEDULER_SAMPLES[cls.__name__]))


# kind of an attribute's default value -> the kinds a loaded value may have there.
_FIELD_KINDS: tuple[tuple[type | tuple, tuple], ...] = (
    (bool, (bool, np.bool_)),
    (numbers.Real, (numbers.Real,)),
    (str, (str,)),
    (dict, (dict,)),
    ((list, tuple), (list, tuple)),
)


def _check_attributes(cls: type, state, fields: dict) -> None:
    """Refuse a state that is not a dict of attribute names to plain data, that would hide one of
    `cls`'s methods or properties, or that lacks one of `fields` or gives it another kind of value."""
    if type(state) is not dict:
        raise _Refused(f"{cls.__name__} is given {_describe(state)} as its state, not a dict of attributes")
    for name in state:
        if type(name) is not str or not name.isidentifier() or name.startswith("__"):
            raise _Refused(f"{cls.__name__} is given an attribute named {_describe(name)}")
        if _is_behaviour(inspect.getattr_static(cls, name, None)):
            raise _Refused(f"{cls.__name__} is given an attribute {name!r}, which would hide a method")
    _check_plain_data(state, cls.__name__)
    missing = sorted(set(fields) - set(state))
    if missing:
        raise _Refused(f"{cls.__name__} is given no {', '.join(missing)}")
    for name, default in fields.items():
        allowed = next((kinds for kind, kinds in _FIELD_KINDS if isinstance(default, kind)), None)
        if allowed is not None and not isinstance(state[name], allowed):
            raise _Refused(
                f"{cls.__name__}.{name} is given {_describe(state[name])}; "
                f"a {type(default).__name__} belongs there"
            )


def _is_behaviour(attribute) -> bool:
    """Whether a class attribute is code (a function, method, property or other descriptor)."""
    return callable(attribute) or hasattr(type(attribute), "__get__")


# What an optimizer's or scheduler's attributes may hold, inside containers of `_CONTAINERS`.
_PLAIN_VALUES = (
    *(type(None), bool, int, float, complex, str, bytes, bytearray),
    *(np.generic, np.ndarray, np.dtype, NDArray, Context, LRScheduler),
)
_CONTAINERS = (tuple, list, dict, set, frozenset)


def _check_plain_data(value, owner: str) -> None:
    """Refuse anything in `value` that is not plain data: a global's reference, an optimizer inside an
    optimizer, or nesting deeper than allowed."""
    for item, depth in _nested_items(value, _container_items):
        if depth > _MAX_DATA_DEPTH:
            raise _Refused(f"the attributes of {owner} nest more than {_MAX_DATA_DEPTH} containers deep")
        if not isinstance(item, (*_CONTAINERS, *_PLAIN_VALUES)):
            raise _Refused(f"the attributes of {owner} hold {_describe(item)}, where only plain data belongs")


def _container_items(item) -> list:
    """What a container holds (a dict's keys and values); nothing for anything else."""
    if isinstance(item, dict):
        return [*item.keys(), *item.values()]
    return list(item) if isinstance(item, _CONTAINERS) else []


def _nested_items(root, items_of):
    """(object, depth) for `root` and everything `items_of` finds inside it, each object once, walked
    without recursion (a file may nest far deeper than Python's recursion limit)."""
    pending, seen = [(root, 0)], set()
    while pending:
        item, depth = pending.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        yield item, depth
        pending.extend((child, depth + 1) for child in items_of(item))


# -- the loaded value ----------------------------------------------------------------------------


def _checked_result(loaded) -> tuple[dict, Optimizer | None]:
    """(states, optimizer) from a `{index: state}` dict or a `(states, optimizer)` pair."""
    optimizer = None
    if type(loaded) is tuple and len(loaded) == 2:
        loaded, optimizer = loaded
        if not isinstance(optimizer, Optimizer):
            raise _Refused(f"the states are paired with {_describe(optimizer)}, not an Optimizer")
    if type(loaded) is not dict:
        raise _Refused(f"the file holds {_describe(loaded)}, not a dict of states or (states, optimizer)")
    for index, state in loaded.items():
        if type(index) not in (int, str):
            raise _Refused(f"a state is keyed by {_describe(index)}, not by a parameter index or name")
        _check_state(state, index)
    return loaded, optimizer


def _check_state(state, index) -> None:
    """A state is None, an NDArray, or a tuple or list of states (a few levels deep)."""
    for item, depth in _nested_items(state, lambda item: list(item) if type(item) in (tuple, list) else []):
        if depth > _MAX_STATE_DEPTH:
            raise _Refused(f"the state of {index!r} nests more than {_MAX_STATE_DEPTH} levels deep")
        if type(item) not in (tuple, list) and item is not None and not isinstance(item, NDArray):
            raise _Refused(f"the state of {index!r} holds {_describe(item)}, where NDArrays and None belong")


def _describe(value) -> str:
    """A short description of a loaded value for messages (never a long repr)."""
    if isinstance(value, _Global):
        return f"a reference to {value.qualified_name}"
    if value is None:
        return "None"
    if type(value) in (bool, int, float, str):
        return f"{type(value).__name__} {repr(value)[:40]}"
    return f"a {type(value).__name__}"
