"""What an op's result depends on besides its inputs: random draws and the training mode.

Passes that merge or precompute nodes must know it: two applications of a random op to one input
differ (CSE never merges them), and an op that reads `ctx.is_train` has no single constant value
(constant folding never evaluates it). Kept here rather than in the registry because only these
passes ask; `tests/test_simplify.py` checks the tables against every reference that reads its `ctx`.
"""

from __future__ import annotations

from collections.abc import Callable

from ...ir import Node

# op -> (params -> whether this application draws from ctx.rng)
RANDOM_OPS: dict[str, Callable[[dict], bool]] = {
    "Dropout": lambda params: True,  # the mask
    "LeakyReLU": lambda params: params["act_type"] == "rrelu",  # a random slope per element
}

# Ops whose reference reads `ctx` at all (the random ones, and those that read `ctx.is_train`).
CONTEXT_DEPENDENT_OPS = frozenset({*RANDOM_OPS, "BatchNorm", "_backward_BatchNorm"})


def is_random(node: Node) -> bool:
    """Whether two applications of `node`'s op to the same inputs may give different results."""
    draws = RANDOM_OPS.get(node.op)
    return draws is not None and draws(node.params)


def is_context_dependent(node: Node) -> bool:
    """Whether `node`'s result depends on anything but its inputs and attributes."""
    return node.op in CONTEXT_DEPENDENT_OPS
