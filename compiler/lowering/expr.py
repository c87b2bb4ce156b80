"""Scalar expressions: the body of every kernel loop, built by lowering rules, read by codegen.

An `Expr` computes one element. Leaves are constants, loop variables and loads from a named buffer
at a flat element index; inner nodes are math calls, casts, selects and reductions over a loop
variable. Every node carries its dtype. Nodes are immutable and compare by structure (their hash is
computed once), so codegen can emit each distinct subexpression of a loop body once.

Builders (`add`, `mul`, `select`, ...) fold constants and keep index arithmetic short, which keeps
reshape and broadcast index maps cheap.
"""

from __future__ import annotations

import math

INDEX = "int64"  # the dtype of loop variables and flat indices
FLOATS = ("float16", "float32", "float64")
SIGNED = ("int8", "int32", "int64")
UNSIGNED = ("uint8", "bool")

# Call functions and the dtype of their result ("same": the first argument's dtype).
BINARY_ARITH = ("add", "sub", "mul", "div", "mod", "pow", "max", "min", "atan2", "hypot")
COMPARISONS = ("lt", "le", "gt", "ge", "eq", "ne")
LOGICAL = ("and", "or", "xor")
UNARY_MATH = (
    "neg", "abs", "floor", "ceil", "trunc", "rint", "round", "sqrt", "exp", "log", "log2", "log10",
    "log1p", "expm1", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh",
    "acosh", "atanh", "erf", "cbrt", "not", "isnan",
)  # fmt: skip
REDUCE_OPS = ("sum", "prod", "max", "min", "argmax", "argmin")


class Expr:
    """One scalar expression node; subclasses list their fields in `_fields`."""

    __slots__ = ("_hash", "_key", "dtype")
    _fields: tuple[str, ...] = ()

    def __init__(self, *values):
        key = tuple(values)
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "_hash", hash((type(self).__name__, key)))

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other) -> bool:
        return self is other or (_same_node(self, other) and _same_structure(self, other))

    def __hash__(self) -> int:
        return self._hash

    def __getattr__(self, name):
        try:
            return self._key[type(self)._fields.index(name)]
        except ValueError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        return format_expr(self)


def _same_node(a, b) -> bool:
    """Whether `a` and `b` may be equal: the same kind of node with the same structural hash."""
    return type(a) is type(b) and isinstance(a, Expr) and a._hash == b._hash


def _same_structure(a: Expr, b: Expr) -> bool:
    """Structural equality, compared without recursion (two equal trees built separately may be far
    deeper than Python's recursion limit); each pair of nodes is compared once."""
    pending, compared = [(a, b)], set()
    while pending:
        x, y = pending.pop()
        if x is y or (id(x), id(y)) in compared:
            continue
        compared.add((id(x), id(y)))
        if not _same_node(x, y):
            return False
        for fx, fy in zip(x._key, y._key):
            if isinstance(fx, tuple) and isinstance(fy, tuple) and len(fx) == len(fy):
                pairs = zip(fx, fy)
            else:
                pairs = ((fx, fy),)
            for vx, vy in pairs:
                if isinstance(vx, Expr):
                    pending.append((vx, vy))
                elif not (vx is vy or vx == vy):
                    return False
    return True


def _typed(cls):
    """Give `cls` a constructor taking its `_fields` positionally and setting `dtype` from `_dtype`."""

    def init(self, *values):
        if len(values) != len(cls._fields):
            raise TypeError(f"{cls.__name__} takes {cls._fields}, got {len(values)} values")
        Expr.__init__(self, *values)
        object.__setattr__(self, "dtype", cls._dtype_of(self))

    cls.__init__ = init
    return cls


@_typed
class Const(Expr):
    __slots__ = ()
    _fields = ("value", "type")

    def _dtype_of(self):
        return self.type


@_typed
class Var(Expr):
    """A loop variable (int64), named uniquely within its kernel."""

    __slots__ = ()
    _fields = ("name",)

    def _dtype_of(self):
        return INDEX


@_typed
class Load(Expr):
    """`buffer[index]`: the element at a flat index of a named buffer, read as `type`."""

    __slots__ = ()
    _fields = ("buffer", "index", "type")

    def _dtype_of(self):
        return self.type


@_typed
class Call(Expr):
    """A math function of its arguments (`fn` in BINARY_ARITH, COMPARISONS, LOGICAL or UNARY_MATH)."""

    __slots__ = ()
    _fields = ("fn", "args")

    def _dtype_of(self):
        if self.fn in COMPARISONS or self.fn in LOGICAL or self.fn in ("not", "isnan"):
            return "bool"
        return self.args[0].dtype


@_typed
class Cast(Expr):
    __slots__ = ()
    _fields = ("value", "type")

    def _dtype_of(self):
        return self.type


@_typed
class Select(Expr):
    """`a` where `cond` (bool) is true, else `b`; both sides are evaluated, so neither may fault."""

    __slots__ = ()
    _fields = ("cond", "a", "b")

    def _dtype_of(self):
        return self.a.dtype


@_typed
class Reduce(Expr):
    """`op` of `body` over `var` in range(extent); argmax/argmin give the first best position (int64)."""

    __slots__ = ()
    _fields = ("op", "var", "extent", "body")

    def _dtype_of(self):
        return INDEX if self.op in ("argmax", "argmin") else self.body.dtype


@_typed
class Random(Expr):
    """A uniform float32 in [0, 1), a hash of (`seed`, `counter`): the same pair gives the same number."""

    __slots__ = ()
    _fields = ("seed", "counter")

    def _dtype_of(self):
        return "float32"


# ---------------------------------------------------------------------------------------------
# Builders


def const(value, dtype: str) -> Const:
    """A constant of `dtype` (floats as Python floats, integers and bools as ints)."""
    if dtype in FLOATS:
        return Const(float(value), dtype)
    return Const(int(value), dtype)


def index(value: int) -> Const:
    return Const(int(value), INDEX)


def is_const(e: Expr, value=None) -> bool:
    return isinstance(e, Const) and (value is None or e.value == value)


def cast(e: Expr, dtype: str) -> Expr:
    if e.dtype == dtype:
        return e
    if isinstance(e, Const):
        return const(_cast_value(e.value, dtype), dtype)
    return Cast(e, dtype)


def _cast_value(value, dtype):
    if dtype == "bool":
        return int(bool(value))
    if dtype in FLOATS:
        return float(value)
    return math.trunc(value) if math.isfinite(value) else 0


def call(fn: str, *args: Expr) -> Call:
    return Call(fn, tuple(args))


def add(a: Expr, b: Expr) -> Expr:
    if is_const(a) and is_const(b) and a.dtype == INDEX:
        return index(a.value + b.value)
    if is_const(b, 0) and a.dtype == INDEX:
        return a
    if is_const(a, 0) and b.dtype == INDEX:
        return b
    return call("add", a, b)


def sub(a: Expr, b: Expr) -> Expr:
    if is_const(a) and is_const(b) and a.dtype == INDEX:
        return index(a.value - b.value)
    if is_const(b, 0) and a.dtype == INDEX:
        return a
    return call("sub", a, b)


def mul(a: Expr, b: Expr) -> Expr:
    if a.dtype == INDEX:
        if is_const(a) and is_const(b):
            return index(a.value * b.value)
        if is_const(a, 0) or is_const(b, 0):
            return index(0)
        if is_const(b, 1):
            return a
        if is_const(a, 1):
            return b
    return call("mul", a, b)


def div(a: Expr, b: Expr) -> Expr:
    """Division; on indices (never negative here) it is floor division."""
    if a.dtype == INDEX:
        if is_const(a) and is_const(b):
            return index(a.value // b.value)
        if is_const(b, 1):
            return a
    return call("div", a, b)


def mod(a: Expr, b: Expr) -> Expr:
    if a.dtype == INDEX:
        if is_const(a) and is_const(b):
            return index(a.value % b.value)
        if is_const(b, 1):
            return index(0)
    return call("mod", a, b)


def maximum(a: Expr, b: Expr) -> Expr:
    return call("max", a, b)


def minimum(a: Expr, b: Expr) -> Expr:
    return call("min", a, b)


def select(cond: Expr, a: Expr, b: Expr) -> Expr:
    if is_const(cond):
        return a if cond.value else b
    return Select(cond, a, b)


def compare(fn: str, a: Expr, b: Expr) -> Expr:
    return call(fn, a, b)


def clamp_index(i: Expr, extent: int) -> Expr:
    """`i` clamped into [0, extent): a load at it can never fault."""
    if is_const(i):
        return index(min(max(i.value, 0), max(extent - 1, 0)))
    return minimum(maximum(i, index(0)), index(max(extent - 1, 0)))


# ---------------------------------------------------------------------------------------------
# Printing


def children(e: Expr) -> tuple[Expr, ...]:
    """The subexpressions `e` reads, in field order (a Call's arguments flattened)."""
    found: list[Expr] = []
    for field in e._key:
        if isinstance(field, Expr):
            found.append(field)
        elif isinstance(field, tuple):
            found.extend(item for item in field if isinstance(item, Expr))
    return tuple(found)


def walk(roots) -> list[Expr]:
    """Every distinct node under `roots` once (by identity), parents before children, left to right.

    Iterative, as every walk over expressions must be: a fused kernel's expression may be far deeper
    than Python's recursion limit."""
    order: list[Expr] = []
    seen: set[int] = set()
    stack = list(reversed(tuple(roots)))
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        order.append(e)
        stack.extend(reversed(children(e)))
    return order


def post_order(roots, children_of=children, key=id) -> list[Expr]:
    """Every distinct node under `roots` once, each after all of its children (for bottom-up work).

    `children_of(e)` gives the nodes to visit below `e` (all of its children by default); nodes are
    distinct by `key` (identity by default; pass `key=lambda e: e` to merge structurally equal ones)."""
    order: list[Expr] = []
    done: set = set()
    stack: list[tuple[Expr, bool]] = [(e, False) for e in reversed(tuple(roots))]
    while stack:
        e, expanded = stack.pop()
        if key(e) in done:
            continue
        if expanded:
            done.add(key(e))
            order.append(e)
            continue
        stack.append((e, True))
        stack.extend((c, False) for c in reversed(children_of(e)) if key(c) not in done)
    return order


# How each node kind prints, given its already formatted children (in `children` order).
_FORMATS = {
    "Const": lambda e, parts: repr(e.value) if e.dtype in (INDEX, "float32") else f"{e.value!r}:{e.dtype}",
    "Var": lambda e, parts: e.name,
    # a load is typed unless it reads float32 (so the text types every value)
    "Load": lambda e, parts: f"{e.buffer}[{parts[0]}]" + ("" if e.dtype == "float32" else f":{e.dtype}"),
    "Call": lambda e, parts: f"{e.fn}({', '.join(parts)})",
    "Cast": lambda e, parts: f"{e.dtype}({parts[0]})",
    "Select": lambda e, parts: f"select({parts[0]}, {parts[1]}, {parts[2]})",
    "Reduce": lambda e, parts: f"{e.op}({e.var.name} < {e.extent}: {parts[-1]})",
    "Random": lambda e, parts: f"random({parts[0]}, {parts[1]})",
}


def format_expr(e: Expr) -> str:
    """`e` as one line of text (for `ember inspect` and error messages)."""
    if not isinstance(e, Expr):
        raise TypeError(f"not an expression: {e!r}")
    text: dict[int, str] = {}
    for node in post_order((e,)):
        text[id(node)] = _FORMATS[type(node).__name__](node, [text[id(c)] for c in children(node)])
    return text[id(e)]
