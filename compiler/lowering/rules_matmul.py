"""Lowering rules: placeholder, filled by the matmul family work."""
