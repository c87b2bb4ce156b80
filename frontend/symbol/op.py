"""`mx.sym.<Op>` functions, generated for every op and alias in the registry, and fluent methods.

Names such as `sum` or `abs` shadow builtins inside this module only; nothing below uses those.
"""

from ember.compiler.ops.registry import ALIASES, SCHEMAS

from .creation import make_op_function
from .symbol import Symbol

# Symbol methods that forward to the op of the same name (`x.reshape(shape=(2, 3))`).
FLUENT_METHODS = """
    reshape flatten transpose swapaxes expand_dims squeeze sum mean max min prod nansum nanprod argmax argmin
    norm softmax log_softmax exp log sqrt square abs sign clip relu sigmoid tanh one_hot pick take slice_axis
    slice tile repeat broadcast_to broadcast_like broadcast_axes zeros_like ones_like split sin cos tan
    arcsin arccos arctan sinh cosh arcsinh arccosh arctanh floor ceil round rint fix trunc log1p expm1 log10
    log2 rsqrt cbrt rcbrt reciprocal degrees radians reshape_like slice_like pad sort topk argsort flip
""".split()


def _generate_functions() -> dict:
    functions = {name: make_op_function(schema, name) for name, schema in SCHEMAS.items()}
    functions.update({alias: make_op_function(SCHEMAS[name], alias) for alias, name in ALIASES.items()})
    return functions


def _install_fluent_methods(functions: dict) -> None:
    for method in FLUENT_METHODS:
        if method in functions:
            setattr(Symbol, method, _fluent(functions[method]))
    if "Cast" in functions:
        Symbol.astype = lambda self, dtype: functions["Cast"](self, dtype=dtype)


def _fluent(function):
    def method(self, *args, **kwargs):
        return function(self, *args, **kwargs)

    method.__name__ = function.__name__
    method.__doc__ = function.__doc__
    return method


FUNCTIONS = _generate_functions()
_install_fluent_methods(FUNCTIONS)
__all__ = sorted(FUNCTIONS)
globals().update(FUNCTIONS)


def zeros(shape, dtype=None, **kwargs):
    """A symbol of zeros of `shape` (MXNet's mx.sym.zeros)."""
    return FUNCTIONS["_zeros"](shape=shape, dtype=dtype, **kwargs)


def ones(shape, dtype=None, **kwargs):
    """A symbol of ones of `shape` (MXNet's mx.sym.ones)."""
    return FUNCTIONS["_ones"](shape=shape, dtype=dtype, **kwargs)


def full(shape, val, dtype=None, **kwargs):
    """A symbol of `shape` filled with `val` (MXNet's mx.sym.full)."""
    return FUNCTIONS["_full"](shape=shape, value=val, dtype=dtype, **kwargs)


def arange(start, stop=None, step=1.0, repeat=1, infer_range=False, name=None, dtype=None):
    """Evenly spaced values in [start, stop) (MXNet's mx.sym.arange)."""
    return FUNCTIONS["_arange"](
        start=start, stop=stop, step=step, repeat=repeat, infer_range=infer_range, name=name, dtype=dtype
    )


__all__ += ["zeros", "ones", "full", "arange"]
