"""gluon.data.vision: MNIST/FashionMNIST/CIFAR from small files written here in their formats (and the real
MNIST test set in ../shared/data/mnist when it is there), the image-folder and RecordIO data sets with and
without an image codec, and the transform math against hand-computed values."""

from __future__ import annotations

import gzip
import inspect
import io
import os
import sys
import tarfile
import types
from pathlib import Path

import numpy as np
import pytest

import ember as mx
from ember import base, recordio
from ember.base import MXNetError
from ember.gluon.data import DataLoader
from ember.gluon.data.vision import (
    CIFAR10,
    CIFAR100,
    MNIST,
    FashionMNIST,
    ImageFolderDataset,
    ImageRecordDataset,
)
from ember.gluon.data.vision import transform_math as tm
from ember.gluon.data.vision.datasets import _default_root

SHARED = Path(os.environ.get("EMBER_SHARED", Path(__file__).resolve().parents[3] / "shared"))
REAL_MNIST = SHARED / "data" / "mnist"


def idx_bytes(array: np.ndarray) -> bytes:
    magic = {3: 2051, 1: 2049}[array.ndim]
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist(root: Path, prefix: str, images: np.ndarray, labels: np.ndarray, gz: bool = True) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for name, array in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
        data = idx_bytes(array)
        (root / (name + ".gz" if gz else name)).write_bytes(gzip.compress(data) if gz else data)


IMAGES = np.arange(3 * 28 * 28, dtype=np.uint64).reshape(3, 28, 28) % 251
LABELS = np.array([7, 2, 9])


# -- MNIST and FashionMNIST --------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_reads_idx_files_gzipped_or_not(tmp_path, gz):
    write_mnist(tmp_path, "train", IMAGES, LABELS, gz=gz)
    dataset = MNIST(root=str(tmp_path))
    assert len(dataset) == 3
    image, label = dataset[1]
    assert isinstance(image, mx.nd.NDArray) and image.dtype == np.uint8 and image.shape == (28, 28, 1)
    assert np.array_equal(image.asnumpy()[:, :, 0], IMAGES[1]) and isinstance(label, np.int32) and label == 2


def test_mnist_test_split_and_transform(tmp_path):
    write_mnist(tmp_path, "t10k", IMAGES[:2], LABELS[:2])
    dataset = MNIST(root=str(tmp_path), train=False, transform=lambda x, y: (x.shape, int(y) + 100))
    assert dataset[0] == ((28, 28, 1), 107)


def test_missing_files_name_the_root_and_the_files(tmp_path):
    with pytest.raises(MXNetError, match=(
        f"MNIST: the test set's files are not in '{tmp_path}': expected 't10k-images-idx3-ubyte.gz' "
        r"\(or 't10k-images-idx3-ubyte' uncompressed\), 't10k-labels-idx1-ubyte.gz'")):  # fmt: skip
        MNIST(root=str(tmp_path), train=False)
    with pytest.raises(MXNetError, match="FashionMNIST: the training set's files are not in"):
        FashionMNIST(root=str(tmp_path))


def test_mismatched_image_and_label_counts_are_an_error(tmp_path):
    write_mnist(tmp_path, "train", IMAGES, LABELS[:2])
    with pytest.raises(MXNetError, match="holds 3 images but the label file .* holds 2 labels"):
        MNIST(root=str(tmp_path))


def test_default_roots_follow_mxnet_home(monkeypatch, tmp_path):
    assert inspect.signature(MNIST).parameters["root"].default == os.path.join(
        base.data_dir(), "datasets", "mnist"
    )
    assert (
        inspect.signature(FashionMNIST)
        .parameters["root"]
        .default.endswith(os.path.join("datasets", "fashion-mnist"))
    )
    monkeypatch.setenv("MXNET_HOME", str(tmp_path))
    assert _default_root("cifar10") == str(tmp_path / "datasets" / "cifar10")


def test_fashion_mnist_reads_the_same_layout(tmp_path):
    write_mnist(tmp_path, "t10k", IMAGES, LABELS)
    assert FashionMNIST(root=str(tmp_path), train=False)[2][1] == 9


@pytest.mark.skipif(not (REAL_MNIST / "t10k-images-idx3-ubyte.gz").exists(),
                    reason=f"the real MNIST test set is not in {REAL_MNIST}")  # fmt: skip
def test_real_mnist_test_set_through_a_loader_with_workers():
    dataset = MNIST(root=str(REAL_MNIST), train=False)
    with gzip.open(REAL_MNIST / "t10k-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read()[8:], np.uint8)
    with gzip.open(REAL_MNIST / "t10k-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read()[16:], np.uint8).reshape(-1, 28, 28)
    assert len(dataset) == 10000 and dataset[0][1] == 7 == labels[0]
    loader = DataLoader(dataset.take(2000), batch_size=500, num_workers=2)
    batches = list(loader)
    assert [b[0].shape for b in batches] == [(500, 28, 28, 1)] * 4
    assert np.array_equal(np.concatenate([b[0].asnumpy() for b in batches])[:, :, :, 0], images[:2000])
    assert np.array_equal(np.concatenate([b[1].asnumpy() for b in batches]), labels[:2000])
    assert batches[0][1].dtype == np.int32


# -- CIFAR ------------------------------------------------------------------------------------------------


def cifar_records(labels: list[list[int]], start: int) -> bytes:
    """Records of the label bytes then 3072 pixel bytes, channel-major, pixel values from `start`."""
    out = b""
    for n, label in enumerate(labels):
        pixels = (np.arange(3072) + start + n) % 256
        out += bytes(label) + pixels.astype(np.uint8).tobytes()
    return out


def test_cifar10_reads_binary_batches_as_hwc(tmp_path):
    for i in range(1, 6):
        (tmp_path / f"data_batch_{i}.bin").write_bytes(cifar_records([[i], [i + 1]], start=i))
    (tmp_path / "test_batch.bin").write_bytes(cifar_records([[3]], start=0))
    train = CIFAR10(root=str(tmp_path))
    assert len(train) == 10 and [int(train[i][1]) for i in range(10)] == [1, 2, 2, 3, 3, 4, 4, 5, 5, 6]
    image, label = CIFAR10(root=str(tmp_path), train=False)[0]
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8 and isinstance(label, np.int32)
    pixels = image.asnumpy()
    # channel c, row r, column x sits at byte 1024 c + 32 r + x of the record's pixels
    assert [int(pixels[0, 0, c]) for c in range(3)] == [0, 1024 % 256, 2048 % 256]
    assert int(pixels[1, 2, 0]) == 34 and int(pixels[31, 31, 2]) == (2048 + 1023) % 256


def test_cifar100_coarse_and_fine_labels(tmp_path):
    (tmp_path / "train.bin").write_bytes(cifar_records([[4, 40], [5, 51]], start=0))
    assert [int(CIFAR100(root=str(tmp_path))[i][1]) for i in range(2)] == [4, 5]
    assert [int(CIFAR100(root=str(tmp_path), fine_label=True)[i][1]) for i in range(2)] == [40, 51]


def test_cifar10_extracts_its_archive_when_the_batches_are_missing(tmp_path):
    content = cifar_records([[6]], start=9)
    with tarfile.open(tmp_path / "cifar-10-binary.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-bin/test_batch.bin")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    assert CIFAR10(root=str(tmp_path), train=False)[0][1] == 6
    assert (tmp_path / "cifar-10-batches-bin" / "test_batch.bin").exists()


def test_cifar_errors_name_the_files(tmp_path):
    with pytest.raises(MXNetError, match="CIFAR100: the test set's files are not in .*: expected 'test.bin'"):
        CIFAR100(root=str(tmp_path), train=False)
    (tmp_path / "test_batch.bin").write_bytes(b"\0" * 3000)
    with pytest.raises(MXNetError, match="its 3000 bytes are not a whole number of 3073-byte records"):
        CIFAR10(root=str(tmp_path), train=False)


# -- images decoded by OpenCV ------------------------------------------------------------------------------


def fake_cv2(monkeypatch):
    """A cv2 whose 'encoded' images are 2x2x3 raw BGR bytes (imdecode flag 1) or 2x2 grey ones (flag 0)."""

    def imdecode(buf, flag):
        return buf.reshape(2, 2, 3) if flag == 1 else buf[:4].reshape(2, 2)

    monkeypatch.setitem(sys.modules, "cv2", types.SimpleNamespace(imdecode=imdecode))


BGR = np.arange(12, dtype=np.uint8)


def test_image_record_dataset_decodes_to_rgb_with_the_header_label(tmp_path, monkeypatch):
    writer = recordio.MXIndexedRecordIO(str(tmp_path / "i.idx"), str(tmp_path / "i.rec"), "w")
    writer.write_idx(0, recordio.pack((0, 3.0, 0, 0), BGR.tobytes()))
    writer.close()
    dataset = ImageRecordDataset(str(tmp_path / "i.rec"))
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(MXNetError, match="ImageRecordDataset .* record 0 needs OpenCV"):
        dataset[0]
    fake_cv2(monkeypatch)
    image, label = dataset[0]
    assert label == 3.0 and image.dtype == np.uint8
    assert image.asnumpy().tolist() == BGR.reshape(2, 2, 3)[:, :, ::-1].tolist()
    grey, _ = ImageRecordDataset(str(tmp_path / "i.rec"), flag=0)[0]
    assert grey.shape == (2, 2, 1) and grey.asnumpy().ravel().tolist() == [0, 1, 2, 3]


def test_image_folder_dataset_lists_classes_and_decodes(tmp_path, monkeypatch):
    for folder, names in (("dog", ["b.png", "a.jpg", "notes.txt"]), ("cat", ["c.JPEG"])):
        (tmp_path / folder).mkdir()
        for name in names:
            (tmp_path / folder / name).write_bytes(BGR.tobytes())
    (tmp_path / "stray.jpg").write_bytes(b"")
    with pytest.warns(UserWarning) as warned:
        dataset = ImageFolderDataset(str(tmp_path), transform=lambda x, y: (x.shape, y))
    assert sorted(str(w.message) for w in warned) == [
        f"Ignoring {tmp_path / 'dog' / 'notes.txt'} of type .txt. Only support .jpg, .jpeg, .png",
        f"Ignoring {tmp_path / 'stray.jpg'}, which is not a directory.",
    ]
    assert dataset.synsets == ["cat", "dog"]
    assert [(os.path.basename(p), y) for p, y in dataset.items] == [("c.JPEG", 0), ("a.jpg", 1), ("b.png", 1)]
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(MXNetError, match="ImageFolderDataset image .*c.JPEG' needs OpenCV"):
        dataset[0]
    fake_cv2(monkeypatch)
    assert dataset[2] == ((2, 2, 3), 1)


# -- transform math ----------------------------------------------------------------------------------------

HWC = np.array([[[0, 51, 255], [102, 153, 204]]], dtype=np.uint8)  # 1 x 2 x 3


def test_to_tensor_moves_channels_first_and_scales():
    out = tm.to_tensor(mx.nd.array(HWC, dtype=np.uint8))
    assert isinstance(out, mx.nd.NDArray) and out.dtype == np.float32 and out.shape == (3, 1, 2)
    assert np.allclose(out.asnumpy(), [[[0, 0.4]], [[0.2, 0.6]], [[1, 0.8]]])
    batch = tm.to_tensor(np.stack([HWC, HWC]))
    assert isinstance(batch, np.ndarray) and batch.shape == (2, 3, 1, 2)
    with pytest.raises(MXNetError, match=r"to_tensor: the input must be HWC or NHWC; got shape \(2, 3\)"):
        tm.to_tensor(np.zeros((2, 3)))


def test_normalize_per_channel():
    tensor = np.float32([[[1, 2]], [[3, 4]], [[5, 6]]])  # CHW 3 x 1 x 2
    out = tm.normalize(tensor, mean=(1, 2, 3), std=(1, 2, 4))
    assert out.tolist() == [[[0, 1]], [[0.5, 1]], [[0.5, 0.75]]] and out.dtype == np.float32
    assert tm.normalize(tensor, 1.0, 2.0).tolist() == [[[0, 0.5]], [[1, 1.5]], [[2, 2.5]]]
    with pytest.raises(MXNetError, match="mean must have either 1 or 3 elements, got 2"):
        tm.normalize(tensor, mean=(1, 2))
    with pytest.raises(MXNetError, match="must have 1 or 3 channels"):
        tm.normalize(np.zeros((2, 1, 1), np.float32))


def test_cast_and_flips():
    image = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    assert tm.cast(image, "float16").dtype == np.float16
    assert tm.flip_left_right(image)[0, 0].tolist() == [3, 4, 5]
    assert tm.flip_top_bottom(image)[0, 0].tolist() == [6, 7, 8]
    batch = tm.flip_left_right(mx.nd.array(np.stack([image, image]), dtype=np.uint8))
    assert batch.asnumpy()[1, 1, 1].tolist() == [6, 7, 8]


def test_crop_checks_bounds():
    image = np.arange(4 * 5).reshape(4, 5, 1)
    assert tm.crop(image, 1, 2, 3, 2)[:, :, 0].tolist() == [[11, 12, 13], [16, 17, 18]]
    with pytest.raises(MXNetError, match="width out of bound: x \\+ width = 6 > image width 5"):
        tm.crop(image, 3, 0, 3, 1)


def test_resize_nearest_and_bilinear_follow_opencv_rules():
    row = np.float32([[[0], [100]]])  # 1 x 2 x 1
    assert tm.imresize(row, 4, 1, interp=1)[0, :, 0].tolist() == [0, 25, 75, 100]
    assert tm.imresize(row.astype(np.uint8), 4, 1, interp=1)[0, :, 0].tolist() == [0, 25, 75, 100]
    assert tm.imresize(row, 4, 1, interp=0)[0, :, 0].tolist() == [0, 0, 100, 100]
    wide = np.float32([[[0], [10], [20], [30]]])
    assert tm.imresize(wide, 2, 1, interp=1)[0, :, 0].tolist() == [5, 25]
    assert tm.imresize(wide, 2, 1, interp=0)[0, :, 0].tolist() == [0, 20]
    grid = np.float32([[0, 10], [20, 30]]).reshape(2, 2, 1)
    # 2x2 -> 3x3: centres at -1/6, 1/2, 7/6 of the source on both axes (clamped at the borders)
    assert tm.imresize(grid, 3, 3, interp=1)[:, :, 0].tolist() == [[0, 5, 10], [10, 15, 20], [20, 25, 30]]


def test_resize_sizes_and_keep_ratio():
    image = np.zeros((4, 8, 3), np.uint8)
    assert tm.resize(image, 2).shape == (2, 2, 3)
    assert tm.resize(image, (6, 3)).shape == (3, 6, 3)
    assert tm.resize(image, 2, keep_ratio=True).shape == (2, 4, 3)
    assert tm.resize(np.zeros((5, 3, 1), np.uint8), 2, keep_ratio=True).shape == (3, 2, 1)  # 5 * 2 // 3
    assert tm.resize(np.zeros((2, 4, 8, 3), np.float32), (4, 2)).shape == (2, 2, 4, 3)
    with pytest.raises(MXNetError, match=r"bicubic interpolation \(interp=2\) needs OpenCV"):
        tm.resize(image, 2, interp=2)
    with pytest.raises(MXNetError, match="area interpolation"):
        tm.resize(image, 2, interp=9)  # shrinking both sides: area
    assert tm.resize(image, (16, 2), interp=9).shape == (2, 16, 3)  # one side each way: bilinear


def test_center_crop_scales_the_size_down_to_fit():
    image = np.arange(4 * 6).reshape(4, 6, 1).astype(np.uint8)
    out, rect = tm.center_crop(image, (2, 2))
    assert rect == (2, 1, 2, 2) and out[:, :, 0].tolist() == [[8, 9], [14, 15]]
    out, rect = tm.center_crop(image, 8, interp=0)
    assert rect == (1, 0, 4, 4) and out.shape == (8, 8, 1) and out[0, :2, 0].tolist() == [1, 1]


def test_random_flips_draw_from_the_given_generator():
    image = np.arange(6).reshape(1, 2, 3)
    rng = np.random.default_rng(0)
    assert tm.random_flip_left_right(image, p=1.0, rng=rng)[0, 0].tolist() == [3, 4, 5]
    assert tm.random_flip_top_bottom(image, p=0.0, rng=rng) is image
    draws = np.random.default_rng(4).random(20) < 0.5
    rng = np.random.default_rng(4)
    flipped = [tm.random_flip_left_right(image, rng=rng)[0, 0, 0] == 3 for _ in range(20)]
    assert flipped == draws.tolist()


def test_random_crop_and_random_size_crop():
    image = np.arange(6 * 8).reshape(6, 8, 1).astype(np.float32)
    out, (x0, y0, w, h) = tm.random_crop(image, (3, 2), rng=np.random.default_rng(1))
    assert (w, h) == (3, 2) and np.array_equal(out, image[y0 : y0 + 2, x0 : x0 + 3])
    out, (x0, y0, w, h) = tm.random_size_crop(image, (4, 4), 0.25, (0.5, 2.0), interp=1,
                                              rng=np.random.default_rng(2))  # fmt: skip
    assert out.shape == (4, 4, 1) and x0 + w <= 8 and y0 + h <= 6 and w * h >= 0.2 * 48
    assert np.array_equal(out, tm.imresize(image[y0 : y0 + h, x0 : x0 + w], 4, 4, interp=1))
    # no region of ratio 4 covering the whole image fits: center_crop's size-(2, 2) region in the middle
    _, rect = tm.random_size_crop(
        image, (2, 2), (1.0, 1.0), (4.0, 4.0), interp=1, rng=np.random.default_rng(0)
    )
    assert rect == (3, 2, 2, 2)


def test_random_brightness_and_contrast():
    image = np.uint8([[[100, 150, 200], [10, 20, 30]]])
    alpha = np.float32(np.random.default_rng(3).uniform(0.5, 1.5))
    out = tm.random_brightness(image, 0.5, rng=np.random.default_rng(3))
    assert out.tolist() == np.clip(image * alpha, 0, 255).astype(np.uint8).tolist()
    assert tm.random_brightness(image, 0.0, rng=np.random.default_rng(3)).tolist() == image.tolist()
    grey = np.full((2, 2, 3), 90, np.uint8)  # the mean grey of a grey image is its own level
    assert tm.random_contrast(grey, 0.9, rng=np.random.default_rng(5)).tolist() == grey.tolist()
    out = tm.random_contrast(np.float32([[[255, 0, 0]], [[0, 0, 0]]]), 0.5, rng=np.random.default_rng(6))
    alpha = np.float32(np.random.default_rng(6).uniform(0.5, 1.5))
    shift = (1 - alpha) * 0.299 * 255 / 2  # (1 - alpha) * the mean grey level
    assert out[0, 0].tolist() == pytest.approx([255 * alpha + shift, shift, shift], rel=1e-5)
