"""Gluon's `SymbolBlock` (MXNet 1.9.1): a Block around a given Symbol - an exported model loaded with
`SymbolBlock.imports`, or any graph. Its inputs are the given variables; every other argument and
auxiliary state is a Parameter. It always runs its graph: through a cached executor per input signature,
or, while autograd records, node by node through `mx.nd` calls so gradients reach its Parameters (it can
be fine-tuned)."""

from __future__ import annotations

import copy
import json

import numpy as np

from ember.compiler.dtypes import DTYPE_CODES

from .. import autograd, symbol
from ..ndarray import NDArray
from ..ndarray.ndarray import invoke
from ..nesting import regroup
from ..symbol import Symbol
from .block import HybridBlock, _flatten
from .errors import InvalidValue
from .parameter import ParameterDict


class SymbolBlock(HybridBlock):
    """A Block around a given Symbol (`outputs`) with the given input variables; its other arguments
    and auxiliary states become Parameters. `SymbolBlock.imports` loads an exported model."""

    @staticmethod
    def imports(symbol_file, input_names, param_file=None, ctx=None, allow_missing=False, ignore_extra=False):
        """The SymbolBlock of an exported `<name>-symbol.json` (and its `.params`), inputs `input_names`."""
        sym = symbol.load(symbol_file)
        input_names = [input_names] if isinstance(input_names, str) else list(input_names)
        inputs = [symbol.var(name) for name in input_names]
        block = SymbolBlock(sym, inputs)
        if param_file is not None:
            block.collect_params().load(
                param_file, ctx=ctx, allow_missing=allow_missing, ignore_extra=ignore_extra, cast_dtype=True,
                dtype_source="saved",
            )  # fmt: skip
        return block

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(\n\n)" if not self._children else super().__repr__()

    def __init__(self, outputs, inputs, params=None):
        super().__init__(prefix=None, params=None)
        self._prefix = ""
        self._params = ParameterDict("", params)
        if isinstance(inputs, Symbol) and len(inputs.list_outputs()) == 1:
            inputs = [inputs]
        if isinstance(outputs, (list, tuple)) and len(outputs) == 1:
            outputs = outputs[0]
        syms, self._in_format = _flatten(list(inputs), "input")
        out, self._out_format = _flatten(outputs, "output")
        out = symbol.Group(out) if len(out) > 1 else out[0]
        input_names = set()
        for var in syms:
            if len(var.get_internals().list_outputs()) != 1:
                raise InvalidValue(f"Input symbols must be variable, but {var} is an output of operators")
            input_names.add(var.name)
        arg_params = out.list_arguments()
        aux_params = out.list_auxiliary_states()
        for name in arg_params:
            if name not in input_names:
                self.params.get(name, allow_deferred_init=True)
        for name in aux_params:
            if name not in input_names:
                self.params.get(name, grad_req="null", allow_deferred_init=True)
        self._cached_graph = syms, out
        self._reg_params = {name: param for name, param in self.params.items()}
        self._active = True

    def forward(self, x, *args):
        if isinstance(x, NDArray):
            with x.context:
                if autograd.is_recording():  # recorded op by op, so gradients reach the Parameters
                    return self._call_recorded(x, *args)
                return self._call_cached(x, *args)
        flat, _ = _flatten([x, *args], "input")
        inputs, out = self._cached_graph
        return copy.copy(out)(**{var.name: array for var, array in zip(inputs, flat)})

    def _call_recorded(self, *args):
        """The graph evaluated through `mx.nd` calls, which autograd records."""
        inputs, out = self._cached_graph
        flat, _ = _flatten(args, "input")
        ctx = next(a for a in flat if a is not None).context
        feeds = {var.name: array for var, array in zip(inputs, flat) if array is not None}
        if any(p._deferred_init for p in self.params.values()):
            self._deferred_infer_shape(*args)
            for param in self.params.values():
                param._finish_deferred_init()
        feeds.update({name: param.data(ctx) for name, param in self.params.items()})
        outputs = _evaluate_imperatively(out, feeds)
        return regroup(outputs, self._out_format)[0]

    def hybridize(
        self, active=True, backend=None, clear=True, static_alloc=False, static_shape=False, inline_limit=2,
        forward_bulk_size=None, backward_bulk_size=None, **kwargs,
    ) -> None:  # fmt: skip
        """A SymbolBlock always runs its graph: only the flags are taken."""
        super().hybridize(True, backend, clear, static_alloc, static_shape, inline_limit, forward_bulk_size,
                          backward_bulk_size, **kwargs)  # fmt: skip

    def _clear_cached_op(self) -> None:
        graph = getattr(self, "_cached_graph", ())
        super()._clear_cached_op()
        self._cached_graph = graph  # the given Symbol stays: it is not traced

    def cast(self, dtype) -> None:
        """Convert the Parameters to `dtype`, and the graph's variables for them (their `__dtype__`
        attributes, which binding would otherwise hold to the old type)."""
        self._clear_cached_op()
        super().cast(dtype)
        inputs, out = self._cached_graph
        graph = json.loads(out.tojson())
        code = str(DTYPE_CODES[np.dtype(dtype).name])
        for node in graph["nodes"]:
            if node["op"] == "null" and node["name"] in self.params and "__dtype__" in node.get("attrs", {}):
                node["attrs"]["__dtype__"] = code
        self._cached_graph = inputs, symbol.load_json(json.dumps(graph))

    def reset_ctx(self, ctx) -> None:
        """Move every Parameter to `ctx`."""
        self.collect_params().reset_ctx(ctx)

    def hybrid_forward(self, F, x, *args, **kwargs):
        raise NotImplementedError


def _evaluate_imperatively(out: Symbol, feeds: dict) -> list:
    """The outputs of `out`'s graph computed by one `mx.nd` call per node (recorded while autograd
    records), variables taken from `feeds` by name."""
    values = {}
    for node in out._graph.nodes:
        if node.is_variable:
            if node.name not in feeds:
                raise InvalidValue(f"SymbolBlock: no value for the graph input {node.name!r}")
            values[(id(node), 0)] = feeds[node.name]
            continue
        arrays = [values[(id(v.node), v.index)] for v in node.inputs]
        result = invoke(node.op, arrays, dict(node.attrs), name=node.name)
        for index, array in enumerate(result if isinstance(result, list) else [result]):
            values[(id(node), index)] = array
    return [values[(id(v.node), v.index)] for v in out._graph.outputs]


__all__ = ["SymbolBlock"]
