"""Ember's operators: `registry` holds the schemas and rule tables; each module below declares a family.

Importing this package registers every op.
"""

from . import (  # noqa: F401
    broadcast,
    conv,
    elementwise,
    indexing,
    init_ops,
    join,
    layout,
    loss,
    matmul,
    nn,
    nn_backward,
    norm,
    optimizer,
    reduce,
    shape,
    slicing,
    softmax,
    sorting,
    tensor_backward,
)
from .facts import draws_random, is_loss_head, reads_context, reshapes_input  # noqa: F401
from .registry import (  # noqa: F401
    ALIASES,
    REQUIRED_TABLES,
    SCHEMAS,
    FusionKind,
    aux_update_rules,
    canonical_name,
    fusion_kinds,
    get_schema,
    grad_rules,
    lower_rules,
    missing_entries,
    reference_rules,
    shape_rules,
    type_rules,
)
