"""`mx.mod`: MXNet's Module API (`Module`, and the `BaseModule` loops it shares)."""

from .base_module import BaseModule  # noqa: F401
from .module import Module  # noqa: F401
