"""`mx.nd.contrib`: MXNet 1.9.1's contributed NDArray functions.

Ember has the imperative control flow (`foreach`, `while_loop`, `cond`: plain Python loops over
NDArray calls, as in MXNet) and the value tests `isnan`, `isinf`, `isfinite` (built from registry
ops). The contrib operators (detection boxes, quantization, DGL graphs, FFT, ...) are not in Ember's
registry: each raises MXNetError saying so.
"""

from __future__ import annotations

import math

from ..nesting import flatten, regroup
from .arith import logical_and
from .creation import zeros
from .ndarray import NDArray
from .register import op_function
from .unsupported import unsupported_function

NOT_IN_REGISTRY = "contrib operators (detection, quantization, graphs, FFT, ...) are not in Ember's registry"

UNSUPPORTED = (
    "AdaptiveAvgPooling2D", "BatchNormWithReLU", "BilinearResize2D", "CTCLoss", "DeformableConvolution",
    "DeformablePSROIPooling", "ModulatedDeformableConvolution", "MultiBoxDetection", "MultiBoxPrior",
    "MultiBoxTarget", "MultiProposal", "PSROIPooling", "Proposal", "ROIAlign", "RROIAlign", "SparseEmbedding",
    "SyncBatchNorm", "allclose", "arange_like", "backward_gradientmultiplier", "backward_hawkesll",
    "backward_index_copy", "backward_quadratic", "bipartite_matching", "boolean_mask", "box_decode",
    "box_encode", "box_iou", "box_nms", "box_non_maximum_suppression", "calibrate_entropy", "count_sketch",
    "ctc_loss", "dequantize", "dgl_adjacency", "dgl_csr_neighbor_non_uniform_sample",
    "dgl_csr_neighbor_uniform_sample", "dgl_graph_compact", "dgl_subgraph", "div_sqrt_dim", "edge_id", "fft",
    "getnnz", "gradientmultiplier", "group_adagrad_update", "hawkesll", "ifft", "index_array", "index_copy",
    "interleaved_matmul_encdec_qk", "interleaved_matmul_encdec_valatt", "interleaved_matmul_selfatt_qk",
    "interleaved_matmul_selfatt_valatt", "quadratic", "quantize", "quantize_asym", "quantize_v2",
    "quantized_act", "quantized_batch_norm", "quantized_concat", "quantized_conv", "quantized_elemwise_add",
    "quantized_elemwise_mul", "quantized_embedding", "quantized_flatten", "quantized_fully_connected",
    "quantized_pooling", "quantized_rnn", "requantize", "round_ste", "sign_ste",
)  # fmt: skip
globals().update((n, unsupported_function(n, NOT_IN_REGISTRY, module="contrib")) for n in UNSUPPORTED)
rand_zipfian = unsupported_function(
    "rand_zipfian", "its log-uniform candidate sampler is not in Ember", "function", "contrib"
)


def isnan(data: NDArray) -> NDArray:
    """1 where `data` is NaN, else 0."""
    return op_function("broadcast_not_equal")(data, data)


def isinf(data: NDArray) -> NDArray:
    """1 where `data` is +inf or -inf, else 0."""
    return op_function("_equal_scalar")(op_function("abs")(data), scalar=math.inf)


def isfinite(data: NDArray) -> NDArray:
    """1 where `data` is neither NaN nor infinite, else 0."""
    not_nan = op_function("broadcast_equal")(data, data)
    not_inf = op_function("_not_equal_scalar")(op_function("abs")(data), scalar=math.inf)
    return logical_and(not_inf, not_nan)


def _flatten(value, what: str) -> tuple[list, object]:
    """The NDArrays of a nest of lists/tuples, and its format for `regroup`; TypeError for others."""

    def error(other):
        kind = type(other).__name__
        return TypeError(f"{what} must be an NDArray or a nested list of NDArrays, not {kind}")

    return flatten(value, lambda v: ([v], 0) if isinstance(v, NDArray) else None, error)


def foreach(body, data, init_states):
    """Run `body(slice, states) -> (outputs, states)` over axis 0 of `data` (an NDArray or a list of
    them); returns (the outputs stacked along a new axis 0, the final states)."""
    _flatten(init_states, "init_states")
    single = isinstance(data, NDArray)
    arrays, _ = _flatten(data, "data")
    states, steps, out_fmt = init_states, [], None
    for i in range(arrays[0].shape[0]):
        outputs, states = body(data[i] if single else [d[i] for d in data], states)
        flat, out_fmt = _flatten(outputs, "foreach output")
        steps.append(flat)
    stacked = [op_function("stack")(*column, axis=0) for column in zip(*steps)]
    return (regroup(stacked, out_fmt)[0] if out_fmt is not None else []), states


def _python_scalar(value, kind, what: str):
    """A Python bool/int of a one-element NDArray or a plain scalar; ValueError naming `what` else."""
    if isinstance(value, NDArray):
        if value.size != 1:
            raise ValueError(f"{what} should be a scalar; got an NDArray of shape {value.shape}")
        value = value.asscalar()
    return kind(value)


def while_loop(cond, func, loop_vars, max_iterations=None):
    """While `cond(*loop_vars)` and fewer than `max_iterations` steps: `step_output, loop_vars =
    func(*loop_vars)`. Returns (the step outputs stacked along axis 0, padded with zeros to
    `max_iterations` rows, the final loop_vars)."""
    if max_iterations is None:
        raise ValueError("max_iterations should be specified")
    max_iterations = _python_scalar(max_iterations, int, "max_iterations")
    single = isinstance(loop_vars, NDArray)
    loop_vars = [loop_vars] if single else list(loop_vars)
    if not loop_vars:
        raise ValueError("loop_vars should contain at least one element")
    steps, out_fmt = [], None
    while len(steps) < max_iterations and _python_scalar(cond(*loop_vars), bool, "Return value of cond"):
        step_output, new_vars = func(*loop_vars)
        new_vars = _as_list(new_vars)
        if len(new_vars) != len(loop_vars):
            raise ValueError("The length of loop_vars should be consistent during the loop")
        flat, out_fmt = _flatten(_as_list(step_output), "while_loop output")
        if steps and len(flat) != len(steps[0]):
            raise ValueError("The number of outputs of func should be consistent during the loop")
        steps.append(flat)
        loop_vars = new_vars
    outputs = [_pad(op_function("stack")(*column, axis=0), max_iterations) for column in zip(*steps)]
    grouped = regroup(outputs, out_fmt)[0] if out_fmt is not None else []
    return grouped, loop_vars[0] if single else loop_vars


def _as_list(value) -> list:
    """None as [], an NDArray as [it], a list or tuple as a list."""
    if value is None:
        return []
    return [value] if isinstance(value, NDArray) else list(value)


def _pad(stacked: NDArray, rows: int) -> NDArray:
    if stacked.shape[0] >= rows:
        return stacked
    padding = zeros((rows - stacked.shape[0], *stacked.shape[1:]), stacked.context, stacked.dtype)
    return op_function("Concat")(stacked, padding, dim=0)


def cond(pred, then_func, else_func):
    """`then_func()` if the one-element `pred` is true, else `else_func()`."""
    return then_func() if _python_scalar(pred, bool, "pred") else else_func()
