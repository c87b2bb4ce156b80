"""Lowering rules: placeholder, filled by the shape family work."""
