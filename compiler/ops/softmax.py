"""The softmax family: softmax, log_softmax, SoftmaxActivation."""

from __future__ import annotations
