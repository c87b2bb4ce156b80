"""Element types Ember knows, with MXNet's numeric type codes and NumPy equivalents.

A dtype is carried through the IR as its canonical name string ('float32', 'int64', ...).
"""

import numpy as np
from ember.runtime.errors import TypeInferenceError

# MXNet's type codes (MXNET_COMPAT.md section 11.2), used by .params files and `__dtype__` attrs.
DTYPE_CODES = {
    "float32": 0,
    "float64": 1,
    "float16": 2,
    "uint8": 3,
    "int32": 4,
    "int8": 5,
    "int64": 6,
    "bool": 7,
    "int16": 8,
    "uint16": 9,
    "uint32": 10,
    "uint64": 11,
}
CODE_TO_DTYPE = {code: name for name, code in DTYPE_CODES.items()}

# The dtypes every pass and op must support; the others only travel through files.
SUPPORTED_DTYPES = ("float32", "float64", "float16", "int32", "int64", "int8", "uint8", "bool")
FLOAT_DTYPES = ("float16", "float32", "float64")
DEFAULT_DTYPE = "float32"


def dtype_name(dtype) -> str:
    """Canonical name of anything NumPy understands as a dtype (a name, a type class, a code)."""
    if isinstance(dtype, int) and not isinstance(dtype, bool):
        if dtype not in CODE_TO_DTYPE:
            raise TypeInferenceError(f"unknown MXNet dtype code {dtype}")
        return CODE_TO_DTYPE[dtype]
    try:
        name = np.dtype(dtype).name
    except TypeError as err:
        raise TypeInferenceError(f"unknown dtype {dtype!r}") from err
    if name not in DTYPE_CODES:
        raise TypeInferenceError(f"dtype {name} is not supported by Ember")
    return name


def is_float(dtype: str) -> bool:
    """Whether a canonical dtype name is a floating-point type."""
    return dtype in FLOAT_DTYPES
