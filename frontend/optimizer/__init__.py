"""`mx.optimizer`: MXNet 1.9.1's optimizers (MXNET_COMPAT.md section 6).

`base` holds the Optimizer base class, the registry (`register`, `create`) and the `Updater`;
`sgd` and `adaptive` hold the optimizers; `update_rules` the `UpdateStep` each update of a compiled
rule is handed out as (`Optimizer.update_step`) and its application to NumPy arrays.
"""

from .adaptive import AdaDelta, AdaGrad, Adam, Adamax, Ftrl, Nadam, RMSProp
from .base import Optimizer, Updater, create, get_updater, register
from .sgd import NAG, SGD, Signum, Test, ccSGD
from .update_rules import UpdateStep

__all__ = [
    "NAG",
    "SGD",
    "AdaDelta",
    "AdaGrad",
    "Adam",
    "Adamax",
    "Ftrl",
    "Nadam",
    "Optimizer",
    "RMSProp",
    "Signum",
    "Test",
    "UpdateStep",
    "Updater",
    "ccSGD",
    "create",
    "get_updater",
    "register",
]
