"""Ember dtypes as LLVM types: how each is stored in memory and held in registers."""

from __future__ import annotations

from llvmlite import ir

I1, I8, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.IntType(64)
F16, F32, F64 = ir.HalfType(), ir.FloatType(), ir.DoubleType()

MEMORY_TYPES = {
    "float16": F16,
    "float32": F32,
    "float64": F64,
    "int8": I8,
    "uint8": I8,
    "bool": I8,
    "int32": I32,
    "int64": I64,
}
FLOATS = ("float16", "float32", "float64")
UNSIGNED = ("uint8", "bool")


def memory_type(dtype: str) -> ir.Type:
    return MEMORY_TYPES[dtype]


def register_type(dtype: str) -> ir.Type:
    """The type a value of `dtype` has in registers (bools are i1, stored as one byte)."""
    return I1 if dtype == "bool" else MEMORY_TYPES[dtype]


def is_float(dtype: str) -> bool:
    return dtype in FLOATS


def is_unsigned(dtype: str) -> bool:
    return dtype in UNSIGNED
