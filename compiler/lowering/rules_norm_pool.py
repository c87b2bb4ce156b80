"""Lowering rules: placeholder, filled by the pooling/normalization/embedding family work."""
