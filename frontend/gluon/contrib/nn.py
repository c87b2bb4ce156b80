"""`mx.gluon.contrib.nn`: Concurrent, HybridConcurrent, Identity and SyncBatchNorm (one device)."""

from ..nn import Identity  # noqa: F401
from ..nn.norm_layers import Concurrent, HybridConcurrent, SyncBatchNorm  # noqa: F401
