"""`mx.gluon`: MXNet 1.x's high-level interface - Blocks, Parameters, layers, losses, the Trainer and
data loading - on Ember's imperative engine and compiler (hybridized blocks run as compiled programs).
"""

from . import contrib, data, loss, model_zoo, nn, utils  # noqa: F401
from .block import Block, HybridBlock  # noqa: F401
from .errors import DeferredInitializationError  # noqa: F401
from .parameter import Constant, Parameter, ParameterDict, tensor_types  # noqa: F401
from .symbol_block import SymbolBlock  # noqa: F401
from .trainer import Trainer  # noqa: F401
