"""`mx.gluon.contrib`: the contributed Gluon layers Ember has (`contrib.nn`)."""

from . import nn  # noqa: F401
