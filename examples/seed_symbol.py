"""Build MXNet's classic MNIST MLP with Ember's symbol API, infer its shapes, run it once, save its JSON.

Usage: python examples/seed_symbol.py [output-symbol.json]
"""

import sys

import numpy as np

import ember as mx


def build_mlp():
    data = mx.sym.Variable("data")
    fc1 = mx.sym.FullyConnected(data, num_hidden=128)
    act1 = mx.sym.Activation(fc1, act_type="relu")
    fc2 = mx.sym.FullyConnected(act1, num_hidden=64)
    act2 = mx.sym.Activation(fc2, act_type="relu")
    fc3 = mx.sym.FullyConnected(act2, num_hidden=10)
    return mx.sym.SoftmaxOutput(fc3, name="softmax")


def main(out_path: str = "mlp-symbol.json") -> None:
    mlp = build_mlp()
    arg_shapes, out_shapes, _ = mlp.infer_shape(data=(4, 1, 28, 28))
    for name, shape in zip(mlp.list_arguments(), arg_shapes):
        print(f"{name:24s} {shape}")
    rng = np.random.default_rng(0)
    args = {n: mx.nd.array(rng.uniform(-0.1, 0.1, s)) for n, s in zip(mlp.list_arguments(), arg_shapes)}
    probabilities = mlp.eval(**args)[0].asnumpy()
    print("output", out_shapes[0], "rows sum to", np.round(probabilities.sum(axis=1), 6))
    mlp.save(out_path)
    print("saved", out_path)


if __name__ == "__main__":
    main(*sys.argv[1:])
