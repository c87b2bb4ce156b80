"""Ember's main job, end to end: train the seed MLP, compile it, ship it, run it, time it.

Usage: python examples/main_job.py [MNIST_DIR] [--epochs N] [--repeats N]

1. Trains the seed program's MLP (784-128-64-10, relu, SoftmaxOutput) with `Module.fit`, printing
   each epoch's training and held-out accuracy. With MNIST_DIR (MNIST's four IDX files, raw or
   `.gz`, as examples/mnist_mlp.py takes) it trains on `train-images-idx3-ubyte` through
   `MNISTIter` and holds out `t10k-*`; without it, it trains on the 5,000 real digits embedded in
   Ember (`ember.datasets.load_digits`) and holds out the embedded 1,000 test digits.
2. Scores the held-out digits with `Module.score` (the reference accuracy).
3. Compiles the trained model for inference (batch 100) with `ember.compile`, saves the artifact in a
   temporary folder, reloads it with `ember.runtime.load` (the compiler-free runtime) and runs it on
   the held-out digits: its accuracy must equal the reference's, or the script exits with status 1.
4. Checks that a NumPy transcription of the forward pass with the same parameters predicts the
   same digits, and prints the speed of both (median microseconds per batch of 100, and the ratio).

Settings: Xavier initialisation, SGD with learning rate 0.05 and momentum 0.9, batch 100, seed 0,
20 epochs over the 5,000 embedded digits. Measured on the embedded digits (2 CPU cores): held-out
accuracy 0.955 after 20 epochs (0.882 after the first, 0.925 after the third), the same figure from
Module.score, the reloaded artifact and the NumPy forward pass; training takes about 1 second with
the compiled executor (one native call per batch; the NumPy reference executor,
EMBER_EXECUTOR=reference, reaches the same 0.955 more slowly). The artifact's forward pass ran 1.18x
NumPy's speed at batch 100. With 10 epochs on 8,000 real MNIST test digits held out against the last 2,000 (MNIST_DIR
mode) it reaches 0.9535.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

import ember as mx
from ember import runtime
from ember.datasets import load_digits
from ember.io.idx import read_idx
from ember.io.mnist import PIXEL_SCALE, load_mnist

BATCH = 100
PIXELS = 28 * 28
SEED = 0


# -- data ----------------------------------------------------------------------------------------


def idx_file(folder: str, stem: str) -> str:
    """The raw or gzipped IDX file `stem` in `folder` (as examples/mnist_mlp.py finds it)."""
    plain = os.path.join(folder, stem)
    return plain if os.path.exists(plain) else plain + ".gz"


def whole_batches(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The leading examples that fill whole batches of BATCH (so every pass scores the same ones)."""
    count = len(images) // BATCH * BATCH
    if count == 0:
        sys.exit(f"the held-out set has {len(images)} images, fewer than one batch of {BATCH}")
    return images[:count], labels[:count]


def load_data(folder: str | None):
    """(description, training iterator, held-out images (N, 784) float32, held-out labels (N,))."""
    return embedded_data() if folder is None else folder_data(folder)


def embedded_data():
    """`load_data` for the digits embedded in Ember: 5,000 to train, 1,000 held out."""
    train_x, train_y = load_digits("train")
    test_x, test_y = whole_batches(*load_digits("test"))
    train = mx.io.NDArrayIter(train_x, train_y, batch_size=BATCH, shuffle=True)
    return f"embedded digits (ember.datasets): {len(train_x)} train, {len(test_x)} held out", train, test_x, test_y


def folder_data(folder: str):
    """`load_data` for MNIST's IDX files in `folder`: train-* through MNISTIter as the seed program
    does (flat rows; FullyConnected flattens anyway), t10k-* held out, scaled as MNISTIter scales."""
    train = mx.io.MNISTIter(image=idx_file(folder, "train-images-idx3-ubyte"),
                            label=idx_file(folder, "train-labels-idx1-ubyte"),
                            batch_size=BATCH, shuffle=True, flat=True, seed=SEED)
    count = len(read_idx(idx_file(folder, "train-labels-idx1-ubyte"), "MNIST label file", ndim=1))
    images, labels = load_mnist(idx_file(folder, "t10k-images-idx3-ubyte"), idx_file(folder, "t10k-labels-idx1-ubyte"))
    test_x = images.reshape(len(images), -1).astype(np.float32) * PIXEL_SCALE
    test_x, test_y = whole_batches(test_x, labels.astype(np.float32))
    return f"MNIST files in {folder}: {count} train, {len(test_x)} held out", train, test_x, test_y


# -- training ------------------------------------------------------------------------------------


def seed_mlp():
    """The seed program's MLP, exactly as examples/mnist_mlp.py builds it."""
    data = mx.symbol.Variable('data')
    fc1 = mx.symbol.FullyConnected(data, num_hidden=128)
    act1 = mx.symbol.Activation(fc1, act_type='relu')
    fc2 = mx.symbol.FullyConnected(act1, num_hidden=64)
    act2 = mx.symbol.Activation(fc2, act_type='relu')
    fc3 = mx.symbol.FullyConnected(act2, num_hidden=10)
    return mx.symbol.SoftmaxOutput(fc3, name='softmax')


class Progress:
    """Fit callbacks that print one line per epoch: training and held-out accuracy, elapsed time."""

    def __init__(self, num_epoch: int):
        self.num_epoch = num_epoch
        self.train_metric = None
        self.start = time.perf_counter()

    def batch_end(self, param) -> None:
        """Remember the training metric (its value after the last batch is the epoch's)."""
        self.train_metric = param.eval_metric

    def eval_end(self, param) -> None:
        """Print the epoch's line once `fit` has scored the held-out digits."""
        train = self.train_metric.get()[1] if self.train_metric is not None else float("nan")
        held_out = param.eval_metric.get()[1]
        elapsed = time.perf_counter() - self.start
        print(f"epoch {param.epoch + 1}/{self.num_epoch}: train accuracy {train:.4f}, "
              f"held-out accuracy {held_out:.4f} ({elapsed:.1f} s)", flush=True)


def train(symbol, train_iter, test_iter, num_epoch: int) -> mx.mod.Module:
    """A Module of `symbol` fitted to `train_iter` for `num_epoch` epochs, reporting on `test_iter`."""
    module = mx.mod.Module(symbol=symbol, context=mx.cpu())
    progress = Progress(num_epoch)
    module.fit(train_iter, eval_data=test_iter, eval_metric="acc",
               optimizer=mx.optimizer.SGD(learning_rate=0.05, momentum=0.9),
               initializer=mx.init.Xavier(), num_epoch=num_epoch,
               batch_end_callback=progress.batch_end, eval_end_callback=progress.eval_end)
    print(f"trained in {time.perf_counter() - progress.start:.1f} s")
    return module


def reference_accuracy(module: mx.mod.Module, test_iter) -> float:
    """`Module.score`'s accuracy on the held-out iterator."""
    metric = mx.metric.Accuracy()
    module.score(test_iter, metric)
    return float(metric.get()[1])


# -- compiled model ------------------------------------------------------------------------------


def compile_artifact(symbol, arg_params: dict, aux_params: dict, folder: str) -> str:
    """Compile the trained model for inference on batches of BATCH and save it in `folder`; its path."""
    inputs = [name for name in symbol.list_arguments() if name not in arg_params]
    shapes = {name: (BATCH, PIXELS) if name == "data" else (BATCH,) for name in inputs}  # + the unused label
    start = time.perf_counter()
    model = mx.compile(symbol, shapes=shapes, params={**arg_params, **aux_params}, name="mlp")
    path = os.path.join(folder, "mlp.ember")
    model.save(path)
    print(f"compiled in {time.perf_counter() - start:.2f} s: {path} ({os.path.getsize(path):,} bytes)")
    return path


def batch_feed(model, images: np.ndarray) -> dict[str, np.ndarray]:
    """The inputs of one call: the images as `data`, zeros for any other input (the unused label)."""
    feed = {"data": images}
    for spec in model.manifest["inputs"]:
        if spec["name"] != "data":
            feed[spec["name"]] = np.zeros(spec["shape"], dtype=spec.get("dtype", "float32"))
    return feed


def artifact_probabilities(model, images: np.ndarray) -> np.ndarray:
    """The compiled model's softmax outputs for `images`, run in batches of BATCH."""
    batches = [model(**batch_feed(model, images[i : i + BATCH]))[0] for i in range(0, len(images), BATCH)]
    return np.concatenate(batches)


# -- NumPy transcription -------------------------------------------------------------------------


def layer_params(symbol, arg_params: dict) -> list[tuple[np.ndarray, np.ndarray]]:
    """(weight, bias) of each FullyConnected layer as NumPy arrays, in the order the symbol applies them."""
    names = [n for n in symbol.list_arguments() if n.endswith("_weight")]
    return [(arg_params[n].asnumpy(), arg_params[n[: -len("weight")] + "bias"].asnumpy()) for n in names]


def numpy_forward(layers: list[tuple[np.ndarray, np.ndarray]], images: np.ndarray) -> np.ndarray:
    """The MLP's forward pass in NumPy: relu after every layer but the last, then softmax."""
    hidden = images
    for i, (weight, bias) in enumerate(layers):
        hidden = hidden @ weight.T + bias
        if i < len(layers) - 1:
            hidden = np.maximum(hidden, 0)
    exp = np.exp(hidden - hidden.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def median_us(function, repeats: int) -> float:
    """The median wall time of `function()` over `repeats` calls (after 3 warm-up calls), in microseconds."""
    for _ in range(3):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


# -- the job -------------------------------------------------------------------------------------


def check_artifact(path: str, test_x: np.ndarray, test_y: np.ndarray, reference: float) -> object:
    """Reload the artifact, print its held-out accuracy and exit 1 unless it equals `reference`."""
    model = runtime.load(path)
    accuracy = float(np.mean(artifact_probabilities(model, test_x).argmax(axis=1) == test_y))
    print(f"artifact accuracy (ember.runtime.load): {accuracy:.4f}")
    if round(accuracy, 4) != round(reference, 4):
        sys.exit(f"MISMATCH: the compiled artifact's accuracy {accuracy:.4f} differs from Module.score's {reference:.4f}")
    return model


def compare_with_numpy(model, layers, test_x: np.ndarray, repeats: int) -> None:
    """Check NumPy predicts what the artifact does, then print both speeds on one batch."""
    ours = artifact_probabilities(model, test_x)
    theirs = np.concatenate([numpy_forward(layers, test_x[i : i + BATCH]) for i in range(0, len(test_x), BATCH)])
    same = int(np.sum(ours.argmax(axis=1) == theirs.argmax(axis=1)))
    print(f"numpy forward: same predictions on {same} of {len(test_x)} images "
          f"(largest probability difference {np.abs(ours - theirs).max():.1e})")
    if same != len(test_x):
        sys.exit("MISMATCH: the NumPy forward pass predicts differently from the compiled artifact")
    batch = np.ascontiguousarray(test_x[:BATCH])
    feed = batch_feed(model, batch)
    compiled_us = median_us(lambda: model(**feed), repeats)
    numpy_us = median_us(lambda: numpy_forward(layers, batch), repeats)
    print(f"speed (batch {BATCH}, median of {repeats}): artifact {compiled_us:.1f} us, numpy {numpy_us:.1f} us, "
          f"artifact speed-up over numpy {numpy_us / compiled_us:.2f}x")


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line: an optional MNIST folder, the epoch count and the timing repeats."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mnist_dir", nargs="?", help="folder of MNIST's four IDX files (default: embedded digits)")
    parser.add_argument("--epochs", type=int, default=20, help="training epochs (default 20)")
    parser.add_argument("--repeats", type=int, default=200, help="timed calls per implementation (default 200)")
    args = parser.parse_args(argv)
    if args.mnist_dir is not None and not os.path.isdir(args.mnist_dir):
        parser.error(f"MNIST folder {args.mnist_dir} does not exist")
    if args.epochs < 1 or args.repeats < 1:
        parser.error("--epochs and --repeats must be at least 1")
    return args


def main(argv: list[str]) -> None:
    """Train, score, compile, reload, check and time, printing each step's figures."""
    args = parse_args(argv)
    mx.random.seed(SEED)  # the initial weights
    np.random.seed(SEED)  # NDArrayIter shuffles with NumPy's global generator (at construction too), as MXNet
    description, train_iter, test_x, test_y = load_data(args.mnist_dir)
    print(f"data: {description}")
    test_iter = mx.io.NDArrayIter(test_x, test_y, batch_size=BATCH)
    symbol = seed_mlp()
    module = train(symbol, train_iter, test_iter, args.epochs)
    reference = reference_accuracy(module, test_iter)
    print(f"reference accuracy (Module.score): {reference:.4f}")
    arg_params, aux_params = module.get_params()
    with tempfile.TemporaryDirectory(prefix="ember-main-job-") as folder:
        model = check_artifact(compile_artifact(symbol, arg_params, aux_params, folder), test_x, test_y, reference)
        compare_with_numpy(model, layer_params(symbol, arg_params), test_x, args.repeats)


if __name__ == "__main__":
    main(sys.argv[1:])
