"""Gluon's activation layers (MXNet 1.9.1's `gluon.nn.activations`)."""

from __future__ import annotations

from ... import initializer
from ..block import HybridBlock
from ..errors import check


class Activation(HybridBlock):
    """`F.Activation(x, act_type)`: 'relu', 'sigmoid', 'tanh', 'softrelu', 'softsign'."""

    def __init__(self, activation, **kwargs):
        self._act_type = activation
        super().__init__(**kwargs)

    def _alias(self) -> str:
        return self._act_type

    def hybrid_forward(self, F, x):
        return F.Activation(x, act_type=self._act_type, name="fwd")

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self._act_type})"


class _LeakyKind(HybridBlock):
    """A LeakyReLU-op activation with a fixed act_type and slope."""

    act_type = ""

    def __init__(self, slope=None, **kwargs):
        super().__init__(**kwargs)
        self._slope = slope

    def hybrid_forward(self, F, x):
        if self._slope is None:
            return F.LeakyReLU(x, act_type=self.act_type, name="fwd")
        return F.LeakyReLU(x, act_type=self.act_type, slope=self._slope, name="fwd")


class LeakyReLU(_LeakyKind):
    """`x` where positive, `alpha * x` elsewhere."""

    act_type = "leaky"

    def __init__(self, alpha, **kwargs):
        check(alpha >= 0, "Slope coefficient for LeakyReLU must be no less than 0.")
        super().__init__(slope=alpha, **kwargs)
        self._alpha = alpha

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self._alpha})"


class ELU(_LeakyKind):
    """`x` where positive, `alpha * (exp(x) - 1)` elsewhere."""

    act_type = "elu"

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(slope=alpha, **kwargs)


class SELU(_LeakyKind):
    """Scaled ELU with the self-normalizing constants."""

    act_type = "selu"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)


class GELU(_LeakyKind):
    """Gaussian error linear unit."""

    act_type = "gelu"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)


class PReLU(HybridBlock):
    """LeakyReLU with a learned slope per channel (`in_channels` of them, default one)."""

    def __init__(self, alpha_initializer=initializer.Constant(0.25), in_channels=1, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.alpha = self.params.get("alpha", shape=(in_channels,), init=alpha_initializer)

    def hybrid_forward(self, F, x, alpha):
        return F.LeakyReLU(x, gamma=alpha, act_type="prelu", name="fwd")


class Swish(HybridBlock):
    """`x * sigmoid(beta * x)`."""

    def __init__(self, beta=1.0, **kwargs):
        super().__init__(**kwargs)
        self._beta = beta

    def hybrid_forward(self, F, x):
        return x * F.sigmoid(self._beta * x, name="fwd")
