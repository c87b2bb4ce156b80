"""`mx.nd.sparse`: MXNet 1.9.1's sparse NDArrays (csr, row_sparse) and their operators.

Ember has dense NDArrays only. Every function here raises the one MXNetError saying so, and the
classes `BaseSparseNDArray`, `CSRNDArray` and `RowSparseNDArray` exist (so `isinstance` checks in
user code work, always False) but cannot be created.
"""

from __future__ import annotations

from .ndarray import NDArray
from .unsupported import SPARSE, not_implemented, unsupported_function

FUNCTIONS = ("csr_matrix", "row_sparse_array", "add", "subtract", "multiply", "divide", "zeros", "empty",
             "array")
OPERATORS = (
    "ElementWiseSum", "Embedding", "FullyConnected", "LinearRegressionOutput", "LogisticRegressionOutput",
    "MAERegressionOutput", "abs", "adagrad_update", "adam_update", "add_n", "arccos", "arccosh", "arcsin",
    "arcsinh", "arctan", "arctanh", "broadcast_add", "broadcast_div", "broadcast_minus", "broadcast_mul",
    "broadcast_plus", "broadcast_sub", "cast_storage", "cbrt", "ceil", "clip", "concat", "cos", "cosh",
    "degrees", "dot", "elemwise_add", "elemwise_div", "elemwise_mul", "elemwise_sub", "exp", "expm1", "fix",
    "floor", "ftrl_update", "gamma", "gammaln", "log", "log10", "log1p", "log2", "make_loss", "mean",
    "negative", "norm", "radians", "relu", "retain", "rint", "round", "rsqrt", "sgd_mom_update", "sgd_update",
    "sigmoid", "sign", "sin", "sinh", "slice", "sqrt", "square", "stop_gradient", "sum", "tan", "tanh",
    "trunc", "where", "zeros_like",
)  # fmt: skip
globals().update((name, unsupported_function(name, SPARSE, "function", "sparse")) for name in FUNCTIONS)
globals().update((name, unsupported_function(name, SPARSE, module="sparse")) for name in OPERATORS)


class BaseSparseNDArray(NDArray):
    """A sparse NDArray: not supported in Ember (creating one raises MXNetError)."""

    def __init__(self, *args, **kwargs):
        raise not_implemented(f"sparse.{type(self).__name__}", SPARSE, "class")


class CSRNDArray(BaseSparseNDArray):
    """A compressed-sparse-row NDArray: not supported in Ember."""


class RowSparseNDArray(BaseSparseNDArray):
    """A row-sparse NDArray: not supported in Ember."""
