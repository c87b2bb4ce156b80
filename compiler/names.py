"""Names that several layers spell the same way: the variables and buffers one layer creates and
another feeds or reads.

The executor adds head-gradient variables to a backward graph and the compiled runner types and
feeds them; the lowering names the random-seed buffer and the runners write the seed into it; the
fused training step adds one variable per optimizer state and per update hyper-parameter and then
finds them again in the program's layout. Every one of those names is made here.
"""

from __future__ import annotations

# The program buffer holding the seed of the counter-based random generator (one int64).
RNG_BUFFER = "rng"


def head_grad(index: int) -> str:
    """The variable carrying the gradient of the graph's output `index` into a backward graph."""
    return f"__head_grad{index}__"


def optimizer_state(param: str, k: int) -> str:
    """The variable holding state `k` (momentum, moments, ...) of parameter `param`'s optimizer."""
    return f"__state_{param}_{k}"


def update_scalar(param: str, scalar: str) -> str:
    """The (1,)-shaped variable carrying hyper-parameter `scalar` (lr, wd, ...) of `param`'s update."""
    return f"__{param}_{scalar}"
