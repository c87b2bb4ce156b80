"""The broadcast_* family: binary ops with NumPy-style broadcasting."""

from __future__ import annotations
