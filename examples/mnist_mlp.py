"""The seed program: MXNet's classic MNIST MLP, unchanged but for `import ember as mx`.

Usage: python examples/mnist_mlp.py DATA_DIR
DATA_DIR holds train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
t10k-labels-idx1-ubyte (each may be gzipped: add .gz). Prints `EvalMetric: {'accuracy': ...}`.
"""

import os
import sys

import ember as mx


def idx_file(folder: str, stem: str) -> str:
    plain = os.path.join(folder, stem)
    return plain if os.path.exists(plain) else plain + ".gz"


def main(folder: str) -> None:
    data = mx.symbol.Variable('data')
    fc1 = mx.symbol.FullyConnected(data, num_hidden=128)
    act1 = mx.symbol.Activation(fc1, act_type='relu')
    fc2 = mx.symbol.FullyConnected(act1, num_hidden=64)
    act2 = mx.symbol.Activation(fc2, act_type='relu')
    fc3 = mx.symbol.FullyConnected(act2, num_hidden=10)
    mlp = mx.symbol.SoftmaxOutput(fc3, name='softmax')
    train_data = mx.io.MNISTIter(image=idx_file(folder, 'train-images-idx3-ubyte'),
                                 label=idx_file(folder, 'train-labels-idx1-ubyte'),
                                 batch_size=100, shuffle=True)
    optimizer = mx.optimizer.SGD(learning_rate=0.1)
    model = mx.mod.Module(symbol=mlp, context=mx.cpu())
    model.fit(train_data, optimizer=optimizer, num_epoch=10)
    test_data = mx.io.MNISTIter(image=idx_file(folder, 't10k-images-idx3-ubyte'),
                                label=idx_file(folder, 't10k-labels-idx1-ubyte'),
                                batch_size=100)
    acc = mx.metric.Accuracy()
    model.score(test_data, acc)
    print(acc)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
