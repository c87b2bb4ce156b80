"""`mx.gluon.nn`: Gluon's neural-network layers."""

from ..block import Block, HybridBlock, SymbolBlock  # noqa: F401
from .activations import ELU, GELU, SELU, Activation, LeakyReLU, PReLU, Swish  # noqa: F401
from .basic_layers import (  # noqa: F401
    Dense,
    Dropout,
    Flatten,
    HybridLambda,
    HybridSequential,
    Identity,
    Lambda,
    Sequential,
)
