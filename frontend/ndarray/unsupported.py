"""The names of MXNet 1.9.1's `mx.nd` that Ember's op registry lacks, and why.

`unsupported_functions()` gives `mx.nd` a function for each: one that forwards to Ember's equivalent
where there is one (MXNet's sampling op names to `mx.nd.random`, `crop` to `slice`), else one raising
MXNetError "operator <name> of MXNet 1.9.1 is not implemented in Ember: <reason>". Names the registry
gains later are left out, so a registered op always wins. `unsupported_function` and
`UnsupportedModule` serve the submodules (`linalg`, `contrib`, `image`, `sparse`) the same way.
"""

from __future__ import annotations

import types

from ember.compiler.ops import ALIASES, SCHEMAS
from ember.runtime.errors import MXNetError

SPARSE = "sparse storage (csr, row_sparse) is not supported: Ember has dense NDArrays only"
NOT_YET = "it is not yet in Ember's op registry (ember.compiler.ops)"

# reason -> the MXNet 1.9.1 names of mx.nd it explains (operators unless said otherwise)
REASONS: dict[str, tuple[str, ...]] = {
    SPARSE: ("cast_storage",),
    "recurrent and sequence operators come with the model breadth issue": (
        "RNN", "SequenceLast", "SequenceMask", "SequenceReverse",
    ),
    "this layer comes with the model breadth issue; " + NOT_YET: (
        "BilinearSampler", "CTCLoss", "Correlation", "Crop", "GridGenerator",
        "IdentityAttachKLSparseReg", "L2Normalization", "LRN", "ROIPooling",
        "SVMOutput", "SpatialTransformer", "UpSampling", "ctc_loss", "softmax_cross_entropy", "smooth_l1",
        "hard_sigmoid", "softmin", "im2col", "col2im", "depth_to_space", "space_to_depth",
    ),
    "it is the deprecated MXNet 0.x version of an operator: use the name without _v1": (
        "BatchNorm_v1", "Convolution_v1", "Pooling_v1",
    ),
    "Custom (Python-defined) operators are not supported: Ember compiles graphs of registry ops only": (
        "Custom",
    ),
    "automatic mixed precision (AMP) is not supported": ("amp_cast", "amp_multicast"),
    "optimizer update operators are not exposed: mx.optimizer runs the updates inside the compiled step": (
        "adam_update", "ftml_update", "ftrl_update", "lamb_update_phase1", "lamb_update_phase2",
        "mp_lamb_update_phase1", "mp_lamb_update_phase2", "mp_nag_mom_update", "mp_sgd_mom_update",
        "mp_sgd_update", "multi_lars", "multi_mp_sgd_mom_update", "multi_mp_sgd_update",
        "multi_sgd_mom_update", "multi_sgd_update", "multi_sum_sq", "nag_mom_update",
        "preloaded_multi_mp_sgd_mom_update", "preloaded_multi_mp_sgd_update",
        "preloaded_multi_sgd_mom_update", "preloaded_multi_sgd_update", "rmsprop_update",
        "rmspropalex_update", "sgd_mom_update", "sgd_update", "signsgd_update", "signum_update",
        "reset_arrays", "all_finite", "multi_all_finite",
    ),
    "linear algebra operators have no kernels in Ember (mx.nd.linalg has gemm, gemm2 and syrk)": (
        "linalg_det", "linalg_extractdiag", "linalg_extracttrian", "linalg_gelqf", "linalg_gemm",
        "linalg_gemm2", "linalg_inverse", "linalg_makediag", "linalg_maketrian", "linalg_potrf",
        "linalg_potri", "linalg_slogdet", "linalg_sumlogdiag", "linalg_syrk", "linalg_trmm", "linalg_trsm",
    ),
    "probability density operators are not in Ember's op registry": (
        "random_pdf_dirichlet", "random_pdf_exponential", "random_pdf_gamma",
        "random_pdf_generalized_negative_binomial", "random_pdf_negative_binomial", "random_pdf_normal",
        "random_pdf_poisson", "random_pdf_uniform",
    ),
    NOT_YET: (
        "argmax_channel", "batch_take", "cumsum", "diag", "erfinv", "fill_element_0index", "gamma", "gammaln",
        "gather_nd", "khatri_rao", "moments", "ravel_multi_index", "scatter_nd", "shape_array", "size_array",
        "unravel_index",
    ),
}  # fmt: skip

# Python-level names of mx.nd (not operators) and why Ember has none.
FUNCTION_REASONS: dict[str, str] = {
    "CachedOp": "Gluon's cached graphs are not supported: compile a Symbol with mx.compile or mx.mod.Module",
    "imdecode": "image decoding needs OpenCV, which Ember does not bundle",
    "get_indexing_dispatch_code": "it is an internal helper of MXNet's C++ indexing",
    "indexing_key_expand_implicit_axes": "it is an internal helper of MXNet's C++ indexing",
    "get_oshape_of_gather_nd_op": "it is an internal helper of MXNet's C++ indexing",
}

# MXNet's op names for sampling -> (the function of mx.nd.random that does it, the op's positional
# parameters in MXNet's order, which differ from that function's order).
RANDOM_OPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "uniform": ("uniform", ("low", "high", "shape", "ctx", "dtype")),
    "random_uniform": ("uniform", ("low", "high", "shape", "ctx", "dtype")),
    "normal": ("normal", ("loc", "scale", "shape", "ctx", "dtype")),
    "random_normal": ("normal", ("loc", "scale", "shape", "ctx", "dtype")),
    "random_randint": ("randint", ("low", "high", "shape", "ctx", "dtype")),
    "random_exponential": ("exponential", ("lam", "shape", "ctx", "dtype")),
    "random_gamma": ("gamma", ("alpha", "beta", "shape", "ctx", "dtype")),
    "random_poisson": ("poisson", ("lam", "shape", "ctx", "dtype")),
    "random_negative_binomial": ("negative_binomial", ("k", "p", "shape", "ctx", "dtype")),
    "random_generalized_negative_binomial": (
        "generalized_negative_binomial", ("mu", "alpha", "shape", "ctx", "dtype"),
    ),
    "sample_uniform": ("uniform", ("low", "high", "shape", "dtype")),
    "sample_normal": ("normal", ("mu", "sigma", "shape", "dtype")),
    "sample_exponential": ("exponential", ("lam", "shape", "dtype")),
    "sample_gamma": ("gamma", ("alpha", "beta", "shape", "dtype")),
    "sample_poisson": ("poisson", ("lam", "shape", "dtype")),
    "sample_negative_binomial": ("negative_binomial", ("k", "p", "shape", "dtype")),
    "sample_generalized_negative_binomial": (
        "generalized_negative_binomial", ("mu", "alpha", "shape", "dtype"),
    ),
    "sample_multinomial": ("multinomial", ("data", "shape", "get_prob", "dtype")),
    "shuffle": ("shuffle", ("data",)),
}
# The sampling ops' parameters that mx.nd.random's function takes under another name (and form): the
# ops take an exponential's rate `lam`, mx.nd.random.exponential its scale, 1 / lam.
RANDOM_RENAMES = {
    "exponential": {"lam": ("scale", lambda lam: 1.0 / lam)},
    "normal": {"mu": ("loc", None), "sigma": ("scale", None)},
}

# MXNet aliases of ops Ember registers under their canonical name only.
ALIASES_OF_REGISTERED = {"crop": "slice"}


def not_implemented(name: str, reason: str, kind: str = "operator") -> MXNetError:
    """The error every unsupported MXNet name raises."""
    return MXNetError(f"{kind} {name} of MXNet 1.9.1 is not implemented in Ember: {reason}")


def unsupported_function(name: str, reason: str, kind: str = "operator", module: str = ""):
    """A function named `name` whose every call raises `not_implemented` (naming it `module.name` when
    it belongs to a submodule such as 'linalg')."""
    shown = f"{module}.{name}" if module else name

    def function(*args, **kwargs):
        raise not_implemented(shown, reason, kind)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"Not implemented in Ember: {reason}."
    return function


def reason_for(name: str) -> str | None:
    """Why the mx.nd operator `name` is missing from Ember, or None when it is not known to be."""
    return next((reason for reason, names in REASONS.items() if name in names), None)


def _registered(name: str) -> bool:
    return name in SCHEMAS or name in ALIASES


def _random_function(name: str):
    """`mx.nd.<name>` for a sampling op: mx.nd.random's function, with MXNet's op argument order."""
    target, positional = RANDOM_OPS[name]
    renames = RANDOM_RENAMES.get(target, {})

    def function(*args, **kwargs):
        from . import random

        if len(args) > len(positional):
            raise TypeError(f"{name}() takes at most {len(positional)} positional arguments, got {len(args)}")
        sampler = getattr(random, target, None)
        if sampler is None:
            raise not_implemented(name, f"mx.nd.random has no {target} yet")
        named = {**dict(zip(positional, args)), **kwargs}
        return sampler(**dict(_renamed(key, value, renames) for key, value in named.items()))

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"MXNet's {name} operator: `mx.nd.random.{target}` (parameters in the op's order)."
    return function


def _renamed(key: str, value, renames: dict) -> tuple:
    """(the sampler's name for the op's parameter `key`, its value in the sampler's form)."""
    if key not in renames:
        return key, value
    new_key, transform = renames[key]
    return new_key, value if transform is None or value is None else transform(value)


def _alias_function(name: str, target: str):
    from .register import op_function

    function = op_function(target)

    def alias(*args, **kwargs):
        return function(*args, **kwargs)

    alias.__name__ = alias.__qualname__ = name
    alias.__doc__ = f"Alias of `{target}`.\n\n{function.__doc__}"
    return alias


class UnsupportedModule(types.ModuleType):
    """A submodule Ember does not provide: any attribute (but dunders) raises MXNetError saying why."""

    def __init__(self, name: str, reason: str):
        super().__init__(name, f"Not supported in Ember: {reason}.")
        self._reason = reason

    def __getattr__(self, attribute: str):
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        raise MXNetError(f"{self.__name__}.{attribute} is not implemented in Ember: {self._reason}")


NUMPY_API = "MXNet's NumPy-compatible API (mx.np, mx.npx) is not supported: use the mx.nd API"


def unsupported_modules() -> dict[str, UnsupportedModule]:
    """mx.nd's NumPy-API submodules, as modules whose attributes raise MXNetError."""
    numpy_module = UnsupportedModule("ember.ndarray.numpy", NUMPY_API)
    extension = UnsupportedModule("ember.ndarray.numpy_extension", NUMPY_API)
    return {"numpy": numpy_module, "np": numpy_module, "numpy_extension": extension, "npx": extension}


def unsupported_functions() -> dict:
    """Name -> function for every MXNet 1.9.1 name of mx.nd that Ember's registry lacks: a forwarding
    function where Ember does the same under another name, else one raising MXNetError with the reason."""
    functions = {name: _random_function(name) for name in RANDOM_OPS if not _registered(name)}
    functions.update(
        (name, _alias_function(name, target))
        for name, target in ALIASES_OF_REGISTERED.items()
        if not _registered(name) and _registered(target)
    )
    for reason, names in REASONS.items():
        functions.update((n, unsupported_function(n, reason)) for n in names if not _registered(n))
    functions.update((n, unsupported_function(n, why, "function")) for n, why in FUNCTION_REASONS.items())
    return functions
