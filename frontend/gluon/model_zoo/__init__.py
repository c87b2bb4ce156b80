"""`mx.gluon.model_zoo`: MXNet 1.9.1's predefined vision networks (`vision`) and the local store of their
pretrained parameter files (`model_store`; Ember never downloads)."""

from . import model_store, vision  # noqa: F401
