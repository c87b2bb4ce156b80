"""`mx.gluon.data`: datasets, samplers and the DataLoader that reads them in mini-batches, plus the vision
data sets (`vision`). See dataset.py, sampler.py and dataloader.py.
"""

from . import vision  # noqa: F401
from .dataloader import DataLoader  # noqa: F401
from .dataset import ArrayDataset, Dataset, RecordFileDataset, SimpleDataset  # noqa: F401
from .sampler import (  # noqa: F401
    BatchSampler,
    FilterSampler,
    IntervalSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
)
