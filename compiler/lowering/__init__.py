"""Lowering: fused groups -> kernels of scalar loop nests and GEMMs (a `Program`).

`expr` holds the scalar expression nodes, `tensor` the lazy tensors rules pass around, `context`
what a rule may ask of the kernel being built, `lower` the driver (`lower.lower_program`). The
rules, one module per op family (`rules_*.py`, listed in `lower.RULE_MODULES`), fill
`ops.registry.lower_rules` when `lower` is imported.
"""
