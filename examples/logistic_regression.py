"""Logistic regression with Module, on a CSV file of features and 0/1 labels.

Usage: python examples/logistic_regression.py DATA.csv
Each row of DATA.csv: feature_1, ..., feature_k, label (0 or 1). Prints the training accuracy.
"""

import sys

import numpy as np

import ember as mx


def train(features: np.ndarray, labels: np.ndarray, num_epoch: int = 30, batch_size: int = 20):
    data = mx.sym.Variable("data")
    fc = mx.sym.FullyConnected(data, num_hidden=1, name="fc")
    net = mx.sym.LogisticRegressionOutput(fc, name="lro")
    train_iter = mx.io.NDArrayIter(features, labels, batch_size, shuffle=True, label_name="lro_label")
    model = mx.mod.Module(net, data_names=["data"], label_names=["lro_label"])
    model.fit(train_iter, optimizer="sgd", optimizer_params={"learning_rate": 0.5}, num_epoch=num_epoch,
              eval_metric="mse")
    return model


def accuracy(model, features: np.ndarray, labels: np.ndarray) -> float:
    probabilities = model.predict(mx.io.NDArrayIter(features, labels, 20, label_name="lro_label")).asnumpy()
    return float(np.mean((probabilities.ravel() > 0.5) == (labels > 0.5)))


def main(path: str) -> None:
    table = np.loadtxt(path, delimiter=",", ndmin=2)
    features, labels = table[:, :-1], table[:, -1]
    model = train(features, labels)
    print("accuracy", round(accuracy(model, features, labels), 4))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
