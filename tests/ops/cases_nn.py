"""Shape/type cases for the neural-network and loss ops (compiler/ops/nn.py, loss.py)."""

from .harness import OpCase

CASES = [
    OpCase("FullyConnected", [(5, 3), (4, 3), (4,)], {"num_hidden": 4}),
    OpCase("FullyConnected", [(1, 3, 7, 7), (1, 147), (1,)], {"num_hidden": 1}),
    OpCase("FullyConnected", [(2, 3, 5), (7, 5)], {"num_hidden": 7, "no_bias": True, "flatten": False}),
    OpCase("FullyConnected", [(3,), (2, 1), (2,)], {"num_hidden": 2}),
    OpCase("Activation", [(1,)], {"act_type": "relu"}),
    OpCase("Activation", [(3, 5)], {"act_type": "sigmoid"}),
    OpCase("Activation", [(2, 1, 7)], {"act_type": "tanh"}),
    OpCase("Activation", [(9,)], {"act_type": "softrelu"}),
    OpCase("Activation", [(4, 3)], {"act_type": "softsign"}),
]
