"""Graph -> Graph passes, run in order by the pipeline (the pipeline arrives with the compiler issue).

    infer_shapes   two-way partial shape inference (MXNet's legacy semantics)
    infer_types    two-way dtype inference, float32 by default
    autodiff       reverse mode as a graph rewrite (autodiff.gradients)
    fold_constants                      uniform constant subgraphs -> one _zeros/_ones/_full node
    simplify_algebra                    x*1 -> x and the other identities, to a fixpoint (needs shapes, dtypes)
    common_subexpression_elimination    one node per (op, attributes, inputs); random ops kept apart
    dead_code_elimination               only what the outputs read
    simplify / run_passes               pipeline.py: the four above in order; verify/print between passes
    fuse           ops -> kernels: elementwise chains, reduce prologues, matmul/conv epilogues (kernels.py)
    plan_memory    a buffer for every value: liveness, in-place reuse, best-fit fixed offsets in one arena
"""

from .infer_shapes import infer_shapes  # noqa: F401
from .infer_types import infer_types  # noqa: F401
from .fuse import check_partition, fuse  # noqa: F401
from .pipeline import run_passes, simplify  # noqa: F401
from .plan_memory import check_plan, plan_memory  # noqa: F401
from .simplify import (  # noqa: F401
    common_subexpression_elimination,
    dead_code_elimination,
    fold_constants,
    simplify_algebra,
)
