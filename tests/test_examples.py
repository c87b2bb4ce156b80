"""The linear and logistic regression examples learn what generated CSV data says."""

from __future__ import annotations

import ast
import subprocess
import sys

import numpy as np

from .conftest import REPO


def run_example(name: str, csv_path) -> str:
    out = subprocess.run([sys.executable, str(REPO / "examples" / name), str(csv_path)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_linear_regression_recovers_the_generating_weights(tmp_path):
    rng = np.random.default_rng(0)
    features = rng.uniform(-1, 1, (200, 2))
    targets = features @ np.array([2.0, -3.0]) + 0.5
    np.savetxt(tmp_path / "lin.csv", np.column_stack([features, targets]), delimiter=",")
    lines = dict(line.split(" ", 1) for line in run_example("linear_regression.py", tmp_path / "lin.csv").splitlines())
    np.testing.assert_allclose(ast.literal_eval(lines["weights"]), [2.0, -3.0], atol=0.02)
    np.testing.assert_allclose(ast.literal_eval(lines["bias"]), [0.5], atol=0.02)
    assert float(lines["mse"]) < 1e-3


def test_logistic_regression_separates_two_classes(tmp_path):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 300)
    features = rng.standard_normal((300, 3)) + np.where(labels[:, None] == 1, 1.5, -1.5)
    np.savetxt(tmp_path / "log.csv", np.column_stack([features, labels]), delimiter=",")
    line = run_example("logistic_regression.py", tmp_path / "log.csv").strip()
    assert line.startswith("accuracy ") and float(line.split()[1]) > 0.95


def test_examples_without_a_path_print_their_usage():
    out = subprocess.run([sys.executable, str(REPO / "examples" / "mnist_mlp.py")], capture_output=True, text=True)
    assert out.returncode == 1 and "Usage: python examples/mnist_mlp.py DATA_DIR" in out.stderr
