"""Elementwise ops: unary math, binary same-shape ops, scalar ops, comparisons, where, clip, Cast, zeros_like/ones_like."""

from __future__ import annotations
