"""Lowering rules: placeholder, filled by the reduce family work."""
