"""Indexing: take, pick, one_hot (Embedding lives in nn.py)."""

from __future__ import annotations
