"""The image data sets of `mx.gluon.data.vision`, read from local files as MXNet 1.9.1 reads them.

MNIST and FashionMNIST read IDX files (gzipped or not), CIFAR10 and CIFAR100 the binary batches of
their "binary version" archives; each sample is (HWC uint8 NDArray image, int32 label). Ember never
downloads: when a data set's files are missing from `root` (default `$MXNET_HOME/datasets/<name>`,
MXNET_HOME defaulting to ~/.mxnet), an MXNetError names the folder and the files it expects; MXNet's
SHA-1 checks, which only decide whether to download again, are not made. ImageRecordDataset and
ImageFolderDataset decode images with OpenCV and raise MXNetError saying so when cv2 is not installed.
"""

from __future__ import annotations

import os
import tarfile
import warnings

import numpy as np

from ember import base, recordio
from ember import ndarray as nd
from ember.io.idx import read_idx
from ember.runtime.errors import MXNetError

from ..dataset import Dataset, RecordFileDataset

__all__ = ["MNIST", "FashionMNIST", "CIFAR10", "CIFAR100", "ImageRecordDataset", "ImageFolderDataset"]


def _default_root(name: str) -> str:
    return os.path.join(base.data_dir(), "datasets", name)


class _DownloadedDataset(Dataset):
    """A data set held in memory: `_data` (NDArray of images) and `_label` (NumPy int32), read from the
    files in `root` by `_get_data`; `transform(image, label)` is applied to each sample read."""

    def __init__(self, root, transform):
        self._transform = transform
        self._data = None
        self._label = None
        self._root = os.path.expanduser(root)
        self._get_data()

    def __getitem__(self, idx):
        if self._transform is not None:
            return self._transform(self._data[idx], self._label[idx])
        return self._data[idx], self._label[idx]

    def __len__(self):
        return len(self._label)

    def _get_data(self):
        raise NotImplementedError

    def _split(self) -> str:
        return "training" if self._train else "test"

    def _missing(self, expected: list[str]) -> MXNetError:
        """The error for a data set whose files are not in its root."""
        return MXNetError(
            f"{type(self).__name__}: the {self._split()} set's files are not in '{self._root}': expected "
            f"{', '.join(expected)}. Ember does not download data sets; copy the files into that folder "
            f"(or pass root=)"
        )


class MNIST(_DownloadedDataset):
    """The MNIST handwritten digits: samples are (28x28x1 uint8 NDArray, int32 label).

    Reads `train-images-idx3-ubyte.gz` and `train-labels-idx1-ubyte.gz` (`train=True`) or the `t10k-`
    pair from `root`; the files may also be uncompressed (the names without `.gz`).
    """

    def __init__(self, root=_default_root("mnist"), train=True, transform=None):
        self._train = train
        self._train_data = ("train-images-idx3-ubyte.gz", "6c95f4b05d2bf285e1bfb0e7960c31bd3b3f8a7d")
        self._train_label = ("train-labels-idx1-ubyte.gz", "2a80914081dc54586dbdf242f9805a6b8d2a15fc")
        self._test_data = ("t10k-images-idx3-ubyte.gz", "c3a25af1f52dad7f726cce8cacb138654b760d48")
        self._test_label = ("t10k-labels-idx1-ubyte.gz", "763e7fa3757d93b0cdec073cef058b2004252c17")
        self._namespace = "mnist"
        super().__init__(root, transform)

    def _locate(self, name: str) -> str | None:
        """The path of `name` in root, gzipped or (without its .gz) not; None when neither is there."""
        for candidate in (name, name[: -len(".gz")]):
            path = os.path.join(self._root, candidate)
            if os.path.isfile(path):
                return path
        return None

    def _get_data(self):
        files = (self._train_data, self._train_label) if self._train else (self._test_data, self._test_label)
        names = [name for name, _sha1 in files]
        paths = [self._locate(name) for name in names]
        if None in paths:
            raise self._missing([f"'{name}' (or '{name[:-3]}' uncompressed)" for name in names])
        kind = type(self).__name__
        images = read_idx(paths[0], f"{kind} image file", 3)
        labels = read_idx(paths[1], f"{kind} label file", 1)
        if len(images) != len(labels):
            raise MXNetError(
                f"{kind}: the image file '{paths[0]}' holds {len(images)} images but the label file "
                f"'{paths[1]}' holds {len(labels)} labels"
            )
        self._data = nd.array(images.reshape(images.shape + (1,)), dtype=np.uint8)
        self._label = labels.astype(np.int32)


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST, a drop-in replacement of MNIST with the same file names and layout:
    samples are (28x28x1 uint8 NDArray, int32 label)."""

    def __init__(self, root=_default_root("fashion-mnist"), train=True, transform=None):
        self._train = train
        self._train_data = ("train-images-idx3-ubyte.gz", "0cf37b0d40ed5169c6b3aba31069a9770ac9043d")
        self._train_label = ("train-labels-idx1-ubyte.gz", "236021d52f1e40852b06a4c3008d8de8aef1e40b")
        self._test_data = ("t10k-images-idx3-ubyte.gz", "626ed6a7c06dd17c0eec72fa3be1740f146a2863")
        self._test_label = ("t10k-labels-idx1-ubyte.gz", "17f9ab60e7257a1620f4ad76bbbaf857c3920701")
        self._namespace = "fashion-mnist"
        _DownloadedDataset.__init__(self, root, transform)


class CIFAR10(_DownloadedDataset):
    """CIFAR-10: samples are (32x32x3 uint8 NDArray, int32 label).

    Reads the binary batches `data_batch_1.bin` .. `data_batch_5.bin` (`train=True`) or `test_batch.bin`
    (records of one label byte and 3072 pixel bytes, channel-major) from `root`, or from the
    `cifar-10-batches-bin` folder the official `cifar-10-binary.tar.gz` holds; that archive, when it lies
    in `root` and the batches do not, is extracted there first, as MXNet does after downloading it.
    """

    _FOLDER = "cifar-10-batches-bin"
    _LABEL_BYTES = 1

    def __init__(self, root=_default_root("cifar10"), train=True, transform=None):
        self._train = train
        self._archive_file = ("cifar-10-binary.tar.gz", "fab780a1e191a7eda0f345501ccd62d20f7ed891")
        self._train_data = [
            ("data_batch_1.bin", "aadd24acce27caa71bf4b10992e9e7b2d74c2540"),
            ("data_batch_2.bin", "c0ba65cce70568cd57b4e03e9ac8d2a5367c1795"),
            ("data_batch_3.bin", "1dd00a74ab1d17a6e7d73e185b69dbf31242f295"),
            ("data_batch_4.bin", "aab85764eb3584312d3c7f65fd2fd016e36a258e"),
            ("data_batch_5.bin", "26e2849e66a845b7f1e4614ae70f4889ae604628"),
        ]
        self._test_data = [("test_batch.bin", "67eb016db431130d61cd03c7ad570b013799c88c")]
        self._namespace = "cifar10"
        super().__init__(root, transform)

    def _label_column(self) -> int:
        return 0

    def _read_batch(self, filename):
        """(N x 32 x 32 x 3 uint8 images, N int32 labels) of one binary batch file."""
        record = self._LABEL_BYTES + 3072
        try:
            with open(filename, "rb") as fin:
                raw = fin.read()
        except OSError as err:
            raise MXNetError(
                f"{type(self).__name__}: cannot read '{filename}': {err.strerror or err}"
            ) from None
        if not raw or len(raw) % record:
            raise MXNetError(
                f"{type(self).__name__}: '{filename}' is not a binary batch: its {len(raw)} bytes are not a "
                f"whole number of {record}-byte records"
            )
        data = np.frombuffer(raw, dtype=np.uint8).reshape(-1, record)
        images = data[:, self._LABEL_BYTES :].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return images, data[:, self._label_column()].astype(np.int32)

    def _find_batch(self, name: str) -> str | None:
        for path in (os.path.join(self._root, name), os.path.join(self._root, self._FOLDER, name)):
            if os.path.isfile(path):
                return path
        return None

    def _batch_paths(self) -> list[str]:
        """The paths of this split's batch files, extracting the archive in root when they are missing."""
        names = [name for name, _ in (self._train_data if self._train else self._test_data)]
        paths = [self._find_batch(name) for name in names]
        archive = os.path.join(self._root, self._archive_file[0])
        if None in paths and os.path.isfile(archive):
            with tarfile.open(archive) as tar:
                # the "data" filter refuses links and paths that leave root (where Python has it)
                safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                tar.extractall(self._root, **safe)
            paths = [self._find_batch(name) for name in names]
        if None in paths:
            expected = [f"'{name}'" for name in names]
            raise self._missing(
                expected + [f"(or them in '{self._FOLDER}/', or the archive '{self._archive_file[0]}')"]
            )
        return paths

    def _get_data(self):
        data, label = zip(*(self._read_batch(path) for path in self._batch_paths()))
        data = np.concatenate(data)
        self._data = nd.array(data, dtype=data.dtype)
        self._label = np.concatenate(label)


class CIFAR100(CIFAR10):
    """CIFAR-100: samples are (32x32x3 uint8 NDArray, int32 label), the label fine-grained (100 classes)
    with `fine_label=True`, else coarse (20 superclasses).

    Reads `train.bin` or `test.bin` (records of a coarse label byte, a fine label byte and 3072 pixel
    bytes) from `root` or its `cifar-100-binary` folder, extracting `cifar-100-binary.tar.gz` as CIFAR10.
    """

    _FOLDER = "cifar-100-binary"
    _LABEL_BYTES = 2

    def __init__(self, root=_default_root("cifar100"), fine_label=False, train=True, transform=None):
        self._train = train
        self._archive_file = ("cifar-100-binary.tar.gz", "a0bb982c76b83111308126cc779a992fa506b90b")
        self._train_data = [("train.bin", "e207cd2e05b73b1393c74c7f5e7bea451d63e08e")]
        self._test_data = [("test.bin", "8fb6623e830365ff53cf14adec797474f5478006")]
        self._fine_label = fine_label
        self._namespace = "cifar100"
        _DownloadedDataset.__init__(self, root, transform)

    def _label_column(self) -> int:
        return 1 if self._fine_label else 0


def _imdecode(buf, flag, what: str):
    """The encoded image `buf` as an HWC uint8 NDArray: RGB (flag 1) or grey with one channel (flag 0),
    as `mx.image.imdecode` returns it."""
    cv2 = recordio.require_cv2(what)
    img = cv2.imdecode(np.frombuffer(buf, dtype=np.uint8), 1 if flag else 0)
    if img is None:
        raise MXNetError(f"{what}: the data is not an image OpenCV can decode")
    img = img[:, :, ::-1] if flag else img.reshape(img.shape[:2] + (1,))
    return nd.array(np.ascontiguousarray(img), dtype=np.uint8)


class ImageRecordDataset(RecordFileDataset):
    """The images of a RecordIO file made with `recordio.pack_img`: samples are (HWC uint8 NDArray, the
    record header's label); `flag` 1 decodes to RGB, 0 to one grey channel. Decoding needs OpenCV."""

    def __init__(self, filename, flag=1, transform=None):
        super().__init__(filename)
        self._flag = flag
        self._transform = transform

    def __getitem__(self, idx):
        record = super().__getitem__(idx)
        header, img = recordio.unpack(record)
        image = _imdecode(img, self._flag, f"ImageRecordDataset '{self.filename}' record {idx}")
        if self._transform is not None:
            return self._transform(image, header.label)
        return image, header.label


class ImageFolderDataset(Dataset):
    """The images of a folder with one subfolder per class (`root/car/0001.jpg`, `root/bus/023.png`):
    `synsets` lists the class names (sorted; label i is `synsets[i]`), `items` the (path, label) pairs.
    Only .jpg, .jpeg and .png files are taken; others warn. Decoding needs OpenCV."""

    def __init__(self, root, flag=1, transform=None):
        self._root = os.path.expanduser(root)
        self._flag = flag
        self._transform = transform
        self._exts = [".jpg", ".jpeg", ".png"]
        self._list_images(self._root)

    def _list_images(self, root):
        self.synsets = []
        self.items = []
        try:
            folders = sorted(os.listdir(root))
        except OSError as err:
            raise MXNetError(f"ImageFolderDataset: cannot list '{root}': {err.strerror or err}") from None
        for folder in folders:
            path = os.path.join(root, folder)
            if not os.path.isdir(path):
                warnings.warn("Ignoring %s, which is not a directory." % path, stacklevel=3)
                continue
            label = len(self.synsets)
            self.synsets.append(folder)
            for filename in sorted(os.listdir(path)):
                filename = os.path.join(path, filename)
                ext = os.path.splitext(filename)[1]
                if ext.lower() not in self._exts:
                    warnings.warn(
                        "Ignoring %s of type %s. Only support %s" % (filename, ext, ", ".join(self._exts)),
                        stacklevel=3,
                    )
                    continue
                self.items.append((filename, label))

    def __getitem__(self, idx):
        filename, label = self.items[idx]
        with open(filename, "rb") as fin:
            img = _imdecode(fin.read(), self._flag, f"ImageFolderDataset image '{filename}'")
        if self._transform is not None:
            return self._transform(img, label)
        return img, label

    def __len__(self):
        return len(self.items)
