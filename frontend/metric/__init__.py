"""`mx.metric`: online evaluation metrics, as MXNet 1.9.1 has them.

`base` holds the protocol (`EvalMetric`, local and global statistics), the registry behind
`create('acc')`, and the metrics built from others (`CompositeEvalMetric`, `CustomMetric`, `np`);
`classification`, `regression` and `probability` hold the concrete metrics.
"""

from .base import (  # noqa: F401
    CompositeEvalMetric,
    CustomMetric,
    EvalMetric,
    alias,
    check_label_shapes,
    create,
    np,
    register,
)
from .classification import F1, MCC, PCC, Accuracy, TopKAccuracy  # noqa: F401
from .probability import Caffe, CrossEntropy, Loss, NegativeLogLikelihood, Perplexity, Torch  # noqa: F401
from .regression import MAE, MSE, RMSE, PearsonCorrelation  # noqa: F401
