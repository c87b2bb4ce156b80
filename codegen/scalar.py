"""Scalar code: one `Expr` tree (compiler/lowering/expr.py) emitted as LLVM instructions.

`ExprEmitter.emit` walks a tree and caches what it has emitted in scopes that follow the loop
nesting, so a subexpression shared by several stores of a loop body is computed once, and a value
computed outside a reduction loop is reused inside it. Math with no LLVM instruction uses mathlib.py's
branch-free polynomials where it has them (exp, log, tanh, ...: loops stay vectorizable), else LLVM
intrinsics or the C math library (linked with -lm); float16 math runs in float32.
"""

from __future__ import annotations

from collections.abc import Callable

from llvmlite import ir

from ember.compiler.lowering import expr as E
from ember.runtime.errors import CompileError

from . import mathlib
from .llvm_types import F16, F32, I1, I64, is_float, is_unsigned, memory_type, register_type
from .loops import counted_loop

# Float functions with an LLVM intrinsic, and those only the C library has (name for float64).
INTRINSICS = {
    "sqrt": "llvm.sqrt", "exp": "llvm.exp", "log": "llvm.log", "log2": "llvm.log2", "log10": "llvm.log10",
    "sin": "llvm.sin", "cos": "llvm.cos", "floor": "llvm.floor", "ceil": "llvm.ceil", "trunc": "llvm.trunc",
    "rint": "llvm.rint", "round": "llvm.round", "abs": "llvm.fabs", "pow": "llvm.pow",
}  # fmt: skip
LIBM = {
    "tan": "tan", "asin": "asin", "acos": "acos", "atan": "atan", "sinh": "sinh", "cosh": "cosh",
    "tanh": "tanh", "asinh": "asinh", "acosh": "acosh", "atanh": "atanh", "erf": "erf", "cbrt": "cbrt",
    "log1p": "log1p", "expm1": "expm1", "atan2": "atan2", "hypot": "hypot", "mod": "fmod",
}  # fmt: skip
FLOAT_BINARY = {"add": "fadd", "sub": "fsub", "mul": "fmul", "div": "fdiv"}
INT_BINARY = {"add": "add", "sub": "sub", "mul": "mul"}
FLOAT_COMPARE = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}
LOGICAL = {"and": "and_", "or": "or_", "xor": "xor"}


def _itself(e: E.Expr) -> E.Expr:
    return e  # emitted values are cached by structure, so structurally equal nodes are one node


class ExprEmitter:
    """Emits expressions at `builder`'s position; `pointers(buffer, dtype)` gives a typed pointer.

    `library_call(b, fn, args)` emits the float functions that have neither an LLVM instruction nor
    an inline mathlib version; by default LLVM intrinsics and the C math library (a GPU target passes
    its own: libdevice, nvptx.py)."""

    def __init__(
        self,
        builder: ir.IRBuilder,
        pointers: Callable[[str, str], ir.Value],
        vars: dict,
        library_call: Callable | None = None,
    ):
        self.b = builder
        self.pointers = pointers
        self.vars = vars  # loop variable name -> its current i64 value
        self.scopes: list[dict] = [{}]
        self.library_call = library_call or c_library_call

    # -- scopes ---------------------------------------------------------------------------------

    def push(self) -> None:
        self.scopes.append({})

    def pop(self) -> None:
        self.scopes.pop()

    def _cached(self, e: E.Expr):
        for scope in reversed(self.scopes):
            if e in scope:
                return scope[e]
        return None

    def emit(self, e: E.Expr) -> ir.Value:
        """The LLVM value of `e` (register type of its dtype)."""
        hit = self._cached(e)
        if hit is not None:
            return hit
        for node in E.post_order((e,), self._unemitted_children, key=_itself):  # children first, so
            self.scopes[-1][node] = self._emit(node)  # `_emit` finds every child it asks for cached
        return self.scopes[-1][e]

    def _unemitted_children(self, e: E.Expr) -> tuple[E.Expr, ...]:
        """The children of `e` still to emit before it; a reduction's body is left to `reduce`, which
        emits it inside its loop."""
        if isinstance(e, E.Reduce):
            return ()
        return tuple(c for c in E.children(e) if self._cached(c) is None)

    # -- node kinds ---------------------------------------------------------------------------------

    def _emit(self, e: E.Expr) -> ir.Value:
        if isinstance(e, E.Const):
            return self.constant(e.value, e.dtype)
        if isinstance(e, E.Var):
            return self.vars[e.name]
        if isinstance(e, E.Load):
            return self.load(e.buffer, self.emit(e.index), e.dtype)
        if isinstance(e, E.Cast):
            return self.cast(self.emit(e.value), e.value.dtype, e.dtype)
        if isinstance(e, E.Select):
            return self.b.select(self.emit(e.cond), self.emit(e.a), self.emit(e.b))
        if isinstance(e, E.Call):
            return self.call(e)
        if isinstance(e, E.Reduce):
            return self.reduce(e)
        if isinstance(e, E.Random):
            return self.random(self.emit(e.seed), self.emit(e.counter))
        raise CompileError(f"codegen cannot emit {e!r}")

    def constant(self, value, dtype: str) -> ir.Constant:
        kind = register_type(dtype)
        if is_float(dtype):
            return ir.Constant(kind, float(value))
        return ir.Constant(kind, int(value))

    def load(self, buffer: str, position: ir.Value, dtype: str) -> ir.Value:
        ptr = self.b.gep(self.pointers(buffer, dtype), [position], inbounds=True)
        value = self.b.load(ptr)
        return self.b.trunc(value, I1) if dtype == "bool" else value

    def store(
        self, buffer: str, position: ir.Value, value: ir.Value, dtype: str, mode: str = "store"
    ) -> None:
        ptr = self.b.gep(self.pointers(buffer, dtype), [position], inbounds=True)
        if mode != "store":
            old = self.b.load(ptr)
            old = self.b.trunc(old, I1) if dtype == "bool" else old
            value = self.combine("sum" if mode == "add" else "max", old, value, dtype)
        if dtype == "bool":
            value = self.b.zext(value, memory_type("bool"))
        self.b.store(value, ptr)

    def cast(self, value: ir.Value, source: str, target: str) -> ir.Value:
        if source == target:
            return value
        b, to = self.b, register_type(target)
        if target == "bool":
            zero = self.constant(0, source)
            return (
                b.fcmp_unordered("!=", value, zero)
                if is_float(source)
                else b.icmp_unsigned("!=", value, zero)
            )
        if is_float(source) and is_float(target):
            return b.fpext(value, to) if _bits(source) < _bits(target) else b.fptrunc(value, to)
        if is_float(source):
            return self.float_to_int(value, to)
        if is_float(target):
            return b.uitofp(value, to) if is_unsigned(source) else b.sitofp(value, to)
        width_from, width_to = value.type.width, to.width
        if width_from == width_to:
            return value
        if width_from > width_to:
            return b.trunc(value, to)
        return b.zext(value, to) if is_unsigned(source) else b.sext(value, to)

    def float_to_int(self, value: ir.Value, to: ir.IntType) -> ir.Value:
        """C's conversion as x86 does it (and NumPy shows): NaN and out-of-range values give the most
        negative integer of 32 (or 64) bits; narrower types keep the low bits."""
        b = self.b
        if value.type == F16:  # exact, and +-2^63 are representable in float32
            value = b.fpext(value, F32)
        width = 64 if to.width == 64 else 32
        kind = ir.IntType(width)
        limit = float(1 << (width - 1))
        in_range = b.and_(
            b.fcmp_ordered(">=", value, ir.Constant(value.type, -limit)),
            b.fcmp_ordered("<", value, ir.Constant(value.type, limit)),
        )
        safe = b.select(in_range, value, ir.Constant(value.type, 0.0))
        result = b.select(in_range, b.fptosi(safe, kind), ir.Constant(kind, -(1 << (width - 1))))
        return result if to.width == width else b.trunc(result, to)

    # -- math ---------------------------------------------------------------------------------------

    def call(self, e: E.Call) -> ir.Value:
        fn, dtype = e.fn, e.args[0].dtype
        args = [self.emit(a) for a in e.args]
        b = self.b
        if fn in FLOAT_COMPARE:
            if is_float(dtype):
                op = FLOAT_COMPARE[fn]
                return b.fcmp_unordered(op, *args) if fn == "ne" else b.fcmp_ordered(op, *args)
            icmp = b.icmp_unsigned if is_unsigned(dtype) else b.icmp_signed
            return icmp(FLOAT_COMPARE[fn], *args)
        if fn in LOGICAL:
            return getattr(b, LOGICAL[fn])(*args)
        if fn == "not":
            return b.xor(args[0], ir.Constant(I1, 1))
        if fn == "isnan":
            return b.fcmp_unordered("uno", args[0], args[0]) if is_float(dtype) else ir.Constant(I1, 0)
        if fn in ("max", "min"):
            return self.combine(fn, args[0], args[1], dtype)
        if is_float(dtype):
            return self.float_call(fn, args, dtype)
        return self.int_call(fn, args, dtype)

    def float_call(self, fn: str, args: list, dtype: str) -> ir.Value:
        b = self.b
        if fn in FLOAT_BINARY:
            return getattr(b, FLOAT_BINARY[fn])(*args)
        if fn == "neg":
            return b.fneg(args[0])
        if dtype == "float16":  # C math on float32, rounded back
            wide = [b.fpext(a, F32) for a in args]
            return b.fptrunc(self.float_call(fn, wide, "float32"), args[0].type)
        if fn == "mod":
            return b.frem(*args)
        if len(args) == 1 and mathlib.supports(fn, dtype):  # branch-free, so loops using it vectorize
            return mathlib.emit(b, fn, args[0])
        return self.library_call(b, fn, args)

    def int_call(self, fn: str, args: list, dtype: str) -> ir.Value:
        b = self.b
        if fn in INT_BINARY:
            return getattr(b, INT_BINARY[fn])(*args)
        if fn == "neg":
            return b.neg(args[0])
        if fn == "abs":
            negative = b.icmp_signed("<", args[0], ir.Constant(args[0].type, 0))
            return b.select(negative, b.neg(args[0]), args[0]) if not is_unsigned(dtype) else args[0]
        if fn == "div":
            return (b.udiv if is_unsigned(dtype) else b.sdiv)(args[0], self._nontrapping(args[1], dtype))
        if fn == "mod":
            return (b.urem if is_unsigned(dtype) else b.srem)(args[0], self._nontrapping(args[1], dtype))
        raise CompileError(f"codegen has no integer function {fn!r} (for {dtype})")

    def _nontrapping(self, divisor: ir.Value, dtype: str) -> ir.Value:
        """A divisor that cannot trap: x86 raises SIGFPE for 0 (and INT_MIN / -1), so a variable
        divisor of 0 or -1 becomes 1. Lowering rules give those cases their meaning themselves;
        this only guarantees a process is never killed."""
        if isinstance(divisor, ir.Constant) and divisor.constant not in (0, -1):
            return divisor
        b, kind = self.b, divisor.type
        risky = b.icmp_unsigned("==", divisor, ir.Constant(kind, 0))
        if not is_unsigned(dtype):
            risky = b.or_(risky, b.icmp_signed("==", divisor, ir.Constant(kind, -1)))
        return b.select(risky, ir.Constant(kind, 1), divisor)

    def combine(self, op: str, acc: ir.Value, value: ir.Value, dtype: str) -> ir.Value:
        """One step of a reduction (or max/min of two values); max and min propagate NaN as NumPy."""
        b = self.b
        if op == "sum":
            if is_float(dtype):
                result = b.fadd(acc, value)
                result.flags.append("reassoc")
                return result
            return b.or_(acc, value) if dtype == "bool" else b.add(acc, value)
        if op == "prod":
            if is_float(dtype):
                result = b.fmul(acc, value)
                result.flags.append("reassoc")
                return result
            return b.and_(acc, value) if dtype == "bool" else b.mul(acc, value)
        if op in ("max", "min"):
            if is_float(dtype):
                better = b.fcmp_unordered(">" if op == "max" else "<", value, acc)  # true when either is NaN
                keep_nan = b.fcmp_unordered("uno", acc, acc)
                return b.select(b.and_(better, b.xor(keep_nan, ir.Constant(I1, 1))), value, acc)
            icmp = b.icmp_unsigned if is_unsigned(dtype) else b.icmp_signed
            return b.select(icmp(">" if op == "max" else "<", value, acc), value, acc)
        raise CompileError(f"codegen has no reduction {op!r}")

    # -- reductions ---------------------------------------------------------------------------------

    def reduce(self, e: E.Reduce) -> ir.Value:
        """A loop over `e.var` carrying the accumulator (and the best position for argmax/argmin)."""
        dtype = e.body.dtype
        arg = e.op in ("argmax", "argmin")
        base_op = e.op[3:] if arg else e.op
        init = [self.constant(_identity(base_op, dtype), dtype)] + ([ir.Constant(I64, 0)] if arg else [])

        def step(i, values):
            self.vars[e.var.name] = i
            self.push()
            value = self.emit(e.body)
            self.pop()
            acc = self.combine(base_op, values[0], value, dtype)
            if not arg:
                return [acc]
            return [acc, self.b.select(self._differs(acc, values[0], dtype), i, values[1])]

        result = counted_loop(self.b, (0, e.extent, 1), step, init, name="reduce")
        return result[1] if arg else result[0]

    def _differs(self, new: ir.Value, old: ir.Value, dtype: str) -> ir.Value:
        b = self.b
        if is_float(dtype):  # NaN replacing a number counts; NaN staying NaN does not
            ne = b.fcmp_ordered("!=", new, old)
            became_nan = b.and_(b.fcmp_unordered("uno", new, new), b.fcmp_ordered("ord", old, old))
            return b.or_(ne, became_nan)
        return b.icmp_unsigned("!=", new, old)

    # -- random numbers -----------------------------------------------------------------------------

    def random(self, seed: ir.Value, counter: ir.Value) -> ir.Value:
        """splitmix64 of seed * golden + counter; the top 24 bits as a float32 in [0, 1)."""
        b = self.b
        x = b.add(b.mul(seed, ir.Constant(I64, 0x9E3779B97F4A7C15 - (1 << 64))), counter)
        for shift, mult in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
            x = b.mul(b.xor(x, b.lshr(x, ir.Constant(I64, shift))), ir.Constant(I64, mult - (1 << 64)))
        x = b.xor(x, b.lshr(x, ir.Constant(I64, 31)))
        top = b.lshr(x, ir.Constant(I64, 40))
        return b.fmul(b.uitofp(top, F32), ir.Constant(F32, 1.0 / (1 << 24)))


def c_library_call(b: ir.IRBuilder, fn: str, args: list) -> ir.Value:
    """`fn`(args) through an LLVM intrinsic or the C math library (float or double arguments)."""
    kind = args[0].type
    if fn in INTRINSICS:
        callee = b.module.declare_intrinsic(INTRINSICS[fn], [kind])
        return b.call(callee, args)
    if fn in LIBM:
        name = LIBM[fn] + ("f" if kind == F32 else "")
        return b.call(declare_function(b.module, name, kind, len(args)), args)
    raise CompileError(f"codegen has no float function {fn!r}")


def _identity(op: str, dtype: str):
    if op == "sum":
        return 0
    if op == "prod":
        return 1
    if is_float(dtype):
        return float("-inf") if op == "max" else float("inf")
    bits = register_type(dtype).width
    if is_unsigned(dtype):
        return 0 if op == "max" else (1 << bits) - 1
    return -(1 << (bits - 1)) if op == "max" else (1 << (bits - 1)) - 1


def _bits(dtype: str) -> int:
    return {"float16": 16, "float32": 32, "float64": 64}[dtype]


def declare_function(module: ir.Module, name: str, kind: ir.Type, arity: int) -> ir.Function:
    """The module's declaration of `kind name(kind, ...)` (`arity` arguments), added once."""
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    fn = ir.Function(module, ir.FunctionType(kind, [kind] * arity), name)
    fn.attributes.add("nounwind")
    return fn
