"""`mx.gluon.data.vision`: the image data sets MXNet 1.9.1 reads from local files (MNIST, FashionMNIST,
CIFAR10, CIFAR100, RecordIO and folder images) and the math of its image transforms (`transform_math`).
"""

from . import transform_math, transforms  # noqa: F401
from .datasets import (  # noqa: F401
    CIFAR10,
    CIFAR100,
    MNIST,
    FashionMNIST,
    ImageFolderDataset,
    ImageRecordDataset,
)
