"""Regenerate Ember's embedded digits (`ember.datasets.load_digits`) from the MNIST test set.

Usage: python examples/make_embedded_digits.py [MNIST_DIR]
MNIST_DIR holds MNIST's `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte` (raw or `.gz`); it
defaults to ../shared/data/mnist next to the repository. The script writes the first 6,000 images and
labels of that set, unchanged, as gzipped IDX files into frontend/datasets/ (gzip level 9 with a zero
timestamp, so the same input always gives the same bytes), and prints each file's size and MD5.

MNIST is by Yann LeCun and Corinna Cortes (with Christopher J.C. Burges), licensed CC BY-SA 3.0.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
from pathlib import Path

import numpy as np

from ember.io.idx import read_idx

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "mnist"
TARGET = REPO / "frontend" / "datasets"
COUNT = 6000  # the first 5,000 train, the next 1,000 test (see ember.datasets)
FILES = {  # embedded file -> (source stem, IDX magic number)
    "digits-images-idx3-ubyte.gz": ("t10k-images-idx3-ubyte", 2051),
    "digits-labels-idx1-ubyte.gz": ("t10k-labels-idx1-ubyte", 2049),
}


def source_path(folder: Path, stem: str) -> Path:
    """The raw or gzipped IDX file `stem` in `folder`."""
    plain = folder / stem
    return plain if plain.exists() else folder / (stem + ".gz")


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    """`array` (unsigned bytes) as an IDX file: magic number, one 32-bit size per dimension, payload."""
    header = np.array([magic, *array.shape], dtype=">u4").tobytes()
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_embedded(folder: Path, target: Path, count: int = COUNT) -> None:
    """Write the first `count` examples of the MNIST test set in `folder` into `target`, gzipped."""
    for name, (stem, magic) in FILES.items():
        ndim = 3 if magic == 2051 else 1
        array = read_idx(source_path(folder, stem), f"MNIST file {stem}", ndim=ndim)
        if len(array) < count:
            sys.exit(f"{stem} in {folder} holds {len(array)} examples; {count} are needed")
        data = gzip.compress(idx_bytes(array[:count], magic), compresslevel=9, mtime=0)
        (target / name).write_bytes(data)
        print(f"{target / name}: {len(data):,} bytes, md5 {hashlib.md5(data).hexdigest()}")


def main(argv: list[str]) -> None:
    """Parse the optional MNIST folder and write the embedded files."""
    if len(argv) > 1:
        sys.exit(__doc__)
    folder = Path(argv[0]) if argv else DEFAULT_SOURCE
    if not os.path.isdir(folder):
        sys.exit(f"MNIST folder {folder} does not exist\n\n{__doc__}")
    write_embedded(folder, TARGET)


if __name__ == "__main__":
    main(sys.argv[1:])
