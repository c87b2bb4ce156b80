"""Linear regression with Module (MXNet's classic tutorial), on a CSV file.

Usage: python examples/linear_regression.py DATA.csv
Each row of DATA.csv: feature_1, ..., feature_k, target. Prints the learned weights, bias and the
mean squared error on the training data.
"""

import logging
import sys

import numpy as np

import ember as mx


def train(features: np.ndarray, targets: np.ndarray, num_epoch: int = 50, batch_size: int = 10):
    data = mx.sym.Variable("data")
    label = mx.sym.Variable("lin_reg_label")
    fc = mx.sym.FullyConnected(data, num_hidden=1, name="fc")
    net = mx.sym.LinearRegressionOutput(fc, label=label, name="lro")
    train_iter = mx.io.NDArrayIter(features, targets, batch_size, shuffle=True, label_name="lin_reg_label")
    model = mx.mod.Module(net, data_names=["data"], label_names=["lin_reg_label"])
    model.fit(train_iter, optimizer="sgd", optimizer_params={"learning_rate": 0.05, "momentum": 0.9},
              num_epoch=num_epoch, eval_metric="mse")
    return model


def main(path: str) -> None:
    table = np.loadtxt(path, delimiter=",", ndmin=2)
    features, targets = table[:, :-1], table[:, -1]
    model = train(features, targets)
    arg_params, _ = model.get_params()
    print("weights", np.round(arg_params["fc_weight"].asnumpy().ravel(), 4).tolist())
    print("bias", np.round(arg_params["fc_bias"].asnumpy(), 4).tolist())
    score = model.score(mx.io.NDArrayIter(features, targets, 10, label_name="lin_reg_label"), "mse")
    print("mse", round(float(score[0][1]), 6))


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
