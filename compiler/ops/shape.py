"""Shape manipulation: Reshape, Flatten, transpose, swapaxes, expand_dims, squeeze, Concat, slice_axis."""

from __future__ import annotations
