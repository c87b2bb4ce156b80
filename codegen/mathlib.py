"""Vectorizable math: exp, expm1, log, log1p, log2, log10, tanh and sigmoid as straight-line LLVM IR.

A call to the C math library (`expf`, `tanhf`) stops LLVM's loop vectorizer, so an elementwise loop with
a transcendental runs one element at a time. The emitters here write each function inline, at an
`ir.IRBuilder`'s position, using only instructions that vectorize: fmul/fadd/fdiv, `llvm.fmuladd`,
fcmp + select, bitcasts between a float and its same-width integer, integer adds and shifts,
fptosi/sitofp through i32, and the `llvm.rint`, `llvm.fabs` and `llvm.copysign` intrinsics. There are
no branches and no calls to external functions. Each takes a scalar `float` or `double` value.

Methods (the polynomial coefficients are minimax fits computed with mpmath, the log64 ones fdlibm's):

* exp: n = rint(x / ln2), r = x - n*ln2 with a Cody-Waite two-constant ln2, e^r = 1 + r + r^2 h(r)
  (degree 5 for float32, 10 for float64), times 2^n built in the exponent field as 2^(n>>1) *
  2^(n - (n>>1)), which keeps both factors normal: results overflow to inf and underflow gradually
  (subnormal results are rounded once, not flushed).
* expm1: the same reduction, then 2 * (2^(n-1) * (e^r - 1) + (2^(n-1) - 1/2)), exact for n = 0; tiny
  |x| returns x.
* log, log2, log10: x = 2^e * m with m in [sqrt(1/2), sqrt(2)) from the bits (subnormal x is scaled by
  2^23 / 2^54 first), f = m - 1; float32 uses log(1+f) = f - f^2/2 + f^3 g(f) (degree 8), float64
  fdlibm's s = f / (2 + f) and a degree-6 polynomial in s^2.
* log1p: log(u) + (x - (u - 1)) / u with u = 1 + x (the correction recovers the bits 1 + x lost).
* tanh: t = expm1(2|x|), tanh = sign(x) * (1 - 2 / (t + 2)) (the value of t / (t + 2),
  without losing its last bits where t + 2 rounds); below |x| = 0.55 an odd polynomial x + x^3 P(x^2) (P of degree 4 for
  float32, 10 for float64). |x| is clamped where tanh rounds to 1.
* sigmoid: t = e^-|x|, 1 / (1 + t) for x >= 0 and t / (1 + t) otherwise, never overflowing.

Special values follow NumPy: NaN -> NaN; exp(inf) = inf, exp(-inf) = 0; log(0) = -inf, log(x < 0) =
NaN, log(inf) = inf; tanh(+-inf) = +-1; the odd functions keep the sign of -0.

Accuracy (`MAX_ULP`, checked by tests/test_mathlib.py against NumPy in extended precision over the
whole finite range, subnormals included), in both float32 and float64: 1 ulp for exp and log, 1.5 for
log2, log10 and log1p, 2 for expm1 and tanh, 2.5 for sigmoid. Subnormal inputs and outputs are
computed, not flushed, so the code assumes the CPU does not flush denormals (the default).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from llvmlite import ir

I32 = ir.IntType(32)
LN2 = math.log(2.0)

# Polynomial coefficients, highest degree first.
# (e^r - 1 - r) / r^2 on |r| <= ln2/2 + 0.002.
EXPM1_32 = (0.00019891557, 0.001393416, 0.0083333105, 0.04166646, 0.16666667, 0.5)
EXPM1_64 = (
    2.0915118711997293e-09, 2.5105821598328188e-08, 2.755727259985714e-07, 2.7557253939287672e-06,
    2.480158732637491e-05, 0.0001984126987597895, 0.001388888888888351, 0.008333333333325803,
    0.04166666666666667, 0.1666666666666667, 0.5,
)  # fmt: skip
# float32: (log(1+f) - f + f^2/2) / f^3 on [sqrt(1/2) - 1, sqrt(2) - 1].
LOG_32 = (
    0.06980702, -0.114945464, 0.11689071, -0.124240376, 0.14248551, -0.1666785, 0.2000073,
    -0.24999997, 0.3333333,
)  # fmt: skip
# float64 (fdlibm Lg7..Lg1): (2 atanh(s) - 2s) / s^3 as a polynomial in z = s^2, s = f / (2 + f).
LOG_64 = (
    1.479819860511658591e-01, 1.531383769920937332e-01, 1.818357216161805012e-01, 2.222219843214978396e-01,
    2.857142874366239149e-01, 3.999999999940941908e-01, 6.666666666666735130e-01,
)  # fmt: skip
# float32: (tanh(x) - x) / x^3 as a polynomial in z = x^2 on |x| <= 0.55.
TANH_32 = (-0.0066102277, 0.021309389, -0.05390943, 0.13333113, -0.3333333)
TANH_64 = (
    -2.060276537636634e-05, 8.511313685577672e-05, -0.0002346347410887237, 0.0005889360520074057,
    -0.001455661830100716, 0.003592110378689024, -0.008863234397814355, 0.021869488493666944,
    -0.053968253967434016, 0.13333333333332714, -0.3333333333333333,
)  # fmt: skip
# Constants to 40 digits, split into two floats by `split`.
LOG2_E = "1.442695040888963407359924681001892137427"
LOG10_E = "0.4342944819032518276511289189166050822944"
LOG10_2 = "0.3010299956639811952137388947244930267682"


@dataclass(frozen=True)
class Format:
    """The constants of one IEEE binary format: its same-width integer, field layout and thresholds."""

    kind: ir.Type  # float or double
    int_kind: ir.Type  # the integer of the same width
    mantissa: int  # explicit mantissa bits
    bias: int
    ln2_hi: float  # Cody-Waite split for exp: n * ln2_hi is exact for every n exp reaches
    ln2_lo: float
    exp_max: float  # exp(x) = inf beyond this (input clamp, above ln(max))
    exp_min: float  # exp(x) = 0 below this (input clamp, below ln(min subnormal / 2))
    expm1_min: float  # expm1(x) rounds to -1 below this
    expm1_tiny: float  # expm1(x) rounds to x below this |x|
    subnormal_scale: int  # log scales subnormal inputs by 2^subnormal_scale
    log_ln2_hi: float  # split of ln2 for log: e * log_ln2_hi is exact for every exponent e
    log_ln2_lo: float
    tanh_max: float  # tanh(x) rounds to 1 beyond this
    tanh_poly: float  # below this |x| tanh uses an odd polynomial


FLOAT32 = Format(
    kind=ir.FloatType(), int_kind=ir.IntType(32), mantissa=23, bias=127,
    ln2_hi=0.693359375, ln2_lo=-2.12194440e-4, exp_max=89.0, exp_min=-104.0,
    expm1_min=-30.0, expm1_tiny=2.0**-25, subnormal_scale=23,
    log_ln2_hi=0.693359375, log_ln2_lo=-2.12194440e-4, tanh_max=10.0, tanh_poly=0.55,
)  # fmt: skip
FLOAT64 = Format(
    kind=ir.DoubleType(), int_kind=ir.IntType(64), mantissa=52, bias=1023,
    ln2_hi=6.93145751953125e-1, ln2_lo=1.42860682030941723212e-6, exp_max=710.0, exp_min=-746.0,
    expm1_min=-40.0, expm1_tiny=2.0**-54, subnormal_scale=54,
    log_ln2_hi=6.93147180369123816490e-01, log_ln2_lo=1.90821492927058770002e-10, tanh_max=20.0,
    tanh_poly=0.55,
)  # fmt: skip


def format_of(kind: ir.Type) -> Format:
    """The `Format` of an LLVM float type (float or double)."""
    if isinstance(kind, ir.FloatType):
        return FLOAT32
    if isinstance(kind, ir.DoubleType):
        return FLOAT64
    raise TypeError(f"mathlib emits float and double only, not {kind}")


class Ops:
    """Instruction helpers for one builder and one float format."""

    def __init__(self, builder: ir.IRBuilder, fmt: Format):
        self.b = builder
        self.fmt = fmt

    def c(self, value: float) -> ir.Constant:
        return ir.Constant(self.fmt.kind, value)

    def i(self, value: int) -> ir.Constant:
        return ir.Constant(self.fmt.int_kind, value)

    def intrinsic(self, name: str, *args: ir.Value) -> ir.Value:
        """Call `llvm.<name>` overloaded on the float type, all operands of that type."""
        kind = self.fmt.kind
        fnty = ir.FunctionType(kind, [kind] * len(args))
        return self.b.call(self.b.module.declare_intrinsic(f"llvm.{name}", [kind], fnty), list(args))

    def fma(self, a: ir.Value, b: ir.Value, c: ir.Value) -> ir.Value:
        """a*b + c, fused where the target has FMA (`llvm.fmuladd`: never a library call)."""
        return self.intrinsic("fmuladd", a, b, c)

    def poly(self, x: ir.Value, coeffs: tuple) -> ir.Value:
        """Horner's rule; `coeffs` highest degree first."""
        acc = self.c(coeffs[0])
        for coeff in coeffs[1:]:
            acc = self.fma(acc, x, self.c(coeff))
        return acc

    def lt(self, a: ir.Value, b: ir.Value) -> ir.Value:
        return self.b.fcmp_ordered("<", a, b)

    def gt(self, a: ir.Value, b: ir.Value) -> ir.Value:
        return self.b.fcmp_ordered(">", a, b)

    def eq(self, a: ir.Value, b: ir.Value) -> ir.Value:
        return self.b.fcmp_ordered("==", a, b)

    def is_nan(self, x: ir.Value) -> ir.Value:
        return self.b.fcmp_unordered("uno", x, x)

    def clamp(self, x: ir.Value, lo: float | None, hi: float) -> ir.Value:
        """x limited to [lo, hi] (no lower limit for None); NaN becomes hi, so integer conversions of it
        stay defined."""
        b = self.b
        x = b.select(self.lt(x, self.c(hi)), x, self.c(hi))
        return x if lo is None else b.select(self.gt(x, self.c(lo)), x, self.c(lo))

    def pow2(self, n: ir.Value) -> ir.Value:
        """2^n for an i32 n whose biased exponent is in the normal range, built in the exponent field."""
        b, fmt = self.b, self.fmt
        if fmt.int_kind.width != 32:
            n = b.sext(n, fmt.int_kind)
        biased = b.add(n, self.i(fmt.bias))
        return b.bitcast(b.shl(biased, self.i(fmt.mantissa)), fmt.kind)


# -- exp and expm1 --------------------------------------------------------------------------------


def reduce_exp(ops: Ops, x: ir.Value) -> tuple[ir.Value, ir.Value]:
    """(n, r) with x = n*ln2 + r, n an i32 and |r| <= ln2/2 (x finite and in the clamped range)."""
    b = ops.b
    nf = ops.intrinsic("rint", b.fmul(x, ops.c(1.0 / LN2)))
    r = ops.fma(nf, ops.c(-ops.fmt.ln2_hi), x)  # exact
    r = ops.fma(nf, ops.c(-ops.fmt.ln2_lo), r)
    return b.fptosi(nf, I32), r


def expm1_reduced(ops: Ops, r: ir.Value) -> ir.Value:
    """e^r - 1 for |r| <= ln2/2: r + r^2 h(r)."""
    coeffs = EXPM1_32 if ops.fmt is FLOAT32 else EXPM1_64
    return ops.fma(ops.b.fmul(r, r), ops.poly(r, coeffs), r)


def exp_core(ops: Ops, x: ir.Value) -> ir.Value:
    """e^x for every x but NaN (NaN gives inf; `emit_exp` selects it back)."""
    b, fmt = ops.b, ops.fmt
    n, r = reduce_exp(ops, ops.clamp(x, fmt.exp_min, fmt.exp_max))
    p = b.fadd(expm1_reduced(ops, r), ops.c(1.0))
    half = b.ashr(n, ir.Constant(I32, 1))
    return b.fmul(b.fmul(p, ops.pow2(half)), ops.pow2(b.sub(n, half)))


def emit_exp(ops: Ops, x: ir.Value) -> ir.Value:
    """e^x: inf above ln(max), 0 below ln(min subnormal / 2), subnormal results rounded once."""
    return ops.b.select(ops.is_nan(x), x, exp_core(ops, x))


def expm1_core(ops: Ops, x: ir.Value, lower: bool = True) -> ir.Value:
    """e^x - 1 as 2 * (2^(n-1) (e^r - 1) + (2^(n-1) - 1/2)): no cancellation, exact scaling. NaN gives
    inf, and tiny |x| loses its last bit; `lower=False` skips the clamp of x >= 0 from below."""
    b, fmt = ops.b, ops.fmt
    n, r = reduce_exp(ops, ops.clamp(x, fmt.expm1_min if lower else None, fmt.exp_max))
    half_scale = ops.pow2(b.sub(n, ir.Constant(I32, 1)))
    body = ops.fma(half_scale, expm1_reduced(ops, r), b.fsub(half_scale, ops.c(0.5)))
    return b.fmul(body, ops.c(2.0))


def emit_expm1(ops: Ops, x: ir.Value) -> ir.Value:
    """e^x - 1; x itself for tiny |x| (which keeps -0) and NaN."""
    b = ops.b
    tiny = ops.lt(ops.intrinsic("fabs", x), ops.c(ops.fmt.expm1_tiny))
    return b.select(b.or_(tiny, ops.is_nan(x)), x, expm1_core(ops, x))


# -- logarithms -----------------------------------------------------------------------------------


def log_parts(ops: Ops, x: ir.Value) -> tuple[ir.Value, ir.Value]:
    """(e, f) with x = 2^e (1 + f), e a float holding an integer and 1 + f in [sqrt(1/2), sqrt(2)),
    for positive finite x (subnormals included); other inputs give garbage for `log_special`."""
    b, fmt = ops.b, ops.fmt
    subnormal = ops.lt(x, ops.c(2.0 ** (1 - fmt.bias)))
    scaled = b.select(subnormal, b.fmul(x, ops.c(2.0**fmt.subnormal_scale)), x)
    sqrt_half = ops.i(0x3F3504F3 if fmt is FLOAT32 else 0x3FE6A09E667F3BCD)
    offset = b.sub(b.bitcast(scaled, fmt.int_kind), sqrt_half)
    exponent = b.ashr(offset, ops.i(fmt.mantissa))
    if fmt.int_kind.width != 32:
        exponent = b.trunc(exponent, I32)  # i32 -> float converts in vector registers on every target
    exponent = b.sub(
        exponent, b.select(subnormal, ir.Constant(I32, fmt.subnormal_scale), ir.Constant(I32, 0))
    )
    mantissa_bits = b.add(b.and_(offset, ops.i((1 << fmt.mantissa) - 1)), sqrt_half)
    f = b.fsub(b.bitcast(mantissa_bits, fmt.kind), ops.c(1.0))  # exact
    return b.sitofp(exponent, fmt.kind), f


def log1p_small(ops: Ops, f: ir.Value) -> tuple[ir.Value, ir.Value]:
    """log(1 + f) for f in [sqrt(1/2) - 1, sqrt(2) - 1] as (f, tail): log(1 + f) = f + tail."""
    b = ops.b
    z = b.fmul(f, f)
    if ops.fmt is FLOAT32:
        tail = b.fmul(b.fmul(f, z), ops.poly(f, LOG_32))
        return f, ops.fma(z, ops.c(-0.5), tail)
    s = b.fdiv(f, b.fadd(f, ops.c(2.0)))
    w = b.fmul(s, s)
    r = b.fmul(w, ops.poly(w, LOG_64))
    hfsq = b.fmul(ops.c(0.5), z)
    return f, b.fsub(b.fmul(s, b.fadd(hfsq, r)), hfsq)


def log_special(ops: Ops, x: ir.Value, value: ir.Value) -> ir.Value:
    """`value` with NumPy's log specials: log(+inf) = inf, log(+-0) = -inf, log(x < 0 or NaN) = NaN."""
    b = ops.b
    inf = ops.c(math.inf)
    value = b.select(ops.eq(x, inf), inf, value)
    value = b.select(ops.eq(x, ops.c(0.0)), ops.c(-math.inf), value)
    return b.select(b.fcmp_unordered("<", x, ops.c(0.0)), ops.c(math.nan), value)


def log_core(ops: Ops, x: ir.Value) -> ir.Value:
    """log(x) for positive finite x."""
    b, fmt = ops.b, ops.fmt
    e, f = log_parts(ops, x)
    f, tail = log1p_small(ops, f)
    tail = ops.fma(e, ops.c(fmt.log_ln2_lo), tail)
    return ops.fma(e, ops.c(fmt.log_ln2_hi), b.fadd(f, tail))


def emit_log(ops: Ops, x: ir.Value) -> ir.Value:
    """Natural logarithm."""
    return log_special(ops, x, log_core(ops, x))


def split(digits: str, bits: int = 16) -> tuple[float, float]:
    """The decimal `digits` as hi + lo, hi rounded to `bits` bits after the leading one (so e * hi is
    exact for every exponent e) and lo the rest, rounded once."""
    mantissa, exponent = math.frexp(float(digits))
    hi = math.ldexp(round(math.ldexp(mantissa, bits + 1)), exponent - bits - 1)
    return hi, float(Decimal(digits) - Decimal(hi))


def emit_log_base(ops: Ops, x: ir.Value, base: int) -> ir.Value:
    """log(x) / log(base) as e * log_base(2) + log(1 + f) / log(base); exact at powers of 2 for base 2."""
    b = ops.b
    e, f = log_parts(ops, x)
    f, tail = log1p_small(ops, f)
    inv_hi, inv_lo = split(LOG2_E if base == 2 else LOG10_E)
    lm = ops.fma(f, ops.c(inv_lo), b.fmul(tail, ops.c(inv_hi + inv_lo)))
    lm = ops.fma(f, ops.c(inv_hi), lm)
    if base == 2:
        return log_special(ops, x, b.fadd(e, lm))
    scale_hi, scale_lo = split(LOG10_2)
    return log_special(ops, x, ops.fma(e, ops.c(scale_hi), ops.fma(e, ops.c(scale_lo), lm)))


def emit_log1p(ops: Ops, x: ir.Value) -> ir.Value:
    """log(1 + x) as log(u) + (x - (u - 1)) / u with u = 1 + x; the sign of x (and -0) is kept."""
    b = ops.b
    u = b.fadd(x, ops.c(1.0))
    correction = b.fdiv(b.fsub(x, b.fsub(u, ops.c(1.0))), u)
    correction = b.select(b.fcmp_ordered("ord", correction, correction), correction, ops.c(0.0))
    value = b.fadd(log_special(ops, u, log_core(ops, u)), correction)
    return ops.intrinsic("copysign", value, x)


def emit_log2(ops: Ops, x: ir.Value) -> ir.Value:
    """Base-2 logarithm."""
    return emit_log_base(ops, x, 2)


def emit_log10(ops: Ops, x: ir.Value) -> ir.Value:
    """Base-10 logarithm."""
    return emit_log_base(ops, x, 10)


# -- tanh and sigmoid -----------------------------------------------------------------------------


def emit_tanh(ops: Ops, x: ir.Value) -> ir.Value:
    """tanh(|x|) = 1 - 2 / (t + 2) with t = expm1(2|x|) (near 1 this keeps the last bits that
    t / (t + 2) loses when t + 2 rounds), an odd polynomial near 0; signed like x; NaN stays NaN."""
    b, fmt = ops.b, ops.fmt
    ax = ops.intrinsic("fabs", x)
    ax = b.select(ops.gt(ax, ops.c(fmt.tanh_max)), ops.c(fmt.tanh_max), ax)  # NaN stays
    t = expm1_core(ops, b.fmul(ax, ops.c(2.0)), lower=False)
    value = b.fsub(ops.c(1.0), b.fdiv(ops.c(2.0), b.fadd(t, ops.c(2.0))))
    z = b.fmul(ax, ax)
    small = ops.fma(b.fmul(ax, z), ops.poly(z, TANH_32 if fmt is FLOAT32 else TANH_64), ax)
    value = b.select(ops.lt(ax, ops.c(fmt.tanh_poly)), small, value)
    value = b.select(b.fcmp_unordered("uno", x, x), x, value)
    return ops.intrinsic("copysign", value, x)


def emit_sigmoid(ops: Ops, x: ir.Value) -> ir.Value:
    """1 / (1 + e^-x) from t = e^-|x| (never overflows): 1 / (1 + t) for x >= 0, else t / (1 + t)."""
    b = ops.b
    t = exp_core(ops, b.fneg(ops.intrinsic("fabs", x)))
    numerator = b.select(b.fcmp_ordered(">=", x, ops.c(0.0)), ops.c(1.0), t)
    value = b.fdiv(numerator, b.fadd(t, ops.c(1.0)))
    return b.select(ops.is_nan(x), x, value)


# -- the table ------------------------------------------------------------------------------------

FUNCTIONS: dict[str, Callable[[Ops, ir.Value], ir.Value]] = {
    "exp": emit_exp,
    "expm1": emit_expm1,
    "log": emit_log,
    "log1p": emit_log1p,
    "log2": emit_log2,
    "log10": emit_log10,
    "tanh": emit_tanh,
    "sigmoid": emit_sigmoid,
}
DTYPES = ("float32", "float64")
SUPPORTED = frozenset((name, dtype) for name in FUNCTIONS for dtype in DTYPES)

# Largest error in units in the last place of the exact result (subnormal results: in units of the
# smallest subnormal) over all finite inputs, with some margin over the largest error measured
# against long double NumPy on ~2^23 inputs per entry (in brackets: float32, float64); the tests check it.
MAX_ULP = {
    ("exp", "float32"): 1.0, ("exp", "float64"): 1.0,  # [0.97, 0.98]
    ("expm1", "float32"): 2.0, ("expm1", "float64"): 2.0,  # [1.44, 1.81]
    ("log", "float32"): 1.0, ("log", "float64"): 1.0,  # [0.89, 0.88]
    ("log1p", "float32"): 1.5, ("log1p", "float64"): 1.5,  # [1.43, 1.44]
    ("log2", "float32"): 1.5, ("log2", "float64"): 1.5,  # [1.15, 1.07]
    ("log10", "float32"): 1.5, ("log10", "float64"): 1.5,  # [0.97, 1.04]
    ("tanh", "float32"): 2.0, ("tanh", "float64"): 2.0,  # [1.50, 1.50]
    ("sigmoid", "float32"): 2.5, ("sigmoid", "float64"): 2.5,  # [2.29, 2.27]
}  # fmt: skip


def supports(name: str, dtype: str) -> bool:
    """Whether `emit` has an inline implementation of `name` for `dtype` ("float32" or "float64")."""
    return (name, dtype) in SUPPORTED


def emit(builder: ir.IRBuilder, name: str, x: ir.Value) -> ir.Value:
    """`name`(x) emitted inline at `builder`'s position for a float or double `x`."""
    return FUNCTIONS[name](Ops(builder, format_of(x.type)), x)


__all__ = ["FUNCTIONS", "MAX_ULP", "SUPPORTED", "emit", "supports"]
