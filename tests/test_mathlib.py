"""codegen/mathlib.py: the inline exp/log/tanh/... emitters against NumPy in extended precision.

Every supported (function, dtype) is JIT-compiled once as a loop `void f(T* in, T* out, i64 n)` at -O3
and run on a sweep of the whole finite range (bit patterns evenly spaced, so every binade is visited),
uniform grids on the intervals where each method changes, random values, subnormals and the special
values. The error is measured in ulps of the exact result (long double NumPy, 64-bit mantissa on x86;
float64 NumPy elsewhere, where float64 results get half an ulp of slack) and must stay within
`mathlib.MAX_ULP`; special values must match NumPy exactly. Every loop must vectorize.
"""

from __future__ import annotations

import ctypes
import functools
import re

import llvmlite.binding as llvm
import numpy as np
import pytest
from llvmlite import ir

from ember.codegen import mathlib
from ember.codegen.cpu import host_machine, optimize

FLOATS = {"float32": (ir.FloatType(), np.float32), "float64": (ir.DoubleType(), np.float64)}
EXTENDED = np.finfo(np.longdouble).nmant >= 63
WIDE = np.longdouble if EXTENDED else np.float64


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


REFERENCE = {
    "exp": np.exp, "expm1": np.expm1, "log": np.log, "log1p": np.log1p, "log2": np.log2,
    "log10": np.log10, "tanh": np.tanh, "sigmoid": _sigmoid,
}  # fmt: skip


def loop_module() -> ir.Module:
    """One module with a loop `<name>_<dtype>(in, out, n)` per supported function."""
    module = ir.Module(name="mathlib_test")
    machine = host_machine()
    module.triple = machine.triple
    module.data_layout = str(machine.target_data)
    i64 = ir.IntType(64)
    for name, dtype in sorted(mathlib.SUPPORTED):
        kind = FLOATS[dtype][0]
        ptr = kind.as_pointer()
        fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [ptr, ptr, i64]), f"{name}_{dtype}")
        src, dst, n = fn.args
        for arg in (src, dst):
            arg.add_attribute("noalias")
        entry, body, done = (
            fn.append_basic_block("entry"),
            fn.append_basic_block("body"),
            fn.append_basic_block("done"),
        )
        b = ir.IRBuilder(entry)
        b.cbranch(b.icmp_signed(">", n, ir.Constant(i64, 0)), body, done)
        b.position_at_end(body)
        i = b.phi(i64)
        i.add_incoming(ir.Constant(i64, 0), entry)
        b.store(mathlib.emit(b, name, b.load(b.gep(src, [i]))), b.gep(dst, [i]))
        nxt = b.add(i, ir.Constant(i64, 1))
        i.add_incoming(nxt, body)
        b.cbranch(b.icmp_signed("<", nxt, n), body, done)
        b.position_at_end(done)
        b.ret_void()
    return module


@functools.cache
def compiled():
    """(optimized module, MCJIT engine) for `loop_module`, built once per test session."""
    optimized = optimize(str(loop_module()))
    engine = llvm.create_mcjit_compiler(optimized, host_machine())
    engine.finalize_object()
    return optimized, engine


def run(name: str, dtype: str, x: np.ndarray) -> np.ndarray:
    """The compiled `name` applied to `x` (converted to `dtype`)."""
    _, engine = compiled()
    x = np.ascontiguousarray(x, dtype=FLOATS[dtype][1])
    out = np.empty_like(x)
    pointer = ctypes.c_void_p
    fn = ctypes.CFUNCTYPE(None, pointer, pointer, ctypes.c_int64)(
        engine.get_function_address(f"{name}_{dtype}")
    )
    fn(x.ctypes.data, out.ctypes.data, x.size)
    return out


def reference(name: str, x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return REFERENCE[name](x.astype(WIDE))


def ulp_errors(got: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """|got - exact| in ulps of `exact` in got's format (subnormal range: in the smallest subnormal);
    0 where both are the same special value, inf where only one is."""
    info = np.finfo(got.dtype)
    with np.errstate(over="ignore"):
        rounded = exact.astype(got.dtype)
    special = ~np.isfinite(rounded) | ~np.isfinite(got)
    same = (got == rounded) | (np.isnan(got) & np.isnan(rounded))
    _, exponent = np.frexp(np.where(special, 1, exact))
    ulp = np.ldexp(WIDE(1), np.maximum(exponent - info.nmant - 1, info.minexp - info.nmant))
    err = np.abs(got.astype(WIDE) - np.where(special, 0, exact)) / ulp
    return np.where(special, np.where(same, 0.0, np.inf), err).astype(np.float64)


@functools.cache
def sweep(dtype: str) -> np.ndarray:
    """2^19 bit patterns across all positive finite values and their negatives, random bit patterns,
    and dense uniform grids where the methods change (reduction boundaries, thresholds, near 0, 1, -1)."""
    np_type = FLOATS[dtype][1]
    itype = np.uint32 if dtype == "float32" else np.uint64
    top = int(np.array(np.inf, np_type).view(itype))
    ladder = np.linspace(0, top - 1, 1 << 19).astype(itype).view(np_type)
    noise = np.random.default_rng(0).integers(0, top, 1 << 17, dtype=itype).view(np_type)
    grids = [
        np.linspace(-1, 1, 1 << 17), np.linspace(-3, 3, 1 << 16), np.linspace(-20, 20, 1 << 16),
        np.linspace(-760, 720, 1 << 16), np.linspace(0, 4, 1 << 16), np.linspace(-1, -0.5, 1 << 15),
        np.linspace(0.6, 1.6, 1 << 16), np.geomspace(1e-12, 1, 1 << 15),
        np.linspace(80, 90, 1 << 14), np.linspace(-110, -80, 1 << 14),
    ]  # fmt: skip
    near_one = np.nextafter(np_type(1), np_type(0)) + np.arange(-4096, 4096, dtype=np.int64).astype(
        np_type
    ) * (np.finfo(np_type).eps / 2)
    parts = [ladder, -ladder, noise, near_one, subnormals(dtype)] + [g.astype(np_type) for g in grids]
    x = np.concatenate(parts)
    return x[np.isfinite(x)]


def subnormals(dtype: str) -> np.ndarray:
    np_type = FLOATS[dtype][1]
    tiny = np.finfo(np_type).smallest_subnormal
    steps = np.unique(np.geomspace(1, np.finfo(np_type).smallest_normal / tiny, 4096).astype(np.int64))
    values = steps.astype(np_type) * tiny
    return np.concatenate([values, -values])


SPECIALS = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 2.0, 0.5, 10.0, 1000.0, -1e30, 1e30]


@pytest.mark.parametrize("name,dtype", sorted(mathlib.SUPPORTED))
def test_accuracy(name, dtype):
    np_type = FLOATS[dtype][1]
    x = sweep(dtype)
    errors = ulp_errors(run(name, dtype, x), reference(name, x))
    worst = int(np.argmax(errors))
    slack = 0.0 if EXTENDED or dtype == "float32" else 0.5
    bound = mathlib.MAX_ULP[(name, dtype)] + slack
    assert errors[worst] <= bound, f"{name} {dtype}: {errors[worst]:.3f} ulp at x={x[worst]!r} ({np_type})"


@pytest.mark.parametrize("name,dtype", sorted(mathlib.SUPPORTED))
def test_special_values(name, dtype):
    np_type = FLOATS[dtype][1]
    info = np.finfo(np_type)
    x = np.array(
        SPECIALS + [info.max, -info.max, info.smallest_normal, info.smallest_subnormal], dtype=np_type
    )
    got = run(name, dtype, x)
    with np.errstate(all="ignore"):
        want = REFERENCE[name](x.astype(WIDE)).astype(np_type)
    exact = np.isnan(want) | np.isinf(want) | (want == 0) | (x == 0) | ~np.isfinite(x)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{name} NaN at {x}")
    np.testing.assert_array_equal(got[exact], want[exact], err_msg=f"{name} at {x[exact]}")
    signs = exact & ~np.isnan(want)
    np.testing.assert_array_equal(np.signbit(got[signs]), np.signbit(want[signs]), err_msg=f"{name} sign")


def neighbors(value, dtype: str, count: int = 64) -> np.ndarray:
    """The `2 * count` floats of `dtype` around `value` (a positive or negative float of any width)."""
    np_type = FLOATS[dtype][1]
    itype = np.int32 if dtype == "float32" else np.int64
    center = np.array(value).astype(np_type).view(itype)
    return (center + np.arange(-count, count, dtype=itype)).view(np_type)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_exp_limits(dtype):
    """exp overflows to inf exactly where the rounded result does, and underflows to 0 where it does,
    through the subnormal results (rounded once, not flushed)."""
    info = np.finfo(FLOATS[dtype][1])
    top = neighbors(np.log(WIDE(info.max)), dtype)
    bottom = neighbors(np.log(WIDE(info.smallest_subnormal) / 2), dtype, 4096)
    low, high = np.log(info.smallest_subnormal) - 2, np.log(info.smallest_normal) + 2
    x = np.concatenate([top, bottom, np.linspace(low, high, 1 << 16).astype(info.dtype)])
    got, exact = run("exp", dtype, x), reference("exp", x)
    with np.errstate(over="ignore"):
        rounded = exact.astype(got.dtype)
    np.testing.assert_array_equal(np.isinf(got), np.isinf(rounded))
    np.testing.assert_array_equal(got == 0, rounded == 0)
    assert (
        np.any(rounded == 0) and np.any(np.isinf(rounded)) and np.any((rounded > 0) & (rounded < info.tiny))
    )
    assert ulp_errors(got, exact).max() <= mathlib.MAX_ULP[("exp", dtype)]


def test_identities():
    """Exact results NumPy users rely on: exp(0) = 1, log(1) = 0, log2 of powers of two."""
    for dtype, (_, np_type) in FLOATS.items():
        powers = np.ldexp(np_type(1), np.arange(np.finfo(np_type).minexp, np.finfo(np_type).maxexp))
        np.testing.assert_array_equal(run("log2", dtype, powers), np.log2(powers))
        assert run("exp", dtype, np.zeros(1))[0] == 1 and run("log", dtype, np.ones(1))[0] == 0


@pytest.mark.parametrize("name,dtype", sorted(mathlib.SUPPORTED))
def test_vectorizes(name, dtype):
    """Each optimized loop runs on vector registers (for float32 exp: the chain the speed target needs)."""
    optimized, _ = compiled()
    text = str(optimized.get_function(f"{name}_{dtype}"))
    kind = "float" if dtype == "float32" else "double"
    assert re.search(rf"<(2|4|8|16) x {kind}>", text), text
    assert "@expf" not in text and "@llvm.exp." not in text


def test_no_calls_but_intrinsics():
    """Every emitted call is an LLVM intrinsic (never an external library function)."""
    text = str(loop_module())
    callees = set(re.findall(r'call \S+ @"?([\w.]+)', text))
    assert callees and all(c.startswith("llvm.") for c in callees), callees
