"""`mx.nd.linalg`: MXNet 1.9.1's linear-algebra operators.

`gemm`, `gemm2` and `syrk` are built from registry ops (`dot`, `batch_dot`, scalar and broadcast
arithmetic), so they run, and differentiate, like any other op. The factorizations and triangular
solves (`potrf`, `trsm`, `det`, ...) need LAPACK-style kernels Ember does not have: they raise
MXNetError saying so.
"""

from __future__ import annotations

from ember.runtime.errors import MXNetError

from .ndarray import NDArray
from .register import op_function
from .unsupported import unsupported_function

NO_KERNELS = "Ember has no kernels for factorizations, triangular solves or determinants"


def _product(A: NDArray, B: NDArray, transpose_a: bool, transpose_b: bool, axis: int, op: str) -> NDArray:
    """op(A) @ op(B) over the last two axes (`axis`=-2 only), batched over the leading axes."""
    if axis != -2:
        raise MXNetError(f"linalg.{op}: axis={axis} is not supported in Ember; only the default axis=-2")
    if A.ndim < 2 or A.ndim != B.ndim:
        raise MXNetError(
            f"linalg.{op}: A and B need the same number (>= 2) of axes; got {A.shape} and {B.shape}"
        )
    flags = {"transpose_a": bool(transpose_a), "transpose_b": bool(transpose_b)}
    if A.ndim == 2:
        return op_function("dot")(A, B, **flags)
    batch = A.shape[:-2]
    stacked_a, stacked_b = A.reshape((-1, *A.shape[-2:])), B.reshape((-1, *B.shape[-2:]))
    product = op_function("batch_dot")(stacked_a, stacked_b, **flags)
    return product.reshape((*batch, *product.shape[-2:]))


def gemm2(A, B, transpose_a=False, transpose_b=False, alpha=1.0, axis=-2, out=None, name=None, **kwargs):
    """alpha * op(A) @ op(B), op transposing the last two axes when asked; leading axes are a batch."""
    result = _product(A, B, transpose_a, transpose_b, axis, "gemm2") * float(alpha)
    return _into(result, out)


def gemm(A, B, C, transpose_a=False, transpose_b=False, alpha=1.0, beta=1.0, axis=-2, out=None, name=None,
         **kwargs):
    """alpha * op(A) @ op(B) + beta * C."""
    result = _product(A, B, transpose_a, transpose_b, axis, "gemm") * float(alpha) + C * float(beta)
    return _into(result, out)


def syrk(A, transpose=False, alpha=1.0, out=None, name=None, **kwargs):
    """alpha * A @ A^T (with transpose=True, alpha * A^T @ A); leading axes are a batch."""
    result = _product(A, A, bool(transpose), not transpose, -2, "syrk") * float(alpha)
    return _into(result, out)


def _into(result: NDArray, out: NDArray | None) -> NDArray:
    if out is None:
        return result
    out[:] = result
    return out


UNSUPPORTED = ("det", "extractdiag", "extracttrian", "gelqf", "inverse", "makediag", "maketrian", "potrf",
               "potri", "slogdet", "sumlogdiag", "syevd", "trmm", "trsm")
globals().update((name, unsupported_function(name, NO_KERNELS, module="linalg")) for name in UNSUPPORTED)
