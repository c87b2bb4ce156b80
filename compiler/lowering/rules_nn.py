"""Lowering rules: placeholder, filled by the nn family work."""
