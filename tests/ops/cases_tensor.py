"""Shape/type cases for the tensor ops (elementwise, broadcast, reduce, shape, indexing, matmul)."""

from .harness import OpCase

CASES: list[OpCase] = []
