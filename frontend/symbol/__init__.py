"""`ember.symbol` (`mx.sym`): MXNet 1.x's symbolic API over Ember's IR.

`Variable`/`var`, `Group`, `load`/`load_json`, and one function per registered operator
(`FullyConnected`, `Activation`, ...). See `Symbol` for introspection, inference and JSON.
"""

from . import (
    op,
    overloads,  # noqa: F401  (installs + - * / ... on Symbol)
)
from . import op as _internal  # noqa: F401  (MXNet keeps `_plus_scalar` & co. in `sym._internal`)
from .creation import Group, Variable, load, load_json, var  # noqa: F401
from .op import *  # noqa: F401,F403
from .overloads import hypot, maximum, minimum, pow, power  # noqa: F401,E402
from .symbol import Symbol  # noqa: F401
from . import binding  # noqa: E402

binding.install(Symbol)

__all__ = ["Symbol", "Variable", "var", "Group", "load", "load_json", "maximum", "minimum", "pow", "power", "hypot"]
__all__ += op.__all__
