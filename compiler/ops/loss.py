"""Loss heads (SoftmaxOutput, regression outputs, MakeLoss) and BlockGrad."""

from __future__ import annotations
