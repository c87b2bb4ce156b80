"""MNISTIter against MXNET_COMPAT.md 5.3 and deviation 2, on small IDX files written here (raw and
gzipped), and on the real MNIST test set in ../shared/data/mnist when it is there."""

from __future__ import annotations

import gzip
import logging
import os
import struct
from pathlib import Path

import ember as mx
import ember.io  # until ember/__init__ imports io
import numpy as np
import pytest
from ember.base import ArtifactError, MXNetError

ROWS, COLS = 4, 3
SHARED = Path(os.environ.get("EMBER_SHARED", Path(__file__).resolve().parent.parent.parent / "shared"))


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """An IDX file of unsigned bytes holding `array` (MNIST's magic number unless `magic` is given)."""
    magic = magic if magic is not None else 0x800 + array.ndim
    return (
        struct.pack(">I", magic)
        + struct.pack(f">{array.ndim}I", *array.shape)
        + array.astype(np.uint8).tobytes()
    )


def make_images(count: int) -> np.ndarray:
    """Image i has every pixel equal to i (mod 256), except pixel (0, 0) = 255."""
    images = np.repeat(np.arange(count) % 256, ROWS * COLS).reshape(count, ROWS, COLS).astype(np.uint8)
    images[:, 0, 0] = 255
    return images


def write_mnist(folder, count: int = 10, gz: bool = False, images=None, labels=None) -> tuple[str, str]:
    """Write an image and a label file of `count` examples (label i = i % 10); return their paths."""
    images = make_images(count) if images is None else images
    labels = (np.arange(count) % 10).astype(np.uint8) if labels is None else labels
    paths = []
    for name, payload in (("images", idx_bytes(images)), ("labels", idx_bytes(labels))):
        path = folder / (f"{name}.gz" if gz else name)
        path.write_bytes(gzip.compress(payload) if gz else payload)
        paths.append(str(path))
    return paths[0], paths[1]


def all_batches(it) -> tuple[np.ndarray, np.ndarray, list[int]]:
    batches = list(it)
    data = np.concatenate([b.data[0].asnumpy() for b in batches])
    label = np.concatenate([b.label[0].asnumpy() for b in batches])
    return data, label, [b.pad for b in batches]


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
def test_mnistiter_reads_raw_and_gzipped_idx(tmp_path, gz):
    image, label = write_mnist(tmp_path, count=10, gz=gz)
    it = mx.io.MNISTIter(image=image, label=label, batch_size=5, shuffle=False, silent=True)
    data, labels, pads = all_batches(it)
    assert data.shape == (10, 1, ROWS, COLS) and data.dtype == np.float32
    assert labels.dtype == np.float32 and labels.tolist() == [float(i % 10) for i in range(10)]
    assert pads == [0, 0]
    expected = make_images(10).astype(np.float32)[:, None] / 256
    np.testing.assert_array_equal(data, expected)


def test_mnistiter_detects_gzip_by_content_not_name(tmp_path):
    gz_image, _ = write_mnist(tmp_path, count=4, gz=True)
    (tmp_path / "img-idx3-ubyte").write_bytes(Path(gz_image).read_bytes())
    (tmp_path / "lab.raw.gz").write_bytes(idx_bytes(np.arange(4, dtype=np.uint8)))  # raw data, .gz name
    it = mx.io.MNISTIter(
        image=str(tmp_path / "img-idx3-ubyte"),
        label=str(tmp_path / "lab.raw.gz"),
        batch_size=4,
        shuffle=False,
    )
    assert it.next().label[0].asnumpy().tolist() == [0, 1, 2, 3]


def test_mnistiter_scales_pixels_by_1_over_256_exactly(tmp_path):
    images = np.zeros((2, ROWS, COLS), dtype=np.uint8)
    images[0] = np.arange(ROWS * COLS).reshape(ROWS, COLS)
    images[1, 0, 0], images[1, 0, 1], images[1, 0, 2] = 255, 128, 1
    image, label = write_mnist(tmp_path, count=2, images=images)
    data = mx.io.MNISTIter(image=image, label=label, batch_size=2, shuffle=False).next().data[0].asnumpy()
    assert data[1, 0, 0, :3].tolist() == [0.99609375, 0.5, 0.00390625]
    assert data.max() == np.float32(255 / 256)
    np.testing.assert_array_equal(data[0, 0], np.arange(ROWS * COLS).reshape(ROWS, COLS) / np.float32(256))
    assert not np.isnan(data).any()


def test_mnistiter_flat_and_provide_shapes(tmp_path):
    image, label = write_mnist(tmp_path, count=6)
    it = mx.io.MNISTIter(image=image, label=label, batch_size=3, flat=True)
    assert it.provide_data == [("data", (3, ROWS * COLS))]
    assert it.provide_label == [("softmax_label", (3,))]
    assert repr(it.provide_data[0]) == "DataDesc[data,(3, 12),<class 'numpy.float32'>,NCHW]"
    batch = it.next()
    assert (batch.data[0].shape, batch.label[0].shape, batch.pad, batch.index) == ((3, 12), (3,), 0, None)
    assert str(batch) == "DataBatch: data shapes: [(3, 12)] label shapes: [(3,)]"
    it = mx.io.MNISTIter(image=image, label=label, batch_size=2, data_name="x", label_name="y")
    assert it.provide_data == [("x", (2, 1, ROWS, COLS))] and it.provide_label == [("y", (2,))]
    assert it.batch_size == 2


def test_mnistiter_drops_the_incomplete_last_batch(tmp_path):
    image, label = write_mnist(tmp_path, count=10)
    it = mx.io.MNISTIter(image=image, label=label, batch_size=3, shuffle=False)
    for _ in range(2):  # the same in every epoch
        _, labels, pads = all_batches(it)
        assert labels.tolist() == list(range(9)) and pads == [0, 0, 0]
        it.reset()


def test_mnistiter_shuffles_once_with_a_fixed_seed(tmp_path):
    image, label = write_mnist(tmp_path, count=20)

    def order(**kwargs):
        it = mx.io.MNISTIter(image=image, label=label, batch_size=5, **kwargs)
        epochs = []
        for _ in range(2):
            data, labels, _ = all_batches(it)
            # each image still carries its own label: pixel value i % 256 with label i % 10
            assert ((data[:, 0, 1, 1] * 256).astype(int) % 10 == labels).all()
            epochs.append(labels.tolist())
            it.reset()
        assert epochs[0] == epochs[1]  # reset() only rewinds
        return epochs[0], (data[:, 0, 1, 1] * 256).astype(int).tolist()

    _, seed0 = order()
    assert sorted(seed0) == list(range(20)) and seed0 != list(range(20))
    assert order()[1] == seed0  # same seed, same order, every time
    np.random.seed(123)  # the global NumPy state plays no part
    assert order(seed=0)[1] == seed0
    assert order(seed=1)[1] != seed0
    assert order(shuffle=False)[1] == list(range(20))
    assert seed0 == np.random.RandomState(0).permutation(20).tolist()


def test_mnistiter_partitions_contiguous_slices(tmp_path):
    image, label = write_mnist(tmp_path, count=10)

    def part(num_parts, part_index):
        it = mx.io.MNISTIter(
            image=image, label=label, batch_size=1, shuffle=False, num_parts=num_parts, part_index=part_index
        )
        return all_batches(it)[1].tolist()

    # [count*p/n, count*(p+1)/n) truncated: 10 in 3 parts -> [0,3), [3,6), [6,10)
    assert [part(3, p) for p in range(3)] == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]
    assert part(2, 1) == [5, 6, 7, 8, 9]
    shuffled = mx.io.MNISTIter(image=image, label=label, batch_size=1, num_parts=2, part_index=0)
    assert sorted(all_batches(shuffled)[1].tolist()) == [0, 1, 2, 3, 4]  # shuffles within its part


def test_mnistiter_logs_unless_silent(tmp_path, caplog):
    image, label = write_mnist(tmp_path, count=10)
    with caplog.at_level(logging.INFO, logger="ember.io"):
        mx.io.MNISTIter(image=image, label=label, batch_size=4)
        mx.io.MNISTIter(image=image, label=label, batch_size=5, shuffle=False, flat=True)
        mx.io.MNISTIter(image=image, label=label, batch_size=4, silent=True)
    assert [r.getMessage() for r in caplog.records] == [
        "MNISTIter: load 10 images, shuffle=1, shape=[4,1,4,3]",
        "MNISTIter: load 10 images, shuffle=0, shape=[5,12]",
    ]


def test_mnistiter_defaults_and_ignored_keywords(tmp_path, monkeypatch):
    image, label = write_mnist(tmp_path, count=256)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(Path(image).read_bytes())
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(Path(label).read_bytes())
    monkeypatch.chdir(tmp_path)
    it = mx.io.MNISTIter(input_shape=(1, 28, 28), prefetch_buffer=4, ctx="gpu", unknown_option=1)
    assert it.batch_size == 128 and it.provide_data == [("data", (128, 1, ROWS, COLS))]
    assert len(list(it)) == 2
    assert all_batches(it.__class__(shuffle="0", batch_size="128"))[1][:3].tolist() == [0, 1, 2]
    half = mx.io.MNISTIter(batch_size=128, dtype="float16")
    assert half.provide_data[0].dtype == np.float16 and half.next().data[0].dtype == np.float16


def test_mnistiter_keyword_arguments_only(tmp_path):
    image, label = write_mnist(tmp_path, count=4)
    with pytest.raises(TypeError):
        mx.io.MNISTIter(image, label)


# -- bad input ---------------------------------------------------------------------------------------


def test_missing_files_name_the_file(tmp_path):
    image, label = write_mnist(tmp_path, count=4)
    missing = str(tmp_path / "nope")
    with pytest.raises(ArtifactError, match=r"^MNISTIter image file '.*nope' does not exist \(No such file"):
        mx.io.MNISTIter(image=missing, label=label)
    with pytest.raises(ArtifactError, match=r"^MNISTIter label file '.*nope' does not exist \(No such file"):
        mx.io.MNISTIter(image=image, label=missing)
    with pytest.raises(ArtifactError, match=r"^MNISTIter image file '.*' cannot be read: Is a directory$"):
        mx.io.MNISTIter(image=str(tmp_path), label=label)


def test_wrong_magic_numbers(tmp_path):
    image, label = write_mnist(tmp_path, count=4)
    with pytest.raises(
        ArtifactError,
        match=r"^MNISTIter image file '.*labels' is not an IDX file of 3-D unsigned bytes: its magic number "
        r"is 2049, expected 2051 \(2049 marks a label file; are the image and label paths swapped\?\)$",
    ):
        mx.io.MNISTIter(image=label, label=image)
    bad = tmp_path / "bad"
    bad.write_bytes(idx_bytes(make_images(4), magic=0x0D03))  # float elements
    with pytest.raises(
        ArtifactError, match=r"^MNISTIter image file '.*bad' .* its magic number is 3331, expected 2051$"
    ):
        mx.io.MNISTIter(image=str(bad), label=label)
    (tmp_path / "text").write_text("hello, this is not MNIST")
    with pytest.raises(
        ArtifactError, match=r"^MNISTIter label file '.*text' is not an IDX file of 1-D unsigned bytes"
    ):
        mx.io.MNISTIter(image=image, label=str(tmp_path / "text"))


@pytest.mark.parametrize(
    "cut, message",
    [
        (2, r"is truncated: 2 bytes, too short for an IDX header$"),
        (10, r"is truncated: 10 bytes, but its 3-D IDX header needs 16$"),
        (
            16 + 4 * ROWS * COLS - 1,
            r"is truncated: its header promises 48 bytes of data for dimensions \(4, 4, 3\), but only 47 follow$",
        ),
    ],
)
def test_truncated_image_files(tmp_path, cut, message):
    image, label = write_mnist(tmp_path, count=4)
    payload = Path(image).read_bytes()
    (tmp_path / "cut").write_bytes(payload[:cut])
    with pytest.raises(ArtifactError, match=r"^MNISTIter image file '.*cut' " + message):
        mx.io.MNISTIter(image=str(tmp_path / "cut"), label=label)


def test_truncated_label_file_and_trailing_bytes(tmp_path):
    image, label = write_mnist(tmp_path, count=4)
    (tmp_path / "short").write_bytes(Path(label).read_bytes()[:-1])
    with pytest.raises(
        ArtifactError, match=r"^MNISTIter label file '.*short' is truncated: .* only 3 follow$"
    ):
        mx.io.MNISTIter(image=image, label=str(tmp_path / "short"))
    (tmp_path / "long").write_bytes(Path(label).read_bytes() + b"\0\0")
    with pytest.raises(
        ArtifactError, match=r"^MNISTIter label file '.*long' is malformed: 2 bytes follow the 4 bytes"
    ):
        mx.io.MNISTIter(image=image, label=str(tmp_path / "long"))


def test_truncated_and_corrupt_gzip(tmp_path):
    image, label = write_mnist(tmp_path, count=4, gz=True)
    payload = Path(image).read_bytes()
    (tmp_path / "cut.gz").write_bytes(payload[: len(payload) // 2])
    with pytest.raises(
        ArtifactError, match=r"^MNISTIter image file '.*cut\.gz' is a corrupt or truncated gzip file: "
    ):
        mx.io.MNISTIter(image=str(tmp_path / "cut.gz"), label=label)
    (tmp_path / "junk.gz").write_bytes(b"\x1f\x8b" + b"junk" * 10)
    with pytest.raises(
        ArtifactError, match=r"^MNISTIter image file '.*junk\.gz' is a corrupt or truncated gzip file: "
    ):
        mx.io.MNISTIter(image=str(tmp_path / "junk.gz"), label=label)


def test_bad_dimensions(tmp_path):
    _, label = write_mnist(tmp_path, count=4)
    (tmp_path / "flat").write_bytes(struct.pack(">IIII", 2051, 4, 0, 3))
    with pytest.raises(
        ArtifactError, match=r"^MNISTIter image file '.*flat' has an invalid header: dimensions \(4, 0, 3\)$"
    ):
        mx.io.MNISTIter(image=str(tmp_path / "flat"), label=label)


def test_label_count_must_match_image_count(tmp_path):
    image, _ = write_mnist(tmp_path, count=4)
    (tmp_path / "three").write_bytes(idx_bytes(np.arange(3, dtype=np.uint8)))
    with pytest.raises(
        ArtifactError,
        match=r"^MNISTIter: image file '.*images' holds 4 images but label file '.*three' holds 3 labels; "
        r"they must hold the same number$",
    ):
        mx.io.MNISTIter(image=image, label=str(tmp_path / "three"))


def test_batch_larger_than_the_data(tmp_path):
    image, label = write_mnist(tmp_path, count=10)
    with pytest.raises(
        MXNetError,
        match=r"^MNISTIter: batch_size=11 is larger than the 10 images of '.*images'; incomplete batches are "
        r"dropped, so there would be no batch at all$",
    ):
        mx.io.MNISTIter(image=image, label=label, batch_size=11)
    with pytest.raises(
        MXNetError, match=r"batch_size=6 is larger than the 5 images in part 1 of 2 of '.*images'"
    ):
        mx.io.MNISTIter(image=image, label=label, batch_size=6, num_parts=2, part_index=1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 0}, "batch_size must be at least 1, got 0"),
        ({"batch_size": "ten"}, "batch_size must be an integer, got 'ten'"),
        ({"shuffle": "maybe"}, "shuffle must be a boolean, got 'maybe'"),
        ({"num_parts": 0}, "num_parts must be at least 1, got 0"),
        ({"num_parts": 2, "part_index": 2}, "part_index=2 must be smaller than num_parts=2"),
        ({"part_index": -1}, "part_index must be at least 0, got -1"),
        (
            {"dtype": "complex64"},
            "dtype must be None or one of float32, float64, float16, int64, int32, uint8, int8, got 'complex64'",
        ),
    ],
)
def test_bad_parameters(tmp_path, kwargs, message):
    image, label = write_mnist(tmp_path, count=4)
    with pytest.raises(MXNetError, match="^MNISTIter: " + message.replace("(", r"\(") + "$"):
        mx.io.MNISTIter(image=image, label=label, batch_size=kwargs.pop("batch_size", 2), **kwargs)


# -- the real MNIST test set ------------------------------------------------------------------------


def real_mnist():
    folder = SHARED / "data" / "mnist"
    image, label = folder / "t10k-images-idx3-ubyte.gz", folder / "t10k-labels-idx1-ubyte.gz"
    if not (image.exists() and label.exists()):
        print(f"real MNIST not found in {folder}; skipping")
        pytest.skip(f"real MNIST test set not found in {folder}")
    return str(image), str(label)


def test_real_mnist_test_set():
    image, label = real_mnist()
    it = mx.io.MNISTIter(image=image, label=label, batch_size=64, silent=True)
    assert it.provide_data == [("data", (64, 1, 28, 28))] and it.provide_label == [("softmax_label", (64,))]
    batches = list(it)
    assert len(batches) == 156  # 10 000 images, batch 64, incomplete last batch dropped
    data = np.concatenate([b.data[0].asnumpy() for b in batches])
    assert data.dtype == np.float32 and data.min() == 0.0 and data.max() == np.float32(255 / 256)
    assert np.all((data * 256) == np.round(data * 256))  # every pixel is an exact byte/256
    plain = mx.io.MNISTIter(image=image, label=label, batch_size=10, shuffle=False, flat=True, silent=True)
    first = plain.next()
    assert first.label[0].asnumpy().tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # the well-known first labels
    assert first.data[0].shape == (10, 784)
    labels = np.concatenate([b.label[0].asnumpy() for b in batches])
    assert np.bincount(labels.astype(int), minlength=10).sum() == 9984
