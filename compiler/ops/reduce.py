"""Reductions: sum, mean, max, min, prod, nansum (axis/keepdims/exclude), argmax, argmin."""

from __future__ import annotations
