"""Contractions: dot and batch_dot."""

from __future__ import annotations
