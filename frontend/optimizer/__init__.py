"""`mx.optimizer`: MXNet 1.9.1's optimizers (MXNET_COMPAT.md section 6).

`base` holds the Optimizer base class and the registry (`register`, `create`); `updater` the `Updater`;
`sgd` and `adaptive` hold the optimizers; `update_rules` the `UpdateStep` each update of a compiled
rule is handed out as (`Optimizer.update_step`) and its application to NumPy arrays; `states` reads
`.states` bytes (`Updater.set_states`) as data, running nothing a file names.
"""

from .adaptive import AdaDelta, AdaGrad, Adam, Adamax, Ftrl, Nadam, RMSProp
from .base import Optimizer, create, register
from .sgd import NAG, SGD, Signum, Test, ccSGD
from .update_rules import UpdateStep
from .updater import Updater, get_updater

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
