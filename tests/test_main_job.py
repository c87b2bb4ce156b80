"""The main job (examples/main_job.py) and the embedded digits it trains on (`ember.datasets`).

The main job trains the seed MLP on the embedded digits, compiles it, reloads the artifact with the
runtime and runs it: with 3 epochs the artifact scores at least 0.88 on the 1,000 held-out digits
(0.925 measured), exactly what `Module.score` says. The embedded files are checked against the real
MNIST test set when ../shared/data/mnist exists (skipped with the reason otherwise).
"""

from __future__ import annotations

import gzip
import importlib.util
import re
import subprocess
import sys

import numpy as np
import pytest

from ember.datasets import DIGITS_IMAGES, DIGITS_LABELS, load_digits

from .conftest import REPO, SHARED

MNIST = SHARED / "data" / "mnist"
EPOCHS = 3
MIN_ACCURACY = 0.88  # after 3 epochs over the 5,000 embedded training digits; 0.925 measured


def figure(output: str, label: str) -> float:
    """The number printed after `label` on its line of `output`."""
    match = re.search(re.escape(label) + r":? ([0-9.]+)", output)
    assert match, f"no {label!r} line in:\n{output}"
    return float(match.group(1))


def test_main_job_trains_compiles_and_matches_the_reference():
    script = REPO / "examples" / "main_job.py"
    out = subprocess.run([sys.executable, str(script), "--epochs", str(EPOCHS), "--repeats", "20"],
                         check=False, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    print(out.stdout)
    assert len(re.findall(r"^epoch \d+/3: train accuracy", out.stdout, re.MULTILINE)) == EPOCHS
    artifact = figure(out.stdout, "artifact accuracy (ember.runtime.load)")
    reference = figure(out.stdout, "reference accuracy (Module.score)")
    assert artifact >= MIN_ACCURACY
    assert artifact == reference
    assert "numpy forward: same predictions on 1000 of 1000 images" in out.stdout
    assert re.search(r"speed \(batch 100, median of 20\): artifact [0-9.]+ us, numpy [0-9.]+ us", out.stdout)


@pytest.mark.parametrize("split, count", [("train", 5000), ("test", 1000)])
def test_load_digits_gives_flat_scaled_images_and_digit_labels(split, count):
    images, labels = load_digits(split)
    assert images.shape == (count, 784) and images.dtype == np.float32
    assert labels.shape == (count,) and labels.dtype == np.float32
    assert images.min() == 0.0 and images.max() == 1.0
    assert set(np.unique(labels)) == set(range(10))
    assert np.all(labels == np.round(labels))


def test_load_digits_rejects_an_unknown_split():
    with pytest.raises(ValueError, match="split must be one of 'train', 'test'"):
        load_digits("validation")


def test_the_embedded_files_are_small():
    assert DIGITS_IMAGES.stat().st_size + DIGITS_LABELS.stat().st_size < 1_200_000


def _mnist_test_set() -> tuple[np.ndarray, np.ndarray]:
    from ember.io.mnist import load_mnist

    images_gz, labels_gz = MNIST / "t10k-images-idx3-ubyte.gz", MNIST / "t10k-labels-idx1-ubyte.gz"
    if not images_gz.exists():
        pytest.skip(f"the real MNIST test set is not at {MNIST} (../shared is absent)")
    return load_mnist(images_gz, labels_gz)


def test_the_embedded_digits_are_the_mnist_test_set():
    images, labels = _mnist_test_set()
    test_images, test_labels = load_digits("test")
    np.testing.assert_array_equal(test_images[0], images[5000].reshape(-1) / np.float32(255))
    assert test_labels[0] == labels[5000]
    train_images, train_labels = load_digits("train")
    np.testing.assert_array_equal(np.rint(train_images * 255).astype(np.uint8), images[:5000].reshape(5000, -1))
    np.testing.assert_array_equal(train_labels, labels[:5000])
    np.testing.assert_array_equal(test_labels, labels[5000:6000])


def test_make_embedded_digits_regenerates_the_shipped_files(tmp_path):
    _mnist_test_set()
    spec = importlib.util.spec_from_file_location("make_embedded_digits", REPO / "examples" / "make_embedded_digits.py")
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    maker.write_embedded(MNIST, tmp_path)
    for shipped in (DIGITS_IMAGES, DIGITS_LABELS):  # the IDX bytes (gzip's output varies with zlib builds)
        assert gzip.decompress((tmp_path / shipped.name).read_bytes()) == gzip.decompress(shipped.read_bytes())
