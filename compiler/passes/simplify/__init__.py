"""Graph simplification: four Graph -> Graph passes, run in this order by `passes/pipeline.py`.

    fold_constants                      uniform constant subgraphs -> one _zeros/_ones/_full node
    simplify_algebra                    identities (x*1 -> x, ...) to a fixpoint; reads shapes, dtypes
    common_subexpression_elimination    one node per (op, attributes, inputs); random ops kept apart
    dead_code_elimination               only what the outputs read

Every pass returns a new graph and never mutates its input. Given a typed graph, each returns a typed
one: its `Rebuilder` (rewrite.py) carries every kept or replaced value's type, and new nodes are typed
from their inputs. Rewrites keep the names users see: a node that replaces another takes its name,
and a value that survives keeps its own.
"""

from .algebra import algebra_rules, simplify_algebra  # noqa: F401
from .cse import common_subexpression_elimination  # noqa: F401
from .dce import dead_code_elimination  # noqa: F401
from .fold import fold_constants  # noqa: F401
