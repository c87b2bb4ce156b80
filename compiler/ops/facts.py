"""What passes ask of a node's op besides its rules, answered from the fields its `OpSchema` declares.

Each question takes an `ir.Node` and is False for variables. `ir` reads the registry, so these live
beside it rather than in it: the registry never imports `ir`.
"""

from __future__ import annotations

from ..ir import Node


def is_loss_head(node: Node) -> bool:
    """Whether `node` is a loss head: its gradient rule needs no head gradient and ignores any given."""
    return not node.is_variable and node.schema.loss_head


def reshapes_input(node: Node) -> bool:
    """Whether `node`'s output is its input 0's elements in row-major order (a reshape of it)."""
    return not node.is_variable and node.schema.reshapes_input


def draws_random(node: Node) -> bool:
    """Whether `node` draws from `ctx.rng`: two applications to the same inputs may give different results."""
    if node.is_variable:
        return False
    draws = node.schema.draws_random
    return draws(node.params) if callable(draws) else draws


def reads_context(node: Node) -> bool:
    """Whether `node`'s result depends on anything but its inputs and params (`ctx.is_train`, `ctx.rng`)."""
    return not node.is_variable and node.schema.reads_context
